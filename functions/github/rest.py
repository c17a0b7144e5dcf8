"""A small client for the slice of GitHub's REST API the GitHub integrations call, on urllib3.

Owns the HTTP exchange: the base URL (GitHub.com, or GitHub Enterprise Server's
``https://HOST/api/v3``), GitHub's headers (``Accept: application/vnd.github+json``,
``X-GitHub-Api-Version``, a ``User-Agent``), JSON bodies, pagination by the ``Link`` header,
and turning an answer other than 2xx into ``GitHubError``. Not credentials (``client``), not
what an error means to the runtime (``errors.classify``).

- Connections are pooled per thread (``Connections``): ``common.deadline`` cuts off a thread's
  sockets at its deadline, so a pool is only ever used by the thread that made it.
- Each request's timeout is the settings' total; the runtime keeps the total around ``report``.
- Only connections that never reached GitHub are retried (twice, quickly); an answer, whatever
  its status, is never retried or slept on here: the sender redelivers.
- Redirects are not followed (a 3xx is a ``GitHubError``), and a ``Link`` to a next page is
  followed only as a path under the base URL: the credential never travels anywhere else.
- The rate-limit headers of every answer are passed to ``FAULTS.seen``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3
from urllib3.exceptions import DecodeError
from urllib3.util.retry import Retry

from common.redaction import redact
from functions.github.errors import FAULTS

USER_AGENT = "tekton-integrations/0.1"
API_VERSION = "2022-11-28"
PER_PAGE = 100
"""GitHub's largest page: lists take as few requests as GitHub allows."""
MAX_MESSAGE = 1000
"""Characters of GitHub's own error text kept."""


class GitHubError(Exception):
    """GitHub answered other than 2xx. ``headers`` are lower-cased; ``message`` is GitHub's text
    (with its ``errors`` listed), redacted: an answer may echo the request's credential."""

    def __init__(self, status: int, headers: Mapping[str, str], message: str) -> None:
        self.status = status
        self.headers = dict(headers)
        self.message = redact(message)[:MAX_MESSAGE]
        super().__init__(f"{status} {self.message}".strip())


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    """Lower-cased names."""
    data: Any
    """The JSON body, ``None`` when there was none."""

    def object(self) -> dict[str, Any]:
        """The JSON object GitHub answered; a 2xx answer that is none is a broken exchange."""
        if not isinstance(self.data, dict):
            raise DecodeError("GitHub answered without a JSON object")
        return self.data

    def link(self, relation: str) -> str | None:
        """The URL of a ``Link`` relation (``next``, ``prev``, ``last``...), if GitHub gave one."""
        for part in self.headers.get("link", "").split(","):
            target, _, params = part.partition(";")
            if f'rel="{relation}"' in params.replace(" ", "") and target.strip().startswith("<"):
                return target.strip()[1:-1]
        return None


def bounded_retry() -> Retry:
    """Retry only failed connections (nothing was sent), twice, quickly; never sleep on a status."""
    return Retry(
        total=2,
        connect=2,
        read=0,
        status=0,
        other=0,
        redirect=False,
        backoff_factor=0.2,
        respect_retry_after_header=False,
        raise_on_status=False,
    )


class Connections:
    """A connection pool per thread, each request bounded by ``timeout`` seconds in all."""

    def __init__(self, timeout: float) -> None:
        self.timeout = urllib3.Timeout(total=timeout)
        self._local = threading.local()

    def pool(self) -> urllib3.PoolManager:
        pool: urllib3.PoolManager | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = urllib3.PoolManager(
                num_pools=4, retries=bounded_retry(), timeout=self.timeout
            )
        return pool


class Api:
    """GitHub's REST API at ``base_url`` (no trailing slash), sent with ``authorization``."""

    def __init__(self, base_url: str, authorization: str, connections: Connections) -> None:
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path
        self._authorization = authorization
        self._connections = connections

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Answer:
        """Send one request (``path`` under the base URL, with any query already in it, or a
        ``Link`` URL); the answer if it is 2xx, else ``GitHubError``. urllib3's errors propagate."""
        url = self.base_url + self._path_of(path)
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query)
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": USER_AGENT,
            "Authorization": self._authorization,
        }
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body, separators=(",", ":")).encode()
        answer = self._connections.pool().request(
            method, url, body=payload, headers=headers, redirect=False, preload_content=True
        )
        received = {name.lower(): value for name, value in answer.headers.items()}
        FAULTS.seen(received)
        data = _json(answer.data, ok=200 <= answer.status < 300)
        if not 200 <= answer.status < 300:
            raise GitHubError(answer.status, received, _message(data, answer.data))
        return Answer(answer.status, received, data)

    def pages(self, path: str, query: Mapping[str, Any]) -> Iterator[Answer]:
        """Each page of a list, following ``Link: rel="next"`` (GitHub's next links keep the query)."""
        answer = self.request("GET", path, query={**query, "per_page": PER_PAGE})
        yield answer
        while (following := answer.link("next")) is not None:
            answer = self.request("GET", following)
            yield answer

    def _path_of(self, target: str) -> str:
        """A path under the base URL: ``target`` itself, or a URL's path and query when that path
        is under the base URL's (GHES behind a proxy may name another host in its links)."""
        if target.startswith("/"):
            return target
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.path.startswith(self._base_path + "/"):
            raise GitHubError(502, {}, "GitHub linked to a page outside its API")
        return parts.path[len(self._base_path) :] + (f"?{parts.query}" if parts.query else "")


class Repo:
    """One repository's check runs, statuses, pull requests and issue comments."""

    def __init__(self, api: Api, owner: str, name: str) -> None:
        self.api = api
        self.full_name = f"{owner}/{name}"
        self.path = f"/repos/{owner}/{name}"

    def check_runs(self, sha: str, name: str) -> Iterator[dict[str, Any]]:
        """The commit's check runs named ``name``, every one (``filter=all``), newest first."""
        query = {"check_name": name, "filter": "all"}
        for page in self.api.pages(f"{self.path}/commits/{sha}/check-runs", query):
            found = page.data.get("check_runs") if isinstance(page.data, Mapping) else None
            yield from (run for run in found or [] if isinstance(run, dict))

    def check_run(self, check_run_id: int) -> dict[str, Any] | None:
        """The check run, ``None`` if GitHub knows none of that id in this repository."""
        return self._found(f"{self.path}/check-runs/{check_run_id}")

    def create_check_run(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return self.api.request("POST", f"{self.path}/check-runs", body=fields).object()

    def update_check_run(self, check_run_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        return self.api.request("PATCH", f"{self.path}/check-runs/{check_run_id}", body=fields).object()

    def create_status(self, sha: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        return self.api.request("POST", f"{self.path}/statuses/{sha}", body=fields).object()

    def pull_request(self, number: int) -> dict[str, Any] | None:
        """The pull request, ``None`` if there is none of that number here."""
        return self._found(f"{self.path}/pulls/{number}")

    def issue_comments(self, number: int) -> Iterator[dict[str, Any]]:
        """The comments of an issue or pull request, oldest first."""
        for page in self.api.pages(f"{self.path}/issues/{number}/comments", {}):
            yield from (item for item in page.data or [] if isinstance(item, dict))

    def create_issue_comment(self, number: int, body: str) -> dict[str, Any]:
        return self.api.request("POST", f"{self.path}/issues/{number}/comments", body={"body": body}).object()

    def update_issue_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        path = f"{self.path}/issues/comments/{comment_id}"
        return self.api.request("PATCH", path, body={"body": body}).object()

    def _found(self, path: str) -> dict[str, Any] | None:
        """The object at ``path``; ``None`` when GitHub answers 404."""
        try:
            return self.api.request("GET", path).object()
        except GitHubError as e:
            if e.status == 404:
                return None
            raise


def _json(raw: bytes, *, ok: bool) -> Any:
    """The answer's JSON; a 2xx answer that is not JSON is a broken exchange (``DecodeError``),
    an error's is kept as text for its message."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        if ok:
            raise DecodeError("GitHub's answer is not JSON") from None
        return None


def _message(data: Any, raw: bytes) -> str:
    """GitHub's error text: ``message`` and each of ``errors``, or the start of a non-JSON body."""
    if isinstance(data, Mapping):
        message = str(data.get("message") or "")
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            message += " " + "; ".join(
                str(e.get("message") or e.get("code") or e) if isinstance(e, Mapping) else str(e)
                for e in errors
            )
        return message.strip()
    return " ".join(raw[:MAX_MESSAGE].decode(errors="replace").split())
