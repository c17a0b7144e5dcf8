"""The GitLab client: one instance (``GITLAB_URL``), one token, each request made once.

Settings come from ``GitLabSettings`` (``GITLAB_URL``, ``GITLAB_TOKEN`` or ``GITLAB_TOKEN_FILE``,
``GITLAB_TIMEOUT_SECONDS``), never from annotations. The token is only ever sent to
``GITLAB_URL``. Every answer that is not a success is raised at the transport, before
python-gitlab sees it: python-gitlab would otherwise sleep through rate limits and drop the
headers (``Retry-After``, ``RateLimit-Reset``) the fault table needs, and requests would follow
a redirect carrying the ``PRIVATE-TOKEN`` header along.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, ClassVar
from urllib.parse import quote, urlsplit

from pydantic import AfterValidator, Field, SecretStr

from common import ServiceSettings
from common.settings import PerSettings
from functions.gitlab.errors import GitLabAnswerError

if TYPE_CHECKING:  # python-gitlab and requests are imported when the first client is built
    import gitlab
    import requests

DEFAULT_URL = "https://gitlab.com"


def normalize_url(url: str) -> str:
    """``https://gitlab.example.com``: lower-case scheme and host, no default port, no ``/api/v4``."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        raise ValueError("must be an http(s) URL such as https://gitlab.example.com")
    default_port = {"http": 80, "https": 443}[scheme]
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    path = parts.path.rstrip("/").removesuffix("/api/v4").rstrip("/")
    return f"{scheme}://{host}{port}{path}"


InstanceUrl = Annotated[str, AfterValidator(normalize_url)]


class GitLabSettings(ServiceSettings):
    """``GITLAB_*``: the instance, its token and the deadline."""

    prefix: ClassVar[str] = "GITLAB"
    service: ClassVar[str] = "GitLab"

    url: InstanceUrl = Field(DEFAULT_URL, validate_default=True)
    """``GITLAB_URL``: the instance's base URL, without ``/api/v4``."""
    token: SecretStr | None = None
    """``GITLAB_TOKEN`` or ``GITLAB_TOKEN_FILE``: an access token with the ``api`` scope."""


def _client(settings: GitLabSettings) -> gitlab.Gitlab:
    import gitlab  # noqa: PLC0415 -- only for a run that sets a commit status
    import requests  # noqa: PLC0415

    settings.require("token")
    assert settings.token is not None
    session = requests.Session()
    session.hooks["response"].append(_raise_unless_success)
    return gitlab.Gitlab(
        settings.url,
        private_token=settings.token.get_secret_value(),
        timeout=settings.timeout_seconds,
        retry_transient_errors=False,
        session=session,
    )


client = PerSettings(_client, per_thread=True)
"""A ``Gitlab`` client per thread (its connection pool is the thread's: ``common.deadline``),
rebuilt when the settings, e.g. a rotated token, change."""


ONE_REQUEST: dict[str, Any] = {"obey_rate_limit": False, "retry_transient_errors": False, "max_retries": 0}
"""python-gitlab's arguments for one request: no sleeping through rate limits, no retries."""


def post_status(settings: GitLabSettings, project: str, sha: str, fields: dict[str, str]) -> dict[str, Any]:
    """``POST /projects/:id/statuses/:sha``; ``project`` is a numeric id or a path (URL-encoded
    here). The status as GitLab answered it."""
    handle = client(settings).projects.get(int(project) if project.isdigit() else project, lazy=True)
    return dict(handle.commits.get(sha, lazy=True).statuses.create(fields, **ONE_REQUEST).attributes)


def _project(project: str) -> str:
    return f"/projects/{quote(project, safe='')}"


def latest_status(
    settings: GitLabSettings, project: str, sha: str, name: str, ref: str | None
) -> dict[str, Any] | None:
    """The commit's newest status named ``name`` (on ``ref``, if given), from
    ``GET /projects/:id/repository/commits/:sha/statuses``."""
    query: dict[str, Any] = {"name": name, "all": True, "per_page": 100}
    if ref:
        query["ref"] = ref
    found = client(settings).http_list(
        f"{_project(project)}/repository/commits/{sha}/statuses", query, iterator=True, **ONE_REQUEST
    )
    named = [status for status in found if status.get("name") == name and ref in (None, status.get("ref"))]
    return max(named, key=lambda status: int(status.get("id") or 0), default=None)


def merge_request(settings: GitLabSettings, project: str, iid: int) -> dict[str, Any] | None:
    """``GET /projects/:id/merge_requests/:iid``; ``None`` when GitLab has no such merge request."""
    try:
        found = client(settings).http_get(f"{_project(project)}/merge_requests/{iid}", **ONE_REQUEST)
    except GitLabAnswerError as e:
        if e.status == 404:
            return None
        raise
    return found if isinstance(found, dict) else None


def notes(settings: GitLabSettings, project: str, iid: int) -> Iterator[dict[str, Any]]:
    """The merge request's notes, oldest first, page by page as they are read."""
    return iter(
        client(settings).http_list(
            f"{_project(project)}/merge_requests/{iid}/notes",
            {"sort": "asc", "order_by": "created_at", "per_page": 100},
            iterator=True,
            **ONE_REQUEST,
        )
    )


def create_note(settings: GitLabSettings, project: str, iid: int, body: str) -> dict[str, Any]:
    path = f"{_project(project)}/merge_requests/{iid}/notes"
    return _object(client(settings).http_post(path, post_data={"body": body}, **ONE_REQUEST))


def update_note(settings: GitLabSettings, project: str, iid: int, note_id: int, body: str) -> dict[str, Any]:
    path = f"{_project(project)}/merge_requests/{iid}/notes/{note_id}"
    return _object(client(settings).http_put(path, post_data={"body": body}, **ONE_REQUEST))


_users: dict[str, int] = {}
_users_lock = threading.Lock()


def own_user_id(settings: GitLabSettings) -> int:
    """The id of the token's user (``GET /user``), asked once per token and instance."""
    assert settings.token is not None
    key = hashlib.sha256(f"{settings.url}\n{settings.token.get_secret_value()}".encode()).hexdigest()
    with _users_lock:
        known = _users.get(key)
    if known is None:
        known = int(_object(client(settings).http_get("/user", **ONE_REQUEST))["id"])
        with _users_lock:
            if len(_users) > 64:
                _users.clear()
            _users[key] = known
    return known


def _object(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise GitLabAnswerError(502, {}, "GitLab answered without a JSON object")
    return answer


def _raise_unless_success(response: requests.Response, *_: Any, **__: Any) -> None:
    if response.status_code < 300:
        return
    try:
        detail = "" if response.is_redirect else _said(response)
    finally:
        response.close()
    raise GitLabAnswerError(response.status_code, dict(response.headers), detail)


def _said(response: requests.Response) -> str:
    """GitLab's own words: ``{"message": ...}`` or ``{"error": ...}``, else the body as text."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict):
        said = body.get("message") or body.get("error")
        if said:
            return said if isinstance(said, str) else str(said)
    return response.text
