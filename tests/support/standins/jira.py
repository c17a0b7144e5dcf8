"""A loopback stand-in for the slice of Jira's REST API that the jira function uses, as Jira
Cloud (REST v3) or Jira Data Center (REST v2) serves it.

Owns: a stdlib HTTP server on 127.0.0.1 that keeps projects, issues, comments and a workflow in
memory, records every request (never the credential itself) and answers scripted faults.

Follows Jira's documented REST API and its server behaviour:

- ``GET /rest/api/{v}/myself``: the authenticated user; Cloud names users by ``accountId``,
  Data Center by ``key`` and ``name``.
- ``GET /rest/api/{v}/issue/{key}?fields=a,b``: the issue with the fields asked for. A moved
  issue still answers to its old key, with its new key and project, as Jira does.
- ``POST /rest/api/{v}/issue`` with ``{"fields": {project, summary, issuetype, labels,
  description}}``: 201 ``{"id", "key", "self"}``; 400 with ``errors`` per field otherwise.
- ``GET /rest/api/{v}/issue/{key}/comment?startAt&maxResults&orderBy``: a page of comments
  (``orderBy`` ``created``, ``+created`` or ``-created``; at most 100 per page on Cloud),
  ``{"startAt", "maxResults", "total", "comments"}``. ``POST`` adds one (201), ``GET``/``PUT``
  ``.../comment/{id}`` read and edit one of *that* issue's comments (404 for any other id).
- ``GET /rest/api/{v}/issue/{key}/transitions``: the transitions available from the issue's
  status, each with ``to`` (the status, with its ``statusCategory``); ``POST`` with
  ``{"transition": {"id"}}`` moves it (204), 400 for a transition not available.
- Search: Cloud serves ``/rest/api/3/search/jql`` (GET or POST; ``jql``, ``fields``,
  ``maxResults``, ``nextPageToken``; ``{"issues", "isLast"}``) and answers the removed
  ``/rest/api/{2,3}/search`` with 410; Data Center serves ``/rest/api/2/search`` (``jql``,
  ``startAt``, ``maxResults``, ``fields``; ``{"startAt", "maxResults", "total", "issues"}``).
  JQL: clauses ``field = value`` / ``field != value`` joined by ``AND`` over ``project``,
  ``labels``, ``creator``, ``reporter``, ``status`` and ``statusCategory`` (``currentUser()``
  works), then ``ORDER BY created ASC|DESC``; anything else is 400, and Cloud refuses an
  unbounded query.
- Bodies: on Cloud, descriptions and comment bodies must be Atlassian Document Format (a
  ``doc`` of known nodes, no empty text node, the ``code`` mark combined with nothing but
  ``link``), on Data Center strings (wiki markup); longer than 32,767 characters is refused.
- Errors are ``{"errorMessages": [...], "errors": {...}}``; a missing or wrong credential
  gets 401. Cloud takes HTTP Basic (email and API token); Data Center also Bearer personal
  access tokens. The API version of the other edition is 404.

Scripted answers: :meth:`JiraStandIn.fail_next` (any status, headers, body; e.g. 429 with
``Retry-After`` and ``X-RateLimit-Reset``) and :meth:`JiraStandIn.echo_credentials_next` (a
proxy's error page that repeats the request's ``Authorization`` header).

Does not: persist anything, check permissions beyond the credential (the account may edit any
comment, as one with "Edit all comments" may), or lag behind writes in search.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import unquote

from tests.support.standins.loopback import Fault, FaultQueue, LoopbackStandIn, Reply, Request, matching

__all__ = ["BOT", "PERSON", "JiraStandIn", "RecordedCall", "validate_adf"]

JsonObject = dict[str, Any]
Edition = Literal["cloud", "datacenter"]

BOT: Final = "bot"
"""The function's own account (the one the credentials are for)."""
PERSON: Final = "person"
"""Someone else, who may comment on issues and open them."""
MAX_TEXT: Final = 32_767
STATUSES: Final[dict[str, tuple[str, str]]] = {
    "To Do": ("10000", "new"),
    "In Progress": ("3", "indeterminate"),
    "Done": ("10001", "done"),
    "Resolved": ("5", "done"),
}
CATEGORIES: Final[dict[str, JsonObject]] = {
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "indeterminate": {"id": 4, "key": "indeterminate", "colorName": "yellow", "name": "In Progress"},
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
}
TRANSITIONS: Final[tuple[tuple[str, str, frozenset[str], str], ...]] = (
    ("21", "Start Progress", frozenset({"To Do"}), "In Progress"),
    ("31", "Done", frozenset({"To Do", "In Progress"}), "Done"),
    ("41", "Resolve Issue", frozenset({"To Do", "In Progress"}), "Resolved"),
    ("51", "Reopen", frozenset({"Done", "Resolved"}), "To Do"),
)
"""(id, name, from, to): a small workflow with a transition named after its status (Done) and
one that is not (Resolve Issue leads to Resolved)."""
ISSUE_TYPES: Final = ("Bug", "Task", "Story")
REMOVED_SEARCH: Final = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full "
    "migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
TOO_LONG: Final = "The entered text is too long. It exceeds the allowed limit of 32,767 characters."
_ISSUE_KEY: Final = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)-([0-9]+)$")
_CLAUSE: Final = re.compile(
    r'^\s*(?P<field>[A-Za-z]+)\s*(?P<op>!=|=)\s*(?P<value>"[^"]*"|[A-Za-z0-9_-]+\(\)|[A-Za-z0-9_-]+)\s*$'
)
_ORDER: Final = re.compile(r"^\s*ORDER\s+BY\s+created(?:\s+(ASC|DESC))?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class RecordedCall:
    """One request as the stand-in saw it; the credential is reduced to its kind and validity."""

    method: str
    path: str
    """The path below the site, as sent (still URL-encoded), without the query string."""
    query: dict[str, str]
    body: Any
    """The parsed JSON body, or ``None``."""
    auth: Literal["basic", "bearer"] | None
    valid: bool
    status: int


def _errors(*messages: str, **errors: str) -> JsonObject:
    return {"errorMessages": list(messages), "errors": dict(errors)}


class JiraStandIn(LoopbackStandIn):
    """A recording fake of Jira Cloud or Data Center on ``127.0.0.1``; use with ``with``.

    ``username`` with ``api_token`` are HTTP Basic credentials; ``personal_access_token`` a
    Bearer token (Data Center). ``context`` is a Data Center context path (``/jira``). Inspect
    state under :attr:`lock` or through the helpers, which copy under it.
    """

    def __init__(
        self,
        edition: Edition = "cloud",
        *,
        username: str = "tekton-bot@acme.example",
        api_token: str | None = None,
        personal_access_token: str | None = None,
        projects: tuple[str, ...] = ("WID", "OPS"),
        context: str = "",
    ) -> None:
        self.edition = edition
        self.version = "3" if edition == "cloud" else "2"
        self.username = username
        self.api_token = api_token
        self.personal_access_token = personal_access_token
        self.context = context.rstrip("/")
        self.projects = {key: str(10000 + number) for number, key in enumerate(projects)}
        self.lock = threading.RLock()
        self.calls: list[RecordedCall] = []
        self.issues: dict[str, JsonObject] = {}
        """Issues by their current key: fields kept raw, comments inside (``_comments``)."""
        self.moved: dict[str, str] = {}
        """Old key -> current key, for issues moved to another project."""
        self._faults = FaultQueue()
        self._ids = itertools.count(10001)
        self._numbers: dict[str, itertools.count[int]] = {key: itertools.count(1) for key in self.projects}
        self._clock = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)

    @property
    def url(self) -> str:
        """The site's base URL, as ``JIRA_URL`` takes it."""
        return self.origin + self.context

    @property
    def api(self) -> str:
        """The path prefix of this edition's REST API, e.g. ``/rest/api/3``."""
        return f"{self.context}/rest/api/{self.version}"

    # -- scripting and inspection ----------------------------------------------------------------

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
        (below the site, e.g. ``"/rest/api/3/issue/*/comment"``) with ``status``."""
        answer = body if body is not None else _errors(f"stand-in fault {status}")
        with self.lock:
            self._faults.add(Fault(status, count, dict(headers or {}), answer, method, path))

    def echo_credentials_next(
        self, status: int = 502, *, count: int = 1, method: str | None = None, path: str | None = None
    ) -> None:
        """Answer the next matching requests with ``status`` and a plain-text body that repeats the
        request's ``Authorization`` header verbatim, as a misbehaving proxy does."""
        with self.lock:
            self._faults.add(Fault(status, count, {}, None, method, path, echo=True))

    def calls_to(self, method: str | None = None, path: str | None = None) -> list[RecordedCall]:
        """Recorded calls; ``path`` is an ``fnmatch`` pattern below the site (``/rest/api/3/issue/*``)."""
        with self.lock:
            return matching(self.calls, method, path)

    def writes(self) -> list[RecordedCall]:
        """Every accepted request that changed something."""
        with self.lock:
            return [
                call
                for call in self.calls
                if call.method in ("POST", "PUT")
                and call.status < 300
                and not call.path.endswith(("/search", "/search/jql"))
            ]

    def add_issue(
        self,
        project: str,
        summary: str = "Something to do",
        *,
        creator: str = PERSON,
        labels: tuple[str, ...] = (),
        status: str = "To Do",
        description: Any = None,
    ) -> str:
        """Open an issue as ``creator`` would in the UI; its key."""
        with self.lock:
            return self._create(
                project,
                summary=summary,
                kind="Task",
                labels=list(labels),
                description=description,
                creator=creator,
                status=status,
            )

    def add_comment(self, key: str, body: Any, *, author: str = PERSON) -> str:
        """Comment on an issue as ``author``; the comment's id."""
        with self.lock:
            return str(self._new_comment(self._issue(key), body, author)["id"])

    def move_issue(self, key: str, project: str) -> str:
        """Move an issue to another project, as Jira's Move does: a new key, the old one still answers."""
        with self.lock:
            issue = self.issues.pop(key)
            new = f"{project}-{next(self._numbers[project])}"
            issue["key"], issue["project"] = new, project
            self.issues[new] = issue
            self.moved[key] = new
            return new

    def issue(self, key: str) -> JsonObject:
        """A copy of an issue's raw state: ``summary``, ``labels``, ``status``, ``description``, ..."""
        with self.lock:
            return json.loads(json.dumps(self._issue(key)))

    def comments(self, key: str) -> list[JsonObject]:
        """Copies of an issue's comments, oldest first: ``id``, ``author`` (``bot``/``person``), ``body``."""
        with self.lock:
            return json.loads(json.dumps(self._issue(key)["_comments"]))

    def opened_by_bot(self) -> list[str]:
        with self.lock:
            return [key for key, issue in self.issues.items() if issue["creator"] == BOT]

    # -- the model, under the lock ---------------------------------------------------------------

    def _now(self) -> str:
        self._clock += timedelta(seconds=1)
        offset = "+0000"
        return self._clock.strftime("%Y-%m-%dT%H:%M:%S.000") + offset

    def _issue(self, key: str) -> JsonObject:
        key = key.upper()
        return self.issues[self.moved.get(key, key)]

    def _find(self, key: str) -> JsonObject | None:
        key = unquote(key).upper()
        while key in self.moved:
            key = self.moved[key]
        return self.issues.get(key)

    def _create(
        self,
        project: str,
        *,
        summary: str,
        kind: str,
        labels: list[str],
        description: Any,
        creator: str,
        status: str,
    ) -> str:
        key = f"{project}-{next(self._numbers[project])}"
        self.issues[key] = {
            "id": str(next(self._ids)),
            "key": key,
            "project": project,
            "summary": summary,
            "issuetype": kind,
            "labels": labels,
            "description": description,
            "status": status,
            "creator": creator,
            "created": self._now(),
            "_comments": [],
        }
        return key

    def _new_comment(self, issue: JsonObject, body: Any, author: str) -> JsonObject:
        now = self._now()
        comment = {"id": str(next(self._ids)), "author": author, "body": body, "created": now, "updated": now}
        issue["_comments"].append(comment)
        return comment

    def _user(self, who: str) -> JsonObject:
        if self.edition == "cloud":
            account = {BOT: "5b10ac8d82e05b22cc7d4ef5", PERSON: "5b10a2844c20165700ede21g"}[who]
            name = {BOT: "Tekton", PERSON: "Alex Doe"}[who]
            return {"accountId": account, "accountType": "atlassian", "displayName": name, "active": True}
        key = {BOT: "JIRAUSER10100", PERSON: "JIRAUSER10200"}[who]
        name = {BOT: "tekton-bot", PERSON: "adoe"}[who]
        return {"key": key, "name": name, "displayName": name, "active": True}

    def _status(self, name: str) -> JsonObject:
        status_id, category = STATUSES[name]
        return {"id": status_id, "name": name, "statusCategory": CATEGORIES[category]}

    def _fields(self, issue: JsonObject, wanted: list[str] | None) -> JsonObject:
        every: JsonObject = {
            "project": {
                "id": self.projects[issue["project"]],
                "key": issue["project"],
                "name": issue["project"],
            },
            "summary": issue["summary"],
            "issuetype": {"name": issue["issuetype"]},
            "labels": list(issue["labels"]),
            "description": issue["description"],
            "status": self._status(issue["status"]),
            "creator": self._user(issue["creator"]),
            "reporter": self._user(issue["creator"]),
            "created": issue["created"],
        }
        if wanted is None or "*all" in wanted or "*navigable" in wanted:
            return every
        return {name: every[name] for name in wanted if name in every}

    def _public_issue(self, issue: JsonObject, wanted: list[str] | None) -> JsonObject:
        return {
            "id": issue["id"],
            "key": issue["key"],
            "self": f"{self.url}/rest/api/{self.version}/issue/{issue['id']}",
            "fields": self._fields(issue, wanted),
        }

    def _public_comment(self, issue: JsonObject, comment: JsonObject) -> JsonObject:
        return {
            "self": f"{self.url}/rest/api/{self.version}/issue/{issue['id']}/comment/{comment['id']}",
            "id": comment["id"],
            "author": self._user(comment["author"]),
            "updateAuthor": self._user(str(comment.get("editor", comment["author"]))),
            "body": comment["body"],
            "created": comment["created"],
            "updated": comment["updated"],
        }

    # -- answering ---------------------------------------------------------------------------------

    methods = ("GET", "POST", "PUT")
    json_type = "application/json;charset=UTF-8"

    def serve(self, request: Request) -> Reply:
        query, body = request.query, request.json()
        header = request.headers.get("Authorization") or ""
        with self.lock:
            auth, valid = self._credential(header) if header else (None, False)
            echo = f"Authorization: {header}" if header else "(no Authorization)"
            answer = self._answer(
                request.method, request.path, query=query, body=body, valid=valid, echo=echo
            )
            self.calls.append(
                RecordedCall(request.method, request.path, query, body, auth, valid, answer.status)
            )
        return answer

    def _answer(
        self, method: str, path: str, *, query: dict[str, str], body: Any, valid: bool, echo: str
    ) -> Reply:
        refused = self._gate(method, path, valid, echo)
        if refused is not None:
            return refused
        rest = path[len(self.context) :]
        parts = [unquote(part) for part in rest.split("/")[4:]]
        match parts:
            case ["myself"] if method == "GET":
                return Reply(200, self._user(BOT))
            case ["search", "jql"] if self.edition == "cloud" and method in ("GET", "POST"):
                return self._search(query if method == "GET" else body)
            case ["search"] if self.edition == "datacenter" and method in ("GET", "POST"):
                return self._search(query if method == "GET" else body)
            case ["issue"] if method == "POST":
                return self._create_answer(body)
            case ["issue", key] if method == "GET":
                return self._issue_answer(key, query)
            case ["issue", key, "comment"]:
                return self._comments_answer(method, key, query, body)
            case ["issue", key, "comment", comment_id] if method in ("GET", "PUT"):
                return self._comment_answer(method, key, comment_id, body)
            case ["issue", key, "transitions"]:
                return self._transitions_answer(method, key, body)
        return Reply(404, _errors("null for uri: " + path))

    def _gate(self, method: str, path: str, valid: bool, echo: str) -> Reply | None:
        """A scripted fault, a path outside this edition's API, or a missing credential's answer."""
        fault = self._faults.take(method, path)
        if fault is not None and fault.echo:
            return Reply(fault.status, f"Bad gateway. Your request: {echo}\n")
        if fault is not None:
            return Reply(fault.status, fault.body, fault.headers)
        rest = path[len(self.context) :] if path.startswith(f"{self.context}/rest/api/") else ""
        if self.edition == "cloud" and rest in ("/rest/api/2/search", "/rest/api/3/search"):
            return Reply(410, _errors(REMOVED_SEARCH))
        if not rest.startswith(f"/rest/api/{self.version}/"):
            return Reply(404, _errors("null for uri: " + path))
        if not valid:
            return Reply(
                401, _errors("You are not authenticated. Authentication required to perform this operation.")
            )
        return None

    def _missing_issue(self) -> Reply:
        if self.edition == "cloud":
            return Reply(404, _errors("Issue does not exist or you do not have permission to see it."))
        return Reply(404, _errors("Issue Does Not Exist"))

    def _issue_answer(self, key: str, query: dict[str, str]) -> Reply:
        issue = self._find(key)
        if issue is None:
            return self._missing_issue()
        wanted = [name.strip() for name in query["fields"].split(",")] if query.get("fields") else None
        return Reply(200, self._public_issue(issue, wanted))

    def _text_error(self, value: Any, name: str) -> str | None:
        """Why a description or comment body is refused on this edition, or ``None``."""
        if self.edition == "cloud":
            if not isinstance(value, dict):
                return "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
            problem = validate_adf(value)
            if problem:
                return f"INVALID_INPUT: {problem}"
            size = len(json.dumps(value, ensure_ascii=False))
        else:
            if not isinstance(value, str):
                return f"Operation value must be a string: {name}"
            size = len(value)
        return TOO_LONG if size > MAX_TEXT else None

    def _create_answer(self, body: Any) -> Reply:
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return Reply(400, _errors("Can not deserialize instance of fields"))
        errors: dict[str, str] = {}
        project = (fields.get("project") or {}).get("key")
        if project not in self.projects:
            errors["project"] = "valid project is required"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255:
            errors["summary"] = "Summary must be less than 255 characters."
        kind = (fields.get("issuetype") or {}).get("name")
        if kind not in ISSUE_TYPES:
            errors["issuetype"] = "Specify a valid issue type"
        labels = fields.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            errors["labels"] = "Field 'labels' must be an array of strings."
        elif bad := [label for label in labels if " " in label or len(label) > 255]:
            errors["labels"] = f"The label '{bad[0]}' contains spaces which is invalid."
        description = fields.get("description")
        if description is not None and (problem := self._text_error(description, "description")):
            errors["description"] = problem
        if errors:
            return Reply(400, _errors(**errors))
        key = self._create(
            str(project),
            summary=str(summary),
            kind=str(kind),
            labels=list(labels),
            description=description,
            creator=BOT,
            status="To Do",
        )
        issue = self.issues[key]
        return Reply(
            201,
            {
                "id": issue["id"],
                "key": key,
                "self": f"{self.url}/rest/api/{self.version}/issue/{issue['id']}",
            },
        )

    def _comments_answer(self, method: str, key: str, query: dict[str, str], body: Any) -> Reply:
        issue = self._find(key)
        if issue is None:
            return self._missing_issue()
        if method == "POST":
            text = body.get("body") if isinstance(body, dict) else None
            if text is None or text == "":
                return Reply(400, _errors(comment="Comment body can not be empty!"))
            if problem := self._text_error(text, "body"):
                return Reply(400, _errors(comment=problem))
            return Reply(201, self._public_comment(issue, self._new_comment(issue, text, BOT)))
        if method != "GET":
            return Reply(405, _errors("Method Not Allowed"))
        order = query.get("orderBy", "created").strip()
        if order not in ("created", "+created", "-created"):
            return Reply(400, _errors(f"Invalid orderBy: {order}"))
        comments = sorted(issue["_comments"], key=lambda c: int(c["id"]), reverse=order == "-created")
        start = int(query.get("startAt", "0") or 0)
        limit = int(query.get("maxResults", "100") or 100)
        if self.edition == "cloud":
            limit = min(limit, 100)
        page = comments[start : start + limit]
        return Reply(
            200,
            {
                "startAt": start,
                "maxResults": limit,
                "total": len(comments),
                "comments": [self._public_comment(issue, c) for c in page],
            },
        )

    def _comment_answer(self, method: str, key: str, comment_id: str, body: Any) -> Reply:
        issue = self._find(key)
        if issue is None:
            return self._missing_issue()
        comment = next((c for c in issue["_comments"] if c["id"] == comment_id), None)
        if comment is None:
            return Reply(404, _errors(f"Can not find a comment for the id: {comment_id}."))
        if method == "PUT":
            text = body.get("body") if isinstance(body, dict) else None
            if text is None or text == "":
                return Reply(400, _errors(comment="Comment body can not be empty!"))
            if problem := self._text_error(text, "body"):
                return Reply(400, _errors(comment=problem))
            comment["body"], comment["updated"], comment["editor"] = text, self._now(), BOT
        return Reply(200, self._public_comment(issue, comment))

    def _available(self, issue: JsonObject) -> list[tuple[str, str, frozenset[str], str]]:
        return [t for t in TRANSITIONS if issue["status"] in t[2]]

    def _transitions_answer(self, method: str, key: str, body: Any) -> Reply:
        issue = self._find(key)
        if issue is None:
            return self._missing_issue()
        available = self._available(issue)
        if method == "GET":
            shown = [
                {
                    "id": tid,
                    "name": name,
                    "to": self._status(target),
                    "hasScreen": False,
                    "isGlobal": False,
                    "isInitial": False,
                    "isAvailable": True,
                    "isConditional": False,
                    "isLooped": False,
                }
                for tid, name, _, target in available
            ]
            return Reply(200, {"expand": "transitions", "transitions": shown})
        if method != "POST":
            return Reply(405, _errors("Method Not Allowed"))
        wanted = str(((body or {}).get("transition") or {}).get("id", ""))
        chosen = next((t for t in available if t[0] == wanted), None)
        if chosen is None:
            return Reply(400, _errors(f"Transition id '{wanted}' is not valid for this issue."))
        issue["status"] = chosen[3]
        return Reply(204)

    def _search(self, params: Any) -> Reply:
        params = params if isinstance(params, dict) else {}
        jql = str(params.get("jql") or "").strip()
        fields = params.get("fields")
        if isinstance(fields, str):
            fields = [name.strip() for name in fields.split(",")]
        limit = int(params.get("maxResults") or 50)
        try:
            matches = self._jql(jql)
        except ValueError as e:
            return Reply(400, {**_errors(str(e)), "warningMessages": []})
        if self.edition == "cloud":
            wanted = fields if isinstance(fields, list) else ["id"]
            page = matches[:limit]
            return Reply(
                200,
                {"issues": [self._public_issue(i, wanted) for i in page], "isLast": len(matches) <= limit},
            )
        start = int(params.get("startAt") or 0)
        page = matches[start : start + limit]
        wanted = fields if isinstance(fields, list) else ["*navigable"]
        return Reply(
            200,
            {
                "expand": "names,schema",
                "startAt": start,
                "maxResults": limit,
                "total": len(matches),
                "issues": [self._public_issue(i, wanted) for i in page],
            },
        )

    def _jql(self, jql: str) -> list[JsonObject]:
        pieces = re.split(r"\s+ORDER\s+BY\s+", f" {jql}", maxsplit=1, flags=re.IGNORECASE)
        where, order = pieces[0], pieces[1] if len(pieces) > 1 else ""
        descending = False
        if order:
            matched = _ORDER.match(f"ORDER BY {order}")
            if not matched:
                raise ValueError(f"Error in the JQL Query: unsupported ORDER BY {order!r}")
            descending = (matched.group(1) or "ASC").upper() == "DESC"
        clauses = [part for part in re.split(r"\s+AND\s+", where, flags=re.IGNORECASE) if part.strip()]
        if not clauses and self.edition == "cloud":
            raise ValueError(
                "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
            )
        tests = [self._clause(clause) for clause in clauses]
        found = [issue for issue in self.issues.values() if all(test(issue) for test in tests)]
        found.sort(key=lambda issue: int(issue["id"]), reverse=descending)
        return found

    def _clause(self, text: str) -> Any:
        matched = _CLAUSE.match(text)
        if not matched:
            raise ValueError(f"Error in the JQL Query: cannot read {text.strip()!r}")
        name, op, raw = matched.group("field"), matched.group("op"), matched.group("value")
        value = raw[1:-1] if raw.startswith('"') else raw
        getters = {
            "project": lambda i: [i["project"].lower()],
            "labels": lambda i: [label.lower() for label in i["labels"]],
            "creator": lambda i: [i["creator"]],
            "reporter": lambda i: [i["creator"]],
            "status": lambda i: [i["status"].lower()],
            "statuscategory": lambda i: [CATEGORIES[STATUSES[i["status"]][1]]["name"].lower()],
        }
        getter = getters.get(name.lower())
        if getter is None:
            raise ValueError(f"Field '{name}' does not exist or you do not have permission to view it.")
        wanted = BOT if value == "currentUser()" else value.lower()
        if name.lower() in ("creator", "reporter") and value != "currentUser()":
            wanted = next((who for who in (BOT, PERSON) if value in self._user(who).values()), value)
        if op == "=":
            return lambda issue: wanted in getter(issue)
        return lambda issue: wanted not in getter(issue)

    def _credential(self, header: str) -> tuple[Literal["basic", "bearer"] | None, bool]:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, secret = base64.b64decode(value.strip()).decode().partition(":")
            except ValueError:
                return "basic", False
            return "basic", self.api_token is not None and (user, secret) == (self.username, self.api_token)
        if scheme.lower() == "bearer":
            ok = self.edition == "datacenter" and self.personal_access_token is not None
            return "bearer", ok and value.strip() == self.personal_access_token
        return None, False


_ADF_BLOCKS: Final = frozenset(
    {"paragraph", "bulletList", "orderedList", "heading", "codeBlock", "rule", "blockquote"}
)
_ADF_INLINE: Final = frozenset({"text", "hardBreak", "status", "emoji", "mention", "inlineCard"})
_ADF_MARKS: Final = frozenset({"strong", "em", "code", "link", "strike", "underline", "textColor", "subsup"})
_STATUS_COLOURS: Final = frozenset({"neutral", "purple", "blue", "red", "yellow", "green"})


def validate_adf(doc: Any) -> str | None:
    """What is wrong with an Atlassian Document Format document, or ``None`` (a practical subset
    of the ADF schema: the nodes, marks and rules a comment or description may use)."""
    if not isinstance(doc, dict) or doc.get("type") != "doc" or doc.get("version") != 1:
        return "the document must be {type: doc, version: 1, content: [...]}"
    content = doc.get("content")
    if not isinstance(content, list):
        return "doc.content must be a list"
    for node in content:
        problem = _block(node)
        if problem:
            return problem
    return None


def _block(node: Any) -> str | None:
    if not isinstance(node, dict) or node.get("type") not in _ADF_BLOCKS:
        return f"unknown block node {node.get('type') if isinstance(node, dict) else node!r}"
    kind = node["type"]
    if kind in ("bulletList", "orderedList"):
        items = node.get("content")
        if not isinstance(items, list) or not items:
            return f"{kind} needs at least one listItem"
        for item in items:
            if not isinstance(item, dict) or item.get("type") != "listItem" or not item.get("content"):
                return "a list holds listItem nodes with content"
            for inner in item["content"]:
                if problem := _block(inner):
                    return problem
        return None
    if kind == "rule":
        return None
    for inline in node.get("content") or []:
        if problem := _inline(inline):
            return problem
    return None


def _inline(node: Any) -> str | None:
    if not isinstance(node, dict) or node.get("type") not in _ADF_INLINE:
        return f"unknown inline node {node.get('type') if isinstance(node, dict) else node!r}"
    if node["type"] == "status":
        attrs = node.get("attrs") or {}
        if not attrs.get("text") or attrs.get("color") not in _STATUS_COLOURS:
            return "status needs attrs.text and a known attrs.color"
    if node["type"] != "text":
        return None
    if not isinstance(node.get("text"), str) or not node["text"]:
        return "text nodes must not be empty"
    marks = node.get("marks") or []
    kinds = [mark.get("type") for mark in marks if isinstance(mark, dict)]
    if len(kinds) != len(marks) or any(kind not in _ADF_MARKS for kind in kinds):
        return f"unknown mark in {kinds}"
    if "code" in kinds and set(kinds) - {"code", "link"}:
        return "the code mark can only be combined with the link mark"
    for mark in marks:
        if mark["type"] == "link" and not isinstance((mark.get("attrs") or {}).get("href"), str):
            return "link marks need attrs.href"
    return None
