"""A loopback stand-in for the slice of GitHub's REST API that the integrations use.

Owns: a stdlib HTTP server on 127.0.0.1 that keeps check runs and commit statuses in memory,
issues App installation tokens, records every request (never the Authorization value), and
answers scripted faults. It accepts GitHub.com paths and the same paths under ``/api/v3``
(GitHub Enterprise Server style base URLs).

Does not: talk to anything but its own clients, persist anything, or check JWT signatures.
Its answers carry the fields GitHub's OpenAPI description marks as required, so the same
responses pass the Prism conformance tier.

Rules it enforces, like GitHub: writes need an ``Authorization`` header; ``/app/...`` and
``GET /repos/{o}/{r}/installation`` need an App JWT (``Bearer`` + three dot-separated parts);
an App JWT is refused elsewhere; an expired installation token gets 401; an invalid body gets
422 with ``{"message": "Validation Failed", "errors": [...]}``.

Endpoints: get repository, get commit, create/get/update a check run, list check runs for a
Git reference (``GET /repos/{o}/{r}/commits/{ref}/check-runs``), create a commit status, get a
repository's App installation, create an installation access token; get a pull request (one
added with ``add_pull_request``), list (oldest first, paginated), create and update its comments
(``/repos/{o}/{r}/issues/{n}/comments``, ``/repos/{o}/{r}/issues/comments/{id}``), and get the
authenticated user (``GET /user``: a token's user; an installation token is refused with 403,
as GitHub refuses it). A comment is written by the credential's identity: a token's user
(``token_login``) or, with an installation token, ``tekton-integrations[bot]`` with
``performed_via_github_app`` set to the App.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Self, cast
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

__all__ = ["ENTERPRISE_PREFIX", "GitHubStandIn", "JsonObject", "RecordedCall"]

JsonObject = dict[str, Any]
Clock = Callable[[], datetime]

ENTERPRISE_PREFIX: Final = "/api/v3"
DOCS_URL: Final = "https://docs.github.com/rest"

CHECK_RUN_STATUSES: Final = frozenset({"queued", "in_progress", "completed"})
# Only GitHub Actions may set these on an update; GitHub accepts them in the schema.
CHECK_RUN_ACTIONS_STATUSES: Final = frozenset({"waiting", "requested", "pending"})
CHECK_RUN_CONCLUSIONS: Final = frozenset(
    {"action_required", "cancelled", "failure", "neutral", "success", "skipped", "timed_out"}
)
COMMIT_STATUS_STATES: Final = frozenset({"error", "failure", "pending", "success"})
MAX_ANNOTATIONS_PER_REQUEST: Final = 50
MAX_OUTPUT_TEXT: Final = 65535
MAX_COMMENT_BODY: Final = 65536
# GitHub refuses App JWTs valid for more than ten minutes; allow for clock drift.
MAX_JWT_LIFETIME_SECONDS: Final = 660

_SHA_RE: Final = re.compile(r"^[0-9a-f]{7,40}$")
_FULL_SHA_RE: Final = re.compile(r"^[0-9a-f]{40}$")
_SEGMENT: Final = r"([^/]+)"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stable_id(*parts: str) -> int:
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") % 900_000_000 + 100_000_000


def _node_id(kind: str, number: int) -> str:
    return f"{kind}_" + base64.urlsafe_b64encode(f"{kind}{number}".encode()).decode().rstrip("=")


@dataclass(frozen=True)
class RecordedCall:
    """One request as the stand-in saw it. The Authorization value itself is never kept."""

    method: str
    path: str
    """The path without query string and without an ``/api/v3`` prefix."""
    query: dict[str, list[str]]
    body: Any
    """The parsed JSON body, or None when the request had none."""
    headers: dict[str, str]
    """Request headers, minus Authorization (names as sent)."""
    auth_scheme: str | None
    """The Authorization scheme as sent (``"Bearer"``, ``"token"``, ``"Basic"``), or None."""
    credential: str | None
    """What the credential looked like: ``"jwt"``, ``"installation-token"`` (one this stand-in
    issued), ``"token"`` (any other), or None when there was no Authorization header."""
    jwt_claims: JsonObject | None
    """The unverified claims of an App JWT (``iss``, ``iat``, ``exp``), else None."""
    enterprise_prefix: bool
    """Whether the request came in under ``/api/v3``."""
    status: int
    """The HTTP status the stand-in answered."""

    @property
    def authenticated(self) -> bool:
        return self.credential is not None


@dataclass
class _Fault:
    status: int
    remaining: int
    headers: dict[str, str]
    body: JsonObject
    method: str | None
    path: str | None
    echo: bool = False
    """Answer with the request's Authorization value in the body (see ``echo_credentials_next``)."""
    as_json: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    params: tuple[str, ...]
    body: Any
    credential: str | None
    api: str
    """Base for API URLs in answers: scheme, host and the prefix the request used."""
    web: str
    """Base for html_url values."""
    query: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class _Answer:
    status: int
    body: JsonObject | str
    """JSON, or plain text (only an echoed credential is answered as text)."""
    headers: dict[str, str] = field(default_factory=dict)


class _ValidationError(Exception):
    def __init__(self, resource: str, field_name: str, code: str = "invalid") -> None:
        super().__init__(f"{resource}.{field_name}: {code}")
        self.resource = resource
        self.field_name = field_name
        self.code = code


def _error(status: int, message: str) -> _Answer:
    return _Answer(status, {"message": message, "documentation_url": DOCS_URL})


def _default_fault_message(status: int, headers: dict[str, str]) -> str:
    lowered = {name.lower(): value for name, value in headers.items()}
    if status == 403 and lowered.get("x-ratelimit-remaining") == "0":
        return "API rate limit exceeded for installation. (stand-in)"
    if status in (403, 429) and "retry-after" in lowered:
        return "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class GitHubStandIn:
    """A recording fake of GitHub's REST API on ``127.0.0.1``, started by ``with`` or ``start()``.

    Point a client at :attr:`url` (``base_url`` for PyGithub), or at ``url + "/api/v3"`` to act
    as GitHub Enterprise Server. Read :attr:`calls`, :attr:`check_runs` and :attr:`statuses`
    while holding :attr:`lock`, or use :meth:`calls_to`, which copies under the lock.
    """

    def __init__(
        self,
        *,
        installation_id: int = 42,
        app_id: int = 1,
        token_lifetime: timedelta = timedelta(hours=1),
        latency_seconds: float = 0.0,
        public_url: str | None = None,
        clock: Clock = _utcnow,
    ) -> None:
        self.installation_id = installation_id
        self.app_id = app_id
        self.token_lifetime = token_lifetime
        self.latency_seconds = latency_seconds
        """Seconds every request waits before it is answered (settable while running)."""
        self.clock = clock
        self.public_url = public_url
        """Base for the URLs in answers (``url``, ``html_url``...), without ``/api/v3``. Set it
        when clients reach the stand-in through a proxy (Prism): PyGithub refuses to follow a
        URL whose host or port differs from its base_url. By default the request's
        ``X-Forwarded-Host`` or ``Host`` is used."""
        self.lock = threading.RLock()
        self.calls: list[RecordedCall] = []
        self.check_runs: dict[int, JsonObject] = {}
        """Check run id -> its current JSON, as GET would return it."""
        self.annotations: dict[int, list[JsonObject]] = {}
        """Check run id -> every annotation sent for it, in order."""
        self.statuses: list[JsonObject] = []
        """Posted commit statuses in order, each the answer's JSON plus ``repository``
        (``owner/name``) and ``sha``."""
        self.token_login = "tekton-ci"  # noqa: S105 -- a login, not a password
        """The user a token (one this stand-in did not issue) acts as."""
        self.pull_requests: dict[tuple[str, str, int], JsonObject] = {}
        """(owner, repo, number) -> ``{"head_sha": ..., "state": ...}``; see ``add_pull_request``."""
        self.issue_comments: dict[int, JsonObject] = {}
        """Comment id -> its JSON as GET would return it, on the pull requests above."""
        self._faults: list[_Fault] = []
        self._issued_tokens: dict[str, datetime] = {}
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("GitHubStandIn is already running")
        server = _Server(("127.0.0.1", 0), _Handler)
        server.standin = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="github-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("GitHubStandIn is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def enterprise_url(self) -> str:
        """The same server as a GitHub Enterprise Server base URL (``.../api/v3``)."""
        return self.url + ENTERPRISE_PREFIX

    # -- scripting and inspection --------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        headers: dict[str, str] | None = None,
        body: JsonObject | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` instead of handling them.

        ``method`` and ``path`` (an ``fnmatch`` pattern over the path without ``/api/v3``, such
        as ``"/repos/*/check-runs/*"``) narrow which requests match; by default every request
        does. Faults queue up in order. The body defaults to ``{"message": ...}`` as GitHub
        words it: a 403 with ``X-RateLimit-Remaining: 0`` reads as a primary rate limit, a 403
        or 429 with ``Retry-After`` as a secondary one.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        fault_headers = dict(headers or {})
        fault_body = (
            dict(body)
            if body is not None
            else {
                "message": _default_fault_message(status, fault_headers),
                "documentation_url": DOCS_URL,
            }
        )
        with self.lock:
            self._faults.append(_Fault(status, count, fault_headers, fault_body, method, path))

    def echo_credentials_next(
        self,
        status: int = 502,
        *,
        count: int = 1,
        method: str | None = None,
        path: str | None = None,
        as_json: bool = False,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` and a body that repeats
        the request's ``Authorization`` header verbatim, as a misbehaving proxy does.

        For credential-leak tests: whatever a client makes of the answer (exception text, logs,
        dead letters) must not carry the token on. The body is ``text/plain`` (a proxy's error
        page) or, with ``as_json``, GitHub's ``{"message": ..., "documentation_url": ...}``.
        ``method`` and ``path`` match as in :meth:`fail_next`, and both kinds queue together.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        with self.lock:
            self._faults.append(_Fault(status, count, {}, {}, method, path, echo=True, as_json=as_json))

    def add_pull_request(
        self, owner: str, repo: str, number: int, head_sha: str, *, state: str = "open"
    ) -> None:
        """A pull request whose head is ``head_sha`` (call again to move its head, as a push does)."""
        with self.lock:
            self.pull_requests[(owner, repo, number)] = {"head_sha": head_sha, "state": state}

    def add_issue_comment(
        self, owner: str, repo: str, number: int, body: str, *, login: str = "someone"
    ) -> int:
        """A comment written on a pull request by the user ``login``, as if on github.com; its id."""
        with self.lock:
            request = _Request("POST", "", (), None, None, self.url, self.url)
            author = _user(request, login, _stable_id(login), "User")
            return int(self._new_issue_comment(request, owner, repo, number, body, author, None)["id"])

    def comments_on(self, owner: str, repo: str, number: int) -> list[JsonObject]:
        """Copies of a pull request's comments, oldest first."""
        with self.lock:
            suffix = f"/repos/{owner}/{repo}/issues/{number}"
            return [
                json.loads(json.dumps(comment))
                for comment in self.issue_comments.values()
                if comment["issue_url"].endswith(suffix)
            ]

    def pending_faults(self) -> int:
        """How many scripted fault answers have not been used yet."""
        with self.lock:
            return sum(fault.remaining for fault in self._faults)

    def calls_to(self, method: str | None = None, path: str | None = None) -> list[RecordedCall]:
        """A copy of the recorded calls, optionally only one method and/or ``fnmatch`` path."""
        with self.lock:
            return [
                call
                for call in self.calls
                if (method is None or call.method == method.upper())
                and (path is None or fnmatch.fnmatchcase(call.path, path))
            ]

    def reset(self) -> None:
        """Forget calls, check runs, statuses, faults and issued tokens."""
        with self.lock:
            self.calls.clear()
            self.check_runs.clear()
            self.annotations.clear()
            self.statuses.clear()
            self.pull_requests.clear()
            self.issue_comments.clear()
            self._faults.clear()
            self._issued_tokens.clear()

    # -- request handling (called from server threads) -----------------------------------------

    def _credential(self, authorization: str | None) -> tuple[str | None, str | None, JsonObject | None]:
        """(scheme, credential kind, JWT claims) for an Authorization header value."""
        if not authorization:
            return None, None, None
        scheme, _, secret = authorization.strip().partition(" ")
        secret = secret.strip()
        if scheme.lower() == "bearer" and secret.count(".") == 2:
            return scheme, "jwt", _jwt_claims(secret)
        with self.lock:
            if secret in self._issued_tokens:
                return scheme, "installation-token", None
        return scheme, "token", None

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.matches(method, path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _dispatch(self, request: _Request, authorization_secret: str | None) -> _Answer:
        for method, pattern, handler, auth in _ROUTES:
            match = pattern.fullmatch(request.path)
            if match is None or method != request.method:
                continue
            routed = _Request(
                request.method,
                request.path,
                tuple(unquote(group) for group in match.groups()),
                request.body,
                request.credential,
                request.api,
                request.web,
                request.query,
            )
            refusal = self._check_auth(auth, routed, authorization_secret)
            if refusal is not None:
                return refusal
            try:
                return handler(self, routed)
            except _ValidationError as invalid:
                problem = {"resource": invalid.resource, "field": invalid.field_name, "code": invalid.code}
                answer = _error(422, "Validation Failed")
                return _Answer(422, {**cast(JsonObject, answer.body), "errors": [problem]})
        return _error(404, "Not Found")

    def _check_auth(self, rule: str, request: _Request, secret: str | None) -> _Answer | None:
        if rule == "jwt":
            if request.credential != "jwt":
                return _error(401, "A JSON web token could not be decoded")
            return None
        if request.credential == "jwt":
            # GitHub answers App JWTs on installation-scoped endpoints with an error too.
            return _error(401, "Use an installation token here, not the App JWT (stand-in rule)")
        if rule == "write" and request.credential is None:
            return _error(401, "Requires authentication")
        if request.credential == "installation-token" and secret is not None:
            expires = self._issued_tokens.get(secret)
            if expires is not None and expires <= self.clock():
                return _error(401, "Bad credentials")
        return None

    # -- endpoints -----------------------------------------------------------------------------

    def _get_repo(self, request: _Request) -> _Answer:
        owner, repo = request.params
        return _Answer(200, _repository(request, owner, repo, self.clock()))

    def _get_commit(self, request: _Request) -> _Answer:
        owner, repo, ref = request.params
        return _Answer(200, _commit(request, owner, repo, _resolve_ref(ref), self.clock()))

    def _create_check_run(self, request: _Request) -> _Answer:
        owner, repo = request.params
        body = _object_body(request.body, "CheckRun")
        name = body.get("name")
        head_sha = body.get("head_sha")
        if not isinstance(name, str) or not name:
            raise _ValidationError("CheckRun", "name", "missing_field")
        if not isinstance(head_sha, str) or not _SHA_RE.match(head_sha):
            raise _ValidationError("CheckRun", "head_sha", "invalid")
        now = _iso(self.clock())
        run_id = next(self._ids)
        url = f"{request.api}/repos/{owner}/{repo}/check-runs/{run_id}"
        html_url = f"{request.web}/{owner}/{repo}/runs/{run_id}"
        run: JsonObject = {
            "id": run_id,
            "node_id": _node_id("CR", run_id),
            "head_sha": head_sha,
            "external_id": "",
            "url": url,
            "html_url": html_url,
            "details_url": html_url,
            "status": "queued",
            "conclusion": None,
            "started_at": now,
            "completed_at": None,
            "output": {
                "title": None,
                "summary": None,
                "text": None,
                "annotations_count": 0,
                "annotations_url": f"{url}/annotations",
            },
            "name": name,
            "check_suite": {"id": _stable_id(owner, repo, head_sha)},
            "app": _app(request, self.app_id, now),
            "pull_requests": [],
        }
        self.annotations[run_id] = []
        _apply_check_run_fields(run, body, self.annotations[run_id], creating=True, now=now)
        self.check_runs[run_id] = run
        return _Answer(201, json.loads(json.dumps(run)), {"Location": url})

    def _get_check_run(self, request: _Request) -> _Answer:
        run = self._find_check_run(request)
        if run is None:
            return _error(404, "Not Found")
        return _Answer(200, json.loads(json.dumps(run)))

    def _update_check_run(self, request: _Request) -> _Answer:
        run = self._find_check_run(request)
        if run is None:
            return _error(404, "Not Found")
        body = _object_body(request.body, "CheckRun")
        # Validate on a copy so a refused update changes nothing.
        updated: JsonObject = json.loads(json.dumps(run))
        annotations = list(self.annotations.get(run["id"], []))
        _apply_check_run_fields(updated, body, annotations, creating=False, now=_iso(self.clock()))
        run.clear()
        run.update(updated)
        self.annotations[run["id"]] = annotations
        return _Answer(200, json.loads(json.dumps(run)))

    def _find_check_run(self, request: _Request) -> JsonObject | None:
        owner, repo, raw_id = request.params
        if not raw_id.isdigit():
            return None
        run = self.check_runs.get(int(raw_id))
        if run is None or f"/repos/{owner}/{repo}/check-runs/" not in run["url"]:
            return None
        return run

    def _list_check_runs_for_ref(self, request: _Request) -> _Answer:
        """``checks/list-for-ref``: newest first, ``filter=latest`` keeps the newest per name."""
        owner, repo, ref = request.params
        check_name = _query_value(request, "check_name")
        status = _query_value(request, "status")
        if status is not None and status not in CHECK_RUN_STATUSES:
            raise _ValidationError("CheckRun", "status")
        chosen_filter = _query_value(request, "filter") or "latest"
        if chosen_filter not in ("latest", "all"):
            raise _ValidationError("CheckRun", "filter")
        app_id = _query_value(request, "app_id")
        per_page = min(max(_query_int(request, "per_page", 30), 1), 100)
        page = max(_query_int(request, "page", 1), 1)
        sha = _resolve_ref(ref)
        prefix = f"/repos/{owner}/{repo}/check-runs/"
        runs = sorted(
            (run for run in self.check_runs.values() if prefix in run["url"] and run["head_sha"] == sha),
            key=lambda run: int(run["id"]),
            reverse=True,
        )
        if chosen_filter == "latest":
            newest: dict[str, JsonObject] = {}
            for run in runs:
                newest.setdefault(run["name"], run)
            runs = list(newest.values())  # dicts keep insertion order: still newest first
        runs = [
            run
            for run in runs
            if (check_name is None or run["name"] == check_name)
            and (status is None or run["status"] == status)
            and (app_id is None or str(run["app"]["id"]) == app_id)
        ]
        start = (page - 1) * per_page
        answer: JsonObject = {
            "total_count": len(runs),
            "check_runs": json.loads(json.dumps(runs[start : start + per_page])),
        }
        link = _link_header(request, page, per_page, len(runs))
        return _Answer(200, answer, {"Link": link} if link else {})

    def _create_status(self, request: _Request) -> _Answer:
        owner, repo, sha = request.params
        body = _object_body(request.body, "Status")
        state = body.get("state")
        if state not in COMMIT_STATUS_STATES:
            raise _ValidationError("Status", "state", "missing_field" if state is None else "invalid")
        if not _SHA_RE.match(sha):
            return _error(422, f"No commit found for SHA: {sha}")
        for name in ("target_url", "description"):
            if body.get(name) is not None and not isinstance(body[name], str):
                raise _ValidationError("Status", name)
        context = body.get("context", "default")
        if not isinstance(context, str):
            raise _ValidationError("Status", "context")
        now = _iso(self.clock())
        status_id = next(self._ids)
        answer: JsonObject = {
            "url": f"{request.api}/repos/{owner}/{repo}/statuses/{sha}",
            "avatar_url": None,
            "id": status_id,
            "node_id": _node_id("SC", status_id),
            "state": state,
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "context": context,
            "created_at": now,
            "updated_at": now,
            "creator": _user(request, "tekton-integrations[bot]", self.app_id, "Bot"),
        }
        self.statuses.append({**answer, "repository": f"{owner}/{repo}", "sha": sha})
        return _Answer(201, answer, {"Location": answer["url"]})

    def _get_user(self, request: _Request) -> _Answer:
        if request.credential == "installation-token":
            return _error(403, "Resource not accessible by integration")
        user = _user(request, self.token_login, _stable_id(self.token_login), "User")
        stamp = _iso(self.clock())
        profile = dict.fromkeys(("name", "company", "blog", "location", "email", "hireable", "bio"))
        counts = dict.fromkeys(("public_repos", "public_gists", "followers", "following"), 0)
        return _Answer(200, {**user, **profile, **counts, "created_at": stamp, "updated_at": stamp})

    def _get_pull_request(self, request: _Request) -> _Answer:
        owner, repo, raw = request.params
        pull = self.pull_requests.get((owner, repo, int(raw))) if raw.isdigit() else None
        if pull is None:
            return _error(404, "Not Found")
        return _Answer(200, _pull_request(request, owner, repo, int(raw), pull, self.clock()))

    def _list_issue_comments(self, request: _Request) -> _Answer:
        """Oldest first, ``per_page`` (at most 100) and ``page``, with a ``Link`` header."""
        owner, repo, raw = request.params
        if not raw.isdigit() or (owner, repo, int(raw)) not in self.pull_requests:
            return _error(404, "Not Found")
        suffix = f"/repos/{owner}/{repo}/issues/{raw}"
        found = [c for c in self.issue_comments.values() if c["issue_url"].endswith(suffix)]
        per_page = min(max(_query_int(request, "per_page", 30), 1), 100)
        page = max(_query_int(request, "page", 1), 1)
        start = (page - 1) * per_page
        link = _link_header(request, page, per_page, len(found))
        chosen: Any = json.loads(json.dumps(found[start : start + per_page]))
        return _Answer(200, chosen, {"Link": link} if link else {})

    def _create_issue_comment(self, request: _Request) -> _Answer:
        owner, repo, raw = request.params
        if not raw.isdigit() or (owner, repo, int(raw)) not in self.pull_requests:
            return _error(404, "Not Found")
        body = _comment_body(request.body)
        if request.credential == "installation-token":
            author = _user(request, "tekton-integrations[bot]", self.app_id, "Bot")
            app: JsonObject | None = _app(request, self.app_id, _iso(self.clock()))
        else:
            author, app = _user(request, self.token_login, _stable_id(self.token_login), "User"), None
        comment = self._new_issue_comment(request, owner, repo, int(raw), body, author, app)
        return _Answer(201, json.loads(json.dumps(comment)), {"Location": comment["url"]})

    def _update_issue_comment(self, request: _Request) -> _Answer:
        """Any writer may edit any comment, as GitHub lets a repository's writers do."""
        owner, repo, raw = request.params
        comment = self.issue_comments.get(int(raw)) if raw.isdigit() else None
        if comment is None or f"/repos/{owner}/{repo}/issues/comments/" not in comment["url"]:
            return _error(404, "Not Found")
        comment.update(body=_comment_body(request.body), updated_at=_iso(self.clock()))
        return _Answer(200, json.loads(json.dumps(comment)))

    def _new_issue_comment(  # noqa: PLR0917 -- private; callers pass the whole comment
        self,
        request: _Request,
        owner: str,
        repo: str,
        number: int,
        body: str,
        author: JsonObject,
        app: JsonObject | None,
    ) -> JsonObject:
        comment_id = next(self._ids)
        url = f"{request.api}/repos/{owner}/{repo}/issues/comments/{comment_id}"
        now = _iso(self.clock())
        comment: JsonObject = {
            "id": comment_id,
            "node_id": _node_id("IC", comment_id),
            "url": url,
            "html_url": f"{request.web}/{owner}/{repo}/pull/{number}#issuecomment-{comment_id}",
            "body": body,
            "user": author,
            "created_at": now,
            "updated_at": now,
            "issue_url": f"{request.api}/repos/{owner}/{repo}/issues/{number}",
            "author_association": "NONE",
            "performed_via_github_app": app,
        }
        self.issue_comments[comment_id] = comment
        return comment

    def _get_repo_installation(self, request: _Request) -> _Answer:
        owner, _repo = request.params
        return _Answer(200, self._installation(request, owner))

    def _create_access_token(self, request: _Request) -> _Answer:
        (raw_id,) = request.params
        if raw_id != str(self.installation_id):
            return _error(404, "Not Found")
        if request.body is not None:
            _object_body(request.body, "InstallationToken")
        token = "ghs_" + secrets.token_hex(18)
        expires = self.clock() + self.token_lifetime
        self._issued_tokens[token] = expires
        answer: JsonObject = {
            "token": token,
            "expires_at": _iso(expires),
            "permissions": {"checks": "write", "statuses": "write", "metadata": "read"},
            "repository_selection": "all",
        }
        return _Answer(201, answer)

    def _installation(self, request: _Request, owner: str) -> JsonObject:
        now = _iso(self.clock())
        return {
            "id": self.installation_id,
            "account": _user(request, owner, _stable_id(owner), "Organization"),
            "repository_selection": "all",
            "access_tokens_url": (f"{request.api}/app/installations/{self.installation_id}/access_tokens"),
            "repositories_url": f"{request.api}/installation/repositories",
            "html_url": f"{request.web}/organizations/{owner}/settings/installations/{self.installation_id}",
            "app_id": self.app_id,
            "app_slug": "tekton-integrations",
            "target_id": _stable_id(owner),
            "target_type": "Organization",
            "permissions": {"checks": "write", "statuses": "write", "metadata": "read"},
            "events": ["check_run"],
            "created_at": now,
            "updated_at": now,
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }


# -- JSON shapes -------------------------------------------------------------------------------


def _resolve_ref(ref: str) -> str:
    """The commit a ref names: a full SHA names itself; any other ref (branch, tag, short SHA)
    names one made-up commit, the same one ``GET /repos/{o}/{r}/commits/{ref}`` shows.
    ``heads/main`` and ``refs/heads/main`` name the same commit as ``main``, as on GitHub."""
    if _FULL_SHA_RE.match(ref):
        return ref
    name = ref.removeprefix("refs/")
    kind, _, rest = name.partition("/")
    if kind in ("heads", "tags") and rest:
        name = rest
    return hashlib.sha1(name.encode()).hexdigest()  # noqa: S324


def _query_value(request: _Request, name: str) -> str | None:
    values = request.query.get(name)
    return values[-1] if values else None


def _query_int(request: _Request, name: str, default: int) -> int:
    """A whole-number query parameter; GitHub ignores a malformed one, so the default is used."""
    value = _query_value(request, name)
    return int(value) if value is not None and value.isdigit() else default


def _link_header(request: _Request, page: int, per_page: int, total: int) -> str:
    """GitHub's pagination ``Link`` header (``next``, ``last``, ``first``, ``prev``), or ``""``."""
    last = max((total + per_page - 1) // per_page, 1)
    relations = []
    if page < last:
        relations += [("next", page + 1), ("last", last)]
    if page > 1:
        relations += [("first", 1), ("prev", min(page - 1, last))]
    kept = [(name, value) for name, values in request.query.items() if name != "page" for value in values]
    return ", ".join(
        f'<{request.api}{request.path}?{urlencode([*kept, ("page", str(number))])}>; rel="{relation}"'
        for relation, number in relations
    )


def _object_body(body: Any, resource: str) -> JsonObject:
    if not isinstance(body, dict):
        raise _ValidationError(resource, "body", "invalid")
    return cast(JsonObject, body)


def _apply_check_run_fields(
    run: JsonObject,
    body: JsonObject,
    annotations: list[JsonObject],
    *,
    creating: bool,
    now: str,
) -> None:
    """Apply a create or update body to ``run`` with GitHub's rules; raise on invalid input."""
    for name in ("name", "details_url", "external_id", "started_at", "completed_at"):
        if name in body:
            value = body[name]
            if not isinstance(value, str) or (name == "name" and not value):
                raise _ValidationError("CheckRun", name)
            run[name] = value
    allowed = CHECK_RUN_STATUSES if creating else CHECK_RUN_STATUSES | CHECK_RUN_ACTIONS_STATUSES
    status = body.get("status")
    if status is not None and status not in allowed:
        raise _ValidationError("CheckRun", "status")
    conclusion = body.get("conclusion")
    if conclusion is not None and conclusion not in CHECK_RUN_CONCLUSIONS:
        raise _ValidationError("CheckRun", "conclusion")
    if conclusion is None and (status == "completed" or "completed_at" in body):
        raise _ValidationError("CheckRun", "conclusion", "missing_field")
    if status is not None:
        run["status"] = status
    if conclusion is not None:
        # "Providing conclusion will automatically set the status parameter to completed."
        run["status"] = "completed"
        run["conclusion"] = conclusion
        if "completed_at" not in body:
            run["completed_at"] = now
    if "output" in body:
        _apply_output(run, body["output"], annotations, creating=creating)


def _apply_output(run: JsonObject, output: Any, annotations: list[JsonObject], *, creating: bool) -> None:
    if not isinstance(output, dict):
        raise _ValidationError("CheckRun", "output")
    required = ("title", "summary") if creating else ("summary",)
    for name in required:
        if not isinstance(output.get(name), str):
            raise _ValidationError("CheckRun", f"output.{name}", "missing_field")
    for name in ("title", "summary", "text"):
        value = output.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > MAX_OUTPUT_TEXT:
            raise _ValidationError("CheckRun", f"output.{name}")
    new_annotations = output.get("annotations", [])
    if not isinstance(new_annotations, list) or len(new_annotations) > MAX_ANNOTATIONS_PER_REQUEST:
        raise _ValidationError("CheckRun", "output.annotations")
    current = run["output"]
    for name in ("title", "summary", "text"):
        if name in output:
            current[name] = output[name]
    annotations.extend(item for item in new_annotations if isinstance(item, dict))
    current["annotations_count"] = len(annotations)


def _user(request: _Request, login: str, user_id: int, kind: str) -> JsonObject:
    quoted = quote(login, safe="")  # bots are "name[bot]"; URLs must stay valid URIs
    api = f"{request.api}/users/{quoted}"
    return {
        "login": login,
        "id": user_id,
        "node_id": _node_id("U", user_id),
        "avatar_url": f"{request.web}/avatars/{quoted}",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{request.web}/{quoted}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def _app(request: _Request, app_id: int, now: str) -> JsonObject:
    return {
        "id": app_id,
        "slug": "tekton-integrations",
        "node_id": _node_id("A", app_id),
        "client_id": "Iv1.standin",
        "owner": _user(request, "tekton", _stable_id("tekton"), "Organization"),
        "name": "tekton-integrations",
        "description": "GitHub stand-in App",
        "external_url": request.web,
        "html_url": f"{request.web}/apps/tekton-integrations",
        "created_at": now,
        "updated_at": now,
        "permissions": {"checks": "write", "statuses": "write", "metadata": "read"},
        "events": ["check_run"],
    }


def _repository(request: _Request, owner: str, repo: str, now: datetime) -> JsonObject:
    api = f"{request.api}/repos/{owner}/{repo}"
    web = f"{request.web}/{owner}/{repo}"
    stamp = _iso(now)
    repo_id = _stable_id(owner, repo)
    templates = {
        "archive_url": "/{archive_format}{/ref}",
        "assignees_url": "/assignees{/user}",
        "blobs_url": "/git/blobs{/sha}",
        "branches_url": "/branches{/branch}",
        "collaborators_url": "/collaborators{/collaborator}",
        "comments_url": "/comments{/number}",
        "commits_url": "/commits{/sha}",
        "compare_url": "/compare/{base}...{head}",
        "contents_url": "/contents/{+path}",
        "contributors_url": "/contributors",
        "deployments_url": "/deployments",
        "downloads_url": "/downloads",
        "events_url": "/events",
        "forks_url": "/forks",
        "git_commits_url": "/git/commits{/sha}",
        "git_refs_url": "/git/refs{/sha}",
        "git_tags_url": "/git/tags{/sha}",
        "hooks_url": "/hooks",
        "issue_comment_url": "/issues/comments{/number}",
        "issue_events_url": "/issues/events{/number}",
        "issues_url": "/issues{/number}",
        "keys_url": "/keys{/key_id}",
        "labels_url": "/labels{/name}",
        "languages_url": "/languages",
        "merges_url": "/merges",
        "milestones_url": "/milestones{/number}",
        "notifications_url": "/notifications{?since,all,participating}",
        "pulls_url": "/pulls{/number}",
        "releases_url": "/releases{/id}",
        "stargazers_url": "/stargazers",
        "statuses_url": "/statuses/{sha}",
        "subscribers_url": "/subscribers",
        "subscription_url": "/subscription",
        "tags_url": "/tags",
        "teams_url": "/teams",
        "trees_url": "/git/trees{/sha}",
    }
    host = request.web.split("://", 1)[-1]
    answer: JsonObject = {
        "id": repo_id,
        "node_id": _node_id("R", repo_id),
        "name": repo,
        "full_name": f"{owner}/{repo}",
        "owner": _user(request, owner, _stable_id(owner), "Organization"),
        "private": False,
        "html_url": web,
        "description": None,
        "fork": False,
        "url": api,
        **{name: api + suffix for name, suffix in templates.items()},
        "git_url": f"git://{host}/{owner}/{repo}.git",
        "ssh_url": f"git@{host}:{owner}/{repo}.git",
        "clone_url": f"{web}.git",
        "svn_url": web,
        "mirror_url": None,
        "homepage": None,
        "language": None,
        "forks": 0,
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers": 0,
        "watchers_count": 0,
        "size": 0,
        "default_branch": "main",
        "open_issues": 0,
        "open_issues_count": 0,
        "is_template": False,
        "topics": [],
        "has_issues": True,
        "has_projects": False,
        "has_wiki": False,
        "has_pages": False,
        "has_downloads": False,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "visibility": "public",
        "license": None,
        "pushed_at": stamp,
        "created_at": stamp,
        "updated_at": stamp,
        "permissions": {
            "admin": False,
            "maintain": False,
            "push": True,
            "triage": True,
            "pull": True,
        },
        "network_count": 0,
        "subscribers_count": 0,
    }
    return answer


def _commit(request: _Request, owner: str, repo: str, sha: str, now: datetime) -> JsonObject:
    api = f"{request.api}/repos/{owner}/{repo}"
    person = {"name": "Tekton Stand-in", "email": "standin@example.invalid", "date": _iso(now)}
    author = _user(request, "octocat", _stable_id("octocat"), "User")
    tree_sha = hashlib.sha1(f"tree:{sha}".encode()).hexdigest()  # noqa: S324
    return {
        "url": f"{api}/commits/{sha}",
        "sha": sha,
        "node_id": _node_id("C", _stable_id(owner, repo, sha)),
        "html_url": f"{request.web}/{owner}/{repo}/commit/{sha}",
        "comments_url": f"{api}/commits/{sha}/comments",
        "commit": {
            "url": f"{api}/git/commits/{sha}",
            "author": person,
            "committer": person,
            "message": "stand-in commit",
            "comment_count": 0,
            "tree": {"sha": tree_sha, "url": f"{api}/git/trees/{tree_sha}"},
        },
        "author": author,
        "committer": author,
        "parents": [],
        "stats": {"additions": 0, "deletions": 0, "total": 0},
        "files": [],
    }


def _pull_request(  # noqa: PLR0917 -- private, like the other JSON shapes
    request: _Request, owner: str, repo: str, number: int, pull: JsonObject, now: datetime
) -> JsonObject:
    api = f"{request.api}/repos/{owner}/{repo}"
    web = f"{request.web}/{owner}/{repo}/pull/{number}"
    stamp = _iso(now)
    author = _user(request, "octocat", _stable_id("octocat"), "User")
    repository = _repository(request, owner, repo, now)
    urls = {
        "url": f"{api}/pulls/{number}",
        "html_url": web,
        "diff_url": f"{web}.diff",
        "patch_url": f"{web}.patch",
        "issue_url": f"{api}/issues/{number}",
        "commits_url": f"{api}/pulls/{number}/commits",
        "review_comments_url": f"{api}/pulls/{number}/comments",
        "review_comment_url": f"{api}/pulls/comments{{/number}}",
        "comments_url": f"{api}/issues/{number}/comments",
        "statuses_url": f"{api}/statuses/{pull['head_sha']}",
    }
    links = {
        "self": urls["url"],
        "html": web,
        "issue": urls["issue_url"],
        "comments": urls["comments_url"],
        "review_comments": urls["review_comments_url"],
        "review_comment": urls["review_comment_url"],
        "commits": urls["commits_url"],
        "statuses": urls["statuses_url"],
    }

    def branch(ref: str, sha: str) -> JsonObject:
        return {"label": f"{owner}:{ref}", "ref": ref, "repo": repository, "sha": sha, "user": author}

    pull_id = _stable_id(owner, repo, "pull", str(number))
    return {
        **urls,
        "id": pull_id,
        "node_id": _node_id("PR", pull_id),
        "number": number,
        "state": pull["state"],
        "locked": False,
        "title": f"Stand-in pull request #{number}",
        "user": author,
        "body": None,
        "labels": [],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": stamp,
        "updated_at": stamp,
        "closed_at": None,
        "merged_at": None,
        "merge_commit_sha": None,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": branch(f"pr-{number}", pull["head_sha"]),
        "base": branch("main", _resolve_ref("main")),
        "_links": {name: {"href": href} for name, href in links.items()},
        "author_association": "CONTRIBUTOR",
        "auto_merge": None,
        "draft": False,
        "merged": False,
        "mergeable": True,
        "rebaseable": True,
        "mergeable_state": "clean",
        "merged_by": None,
        "comments": 0,
        "review_comments": 0,
        "maintainer_can_modify": False,
        "commits": 1,
        "additions": 0,
        "deletions": 0,
        "changed_files": 0,
    }


def _comment_body(body: Any) -> str:
    text = _object_body(body, "IssueComment").get("body")
    if not isinstance(text, str):
        raise _ValidationError("IssueComment", "body", "missing_field")
    if len(text) > MAX_COMMENT_BODY:
        raise _ValidationError("IssueComment", "body", "custom")
    return text


def _jwt_claims(token: str) -> JsonObject | None:
    try:
        payload = token.split(".")[1]
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(decoded)
    except (IndexError, ValueError, binascii.Error):
        return None
    return cast(JsonObject, claims) if isinstance(claims, dict) else None


def _jwt_refusal(claims: JsonObject | None, now: float) -> str | None:
    if claims is None:
        return "A JSON web token could not be decoded"
    issued, expires = claims.get("iat"), claims.get("exp")
    if not isinstance(issued, int | float) or not isinstance(expires, int | float):
        return "A JSON web token could not be decoded"
    if expires - issued > MAX_JWT_LIFETIME_SECONDS:
        return "'Expiration time' claim ('exp') is too far in the future"
    if expires < now:
        return "'Expiration time' claim ('exp') is in the past"
    return None


def _echo_answer(fault: _Fault, authorization: str | None) -> _Answer:
    """A misbehaving proxy's error answer that repeats the Authorization header verbatim."""
    text = f"Authorization: {authorization or ''} -- {fault.status} upstream error"
    if fault.as_json:
        return _Answer(fault.status, {"message": text, "documentation_url": DOCS_URL})
    return _Answer(fault.status, text + "\n")


_Route = tuple[str, "re.Pattern[str]", Callable[[GitHubStandIn, _Request], _Answer], str]

_REPO: Final = f"/repos/{_SEGMENT}/{_SEGMENT}"
_ROUTES: Final[list[_Route]] = [
    ("GET", re.compile(_REPO), GitHubStandIn._get_repo, "read"),
    ("GET", re.compile(f"{_REPO}/commits/{_SEGMENT}"), GitHubStandIn._get_commit, "read"),
    (
        "GET",
        re.compile(f"{_REPO}/commits/(.+)/check-runs"),  # a ref may have slashes: heads/main
        GitHubStandIn._list_check_runs_for_ref,
        "read",
    ),
    ("POST", re.compile(f"{_REPO}/check-runs"), GitHubStandIn._create_check_run, "write"),
    ("GET", re.compile(f"{_REPO}/check-runs/{_SEGMENT}"), GitHubStandIn._get_check_run, "read"),
    (
        "PATCH",
        re.compile(f"{_REPO}/check-runs/{_SEGMENT}"),
        GitHubStandIn._update_check_run,
        "write",
    ),
    ("POST", re.compile(f"{_REPO}/statuses/{_SEGMENT}"), GitHubStandIn._create_status, "write"),
    ("GET", re.compile(f"{_REPO}/pulls/{_SEGMENT}"), GitHubStandIn._get_pull_request, "read"),
    (
        "GET",
        re.compile(f"{_REPO}/issues/{_SEGMENT}/comments"),
        GitHubStandIn._list_issue_comments,
        "read",
    ),
    (
        "POST",
        re.compile(f"{_REPO}/issues/{_SEGMENT}/comments"),
        GitHubStandIn._create_issue_comment,
        "write",
    ),
    (
        "PATCH",
        re.compile(f"{_REPO}/issues/comments/{_SEGMENT}"),
        GitHubStandIn._update_issue_comment,
        "write",
    ),
    ("GET", re.compile("/user"), GitHubStandIn._get_user, "write"),  # "write": a credential is needed
    (
        "GET",
        re.compile(f"{_REPO}/installation"),
        GitHubStandIn._get_repo_installation,
        "jwt",
    ),
    (
        "POST",
        re.compile(f"/app/installations/{_SEGMENT}/access_tokens"),
        GitHubStandIn._create_access_token,
        "jwt",
    ),
]


# -- HTTP plumbing -----------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: GitHubStandIn


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall
    protocol_version = "HTTP/1.1"
    server_version = "GitHubStandIn/1"
    # An idle keep-alive connection frees its thread after this many seconds.
    timeout = 30

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the recorded calls are the log."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        standin = cast(_Server, self.server).standin
        raw = self._read_body()
        target = urlsplit(self.path)
        path = target.path
        enterprise = path == ENTERPRISE_PREFIX or path.startswith(ENTERPRISE_PREFIX + "/")
        if enterprise:
            path = path[len(ENTERPRISE_PREFIX) :] or "/"
        if len(path) > 1:
            path = path.rstrip("/")
        method = self.command.upper()
        authorization = self.headers.get("Authorization")
        scheme, credential, claims = standin._credential(authorization)
        headers = {name: value for name, value in self.headers.items() if name.lower() != "authorization"}
        if standin.public_url:
            web = standin.public_url.rstrip("/")
        else:
            host = (
                self.headers.get("X-Forwarded-Host")
                or self.headers.get("Host")
                or f"127.0.0.1:{standin.port}"
            )
            web = f"{self.headers.get('X-Forwarded-Proto', 'http')}://{host}"
        api = web + (ENTERPRISE_PREFIX if enterprise else "")

        body: Any = None
        answer: _Answer | None = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                answer = _error(400, "Problems parsing JSON")
        query = parse_qs(target.query)
        request = _Request(method, path, (), body, credential, api, web, query)

        delay = standin.latency_seconds
        if delay > 0:
            time.sleep(delay)

        with standin.lock:
            fault = standin._take_fault(method, path)
            if fault is not None and fault.echo:
                answer = _echo_answer(fault, authorization)
            elif fault is not None:
                answer = _Answer(fault.status, dict(fault.body), dict(fault.headers))
            elif answer is None and credential == "jwt":
                refusal = _jwt_refusal(claims, standin.clock().timestamp())
                answer = None if refusal is None else _error(401, refusal)
            if answer is None:
                secret = (authorization or "").strip().partition(" ")[2].strip() or None
                answer = standin._dispatch(request, secret)
            standin.calls.append(
                RecordedCall(
                    method=method,
                    path=path,
                    query=query,
                    body=body,
                    headers=headers,
                    auth_scheme=scheme,
                    credential=credential,
                    jwt_claims=claims,
                    enterprise_prefix=enterprise,
                    status=answer.status,
                )
            )
            reset = int(standin.clock().timestamp()) + 3600
        self._send(answer, reset)

    def _send(self, answer: _Answer, reset: int) -> None:
        text = isinstance(answer.body, str)
        payload = (answer.body if isinstance(answer.body, str) else json.dumps(answer.body)).encode()
        headers = {
            "Content-Type": "text/plain; charset=utf-8" if text else "application/json; charset=utf-8",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Request-Id": secrets.token_hex(8).upper(),
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "4999",
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Used": "1",
            "X-RateLimit-Resource": "core",
        }
        # Scripted headers replace the defaults whatever their case.
        overrides = {name.lower() for name in answer.headers}
        headers = {name: value for name, value in headers.items() if name.lower() not in overrides}
        headers.update(answer.headers)
        self.send_response(answer.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
