"""A loopback stand-in for the slice of Gerrit's REST API that the gerrit function uses.

Owns: a stdlib HTTP server on 127.0.0.1 that keeps accounts, changes, their change messages and
votes in memory, records every request (never the password itself) and answers scripted faults.

Follows Gerrit's documented REST API (Documentation/rest-api.txt, rest-api-changes.txt,
rest-api-accounts.txt) and the server's behaviour (``PostReview``, ``PostReviewOp``):

- Authenticated endpoints live under ``/a/`` and take HTTP basic authentication with the
  account's HTTP password; a missing or wrong one gets ``401 Unauthorized`` with
  ``WWW-Authenticate: Basic realm="Gerrit Code Review"``.
- Every JSON answer starts with the ``)]}'`` line that guards against XSSI; errors are plain text
  (``Not found: 4711``).
- ``GET /a/accounts/self``: the calling account (``AccountInfo``).
- ``GET /a/changes/{change-id}`` (``o=MESSAGES``, ``o=DETAILED_ACCOUNTS``, ``o=CURRENT_REVISION``,
  ``o=ALL_REVISIONS``), ``GET /a/changes/{change-id}/detail`` and ``/messages``. A change id is
  ``<project>~<number>`` (the project URL-encoded), ``<number>``, ``<project>~<branch>~<Change-Id>``
  or a ``Change-Id``; a change in another project than the id names is not found.
- ``POST /a/changes/{change-id}/revisions/{revision-id}/review`` with a ``ReviewInput``
  (``message``, ``labels``, ``tag``): answers ``ReviewResult`` (``labels``) and adds one change
  message ``Patch Set N: Verified+1\\n\\n<message>`` carrying the tag and the author. A revision
  id is ``current``, a patch set number, or a commit SHA-1 (a unique prefix of 4 or more).
  - A label the project does not define, or a value outside the label's values, is dropped from
    the review and from ``ReviewResult.labels`` (``change.strictLabels`` false, the default);
    with ``strict_labels`` it is refused with 400 ``label "X" is not a configured label``.
  - A value outside the account's permitted range is refused with 403
    ``Applying label "Verified": 1 is restricted`` (``restricted_status`` gives another status).
  - On a merged change, lowering a vote is refused with 409
    ``Cannot reduce vote on labels for closed change: Verified``.
  - A message longer than ``change.commentSizeLimit`` (16 KiB) is refused with 400
    ``Comment size exceeds limit (N > 16384)``.

Scripted answers: :meth:`GerritStandIn.fail_next` (any status, headers, body) and
:meth:`GerritStandIn.echo_credentials_next` (a proxy's error page repeating the request's
``Authorization`` header, for credential-leak tests), :meth:`GerritStandIn.answer_lost_next` (the
request acts, its answer is lost). ``ignore_project_in_id`` makes the server
resolve ``<project>~<number>`` by the number alone, as a misbehaving proxy rewriting ids would.

Does not: persist anything, send mail, or know about comments on files, reviewers or submit rules.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast
from urllib.parse import parse_qs, quote, unquote

from tests.support.standins.loopback import (
    Fault,
    FaultQueue,
    LoopbackStandIn,
    Reply,
    Request,
    matching,
    proxy_page,
)

__all__ = ["Account", "Change", "GerritStandIn", "RecordedCall", "Review"]

JsonObject = dict[str, Any]
Credential = Literal["valid", "invalid"] | None

XSSI: Final = ")]}'\n"
COMMENT_SIZE_LIMIT: Final = 16 << 10
DEFAULT_LABELS: Final = {"Verified": (-1, 1), "Code-Review": (-2, 2)}
_CHANGE_ID: Final = re.compile(r"^I[0-9a-f]{40}$")


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    password: str
    name: str

    def info(self) -> JsonObject:
        """``AccountInfo`` with ``DETAILED_ACCOUNTS``."""
        return {
            "_account_id": self.id,
            "name": self.name,
            "email": f"{self.username}@example.org",
            "username": self.username,
        }


@dataclass
class Change:
    number: int
    project: str
    branch: str
    change_id: str
    revisions: list[str]
    """Commit SHA-1 of each patch set, patch set 1 first."""
    status: Literal["NEW", "MERGED", "ABANDONED"] = "NEW"
    messages: list[JsonObject] = field(default_factory=list)
    votes: dict[tuple[int, str, int], int] = field(default_factory=dict)
    """(patch set, label, account id) -> value."""

    def info(self, options: set[str], messages: list[JsonObject]) -> JsonObject:
        current = self.revisions[-1]
        info: JsonObject = {
            "id": f"{quote(self.project, safe='')}~{self.number}",
            "project": self.project,
            "branch": self.branch,
            "change_id": self.change_id,
            "subject": f"Change {self.number}",
            "status": self.status,
            "created": "2026-03-14 09:58:00.000000000",
            "updated": messages[-1]["date"] if messages else "2026-03-14 09:58:00.000000000",
            "_number": self.number,
            "owner": {"_account_id": 1000001},
        }
        if options & {"CURRENT_REVISION", "ALL_REVISIONS"}:
            info["current_revision"] = current
            shown = self.revisions if "ALL_REVISIONS" in options else [current]
            info["revisions"] = {
                sha: {"_number": self.revisions.index(sha) + 1, "ref": self.ref(sha)} for sha in shown
            }
        if "MESSAGES" in options:
            info["messages"] = messages
        return info

    def ref(self, sha: str) -> str:
        return f"refs/changes/{self.number % 100:02d}/{self.number}/{self.revisions.index(sha) + 1}"


@dataclass(frozen=True)
class Review:
    """A review Gerrit applied: where, by whom, and its ``ReviewInput``."""

    change: int
    patch_set: int
    account: str
    body: JsonObject


@dataclass(frozen=True)
class RecordedCall:
    """One request as the stand-in saw it; the password is reduced to whether it was right."""

    method: str
    path: str
    """The path as sent (still URL-encoded), without the query string."""
    params: dict[str, list[str]]
    body: Any
    credential: Credential
    account: str | None
    """The user name the request authenticated as, when its credential was valid."""
    status: int


class GerritStandIn(LoopbackStandIn):
    """A recording fake of Gerrit's change and review endpoints on ``127.0.0.1``; use with ``with``.

    ``labels`` are the project's labels and their value ranges; ``permitted`` the ranges each
    account may vote (default: the whole label). Inspect :attr:`changes` and :attr:`calls` under
    :attr:`lock`, or through :meth:`calls_to`, :meth:`reviews` and :meth:`messages`, which copy
    under the lock.
    """

    def __init__(
        self,
        *,
        labels: dict[str, tuple[int, int]] | None = None,
        permitted: dict[str, tuple[int, int]] | None = None,
        restricted_status: int = 403,
        strict_labels: bool = False,
        comment_size_limit: int = COMMENT_SIZE_LIMIT,
        base_path: str = "",
    ) -> None:
        self.labels = dict(DEFAULT_LABELS if labels is None else labels)
        self.permitted = dict(self.labels if permitted is None else permitted)
        self.restricted_status = restricted_status
        self.strict_labels = strict_labels
        self.comment_size_limit = comment_size_limit
        self.base_path = base_path.rstrip("/")
        self.ignore_project_in_id = False
        self.lock = threading.RLock()
        self.calls: list[RecordedCall] = []
        self.accounts: dict[str, Account] = {}
        self.changes: list[Change] = []
        self.applied: list[Review] = []
        self._faults = FaultQueue()
        self._account_ids = itertools.count(1000042)
        self._message_ids = itertools.count(1)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT[/base]``: the server's canonical URL, as ``GERRIT_URL`` takes it."""
        return self.origin + self.base_path

    # -- the world -----------------------------------------------------------------------------

    def add_account(self, username: str, password: str, name: str = "") -> Account:
        with self.lock:
            account = Account(next(self._account_ids), username, password, name or username)
            self.accounts[username] = account
            return account

    def add_change(
        self, project: str, number: int, revisions: list[str], *, branch: str = "main", status: str = "NEW"
    ) -> Change:
        change_id = "I" + format(number, "x").rjust(40, "0")
        change = Change(number, project, branch, change_id, list(revisions), cast(Any, status))
        with self.lock:
            self.changes.append(change)
        return change

    def post_message(self, author: str, number: int, text: str, *, tag: str | None = None) -> None:
        """A change message by ``author`` (a user commenting), as ``POST .../review`` would add it."""
        with self.lock:
            change = next(change for change in self.changes if change.number == number)
            self._add_message(change, self.accounts[author], len(change.revisions), text, tag)

    # -- scripting and inspection ------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        headers: dict[str, str] | None = None,
        body: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests matching ``method`` and the ``fnmatch`` ``path``
        (over the encoded path, e.g. ``"*/review"``) with ``status`` and a plain-text body."""
        text = body if body is not None else f"{status} stand-in fault\n"
        with self.lock:
            self._faults.add(Fault(status, count, dict(headers or {}), text, method, path))

    def answer_lost_next(
        self, status: int = 502, *, method: str | None = "POST", path: str | None = "*/review"
    ) -> None:
        """Let the next matching request act, then answer ``status`` instead of Gerrit's answer, as
        a proxy whose upstream timed out after Gerrit had done the work: the caller never learns."""
        with self.lock:
            self._faults.add(
                Fault(status, 1, {}, f"{status} upstream timed out\n", method, path, after_acting=True)
            )

    def echo_credentials_next(
        self, status: int = 502, *, count: int = 1, method: str | None = None, path: str | None = None
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` and a plain-text body that
        repeats the request's ``Authorization`` header verbatim, as a misbehaving proxy does."""
        with self.lock:
            self._faults.add(Fault(status, count, {}, "", method, path, echo=True))

    def calls_to(self, method: str | None = None, path: str | None = None) -> list[RecordedCall]:
        with self.lock:
            return matching(self.calls, method, path)

    def reviews(self) -> list[Review]:
        """The reviews Gerrit applied, in order (whether or not their answer reached the caller)."""
        with self.lock:
            return list(self.applied)

    def messages(self, number: int) -> list[JsonObject]:
        with self.lock:
            change = next(change for change in self.changes if change.number == number)
            return json.loads(json.dumps(change.messages))

    def vote(self, number: int, label: str, username: str, patch_set: int | None = None) -> int | None:
        """The account's vote on ``label`` of the change's patch set (default: the current one)."""
        with self.lock:
            change = next(change for change in self.changes if change.number == number)
            patch_set = patch_set or len(change.revisions)
            return change.votes.get((patch_set, label, self.accounts[username].id))

    # -- handling ----------------------------------------------------------------------------------

    methods = ("GET", "POST", "PUT")
    text_type = "text/plain;charset=UTF-8"

    def serve(self, request: Request) -> Reply:
        """Gerrit's answer; a JSON one goes after the XSSI line, as an attachment."""
        body = request.json(invalid=request.body.decode("utf-8", "replace"))
        params = parse_qs(request.query_string)
        echo = request.echo("Authorization")
        with self.lock:
            account, credential = _authenticate(self, request.headers.get("Authorization") or "")
            answer = self._answer(request.method, request.path, params, body, account, echo)
            username = account.username if account else None
            self.calls.append(
                RecordedCall(request.method, request.path, params, body, credential, username, answer.status)
            )
        if isinstance(answer.body, str):
            return answer
        return Reply(
            answer.status,
            XSSI + json.dumps(answer.body),
            {"Content-Disposition": "attachment", **answer.headers},
            content_type="application/json;charset=utf-8",
        )

    # -- answering, under the lock ---------------------------------------------------------------

    def _answer(  # noqa: PLR0917 -- the handler passes what it read
        self,
        method: str,
        path: str,
        params: dict[str, list[str]],
        body: Any,
        account: Account | None,
        echo: str,
    ) -> Reply:
        fault = self._faults.take(method, path)
        if fault is not None and fault.echo:
            return Reply(fault.status, proxy_page(echo, fault.status) + "\n")
        if fault is not None and not fault.after_acting:
            return Reply(fault.status, fault.body, fault.headers)
        answer = self._serve(method, path, params, body, account)
        return answer if fault is None else Reply(fault.status, fault.body, fault.headers)

    def _serve(
        self, method: str, path: str, params: dict[str, list[str]], body: Any, account: Account | None
    ) -> Reply:
        if self.base_path and not path.startswith(self.base_path + "/"):
            return Reply(404, "Not Found\n")
        parts = [unquote(part) for part in path[len(self.base_path) :].split("/")]
        if parts[:2] != ["", "a"]:
            return Reply(404, "Not found\n")  # anonymous: nothing is visible to it here
        if account is None:
            return Reply(401, "Unauthorized\n", {"WWW-Authenticate": 'Basic realm="Gerrit Code Review"'})
        options = {option.upper() for option in params.get("o", [])}
        match parts[2:]:
            case ["accounts", "self"] if method == "GET":
                return Reply(200, account.info())
            case ["changes", change_id] if method == "GET":
                return self._change_answer(change_id, options)
            case ["changes", change_id, "detail"] if method == "GET":
                return self._change_answer(change_id, options | {"MESSAGES", "DETAILED_ACCOUNTS"})
            case ["changes", change_id, "messages"] if method == "GET":
                change = self._find(change_id)
                return Reply(200, change.messages) if change else _not_found(change_id)
            case ["changes", change_id, "revisions", revision, "review"] if method == "POST":
                return self._review(change_id, revision, body, account)
        if method not in ("GET", "POST"):
            return Reply(405, "Method Not Allowed\n")
        return Reply(404, "Not Found\n")

    def _find(self, change_id: str) -> Change | None:
        """The change a ``{change-id}`` names, as Gerrit's ``ChangeFinder`` resolves it."""
        pieces = change_id.split("~")
        candidates: list[Change]
        if len(pieces) == 2 and pieces[1].isdigit():
            project, number = pieces[0], int(pieces[1])
            candidates = [
                c
                for c in self.changes
                if c.number == number and (self.ignore_project_in_id or c.project == project)
            ]
        elif len(pieces) == 1 and change_id.isdigit():
            candidates = [c for c in self.changes if c.number == int(change_id)]
        elif len(pieces) == 3 and _CHANGE_ID.match(pieces[2]):
            candidates = [c for c in self.changes if (c.project, c.branch, c.change_id) == tuple(pieces)]
        elif len(pieces) == 1 and _CHANGE_ID.match(change_id):
            candidates = [c for c in self.changes if c.change_id == change_id]
        else:
            return None
        return candidates[0] if len(candidates) == 1 else None

    def _change_answer(self, change_id: str, options: set[str]) -> Reply:
        change = self._find(change_id)
        if change is None:
            return _not_found(change_id)
        messages = change.messages
        if "DETAILED_ACCOUNTS" not in options:
            messages = [{**m, "author": {"_account_id": m["author"]["_account_id"]}} for m in messages]
        return Reply(200, change.info(options, messages))

    def _patch_set(self, change: Change, revision: str) -> int | None:
        if revision == "current":
            return len(change.revisions)
        if re.fullmatch(r"[1-9][0-9]{0,4}", revision):
            number = int(revision)
            return number if number <= len(change.revisions) else None
        if re.fullmatch(r"[0-9a-f]{4,40}", revision):
            found = [i + 1 for i, sha in enumerate(change.revisions) if sha.startswith(revision)]
            return found[0] if len(found) == 1 else None
        return None

    def _review(self, change_id: str, revision: str, body: Any, account: Account) -> Reply:
        change = self._find(change_id)
        if change is None:
            return _not_found(change_id)
        patch_set = self._patch_set(change, revision)
        if patch_set is None:
            return _not_found(revision)
        if not isinstance(body, dict):
            return Reply(400, "Invalid JSON in request\n")
        requested: dict[str, Any] = body.get("labels") or {}
        labels = self._checked_labels(requested)
        if isinstance(labels, Reply):
            return labels
        message = str(body.get("message") or "").strip()
        if len(message) > self.comment_size_limit:
            return Reply(400, f"Comment size exceeds limit ({len(message)} > {self.comment_size_limit})\n")
        if change.status == "MERGED":
            lowered = sorted(
                known
                for known, (_, value) in labels.items()
                if value < change.votes.get((patch_set, known, account.id), 0)
            )
            if lowered:
                return Reply(409, f"Cannot reduce vote on labels for closed change: {', '.join(lowered)}\n")
        delta = []
        for known, (_, value) in labels.items():
            key = (patch_set, known, account.id)
            if change.votes.get(key, 0) != value:
                delta.append(f"-{known}" if value == 0 else f"{known}{value:+d}")
            if value == 0:
                change.votes.pop(key, None)
            else:
                change.votes[key] = value
        text = "".join(f" {vote}" for vote in sorted(delta)) + (f"\n\n{message}" if message else "")
        if text:
            self._add_message(change, account, patch_set, text, body.get("tag"), prefixed=True)
        self.applied.append(Review(change.number, patch_set, account.username, json.loads(json.dumps(body))))
        return Reply(200, {"labels": dict(labels.values())})

    def _checked_labels(self, requested: dict[str, Any]) -> dict[str, tuple[str, int]] | Reply:
        """The votes kept, by the project's spelling of the label: (the caller's spelling, value);
        or the refusal, as ``PostReview.checkLabels`` decides."""
        labels: dict[str, tuple[str, int]] = {}
        for name, value in requested.items():
            known = next((label for label in self.labels if label.lower() == str(name).lower()), None)
            if known is None:
                if self.strict_labels:
                    return Reply(400, f'label "{name}" is not a configured label\n')
                continue  # unknown labels are dropped
            low, high = self.labels[known]
            if value != 0 and not low <= value <= high:
                if self.strict_labels:
                    return Reply(400, f'label "{name}": {value} is not a valid value\n')
                continue
            allowed = self.permitted.get(known, (0, 0))
            if value != 0 and not allowed[0] <= value <= allowed[1]:
                return Reply(self.restricted_status, f'Applying label "{known}": {value} is restricted\n')
            labels[known] = (str(name), int(value))
        return labels

    def _add_message(
        self, change: Change, author: Account, patch_set: int, text: str, tag: Any, *, prefixed: bool = False
    ) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f000")
        message: JsonObject = {
            "id": format(next(self._message_ids), "040x"),
            "author": author.info(),
            "date": now,
            "message": f"Patch Set {patch_set}:{text}" if prefixed else f"Patch Set {patch_set}:\n\n{text}",
            "_revision_number": patch_set,
        }
        if isinstance(tag, str) and tag:
            message["tag"] = tag
        change.messages.append(message)


def _not_found(what: str) -> Reply:
    return Reply(404, f"Not found: {what}\n")


def _authenticate(standin: GerritStandIn, authorization: str) -> tuple[Account | None, Credential]:
    scheme, _, encoded = authorization.partition(" ")
    if not authorization:
        return None, None
    if scheme.lower() != "basic":
        return None, "invalid"
    try:
        username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError:
        return None, "invalid"
    account = standin.accounts.get(username)
    if account is None or account.password != password:
        return None, "invalid"
    return account, "valid"
