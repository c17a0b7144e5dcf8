"""A loopback stand-in for Google Chat's incoming webhooks: ``spaces.messages.create`` as a webhook calls it.

Owns: a stdlib HTTP server on 127.0.0.1 that keeps spaces, their webhooks, threads and messages in
memory, records every request (never a key or token: only whether they were right) and answers
scripted faults.

Follows Google Chat's documented API (``spaces.messages.create``, the incoming-webhook guide, the
usage limits) and Google's error model:

- ``POST /v1/spaces/{space}/messages?key=KEY&token=TOKEN`` with a JSON ``Message`` body (``text``,
  ``cardsV2``, ``thread.threadKey``, ...). A webhook answer carries what the request held plus
  ``name`` and ``thread.name`` only.
- ``messageId``: optional; must start with ``client-`` and hold at most 63 lower-case letters,
  digits and hyphens (else 400 ``INVALID_ARGUMENT``), and be unique within the space: a second
  create with the same id is refused with 409 ``ALREADY_EXISTS``, and nothing is posted.
- ``requestId``: an existing one answers the message created with it, without posting again.
- ``messageReplyOption``: ``MESSAGE_REPLY_OPTION_UNSPECIFIED`` (the default) starts a new thread
  whatever the thread key; ``REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD`` replies in the thread of that
  key, or starts it; ``REPLY_MESSAGE_OR_FAIL`` replies in the thread of that key, which a new key
  creates. Thread keys belong to the webhook that set them (another webhook with the same key
  gets another thread). The deprecated ``threadKey`` query parameter counts when the body has none.
- Limits: a message over 32,000 bytes, ``text`` over 4,096 characters, or with neither text nor
  cards is refused with 400 ``INVALID_ARGUMENT``. (Chat ignores widgets beyond 100 per card;
  :func:`widgets` counts them for tests.)
- Errors are ``{"error": {"code": N, "message": "...", "status": "CANONICAL_NAME"}}``: a wrong or
  missing ``key`` gets 400 ``INVALID_ARGUMENT`` "API key not valid", a wrong or missing ``token``
  401 ``UNAUTHENTICATED``, an unknown space 404 ``NOT_FOUND``; a body that is not JSON 400.

Scripted answers: :meth:`GoogleChatStandIn.fail_next` (any status, headers, body; by default
Google's error body for the status), :meth:`GoogleChatStandIn.echo_credentials_next` (an error
repeating the request's URL, key and token, as a misbehaving proxy does),
:meth:`GoogleChatStandIn.drop_answer_next` (the message is created, then the connection closes
without an answer: a lost answer) and :meth:`GoogleChatStandIn.redirect_next`.

Does not: render cards, enforce quotas unless scripted, or talk to anything but its clients.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import parse_qs, quote

from tests.support.standins.loopback import LoopbackStandIn, Reply, Request

__all__ = ["Call", "GoogleChatStandIn", "widgets"]

JsonObject = dict[str, Any]
Credential = Literal["valid", "invalid", "missing"]

MESSAGE_BYTES: Final = 32_000
TEXT_LIMIT: Final = 4096
MESSAGE_ID: Final = re.compile(r"^client-[a-z0-9-]{1,56}$")
REPLY_OPTIONS: Final = (
    "MESSAGE_REPLY_OPTION_UNSPECIFIED",
    "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD",
    "REPLY_MESSAGE_OR_FAIL",
)
CANONICAL: Final = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
"""``google.rpc.Code`` names for HTTP statuses, as Google's error bodies carry them."""
_PATH: Final = re.compile(r"^/v1/spaces/(?P<space>[^/]+)/messages$")
_GOOGLE_502: Final = (
    "<!DOCTYPE html><html><title>Error 502 (Server Error)!!1</title><p><b>502.</b> That's an error."
)


@dataclass(frozen=True)
class Call:
    """One request as the stand-in saw it; credentials reduced to whether they were right."""

    method: str
    space: str | None
    params: dict[str, str]
    """Query parameters other than ``key`` and ``token``."""
    key: Credential
    token: Credential
    body: Any
    status: int
    error: str | None
    """The canonical error name when the answer was an error."""


@dataclass
class _Webhook:
    space: str
    key: str
    token: str
    id: int


@dataclass
class _Fault:
    status: int
    headers: dict[str, str]
    body: Any
    echo: bool = False
    drop: bool = False
    location: str | None = None


def error_body(status: int, message: str, name: str | None = None) -> JsonObject:
    """Google's error body for ``status``."""
    return {"error": {"code": status, "message": message, "status": name or CANONICAL.get(status, "UNKNOWN")}}


def widgets(message: JsonObject) -> int:
    """Widgets in a message's cards, summed over every card and section."""
    return sum(
        len(section.get("widgets") or [])
        for entry in message.get("cardsV2") or []
        for section in (entry.get("card") or {}).get("sections") or []
    )


class GoogleChatStandIn(LoopbackStandIn):
    """A recording fake of Google Chat's incoming webhooks on ``127.0.0.1``; use with ``with``.

    :meth:`add_webhook` registers a webhook in a space and returns its URL. Read
    :attr:`messages` and :attr:`calls` under :attr:`lock`, or through :meth:`posted` and
    :meth:`calls_to`, which copy under it.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.calls: list[Call] = []
        self.messages: list[JsonObject] = []
        """Every message created, in order, as Chat keeps it: ``name``, ``space``, ``thread``
        (``name``, ``threadKey``), ``text``, ``cardsV2``, ``clientAssignedMessageId``, ``createTime``."""
        self._webhooks: list[_Webhook] = []
        self._threads: dict[tuple[int, str], str] = {}
        self._requests: dict[tuple[str, str], JsonObject] = {}
        self._faults: list[_Fault] = []
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: where ``chat.googleapis.com`` stands."""
        return self.origin

    def add_webhook(self, space: str, *, key: str, token: str) -> str:
        """Register an incoming webhook in ``space`` (created if new); return its URL, with the
        token URL-encoded as Chat shows it."""
        with self.lock:
            self._webhooks.append(_Webhook(space, key, token, len(self._webhooks) + 1))
        return (
            f"{self.url}/v1/spaces/{space}/messages?key={quote(key, safe='')}&token={quote(token, safe='')}"
        )

    def fail_next(
        self, status: int, *, headers: dict[str, str] | None = None, body: Any = None, count: int = 1
    ) -> None:
        """Answer the next ``count`` requests with ``status``; the body defaults to Google's error
        body for it (a Google front end's HTML page for 502)."""
        if body is None:
            body = _GOOGLE_502 if status == 502 else error_body(status, f"stand-in fault {status}")
        with self.lock:
            self._faults.extend(_Fault(status, dict(headers or {}), body) for _ in range(count))

    def echo_credentials_next(self, status: int = 500) -> None:
        """Answer the next request with ``status`` and a Google error whose message repeats the
        request line as sent (URL-encoded key and token) and the decoded key and token."""
        with self.lock:
            self._faults.append(_Fault(status, {}, None, echo=True))

    def drop_answer_next(self) -> None:
        """Carry out the next request, then close the connection without answering it."""
        with self.lock:
            self._faults.append(_Fault(200, {}, None, drop=True))

    def redirect_next(self, location: str, status: int = 307) -> None:
        """Answer the next request with a redirect to ``location``."""
        with self.lock:
            self._faults.append(_Fault(status, {}, None, location=location))

    def posted(self, space: str | None = None) -> list[JsonObject]:
        with self.lock:
            return [dict(m) for m in self.messages if space is None or m["space"] == space]

    def calls_to(self, space: str | None = None) -> list[Call]:
        with self.lock:
            return [call for call in self.calls if space is None or call.space == space]

    def thread_names(self) -> list[str]:
        """The thread of each message, in order."""
        with self.lock:
            return [m["thread"]["name"] for m in self.messages]

    # -- handling --------------------------------------------------------------------------------

    text_type = "text/html; charset=UTF-8"
    json_type = "application/json; charset=UTF-8"

    def serve(self, request: Request) -> Reply:
        with self.lock:
            answer, call = self._answer(request)
            self.calls.append(call)
        return answer

    def _answer(self, request: Request) -> tuple[Reply, Call]:
        method, target = request.method, request.target
        parsed = parse_qs(request.query_string, keep_blank_values=True)
        query = {name: values[-1] for name, values in parsed.items()}
        match = _PATH.match(request.path)
        space = match.group("space") if match else None
        hook = self._webhook(space, query.get("key"), query.get("token"))
        key, token = self._credentials(space, query)
        params = {name: value for name, value in query.items() if name not in ("key", "token")}
        body = request.json(invalid=request.body.decode("utf-8", "replace"))
        fault = self._faults.pop(0) if self._faults else None
        if fault is not None and not fault.drop:
            answer = self._scripted(fault, method, target, query)
        elif method != "POST" or space is None:
            answer = Reply(404, error_body(404, "Requested entity was not found."))
        elif key != "valid":
            answer = Reply(400, error_body(400, "API key not valid. Please pass a valid API key."))
        elif token != "valid" or hook is None:
            answer = Reply(401, error_body(401, "Request had invalid authentication credentials."))
        else:
            answer = self._create(hook, params, body)
        if fault is not None and fault.drop:
            answer.dropped = True
        error = answer.body.get("error", {}).get("status") if isinstance(answer.body, dict) else None
        call = Call(method, space, params, key, token, body, answer.status, error)
        return answer, call

    def _scripted(self, fault: _Fault, method: str, target: str, query: dict[str, str]) -> Reply:
        if fault.location is not None:
            return Reply(fault.status, "", {"Location": fault.location})
        if fault.echo:
            said = f"{method} {target} (key {query.get('key')}, token {query.get('token')})"
            return Reply(fault.status, error_body(fault.status, f"Invalid request: {said}"))
        return Reply(fault.status, fault.body, fault.headers)

    def _webhook(self, space: str | None, key: str | None, token: str | None) -> _Webhook | None:
        for hook in self._webhooks:
            if (hook.space, hook.key, hook.token) == (space, key, token):
                return hook
        return None

    def _credentials(self, space: str | None, query: dict[str, str]) -> tuple[Credential, Credential]:
        hooks = [hook for hook in self._webhooks if hook.space == space]

        def judge(name: str, values: set[str]) -> Credential:
            if name not in query:
                return "missing"
            return "valid" if query[name] in values else "invalid"

        return judge("key", {h.key for h in hooks}), judge("token", {h.token for h in hooks})

    def _create(self, hook: _Webhook, params: dict[str, str], body: Any) -> Reply:
        if not isinstance(body, dict):
            return Reply(400, error_body(400, "Invalid JSON payload received."))
        problem = _invalid(body, params)
        if problem:
            return Reply(400, error_body(400, problem))
        request_id = params.get("requestId")
        if request_id and (hook.space, request_id) in self._requests:
            return Reply(200, self._requests[(hook.space, request_id)])
        message_id = params.get("messageId")
        if message_id and any(
            m["space"] == hook.space and m.get("clientAssignedMessageId") == message_id for m in self.messages
        ):
            return Reply(409, error_body(409, f"Message with ID {message_id} already exists."))
        thread = self._thread_for(hook, params, body)
        if thread is None:
            return Reply(404, error_body(404, "Thread not found."))
        number = next(self._ids)
        name = f"spaces/{hook.space}/messages/m{number:06d}.m{number:06d}"
        stored: JsonObject = {
            **body,
            "name": name,
            "space": hook.space,
            "thread": {"name": thread[0], "threadKey": thread[1]},
            "createTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        if message_id:
            stored["clientAssignedMessageId"] = message_id
        self.messages.append(stored)
        answer = {**body, "name": name, "thread": {"name": thread[0]}}
        if request_id:
            self._requests[(hook.space, request_id)] = answer
        return Reply(200, answer)

    def _thread_for(self, hook: _Webhook, params: dict[str, str], body: JsonObject) -> tuple[str, str] | None:
        """The thread (name, key) the message goes to; ``None`` when it must fail."""
        thread = body.get("thread") or {}
        key = str(thread.get("threadKey") or params.get("threadKey") or "")
        option = params.get("messageReplyOption", REPLY_OPTIONS[0])
        existing = self._threads.get((hook.id, key)) if key else None
        if option == REPLY_OPTIONS[0] or not key:
            return f"spaces/{hook.space}/threads/t{next(self._ids):06d}", ""
        if existing is not None:
            return existing, key
        name = f"spaces/{hook.space}/threads/t{next(self._ids):06d}"
        self._threads[(hook.id, key)] = name
        return name, key


def _invalid(body: JsonObject, params: dict[str, str]) -> str | None:
    """What Chat says about a request it refuses as ``INVALID_ARGUMENT``, else ``None``."""
    message_id = params.get("messageId")
    if message_id is not None and not MESSAGE_ID.match(message_id):
        return f"Invalid message ID: {message_id[:80]}"
    option = params.get("messageReplyOption")
    if option is not None and option not in REPLY_OPTIONS:
        return f"Invalid value at 'message_reply_option' (MessageReplyOption), {option[:80]!r}"
    if len(json.dumps(body).encode()) > MESSAGE_BYTES:
        return "Message is too large: the maximum message size is 32,000 bytes."
    if len(str(body.get("text") or "")) > TEXT_LIMIT:
        return "Message text is too long."
    if not body.get("text") and not body.get("cardsV2"):
        return "Message cannot be empty. Discarded message must have text, cards or attachments."
    return None
