"""A loopback stand-in for GitHub's issues and issue comments, on top of the GitHub stand-in.

Owns: the issue endpoints of GitHub's REST API, in memory, added to ``common.standins.github``'s
``GitHubStandIn`` (which keeps its recording, scripted faults, credential echoes, rate-limit
headers, App JWT rules and installation tokens, so a token and a GitHub App both work here).
That stand-in stays as it is because the demo runs it; this one only the tests use.

Follows GitHub's documented REST API (docs.github.com/rest/issues and the OpenAPI description
the conformance tier checks against):

- ``GET /repos/{o}/{r}/issues``: ``state`` (open, closed, all; default open), ``labels`` (comma
  separated, an issue must carry every one, case-insensitively), ``since`` (updated at or after),
  ``sort`` (created, updated, comments), ``direction`` (default desc), ``per_page`` (at most 100)
  and ``page``, with a ``Link`` header; pull requests are listed too, with a ``pull_request`` key.
- ``POST /repos/{o}/{r}/issues``: ``title`` (required, at most 256 characters), ``body`` (at most
  65536), ``labels`` (names or ``{"name": ...}``; a missing label is created; without push access
  labels are silently dropped, as GitHub documents). 201.
- ``GET`` and ``PATCH /repos/{o}/{r}/issues/{n}``: ``title``, ``body``, ``state`` (open, closed),
  ``state_reason`` (completed, not_planned, duplicate, reopened; ignored unless the state changes;
  closing without one is ``completed``), ``labels`` (replaces them). A transferred issue answers
  301 with the new location; an unknown one 404.
- ``GET`` and ``POST /repos/{o}/{r}/issues/{n}/comments``: ``since``, ``per_page``, ``page``;
  ``body`` required, at most 65536 characters. 201.
- Issues disabled on a repository: 410 ``Issues are disabled for this repo``.
- Invalid input: 422 ``{"message": "Validation Failed", "errors": [...]}``.

Authors: a request with a token writes as :attr:`GitHubIssuesStandIn.token_login` (a user); one
with an installation token as ``tekton-integrations[bot]``.

Does not: search, lock, assign, reactions, timelines, or check permissions beyond writes needing
a credential (and :attr:`GitHubIssuesStandIn.push_access` for labels).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote, unquote

from common.standins.github import (
    DOCS_URL,
    GitHubStandIn,
    JsonObject,
    _Answer,
    _error,
    _iso,
    _link_header,
    _node_id,
    _query_int,
    _query_value,
    _Request,
    _stable_id,
    _user,
    _ValidationError,
)

__all__ = ["BOT_LOGIN", "GitHubIssuesStandIn"]

BOT_LOGIN: Final = "tekton-integrations[bot]"
MAX_TITLE: Final = 256
MAX_BODY: Final = 65536
MAX_LABEL: Final = 50
STATE_REASONS: Final = frozenset({"completed", "not_planned", "duplicate", "reopened"})
SORTS: Final = frozenset({"created", "updated", "comments"})


@dataclass
class _Repository:
    issues: dict[int, JsonObject] = field(default_factory=dict)
    """Number -> the stored issue (or pull request): plain fields, times as datetimes."""
    comments: dict[int, list[JsonObject]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    """Lower-cased name -> the name as created."""
    moved: dict[int, tuple[str, int]] = field(default_factory=dict)
    """Number -> (``owner/repo``, number) where a transferred issue went."""
    enabled: bool = True
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class GitHubIssuesStandIn(GitHubStandIn):
    """``GitHubStandIn`` plus issues and comments. Inspect with :meth:`issues` and
    :meth:`comments`; seed with :meth:`add_issue`, :meth:`add_comment`, :meth:`transfer` and
    :meth:`disable_issues`. Repositories are ``owner/repo`` strings."""

    def __init__(self, *, token_login: str = "octocat", push_access: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token_login = token_login
        self.push_access = push_access
        """Whether the credential may set labels (GitHub drops them silently otherwise)."""
        self.lagging: set[int] = set()
        """Issue numbers the list endpoint does not show yet (GitHub's replicas lag behind writes)."""
        self._repositories: dict[str, _Repository] = {}
        self._listing_faults: list[list[Any]] = []
        self._comment_ids = itertools.count(5_000_001)
        self._issue_ids = itertools.count(2_000_001)

    # -- inspection ------------------------------------------------------------------------------

    def issues(self, repo: str = "acme/widget-service", *, pull_requests: bool = False) -> list[JsonObject]:
        """Copies of the repository's issues in number order, with ``labels`` as names."""
        with self.lock:
            stored = self._repository(repo).issues.values()
            return [
                {**{k: v for k, v in issue.items() if k != "repository"}, "labels": list(issue["labels"])}
                for issue in stored
                if pull_requests or not issue["pull_request"]
            ]

    def comments(self, number: int, repo: str = "acme/widget-service") -> list[JsonObject]:
        with self.lock:
            return [dict(comment) for comment in self._repository(repo).comments.get(number, [])]

    # -- seeding ---------------------------------------------------------------------------------

    def add_issue(
        self,
        repo: str,
        title: str,
        body: str,
        labels: tuple[str, ...] = (),
        *,
        login: str = "someone",
        state: str = "open",
        pull_request: bool = False,
    ) -> int:
        """An issue (or pull request) written by ``login``, as if made on github.com; its number."""
        with self.lock:
            repository = self._repository(repo)
            issue = self._new_issue(repository, title, body, list(labels), login, "User")
            issue.update(pull_request=pull_request, state=state)
            if state == "closed":
                issue.update(closed_at=issue["updated_at"], state_reason="completed")
            return int(issue["number"])

    def add_comment(self, repo: str, number: int, body: str, *, login: str = "someone") -> None:
        with self.lock:
            self._new_comment(self._repository(repo), number, body, login, "User")

    def transfer(self, repo: str, number: int, to: str) -> int:
        """Move an issue to another repository, as GitHub's transfer does; its new number."""
        with self.lock:
            source, target = self._repository(repo), self._repository(to)
            issue = source.issues.pop(number)
            new = next(target.numbers)
            target.issues[new] = {**issue, "number": new}
            target.comments[new] = source.comments.pop(number, [])
            source.moved[number] = (to, new)
            return new

    def fail_listing(
        self, state: str, status: int, *, skip: int = 0, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the list of issues in ``state`` (``open``, ``closed``) with ``status`` once,
        after ``skip`` such lists were answered normally (``fail_next`` cannot tell them apart)."""
        with self.lock:
            self._listing_faults.append([state, skip, status, dict(headers or {})])

    def disable_issues(self, repo: str) -> None:
        with self.lock:
            self._repository(repo).enabled = False

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self._repositories.clear()
            self._listing_faults.clear()
            self.lagging.clear()

    # -- routing (called by the base class under its lock) ---------------------------------------

    def _dispatch(self, request: _Request, authorization_secret: str | None) -> _Answer:
        for method, pattern, handler, auth in _ISSUE_ROUTES:
            match = pattern.fullmatch(request.path)
            if match is None or method != request.method:
                continue
            routed = replace(request, params=tuple(unquote(group) for group in match.groups()))
            refusal = self._check_auth(auth, routed, authorization_secret)
            if refusal is not None:
                return refusal
            repository = self._repository(f"{routed.params[0]}/{routed.params[1]}")
            if not repository.enabled:
                return _error(410, "Issues are disabled for this repo")
            try:
                return handler(self, routed)
            except _ValidationError as invalid:
                problem = {"resource": invalid.resource, "field": invalid.field_name, "code": invalid.code}
                return _Answer(
                    422, {"message": "Validation Failed", "errors": [problem], "documentation_url": DOCS_URL}
                )
        return super()._dispatch(request, authorization_secret)

    # -- endpoints -------------------------------------------------------------------------------

    def _list_issues(self, request: _Request) -> _Answer:
        owner, repo = request.params
        repository = self._repository(f"{owner}/{repo}")
        state = _query_value(request, "state") or "open"
        if state not in ("open", "closed", "all"):
            raise _ValidationError("Issue", "state")
        for fault in self._listing_faults:
            if fault[0] == state:
                fault[1] -= 1
                if fault[1] < 0:
                    self._listing_faults.remove(fault)
                    return _Answer(
                        fault[2], {"message": "stand-in fault", "documentation_url": DOCS_URL}, fault[3]
                    )
                break
        wanted = {name.strip().lower() for name in (_query_value(request, "labels") or "").split(",")}
        wanted.discard("")
        since = _since(request)
        chosen = [
            issue
            for issue in repository.issues.values()
            if state in ("all", issue["state"])
            and issue["number"] not in self.lagging
            and wanted <= {name.lower() for name in issue["labels"]}
            and (since is None or issue["updated_at"] >= since)
        ]
        sort = _query_value(request, "sort") or "created"
        direction = _query_value(request, "direction") or "desc"
        if sort not in SORTS or direction not in ("asc", "desc"):
            raise _ValidationError("Issue", "sort" if sort not in SORTS else "direction")
        by = {"created": "number", "updated": "updated_at", "comments": "comments"}[sort]
        chosen.sort(key=lambda issue: (issue[by], issue["number"]), reverse=direction == "desc")
        return self._page(request, [self._issue_json(request, owner, repo, issue) for issue in chosen])

    def _create_issue(self, request: _Request) -> _Answer:
        owner, repo = request.params
        body = _object(request.body, "Issue")
        title = body.get("title")
        if isinstance(title, int) and not isinstance(title, bool):
            title = str(title)
        if not isinstance(title, str) or not title.strip():
            raise _ValidationError("Issue", "title", "missing_field")
        if len(title) > MAX_TITLE:
            raise _ValidationError("Issue", "title", "custom")
        text = _text(body, "body", "Issue")
        labels = _label_names(body.get("labels", []))
        login, kind = self._author(request)
        repository = self._repository(f"{owner}/{repo}")
        issue = self._new_issue(
            repository, title, text or "", labels if self.push_access else [], login, kind
        )
        answer = self._issue_json(request, owner, repo, issue)
        return _Answer(201, answer, {"Location": answer["url"]})

    def _get_issue(self, request: _Request) -> _Answer:
        found = self._find(request)
        if isinstance(found, _Answer):
            return found
        owner, repo, _ = request.params
        return _Answer(200, self._issue_json(request, owner, repo, found))

    def _update_issue(self, request: _Request) -> _Answer:
        found = self._find(request)
        if isinstance(found, _Answer):
            return found
        owner, repo, _ = request.params
        body = _object(request.body, "Issue")
        issue = dict(found)  # validated on a copy: a refused update changes nothing
        if "title" in body:
            if (
                not isinstance(body["title"], str)
                or not body["title"].strip()
                or len(body["title"]) > MAX_TITLE
            ):
                raise _ValidationError("Issue", "title")
            issue["title"] = body["title"]
        if "body" in body:
            issue["body"] = _text(body, "body", "Issue")
        reason = body.get("state_reason")
        if reason is not None and reason not in STATE_REASONS:
            raise _ValidationError("Issue", "state_reason")
        state = body.get("state")
        if state is not None and state not in ("open", "closed"):
            raise _ValidationError("Issue", "state")
        now = self.clock()
        if state is not None and state != issue["state"]:  # state_reason is ignored otherwise
            login, kind = self._author(request)
            if state == "closed":
                issue.update(closed_at=now, state_reason=reason or "completed", closed_by=(login, kind))
            else:
                issue.update(closed_at=None, state_reason="reopened", closed_by=None)
            issue["state"] = state
        if "labels" in body and self.push_access:
            issue["labels"] = self._known_labels(found["repository"], _label_names(body["labels"]))
        issue["updated_at"] = now
        found.update(issue)
        return _Answer(200, self._issue_json(request, owner, repo, found))

    def _list_comments(self, request: _Request) -> _Answer:
        found = self._find(request)
        if isinstance(found, _Answer):
            return found
        owner, repo, _ = request.params
        since = _since(request)
        comments = self._repository(f"{owner}/{repo}").comments.get(found["number"], [])
        chosen = [c for c in comments if since is None or c["updated_at"] >= since]
        return self._page(request, [self._comment_json(request, owner, repo, c) for c in chosen])

    def _create_comment(self, request: _Request) -> _Answer:
        found = self._find(request)
        if isinstance(found, _Answer):
            return found
        owner, repo, _ = request.params
        text = _text(_object(request.body, "IssueComment"), "body", "IssueComment")
        if text is None:
            raise _ValidationError("IssueComment", "body", "missing_field")
        login, kind = self._author(request)
        comment = self._new_comment(self._repository(f"{owner}/{repo}"), found["number"], text, login, kind)
        answer = self._comment_json(request, owner, repo, comment)
        return _Answer(201, answer, {"Location": answer["url"]})

    # -- state -----------------------------------------------------------------------------------

    def _repository(self, repo: str) -> _Repository:
        return self._repositories.setdefault(repo.lower(), _Repository())

    def _author(self, request: _Request) -> tuple[str, str]:
        if request.credential == "installation-token":
            return BOT_LOGIN, "Bot"
        return self.token_login, "User"

    def _find(self, request: _Request) -> JsonObject | _Answer:
        owner, repo, raw = request.params
        repository = self._repository(f"{owner}/{repo}")
        if not raw.isdigit():
            return _error(404, "Not Found")
        number = int(raw)
        if number in repository.moved:
            where, new = repository.moved[number]
            rest = request.path.removeprefix(f"/repos/{owner}/{repo}/issues/{raw}")
            location = f"{request.api}/repos/{where}/issues/{new}{rest}"
            return _Answer(
                301,
                {"message": "Moved Permanently", "url": location, "documentation_url": DOCS_URL},
                {"Location": location},
            )
        issue = repository.issues.get(number)
        return issue if issue is not None else _error(404, "Not Found")

    def _new_issue(
        self, repository: _Repository, title: str, body: str, labels: list[str], *author: str
    ) -> JsonObject:
        now = self.clock()
        number = next(repository.numbers)
        issue: JsonObject = {
            "number": number,
            "id": next(self._issue_ids),
            "title": title,
            "body": body,
            "state": "open",
            "state_reason": None,
            "labels": self._known_labels(repository, labels),
            "author": author,
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
            "closed_by": None,
            "comments": 0,
            "pull_request": False,
            "repository": repository,
        }
        repository.issues[number] = issue
        repository.comments[number] = []
        return issue

    def _new_comment(
        self, repository: _Repository, number: int, body: str, login: str, kind: str
    ) -> JsonObject:
        now = self.clock()
        comment: JsonObject = {
            "id": next(self._comment_ids),
            "issue": number,
            "body": body,
            "author": (login, kind),
            "created_at": now,
            "updated_at": now,
        }
        repository.comments.setdefault(number, []).append(comment)
        issue = repository.issues[number]
        issue.update(comments=issue["comments"] + 1, updated_at=now)
        return comment

    @staticmethod
    def _known_labels(repository: _Repository, names: list[str]) -> list[str]:
        """The labels as the repository spells them, creating missing ones (GitHub does)."""
        kept: list[str] = []
        for name in names:
            spelled = repository.labels.setdefault(name.lower(), name)
            if spelled not in kept:
                kept.append(spelled)
        return kept

    # -- JSON shapes -----------------------------------------------------------------------------

    def _page(self, request: _Request, items: list[JsonObject]) -> _Answer:
        per_page = min(max(_query_int(request, "per_page", 30), 1), 100)
        page = max(_query_int(request, "page", 1), 1)
        start = (page - 1) * per_page
        link = _link_header(request, page, per_page, len(items))
        return _Answer(200, items[start : start + per_page], {"Link": link} if link else {})  # type: ignore[arg-type]

    def _issue_json(self, request: _Request, owner: str, repo: str, issue: JsonObject) -> JsonObject:
        api = f"{request.api}/repos/{owner}/{repo}"
        web = f"{request.web}/{owner}/{repo}"
        number = issue["number"]
        url = f"{api}/issues/{number}"
        answer: JsonObject = {
            "id": issue["id"],
            "node_id": _node_id("I", issue["id"]),
            "url": url,
            "repository_url": api,
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"{web}/{'pull' if issue['pull_request'] else 'issues'}/{number}",
            "number": number,
            "state": issue["state"],
            "state_reason": issue["state_reason"],
            "title": issue["title"],
            "body": issue["body"],
            "user": _user(request, *self._user_of(issue["author"])),
            "labels": [self._label_json(request, api, name) for name in issue["labels"]],
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "locked": False,
            "active_lock_reason": None,
            "comments": issue["comments"],
            "closed_at": _iso(issue["closed_at"]) if issue["closed_at"] else None,
            "created_at": _iso(issue["created_at"]),
            "updated_at": _iso(issue["updated_at"]),
            "closed_by": _user(request, *self._user_of(issue["closed_by"])) if issue["closed_by"] else None,
            "author_association": "NONE",
            "timeline_url": f"{url}/timeline",
            "performed_via_github_app": None,
            "reactions": _reactions(f"{url}/reactions"),
        }
        if issue["pull_request"]:
            answer["pull_request"] = {
                "url": f"{api}/pulls/{number}",
                "html_url": f"{web}/pull/{number}",
                "diff_url": f"{web}/pull/{number}.diff",
                "patch_url": f"{web}/pull/{number}.patch",
                "merged_at": None,
            }
        return answer

    def _comment_json(self, request: _Request, owner: str, repo: str, comment: JsonObject) -> JsonObject:
        api = f"{request.api}/repos/{owner}/{repo}"
        url = f"{api}/issues/comments/{comment['id']}"
        return {
            "id": comment["id"],
            "node_id": _node_id("IC", comment["id"]),
            "url": url,
            "html_url": f"{request.web}/{owner}/{repo}/issues/{comment['issue']}"
            f"#issuecomment-{comment['id']}",
            "body": comment["body"],
            "user": _user(request, *self._user_of(comment["author"])),
            "created_at": _iso(comment["created_at"]),
            "updated_at": _iso(comment["updated_at"]),
            "issue_url": f"{api}/issues/{comment['issue']}",
            "author_association": "NONE",
            "performed_via_github_app": None,
            "reactions": _reactions(f"{url}/reactions"),
        }

    @staticmethod
    def _label_json(request: _Request, api: str, name: str) -> JsonObject:
        label_id = _stable_id(api, name.lower())
        return {
            "id": label_id,
            "node_id": _node_id("LA", label_id),
            "url": f"{api}/labels/{quote(name, safe='')}",
            "name": name,
            "description": None,
            "color": "ededed",
            "default": False,
        }

    @staticmethod
    def _user_of(author: tuple[str, str]) -> tuple[str, int, str]:
        login, kind = author
        return login, _stable_id(login), kind


def _reactions(url: str) -> JsonObject:
    counts = dict.fromkeys(("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket"), 0)
    return {"url": url, "total_count": 0, **counts}


def _object(body: Any, resource: str) -> JsonObject:
    if not isinstance(body, dict):
        raise _ValidationError(resource, "body", "invalid")
    return body


def _text(body: JsonObject, name: str, resource: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _ValidationError(resource, name)
    if len(value) > MAX_BODY:
        raise _ValidationError(resource, name, "custom")  # "body is too long (maximum is 65536 characters)"
    return value


def _label_names(labels: Any) -> list[str]:
    if not isinstance(labels, list):
        raise _ValidationError("Label", "labels")
    names = []
    for label in labels:
        name = label.get("name") if isinstance(label, dict) else label
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_LABEL:
            raise _ValidationError("Label", "name")
        names.append(name)
    return names


def _since(request: _Request) -> datetime | None:
    value = _query_value(request, "since")
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _ValidationError("Issue", "since") from None


_Route = tuple[str, "re.Pattern[str]", Callable[[GitHubIssuesStandIn, _Request], _Answer], str]
_REPO: Final = r"/repos/([^/]+)/([^/]+)"
_ISSUE_ROUTES: Final[list[_Route]] = [
    ("GET", re.compile(f"{_REPO}/issues"), GitHubIssuesStandIn._list_issues, "read"),
    ("POST", re.compile(f"{_REPO}/issues"), GitHubIssuesStandIn._create_issue, "write"),
    ("GET", re.compile(f"{_REPO}/issues/([^/]+)"), GitHubIssuesStandIn._get_issue, "read"),
    ("PATCH", re.compile(f"{_REPO}/issues/([^/]+)"), GitHubIssuesStandIn._update_issue, "write"),
    ("GET", re.compile(f"{_REPO}/issues/([^/]+)/comments"), GitHubIssuesStandIn._list_comments, "read"),
    ("POST", re.compile(f"{_REPO}/issues/([^/]+)/comments"), GitHubIssuesStandIn._create_comment, "write"),
]
