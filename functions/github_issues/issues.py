"""The issue calls, as GitHub's REST API documents them, through the GitHub function's client.

Owns the requests and reading their answers; not what to do with them (``main``). The client
(``functions.github.rest``, handed out by ``functions.github.client``: a token, or an App
installation looked up per repository) carries the credentials, the API's URL and the
per-request timeout; it raises ``GitHubError`` for an answer other than 2xx, redirects included
(it follows none), and follows a ``Link`` only under its base URL. Paths are built from the
configured repository only; every issue an answer names is checked to be in that repository
(``Issue.in_repository``) before anything is done to it.

Lookups list (``GET /repos/{owner}/{repo}/issues?labels=...&state=...``), not search: the list
reads what was just written, and costs one request of the primary rate limit, where the search
API has its own limit of 30 requests a minute and an index that lags behind new issues, which
would open a second issue for a failure that follows the first closely.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # urllib3 is imported by the first report (functions.github.client)
    from functions.github.rest import Answer, Api

PER_PAGE = 100
"""GitHub's largest page: lookups take as few requests as GitHub allows."""


@dataclass(frozen=True)
class Issue:
    """What is read of an issue (or a pull request: the list endpoint returns both)."""

    number: int
    state: str
    body: str
    labels: frozenset[str]
    author: str | None
    updated_at: datetime | None
    repository_url: str
    html_url: str
    pull_request: bool

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> Issue:
        user = data.get("user")
        labels = data.get("labels") or []
        return cls(
            number=int(data["number"]),
            state=str(data.get("state") or ""),
            body=str(data.get("body") or ""),
            labels=frozenset(
                str(label.get("name") if isinstance(label, Mapping) else label).lower() for label in labels
            ),
            author=str(user["login"]) if isinstance(user, Mapping) and user.get("login") else None,
            updated_at=_moment(data.get("updated_at")),
            repository_url=str(data.get("repository_url") or ""),
            html_url=str(data.get("html_url") or ""),
            pull_request=data.get("pull_request") is not None,
        )

    @property
    def open(self) -> bool:
        return self.state == "open"

    def in_repository(self, owner: str, repo: str) -> bool:
        """Whether GitHub says the issue is in ``owner/repo`` (a transferred one answers elsewhere)."""
        path = urlsplit(self.repository_url).path.rstrip("/").lower()
        return path.endswith(f"/repos/{owner}/{repo}".lower())


@dataclass(frozen=True)
class Comment:
    body: str
    author: str | None

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> Comment:
        user = data.get("user")
        login = user.get("login") if isinstance(user, Mapping) else None
        return cls(str(data.get("body") or ""), str(login) if login else None)


class IssuesApi:
    """The issue endpoints of one repository. ``doing`` names the call in progress, for errors."""

    def __init__(self, api: Api, owner: str, repo: str) -> None:
        self.api = api
        self.owner, self.repo = owner, repo
        self.base = f"/repos/{owner}/{repo}/issues"
        self.doing = "read issues"

    def listed(
        self, *, state: str, label: str, since: datetime | None, limit: int, newest: bool = False
    ) -> tuple[list[Issue], bool]:
        """Issues (not pull requests) with ``label`` in ``state`` (``open``, ``closed``), updated at
        or after ``since``: the oldest first, or the last updated first (``newest``); and whether
        more than ``limit`` were there."""
        self.doing = f"list {state} issues labelled {label}"
        query: dict[str, Any] = {"state": state, "labels": label}
        query.update(
            {"sort": "updated", "direction": "desc"} if newest else {"sort": "created", "direction": "asc"}
        )
        if since is not None:
            query["since"] = _timestamp(since)
        found, more = self._pages(self.base, query, limit)
        return [issue for issue in map(Issue.read, found) if not issue.pull_request], more

    def get_here(self, number: int) -> Issue | None:
        """Issue ``number`` if GitHub answers it in this repository, else ``None``.

        For a number read from a record (anyone who may edit the run may write one): a transferred
        issue is answered with a redirect to its new repository, which is not followed, so nothing
        is sent anywhere but to this repository.
        """
        from functions.github.rest import GitHubError  # noqa: PLC0415 -- loaded with the client

        self.doing = f"read issue #{number}"
        try:
            data = self.api.request("GET", f"{self.base}/{number}").data
        except GitHubError as e:
            if 300 <= e.status < 400 or e.status in (404, 410):
                return None  # transferred, deleted, never there, or issues turned off
            raise
        return Issue.read(data) if isinstance(data, Mapping) else None

    def create(self, title: str, body: str, labels: list[str]) -> Issue:
        self.doing = "open an issue"
        answer = self.api.request("POST", self.base, body={"title": title, "body": body, "labels": labels})
        return Issue.read(answer.data)

    def close(self, number: int, reason: str, body: str | None = None) -> Issue:
        """Close issue ``number`` (``reason``: ``completed`` or ``not_planned``), optionally
        replacing its body in the same request."""
        self.doing = f"close issue #{number}"
        fields: dict[str, Any] = {"state": "closed", "state_reason": reason}
        if body is not None:
            fields["body"] = body
        return Issue.read(self.api.request("PATCH", f"{self.base}/{number}", body=fields).data)

    def comments(self, number: int, *, since: datetime | None, limit: int) -> list[Comment]:
        """The issue's comments, oldest first, updated at or after ``since``."""
        self.doing = f"read the comments of issue #{number}"
        query = {"since": _timestamp(since)} if since is not None else {}
        found, _ = self._pages(f"{self.base}/{number}/comments", query, limit)
        return [Comment.read(item) for item in found]

    def newest_comments(self, number: int, pages: int) -> Iterator[list[Comment]]:
        """The issue's comments a page at a time, the newest page first (each oldest first), at
        most ``pages`` pages: GitHub lists comments oldest first, so this starts at ``rel="last"``
        and follows ``rel="prev"``."""
        self.doing = f"read the comments of issue #{number}"
        answer = self.api.request("GET", f"{self.base}/{number}/comments", query={"per_page": PER_PAGE})
        last = answer.link("last")
        if last is None:
            yield _comments(answer.data)
            return
        url: str | None = last
        for _ in range(pages):
            if url is None:
                return
            answer = self.api.request("GET", url)
            yield _comments(answer.data)
            url = answer.link("prev")

    def comment(self, number: int, body: str) -> None:
        self.doing = f"comment on issue #{number}"
        self.api.request("POST", f"{self.base}/{number}/comments", body={"body": body})

    def _pages(self, path: str, query: dict[str, Any], limit: int) -> tuple[list[Mapping[str, Any]], bool]:
        """Up to ``limit`` items of a paginated list, following ``Link: rel="next"``, and whether
        there were more."""
        items: list[Mapping[str, Any]] = []
        answers: Iterator[Answer] = self.api.pages(path, query)
        for answer in answers:
            items += [item for item in answer.data or [] if isinstance(item, Mapping)]
            if len(items) >= limit:
                return items[:limit], answer.link("next") is not None or len(items) > limit
        return items, False


def _comments(data: object) -> list[Comment]:
    return (
        [Comment.read(item) for item in data if isinstance(item, Mapping)] if isinstance(data, list) else []
    )


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
