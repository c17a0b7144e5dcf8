"""A loopback stand-in for the slice of Slack that the Slack function uses.

Owns: a stdlib HTTP server on 127.0.0.1 that answers, under ``/api/``, the Web API methods
``chat.postMessage``, ``chat.update``, ``conversations.history``, ``conversations.replies``,
``conversations.list`` and ``auth.test`` the way slack_sdk's ``WebClient`` calls them (GET with
a query string, or POST with a JSON or form body; ``Authorization: Bearer xox…`` or a ``token``
argument), and one incoming webhook. It keeps channels and messages in memory, records every call
(never the token), and answers as Slack documents:

- errors as 200 with ``ok: false``; scripted ``ratelimited`` as HTTP 429 with ``Retry-After``;
- a method whose scope the token lacks as ``missing_scope`` with ``needed`` and ``provided``
  (the token's scopes are :attr:`SlackStandIn.scopes`), and every authenticated answer with
  ``X-OAuth-Scopes`` and ``X-Accepted-OAuth-Scopes`` headers;
- message ``metadata`` (``{"event_type": ..., "event_payload": {...}}``, a JSON string or an
  object) kept on the message, shown by ``conversations.history`` only with
  ``include_all_metadata``; ``chat.update`` without ``metadata`` keeps it, with ``{}`` drops it;
- ``conversations.history`` newest first, without thread replies, paged by ``limit`` and
  ``cursor`` (``has_more``, ``response_metadata.next_cursor``); ``conversations.replies`` (a
  thread: its parent, then the replies, oldest first) and ``conversations.list`` paged the same way;
- message ``ts`` from the clock (seconds since the epoch), made unique and increasing by a counter.

Scripted answers: :meth:`SlackStandIn.fail_next` (a Slack error),
:meth:`SlackStandIn.echo_credentials_next` (a proxy's error page repeating the credential) and
:meth:`SlackStandIn.drop_answer_next` (the call is carried out, then the connection drops before
the answer: a lost answer).

Does not: check Block Kit, keep channel membership, render anything, or talk to anything but its
own clients.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Self
from urllib.parse import parse_qsl

from tests.support.standins.loopback import LoopbackStandIn, Reply, Request, proxy_page

__all__ = ["DEFAULT_SCOPES", "WEBHOOK", "WEBHOOK_PATH", "SlackCall", "SlackStandIn"]

JsonObject = dict[str, Any]
WEBHOOK_PATH: Final = "/services/T0TEKTON/B0TEKTON/standin0secret0path"
WEBHOOK: Final = "webhook"
"""The ``method`` recorded for a call to the incoming webhook."""

DEFAULT_SCOPES: Final = ("chat:write", "channels:history", "groups:history", "channels:read", "groups:read")
TEAM_ID: Final = "T0TEKTON"
BOT_USER_ID: Final = "U0BOT"
BOT_ID: Final = "B0BOT"
APP_ID: Final = "A0TEKTON"
USER_ID: Final = "U0HUMAN"
"""Who a user token (``xoxp-``) is, and who :meth:`SlackStandIn.add_message` posts as."""

HISTORY_LIMITS: Final = (100, 999)  # (default, maximum) of conversations.history's ``limit``
REPLIES_LIMITS: Final = (1000, 1000)  # the same for conversations.replies
LIST_LIMITS: Final = (100, 1000)  # the same for conversations.list
_TYPE_SCOPES: Final = {
    "public_channel": "channels:read",
    "private_channel": "groups:read",
    "mpim": "mpim:read",
    "im": "im:read",
}
_FIXED_SCOPES: Final = {"chat.postMessage": "chat:write", "chat.update": "chat:write"}


@dataclass(frozen=True)
class SlackCall:
    """One request as the stand-in saw it."""

    method: str
    """The Web API method (``chat.postMessage``), or ``webhook``."""
    body: JsonObject
    """The arguments (query string and body), without ``token``."""
    token_type: str | None
    """The token's prefix (``xoxb``, ``xoxp``) when a token was sent; never the token."""
    status: int
    error: str | None
    """Slack's error code when the answer was ``ok: false``; None for an echoed proxy page."""


@dataclass
class _Fault:
    error: str
    status: int
    retry_after: int | None
    method: str | None
    when: Callable[[JsonObject], bool] | None
    remaining: int
    echo: bool = False
    as_json: bool = False
    drop: bool = False

    def matches(self, method: str, body: JsonObject) -> bool:
        return self.method in (None, method) and (self.when is None or self.when(body))


class _RefusalError(Exception):
    """A Slack error answer (``ok: false``) with extra fields such as ``needed``."""

    def __init__(self, error: str, **extra: str) -> None:
        super().__init__(error)
        self.answer: JsonObject = {"ok": False, "error": error, **extra}


class SlackStandIn(LoopbackStandIn):
    """A recording fake of Slack on ``127.0.0.1``, started by ``with`` or ``start()``.

    Point ``WebClient(base_url=...)`` at :attr:`api_url` and ``WebhookClient`` at
    :attr:`webhook_url`. ``channels`` maps names (without ``#``) to IDs; ``chat.postMessage``
    finds a channel by either, as Slack does; the other methods need the ID. ``private`` and
    ``archived`` name channels (by name or ID) that are private or archived. ``scopes`` are the
    token's OAuth scopes (default :data:`DEFAULT_SCOPES`); :attr:`scopes` may be changed while
    running. ``clock`` gives the seconds of each new message's ``ts``. Read :attr:`messages` and
    :attr:`calls` under :attr:`lock` while clients run.
    """

    def __init__(
        self,
        channels: Mapping[str, str] | None = None,
        bot_name: str = "tekton-bot",
        *,
        private: Iterable[str] = (),
        archived: Iterable[str] = (),
        scopes: Iterable[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.channels = dict(channels or {"widget-ci": "C0WIDGETCI"})
        self.bot_name = bot_name
        self.private = {self._channel_id(name) for name in private}
        """IDs of private channels (``groups:history`` / ``groups:read``)."""
        self.archived = {self._channel_id(name) for name in archived}
        """IDs of archived channels: posting there answers ``is_archived``."""
        self.scopes: list[str] = list(DEFAULT_SCOPES if scopes is None else scopes)
        self.lock = threading.RLock()
        self.calls: list[SlackCall] = []
        self.messages: dict[str, JsonObject] = {}
        """Message ``ts`` -> its ``channel``, ``ts``, ``thread_ts``, ``text``, ``attachments``,
        ``blocks``, ``metadata``, poster (``user``, ``bot_id``, ``app_id``), how often it was
        ``updated`` and when last (``edited_ts``)."""
        self.webhook_messages: list[JsonObject] = []
        self._faults: list[_Fault] = []
        self._ts = itertools.count(1)
        self._clock = clock
        self._second = 0

    def _channel_id(self, name_or_id: str) -> str:
        if name_or_id in self.channels.values():
            return name_or_id
        found = self.channels.get(name_or_id.removeprefix("#"))
        if found is None:
            raise ValueError(f"unknown channel {name_or_id!r}: add it to channels first")
        return found

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        return self.__enter__()

    def stop(self) -> None:
        self.__exit__()

    @property
    def url(self) -> str:
        return self.origin

    @property
    def api_url(self) -> str:
        """What ``SLACK_API_URL`` should be: ``http://127.0.0.1:PORT/api/``."""
        return self.url + "/api/"

    @property
    def webhook_url(self) -> str:
        """The incoming webhook; its path is the credential, as with Slack's."""
        return self.url + WEBHOOK_PATH

    # -- scripting and inspection --------------------------------------------------------------

    def fail_next(
        self,
        error: str,
        *,
        status: int = 200,
        retry_after: int | None = None,
        method: str | None = None,
        when: Callable[[JsonObject], bool] | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` calls with Slack error ``error``: of ``method`` and whose
        body satisfies ``when``, if given (e.g. ``lambda body: "thread_ts" in body``).

        ``status`` 429 is how Slack sends ``ratelimited``; give ``retry_after`` for its header.
        """
        with self.lock:
            self._faults.append(_Fault(error, status, retry_after, method, when, count))

    def echo_credentials_next(
        self,
        status: int = 502,
        *,
        count: int = 1,
        method: str | None = None,
        when: Callable[[JsonObject], bool] | None = None,
        as_json: bool = False,
    ) -> None:
        """Answer the next ``count`` matching calls with ``status`` and a body that repeats the
        credential verbatim, as a misbehaving proxy does: the ``Authorization`` header and the
        ``token`` argument for Web API methods, the URL path for the webhook (``method=WEBHOOK``).

        For credential-leak tests. The body is ``text/plain`` (a proxy's error page, which
        slack_sdk quotes in its exception) or, with ``as_json``, ``{"ok": false, "error": ...}``.
        ``method`` and ``when`` match as in :meth:`fail_next`; both kinds queue together.
        """
        with self.lock:
            self._faults.append(_Fault("", status, None, method, when, count, echo=True, as_json=as_json))

    def drop_answer_next(
        self,
        *,
        method: str | None = None,
        when: Callable[[JsonObject], bool] | None = None,
        count: int = 1,
    ) -> None:
        """Carry out the next ``count`` matching calls, then close the connection without
        answering: the client cannot know whether Slack acted (a lost answer).

        ``method`` and ``when`` match as in :meth:`fail_next`; all scripted kinds queue together.
        """
        with self.lock:
            self._faults.append(_Fault("", 0, None, method, when, count, drop=True))

    def calls_to(self, method: str) -> list[SlackCall]:
        with self.lock:
            return [call for call in self.calls if call.method == method]

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = USER_ID,
        metadata: JsonObject | None = None,
        thread_ts: str | None = None,
    ) -> str:
        """Put a message by someone else (a person, by default) into ``channel``; return its ts."""
        with self.lock:
            return self._store(
                self._channel_id(channel), {"text": text}, thread_ts, metadata, user=user, bot_id=None
            )

    # -- request handling (server threads) -----------------------------------------------------

    text_type = "text/plain"

    def serve(self, request: Request) -> Reply:
        path = request.path
        if path == WEBHOOK_PATH and request.method == "POST":
            method = WEBHOOK
        elif path.startswith("/api/"):
            method = path.removeprefix("/api/")
        else:
            return Reply(404, "no_service")
        body: JsonObject = dict(request.query)
        raw = request.body.decode()
        try:
            parsed = json.loads(raw) if raw.lstrip().startswith("{") else dict(parse_qsl(raw))
        except ValueError:
            return Reply(200, {"ok": False, "error": "invalid_json"})
        body.update(parsed)
        authorization = request.headers.get("Authorization")
        form_token = body.pop("token", None)  # a form body or query may carry it; never recorded
        scheme, _, credential = (authorization or "").partition(" ")
        bearer = credential.strip() if scheme.lower() == "bearer" and credential.strip() else None
        token = bearer or (str(form_token) if form_token else None)

        def echo() -> str:
            """The credential first, on one line: slack_sdk quotes only 100 characters of a page."""
            if method == WEBHOOK:
                return f"{request.method} {request.target}"
            shown = [f"Authorization: {authorization}"] if authorization is not None else []
            shown += [f"token={form_token}"] if form_token is not None else []
            return "; ".join([*shown, f"{request.method} {path}"])

        reply = self._answer(method, body, token, echo)
        if method == WEBHOOK and isinstance(reply.body, dict) and not reply.dropped:
            # incoming webhooks answer plain text: "ok" or the error code
            reply.body = "ok" if reply.body.get("ok") else str(reply.body["error"])
        return reply

    def _answer(self, method: str, body: JsonObject, token: str | None, echo: Callable[[], str]) -> Reply:
        with self.lock:
            fault = next((f for f in self._faults if f.matches(method, body)), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
            if fault is not None and fault.echo:
                text = proxy_page(echo(), fault.status)
                reply = Reply(fault.status, {"ok": False, "error": text} if fault.as_json else text + "\n")
            elif fault is not None and fault.drop:
                reply = replace(self._dispatch(method, body, token), dropped=True)
            elif fault is not None:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                reply = Reply(fault.status, {"ok": False, "error": fault.error}, headers)
            else:
                reply = self._dispatch(method, body, token)
            error = None  # an echoed page carries no Slack error code, and must not be recorded
            if (
                (fault is None or not fault.echo)
                and isinstance(reply.body, dict)
                and not reply.body.get("ok")
            ):
                error = str(reply.body.get("error"))
            token_type = token.split("-", 1)[0] if token else None
            self.calls.append(SlackCall(method, body, token_type, reply.status, error))
            return reply

    def _dispatch(self, method: str, body: JsonObject, token: str | None) -> Reply:
        if method == WEBHOOK:
            self.webhook_messages.append(body)
            return Reply(200, {"ok": True})
        if token is None:
            return Reply(200, {"ok": False, "error": "not_authed"})
        if not token.startswith(("xoxb-", "xoxp-")):
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        bot = token.startswith("xoxb-")
        handlers: dict[str, Callable[[JsonObject, bool], JsonObject]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post,
            "chat.update": self._update,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "conversations.list": self._list,
        }
        handler = handlers.get(method)
        if handler is None:
            return Reply(200, {"ok": False, "error": "unknown_method"})
        headers = {"X-OAuth-Scopes": ",".join(self.scopes)}
        try:
            needed = self._needed_scopes(method, body)
            headers["X-Accepted-OAuth-Scopes"] = ",".join(needed)
            missing = [scope for scope in needed if scope not in self.scopes]
            if missing:
                raise _RefusalError("missing_scope", needed=",".join(missing), provided=",".join(self.scopes))
            answer = handler(body, bot)
        except _RefusalError as refusal:
            answer = refusal.answer
        return Reply(200, answer, headers)

    def _needed_scopes(self, method: str, body: JsonObject) -> list[str]:
        if method in _FIXED_SCOPES:
            return [_FIXED_SCOPES[method]]
        if method in ("conversations.history", "conversations.replies"):
            channel = self._known_channel(body)
            return ["groups:history" if channel in self.private else "channels:history"]
        if method == "conversations.list":
            return [_TYPE_SCOPES[kind] for kind in _types(body)]
        return []

    def _known_channel(self, body: JsonObject) -> str:
        channel = str(body.get("channel") or "")
        if channel not in self.channels.values():
            raise _RefusalError("channel_not_found")
        return channel

    def _auth_test(self, body: JsonObject, bot: bool) -> JsonObject:
        answer: JsonObject = {
            "ok": True,
            "url": "https://tekton.slack.com/",
            "team": "Tekton",
            "user": self.bot_name if bot else "someone",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID if bot else USER_ID,
            "is_enterprise_install": False,
        }
        if bot:
            answer["bot_id"] = BOT_ID
        return answer

    def _post(self, body: JsonObject, bot: bool) -> JsonObject:
        name = str(body.get("channel") or "")
        channel = name if name in self.channels.values() else self.channels.get(name.removeprefix("#"))
        if channel is None:
            raise _RefusalError("channel_not_found")
        if channel in self.archived:
            raise _RefusalError("is_archived")
        if not (body.get("text") or body.get("blocks") or body.get("attachments")):
            raise _RefusalError("no_text")
        thread = body.get("thread_ts")
        if thread is not None and thread not in self.messages:
            raise _RefusalError("thread_not_found")
        metadata = _metadata(body["metadata"]) if "metadata" in body else None
        user, bot_id = (BOT_USER_ID, BOT_ID) if bot else (USER_ID, None)
        ts = self._store(channel, body, thread, metadata or None, user=user, bot_id=bot_id)
        return {"ok": True, "channel": channel, "ts": ts, "message": self._shown(self.messages[ts], True)}

    def _store(
        self,
        channel: str,
        body: JsonObject,
        thread: str | None,
        metadata: JsonObject | None,
        *,
        user: str,
        bot_id: str | None,
    ) -> str:
        ts = self._next_ts()
        self.messages[ts] = {
            "channel": channel,
            "ts": ts,
            "thread_ts": thread,
            "updated": 0,
            "edited_ts": None,
            **_content(body),
            "metadata": metadata,
            "user": user,
            "bot_id": bot_id,
            "app_id": APP_ID if bot_id else None,
        }
        return ts

    def _next_ts(self) -> str:
        n = next(self._ts)
        self._second = max(self._second, int(self._clock()))
        return f"{self._second}.{n:06d}"

    def _update(self, body: JsonObject, bot: bool) -> JsonObject:
        channel, ts = body.get("channel"), body.get("ts")
        if channel not in self.channels.values():
            raise _RefusalError("channel_not_found")
        message = self.messages.get(str(ts))
        if message is None or message["channel"] != channel:
            raise _RefusalError("message_not_found")
        if message["user"] != (BOT_USER_ID if bot else USER_ID):
            raise _RefusalError("cant_update_message")
        if "metadata" in body:
            # "If you don't include this field, the message's previous metadata will be
            # retained. To remove previous metadata, include an empty object for this field."
            message["metadata"] = _metadata(body["metadata"]) or None
        message.update(_content(body), updated=message["updated"] + 1, edited_ts=self._next_ts())
        return {"ok": True, "channel": channel, "ts": ts, "text": message["text"]}

    def _history(self, body: JsonObject, bot: bool) -> JsonObject:
        channel = self._known_channel(body)
        inclusive = _flag(body.get("inclusive"))
        oldest = _timestamp(body.get("oldest"), Decimal(0))
        latest = _timestamp(body.get("latest"), Decimal("Infinity"))
        limit = _limit(body.get("limit"), HISTORY_LIMITS)
        with_metadata = _flag(body.get("include_all_metadata"))
        top_level = [
            m for m in self.messages.values() if m["channel"] == channel and m["thread_ts"] in (None, m["ts"])
        ]
        replies: dict[str, list[str]] = {}
        for message in self.messages.values():
            if message["thread_ts"] not in (None, message["ts"]):
                replies.setdefault(message["thread_ts"], []).append(message["ts"])

        def within(ts: Decimal) -> bool:
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        chosen = sorted(
            (m for m in top_level if within(Decimal(m["ts"]))), key=lambda m: Decimal(m["ts"]), reverse=True
        )
        first = _ts_cursor(body.get("cursor"))
        if first is not None:
            chosen = [m for m in chosen if Decimal(m["ts"]) <= first]
        page, rest = chosen[:limit], chosen[limit:]
        shown = []
        for message in page:
            item = self._shown(message, with_metadata)
            thread = replies.get(message["ts"])
            if thread:
                item.update(thread_ts=message["ts"], reply_count=len(thread), latest_reply=thread[-1])
            shown.append(item)
        answer: JsonObject = {
            "ok": True,
            "messages": shown,
            "has_more": bool(rest),
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        if rest:
            answer["response_metadata"] = {"next_cursor": _encode_cursor("next_ts", rest[0]["ts"])}
        return answer

    def _replies(self, body: JsonObject, bot: bool) -> JsonObject:
        channel = self._known_channel(body)
        parent = self.messages.get(str(body.get("ts") or ""))
        if parent is None or parent["channel"] != channel:
            raise _RefusalError("thread_not_found")
        limit = _limit(body.get("limit"), REPLIES_LIMITS)
        with_metadata = _flag(body.get("include_all_metadata"))
        thread = sorted(
            (m for m in self.messages.values() if parent["ts"] in (m["ts"], m["thread_ts"])),
            key=lambda m: Decimal(m["ts"]),
        )
        first = _ts_cursor(body.get("cursor"))
        if first is not None:
            thread = [m for m in thread if Decimal(m["ts"]) >= first]
        page, rest = thread[:limit], thread[limit:]
        shown = []
        for message in page:
            item = self._shown(message, with_metadata)
            item["thread_ts"] = parent["ts"]
            shown.append(item)
        answer: JsonObject = {"ok": True, "messages": shown, "has_more": bool(rest)}
        if rest:
            answer["response_metadata"] = {"next_cursor": _encode_cursor("next_ts", rest[0]["ts"])}
        return answer

    def _shown(self, message: JsonObject, with_metadata: bool) -> JsonObject:
        """A message as Slack's API presents it."""
        item: JsonObject = {"type": "message", "ts": message["ts"], "user": message["user"]}
        item["text"] = message["text"] or ""
        if message["bot_id"]:
            item.update(bot_id=message["bot_id"], app_id=message["app_id"])
        item["team"] = TEAM_ID
        for key in ("attachments", "blocks"):
            if message[key] is not None:
                item[key] = message[key]
        if message["thread_ts"] not in (None, message["ts"]):
            item["thread_ts"] = message["thread_ts"]
        if message["edited_ts"] is not None:
            item["edited"] = {"user": message["user"], "ts": message["edited_ts"]}
        if with_metadata and message["metadata"] is not None:
            item["metadata"] = json.loads(json.dumps(message["metadata"]))
        return item

    def _list(self, body: JsonObject, bot: bool) -> JsonObject:
        kinds = _types(body)
        exclude_archived = _flag(body.get("exclude_archived"))
        limit = _limit(body.get("limit"), LIST_LIMITS)
        chosen = [
            channel
            for channel in self.channels.values()
            if ("private_channel" if channel in self.private else "public_channel") in kinds
            and not (exclude_archived and channel in self.archived)
        ]
        start = _cursor(body.get("cursor"), "team")
        if start is not None:
            if start not in chosen:
                raise _RefusalError("invalid_cursor")
            chosen = chosen[chosen.index(start) :]
        page, rest = chosen[:limit], chosen[limit:]
        names = {channel: name for name, channel in self.channels.items()}
        return {
            "ok": True,
            "channels": [self._channel(names[channel], channel) for channel in page],
            "response_metadata": {"next_cursor": _encode_cursor("team", rest[0]) if rest else ""},
        }

    def _channel(self, name: str, channel: str) -> JsonObject:
        private = channel in self.private
        topic = {"value": "", "creator": "", "last_set": 0}
        return {
            "id": channel,
            "name": name,
            "name_normalized": name,
            "is_channel": not private,
            "is_group": private,
            "is_im": False,
            "is_mpim": False,
            "is_private": private,
            "is_archived": channel in self.archived,
            "is_general": False,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": True,
            "created": 1_700_000_000,
            "creator": USER_ID,
            "context_team_id": TEAM_ID,
            "num_members": 2,
            "topic": topic,
            "purpose": dict(topic),
            "previous_names": [],
        }


# -- arguments ---------------------------------------------------------------------------------


def _content(body: JsonObject) -> JsonObject:
    return {key: body.get(key) for key in ("text", "attachments", "blocks")}


def _metadata(value: Any) -> JsonObject:
    """``metadata`` as an object (``{}`` when empty), or raise Slack's refusal."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise _RefusalError("invalid_metadata_format") from None
    if not isinstance(value, dict):
        raise _RefusalError("invalid_metadata_format")
    if not value:
        return {}
    event_type, payload = value.get("event_type"), value.get("event_payload")
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
        raise _RefusalError("invalid_metadata_schema")
    return {"event_type": event_type, "event_payload": json.loads(json.dumps(payload))}


def _flag(value: Any) -> bool:
    """A boolean argument: JSON ``true``, or ``1``/``true`` as slack_sdk and forms send it."""
    return value is True or str(value).lower() in ("1", "true")


def _timestamp(value: Any, default: Decimal) -> Decimal:
    if value is None or value == "":
        return default
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise _RefusalError("invalid_ts_oldest" if default == 0 else "invalid_ts_latest") from None


def _limit(value: Any, limits: tuple[int, int]) -> int:
    default, maximum = limits
    try:
        chosen = int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        raise _RefusalError("invalid_limit") from None
    return min(max(chosen, 1), maximum)


def _types(body: JsonObject) -> list[str]:
    kinds = [kind.strip() for kind in str(body.get("types") or "public_channel").split(",") if kind.strip()]
    if not kinds or any(kind not in _TYPE_SCOPES for kind in kinds):
        raise _RefusalError("invalid_types")
    return kinds


def _encode_cursor(kind: str, value: str) -> str:
    """An opaque cursor as Slack makes them: base64 of ``next_ts:...`` or ``team:...``."""
    return base64.b64encode(f"{kind}:{value}".encode()).decode()


def _ts_cursor(value: Any) -> Decimal | None:
    """The ``ts`` a ``next_ts`` cursor starts from, or None without one."""
    start = _cursor(value, "next_ts")
    if start is None:
        return None
    try:
        return Decimal(start)
    except InvalidOperation:
        raise _RefusalError("invalid_cursor") from None


def _cursor(value: Any, kind: str) -> str | None:
    if value in (None, ""):
        return None
    try:
        decoded = base64.b64decode(str(value), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise _RefusalError("invalid_cursor") from None
    found, _, position = decoded.partition(":")
    if found != kind or not position:
        raise _RefusalError("invalid_cursor")
    return position
