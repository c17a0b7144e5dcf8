"""A loopback stand-in for the slice of GitLab's REST API v4 that the gitlab function uses.

Owns: a stdlib HTTP server on 127.0.0.1 that keeps projects, commit statuses and merge requests'
notes in memory,
records every request (never the token itself) and answers scripted faults.

Follows GitLab's documented commit-status API and its server behaviour:

- ``POST /api/v4/projects/:id/statuses/:sha`` with ``state`` (pending, running, success,
  failed, canceled), ``name`` (or ``context``, default ``default``), ``ref``, ``target_url``,
  ``description``; parameters in a JSON or form body, or in the query string. ``:id`` is a
  numeric id or a URL-encoded path (``group%2Fsub%2Fproject``). Answers 201 with the status.
- The status that a post changes is the pending or running one with the same name and ref; a
  finished one is left alone and a new status is created. States move like GitLab's
  ``CommitStatus`` state machine; an impossible move (posting ``running`` twice, ``pending``
  after ``running``) is answered 400 ``Cannot transition status via :run from :running``.
- ``target_url``, ``description`` and ``name`` longer than 255 characters are refused with 400.
- ``GET /api/v4/projects/:id`` and ``GET /api/v4/projects/:id/repository/commits/:sha/statuses``
  (``name``, ``ref`` and ``all`` filter it; without ``all`` only the newest of each name).
- ``GET /api/v4/user``: the token's user, :attr:`GitLabStandIn.user`.
- Merge requests added with :meth:`GitLabStandIn.add_merge_request`: ``GET
  /api/v4/projects/:id/merge_requests/:iid`` (its head ``sha``), and its notes: ``GET .../notes``
  (``sort`` asc or desc by creation, ``per_page`` and ``page`` with a ``Link`` header), ``POST
  .../notes`` and ``PUT .../notes/:note_id`` (``body`` required, at most 1,000,000 characters). A
  note is written by the token's user; only its author may edit it (403 otherwise, as in GitLab).
- A missing ``PRIVATE-TOKEN`` (or ``Authorization: Bearer``) gets 401, a wrong one too when the
  stand-in was given a token; an unknown project gets 404 ``404 Project Not Found``.

Scripted answers: :meth:`GitLabStandIn.fail_next` (any status, headers, body) and
:meth:`GitLabStandIn.echo_credentials_next` (a proxy's error page that repeats the request's
``PRIVATE-TOKEN`` and ``Authorization`` headers, for credential-leak tests).

Does not: persist anything, check permissions beyond the token, or know about pipelines.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import parse_qs, unquote, urlencode

from tests.support.standins.loopback import (
    Fault,
    FaultQueue,
    LoopbackStandIn,
    Reply,
    Request,
    matching,
    proxy_page,
)

__all__ = ["GitLabStandIn", "RecordedCall"]

JsonObject = dict[str, Any]
Credential = Literal["valid", "invalid"] | None

STATES: Final = ("pending", "running", "success", "failed", "canceled")
MAX_FIELD: Final = 255
MAX_NOTE: Final = 1_000_000
_SHA: Final = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
# event -> (states it may leave, state it enters), after GitLab's CommitStatus state machine
_EVENTS: Final[dict[str, tuple[frozenset[str], str]]] = {
    "enqueue": (frozenset({"created", "skipped"}), "pending"),
    "run": (frozenset({"pending"}), "running"),
    "success": (frozenset({"created", "pending", "running"}), "success"),
    "drop": (frozenset({"created", "pending", "running"}), "failed"),
    "cancel": (frozenset({"created", "pending", "running"}), "canceled"),
}
_EVENTS_FOR_STATE: Final = {
    "pending": ("enqueue",),
    "running": ("enqueue?", "run"),  # "?": GitLab's non-raising ``status.enqueue``
    "success": ("success",),
    "failed": ("drop",),
    "canceled": ("cancel",),
}


@dataclass(frozen=True)
class RecordedCall:
    """One request as the stand-in saw it; the token is reduced to whether it was right."""

    method: str
    path: str
    """The path as sent (still URL-encoded), without the query string."""
    params: dict[str, Any]
    """Query and body parameters merged, body last."""
    credential: Credential
    """``"valid"``, ``"invalid"`` or None when no token was sent."""
    status: int


class GitLabStandIn(LoopbackStandIn):
    """A recording fake of GitLab's commit-status API on ``127.0.0.1``; use with ``with``.

    ``projects`` maps project paths to ids (``{"acme/widget": 17}``); the API base URL for
    python-gitlab is :attr:`url`. Inspect :attr:`statuses` and :attr:`calls` under :attr:`lock`,
    or through :meth:`calls_to` and :meth:`states`, which copy under the lock.
    """

    def __init__(self, projects: dict[str, int] | None = None, *, token: str | None = None) -> None:
        self.projects = dict(projects or {"acme/widget-service": 17})
        self.token = token
        self.lock = threading.RLock()
        self.calls: list[RecordedCall] = []
        self.statuses: list[JsonObject] = []
        """Every commit status in creation order, as the API presents it, plus ``project_id``."""
        self.user: JsonObject = {"id": 1, "username": "tekton-bot", "name": "Tekton", "state": "active"}
        """The token's user: the author of its statuses and notes."""
        self.merge_requests: dict[tuple[int, int], JsonObject] = {}
        """(project id, iid) -> the merge request, with its ``notes`` (oldest first)."""
        self._faults = FaultQueue()
        self._ids = itertools.count(1001)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the instance base URL, as ``GITLAB_URL`` takes it."""
        return self.origin

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests matching ``method`` and the ``fnmatch`` ``path``
        (over the encoded path, e.g. ``"/api/v4/projects/*/statuses/*"``) with ``status``."""
        answer = body if body is not None else {"message": f"{status} stand-in fault"}
        with self.lock:
            self._faults.add(Fault(status, count, dict(headers or {}), answer, method, path))

    def echo_credentials_next(
        self,
        status: int = 502,
        *,
        count: int = 1,
        method: str | None = None,
        path: str | None = None,
        as_json: bool = False,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` and a body repeating the
        request's ``PRIVATE-TOKEN``, ``JOB-TOKEN`` and ``Authorization`` headers verbatim, as a
        misbehaving proxy does. Plain text by default; ``as_json`` gives ``{"message": ...}``.
        ``method`` and ``path`` match as in :meth:`fail_next`; both kinds queue together."""
        with self.lock:
            self._faults.add(Fault(status, count, {}, None, method, path, echo=True, as_json=as_json))

    def calls_to(self, method: str | None = None, path: str | None = None) -> list[RecordedCall]:
        with self.lock:
            return matching(self.calls, method, path)

    def add_merge_request(self, project: str, iid: int, sha: str) -> None:
        """A merge request whose head is ``sha`` (call again to move its head, as a push does)."""
        with self.lock:
            found = self._project(project)
            assert found is not None, f"unknown project {project}"
            kept = self.merge_requests.get((found[0], iid), {}).get("notes", [])
            self.merge_requests[(found[0], iid)] = {
                "iid": iid,
                "project_id": found[0],
                "sha": sha,
                "notes": kept,
            }

    def add_note(self, project: str, iid: int, body: str, *, username: str = "someone") -> int:
        """A note written on a merge request by another user; its id."""
        with self.lock:
            found = self._project(project)
            assert found is not None, f"unknown project {project}"
            author = {"id": 2 + len(username), "username": username, "name": username, "state": "active"}
            return int(self._new_note(self.merge_requests[(found[0], iid)], body, author)["id"])

    def notes(self, project: str, iid: int) -> list[JsonObject]:
        """Copies of a merge request's notes, oldest first."""
        with self.lock:
            found = self._project(project)
            assert found is not None, f"unknown project {project}"
            return [dict(note) for note in self.merge_requests[(found[0], iid)]["notes"]]

    def states(self, name: str | None = None) -> list[str]:
        """The state each post left its status in, in order (one entry per accepted post)."""
        with self.lock:
            return [
                call.params["state"]
                for call in self.calls
                if call.method == "POST"
                and call.status == 201
                and (name is None or call.params.get("name", call.params.get("context")) == name)
            ]

    # -- handling --------------------------------------------------------------------------------

    methods = ("GET", "POST", "PUT")
    json_type = "application/json"

    def serve(self, request: Request) -> Reply:
        params: dict[str, Any] = request.query
        if request.body:
            if "json" in (request.headers.get("Content-Type") or ""):
                body = request.json()
                params.update(body if isinstance(body, dict) else {})
            else:
                params.update(
                    {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
                )
        bearer = (request.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        secret = request.headers.get("PRIVATE-TOKEN") or bearer or None
        credential: Credential = None
        if secret is not None:
            credential = "valid" if self.token in (None, secret) else "invalid"
        echo = request.echo("PRIVATE-TOKEN", "JOB-TOKEN", "Authorization")
        with self.lock:
            answer = self._answer(request.method, request.path, params, credential, echo)
            self.calls.append(RecordedCall(request.method, request.path, params, credential, answer.status))
        return answer

    def _answer(
        self, method: str, path: str, params: dict[str, Any], credential: Credential, echo: str
    ) -> Reply:
        fault = self._faults.take(method, path)
        if fault is not None and fault.echo:
            text = proxy_page(echo, fault.status)
            return Reply(fault.status, {"message": text} if fault.as_json else text + "\n")
        if fault is not None:
            return Reply(fault.status, fault.body, fault.headers)
        if credential != "valid":
            return Reply(401, {"message": "401 Unauthorized"})
        parts = [unquote(part) for part in path.split("/")]
        match parts:
            case ["", "api", "v4", "user"] if method == "GET":
                return Reply(200, dict(self.user))
            case ["", "api", "v4", "projects", project]:
                return self._project_answer(method, project)
            case ["", "api", "v4", "projects", project, "statuses", sha] if method == "POST":
                return self._post_status(project, sha, params)
            case ["", "api", "v4", "projects", project, "repository", "commits", sha, "statuses"]:
                return self._list_statuses(method, project, sha, params)
            case ["", "api", "v4", "projects", project, "merge_requests", iid, *rest]:
                return self._merge_request_answer(method, project, iid, rest, params, path)
        return Reply(404, {"error": "404 Not Found"})

    def _merge_request_answer(  # noqa: PLR0917 -- private; the route's parts
        self, method: str, key: str, iid: str, rest: list[str], params: dict[str, Any], path: str
    ) -> Reply:
        project = self._project(key)
        merge_request = self.merge_requests.get((project[0], int(iid))) if project and iid.isdigit() else None
        if merge_request is None:
            return Reply(404, {"message": "404 Not found"})
        match rest, method:
            case [], "GET":
                public = {k: v for k, v in merge_request.items() if k != "notes"}
                return Reply(200, {**public, "id": 9000 + int(iid), "state": "opened"})
            case ["notes"], "GET":
                return self._page(merge_request["notes"], params, path)
            case ["notes"], "POST":
                text = params.get("body")
                if not isinstance(text, str) or not text or len(text) > MAX_NOTE:
                    return Reply(400, {"message": {"note": ["is too long or missing"]}})
                return Reply(201, self._new_note(merge_request, text, dict(self.user)))
            case ["notes", note_id], "PUT":
                note = next((n for n in merge_request["notes"] if str(n["id"]) == note_id), None)
                if note is None:
                    return Reply(404, {"message": "404 Note Not Found"})
                if note["author"]["id"] != self.user["id"]:
                    return Reply(403, {"message": "403 Forbidden"})
                text = params.get("body")
                if not isinstance(text, str) or not text or len(text) > MAX_NOTE:
                    return Reply(400, {"message": {"note": ["is too long or missing"]}})
                note.update(body=text, updated_at=_now())
                return Reply(200, dict(note))
        return Reply(404, {"error": "404 Not Found"})

    def _new_note(self, merge_request: JsonObject, body: str, author: JsonObject) -> JsonObject:
        now = _now()
        note: JsonObject = {
            "id": next(self._ids),
            "type": None,
            "body": body,
            "author": author,
            "created_at": now,
            "updated_at": now,
            "system": False,
            "noteable_id": 9000 + merge_request["iid"],
            "noteable_type": "MergeRequest",
            "noteable_iid": merge_request["iid"],
            "project_id": merge_request["project_id"],
        }
        merge_request["notes"].append(note)
        return note

    def _page(self, items: list[JsonObject], params: dict[str, Any], path: str) -> Reply:
        ordered = list(reversed(items)) if params.get("sort", "desc") == "desc" else list(items)
        per_page = min(max(int(params.get("per_page") or 20), 1), 100)
        page = max(int(params.get("page") or 1), 1)
        chosen = [dict(item) for item in ordered[(page - 1) * per_page : page * per_page]]
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(items))}
        if page * per_page < len(items):
            query = urlencode({**params, "page": page + 1})
            headers["Link"] = f'<{self.url}{path}?{query}>; rel="next"'
            headers["X-Next-Page"] = str(page + 1)
        return Reply(200, chosen, headers)

    def _project(self, key: str) -> tuple[int, str] | None:
        for path, number in self.projects.items():
            if key in (path, str(number)):
                return number, path
        return None

    def _project_answer(self, method: str, key: str) -> Reply:
        project = self._project(key)
        if method != "GET" or project is None:
            return Reply(404, {"message": "404 Project Not Found"})
        number, path = project
        return Reply(200, {"id": number, "path_with_namespace": path, "name": path.rsplit("/", 1)[-1]})

    def _post_status(self, key: str, sha: str, params: dict[str, Any]) -> Reply:
        project = self._project(key)
        if project is None:
            return Reply(404, {"message": "404 Project Not Found"})
        if not _SHA.match(sha):
            return Reply(404, {"message": "404 Commit Not Found"})
        state = params.get("state")
        if state not in STATES:
            return Reply(400, {"error": "state does not have a valid value"})
        too_long = {
            key: ["is too long (maximum is 255 characters)"]
            for key in ("name", "context", "target_url", "description")
            if len(str(params.get(key) or "")) > MAX_FIELD
        }
        if too_long:
            return Reply(400, {"message": too_long})
        name = str(params.get("name") or params.get("context") or "default")
        ref = str(params.get("ref") or "main")
        status = next(
            (
                s
                for s in reversed(self.statuses)
                if (s["project_id"], s["sha"], s["name"], s["ref"]) == (project[0], sha, name, ref)
                and s["status"] in ("pending", "running")
            ),
            None,
        )
        fresh = status is None
        current = "created" if status is None else str(status["status"])
        for event in _EVENTS_FOR_STATE[state]:
            sources, target = _EVENTS[event.rstrip("?")]
            if current in sources:
                current = target
            elif not event.endswith("?"):
                message = (
                    f"Cannot transition status via :{event} from :{current} "
                    f'(Reason(s): Status cannot transition via "{event}")'
                )
                return Reply(400, {"message": message})
        now = _now()
        if status is None:
            status = {
                "id": next(self._ids),
                "project_id": project[0],
                "sha": sha,
                "ref": ref,
                "name": name,
                "created_at": now,
                "started_at": None,
                "finished_at": None,
                "allow_failure": False,
                "coverage": None,
                "author": {"id": 1, "username": "tekton-bot", "name": "Tekton", "state": "active"},
            }
        status.update(
            {key: params[key] for key in ("target_url", "description") if params.get(key) is not None}
        )
        status.setdefault("target_url", None)
        status.setdefault("description", None)
        status["status"] = current
        if current == "running" and status["started_at"] is None:
            status["started_at"] = now
        if current in ("success", "failed", "canceled"):
            status["finished_at"] = now
        if fresh:
            self.statuses.append(status)
        return Reply(201, _public(status))

    def _list_statuses(self, method: str, key: str, sha: str, params: dict[str, Any]) -> Reply:
        project = self._project(key)
        if method != "GET" or project is None:
            return Reply(404, {"message": "404 Project Not Found"})
        chosen = [
            s
            for s in self.statuses
            if (s["project_id"], s["sha"]) == (project[0], sha)
            and params.get("name") in (None, s["name"])
            and params.get("ref") in (None, s["ref"])
        ]
        if str(params.get("all", "")).lower() not in ("true", "1"):
            latest = {s["name"]: s for s in chosen}
            chosen = list(latest.values())
        return Reply(200, [_public(s) for s in chosen])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _public(status: JsonObject) -> JsonObject:
    return {key: value for key, value in status.items() if key != "project_id"}
