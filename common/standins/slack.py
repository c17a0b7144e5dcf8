"""A loopback stand-in for the slice of Slack that the Slack function uses.

Owns: a stdlib HTTP server on 127.0.0.1 that answers the Web API methods ``chat.postMessage``,
``chat.update`` and ``auth.test`` under ``/api/`` the way slack_sdk's ``WebClient`` calls them
(JSON or form body, ``Authorization: Bearer xox…``), and one incoming webhook. It keeps messages
in memory, records every call (never the token), and answers scripted errors as Slack does:
``ratelimited`` as HTTP 429 with ``Retry-After``, other errors as 200 with ``ok: false``, or 5xx.

Does not: check scopes or Block Kit, render anything, or talk to anything but its own clients.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qsl, urlsplit

__all__ = ["WEBHOOK_PATH", "SlackCall", "SlackStandIn"]

JsonObject = dict[str, Any]
WEBHOOK_PATH = "/services/T0TEKTON/B0TEKTON/standin0secret0path"
WEBHOOK = "webhook"
"""The ``method`` recorded for a call to the incoming webhook."""


@dataclass(frozen=True)
class SlackCall:
    """One request as the stand-in saw it."""

    method: str
    """The Web API method (``chat.postMessage``), or ``webhook``."""
    body: JsonObject
    token_type: str | None
    """The token's prefix (``xoxb``, ``xoxp``) when a Bearer token was sent; never the token."""
    status: int
    error: str | None
    """Slack's error code when the answer was not ``ok``."""


@dataclass
class _Fault:
    error: str
    status: int
    retry_after: int | None
    method: str | None
    when: Callable[[JsonObject], bool] | None
    remaining: int

    def matches(self, method: str, body: JsonObject) -> bool:
        return self.method in (None, method) and (self.when is None or self.when(body))


class SlackStandIn:
    """A recording fake of Slack on ``127.0.0.1``, started by ``with`` or ``start()``.

    Point ``WebClient(base_url=...)`` at :attr:`api_url` and ``WebhookClient`` at
    :attr:`webhook_url`. ``channels`` maps names (without ``#``) to IDs; channels are found by
    either, as Slack does for ``chat.postMessage``; ``chat.update`` needs the ID.
    """

    def __init__(self, channels: Mapping[str, str] | None = None, bot_name: str = "tekton-bot") -> None:
        self.channels = dict(channels or {"widget-ci": "C0WIDGETCI"})
        self.bot_name = bot_name
        self.lock = threading.RLock()
        self.calls: list[SlackCall] = []
        self.messages: dict[str, JsonObject] = {}
        """Message ``ts`` -> its current ``channel``, ``ts``, ``thread_ts``, ``text``, ``attachments``
        and ``blocks``, and how often it was ``updated``."""
        self.webhook_messages: list[JsonObject] = []
        self._faults: list[_Fault] = []
        self._ts = itertools.count(1)
        self._server: _Server | None = None

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.standin = self
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("SlackStandIn is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """What ``SLACK_API_URL`` should be: ``http://127.0.0.1:PORT/api/``."""
        return self.url + "/api/"

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

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

    def calls_to(self, method: str) -> list[SlackCall]:
        with self.lock:
            return [call for call in self.calls if call.method == method]

    # -- request handling (server threads) -----------------------------------------------------

    def _answer(self, method: str, body: JsonObject, token: str | None) -> tuple[int, JsonObject, int | None]:
        with self.lock:
            fault = next((f for f in self._faults if f.matches(method, body)), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                status, answer, retry = fault.status, {"ok": False, "error": fault.error}, fault.retry_after
            else:
                status, answer, retry = 200, self._dispatch(method, body, token), None
            token_type = token.split("-", 1)[0] if token else None
            error = None if answer.get("ok") else str(answer.get("error"))
            self.calls.append(SlackCall(method, body, token_type, status, error))
            return status, answer, retry

    def _dispatch(self, method: str, body: JsonObject, token: str | None) -> JsonObject:
        if method == WEBHOOK:
            self.webhook_messages.append(body)
            return {"ok": True}
        if token is None:
            return {"ok": False, "error": "not_authed"}
        if not token.startswith(("xoxb-", "xoxp-")):
            return {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            return {"ok": True, "url": "https://tekton.slack.com/", "team": "Tekton", "user": self.bot_name,
                    "team_id": "T0TEKTON", "user_id": "U0BOT", "bot_id": "B0BOT"}  # fmt: skip
        if method == "chat.postMessage":
            return self._post(body)
        if method == "chat.update":
            return self._update(body)
        return {"ok": False, "error": "unknown_method"}

    def _post(self, body: JsonObject) -> JsonObject:
        name = str(body.get("channel") or "")
        channel = name if name in self.channels.values() else self.channels.get(name.removeprefix("#"))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not (body.get("text") or body.get("blocks") or body.get("attachments")):
            return {"ok": False, "error": "no_text"}
        thread = body.get("thread_ts")
        if thread is not None and thread not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        n = next(self._ts)
        ts = f"{1_700_000_000 + n}.{n:06d}"
        self.messages[ts] = {
            "channel": channel,
            "ts": ts,
            "thread_ts": thread,
            "updated": 0,
            **_content(body),
        }
        return {"ok": True, "channel": channel, "ts": ts, "message": {"type": "message", "ts": ts}}

    def _update(self, body: JsonObject) -> JsonObject:
        channel, ts = body.get("channel"), body.get("ts")
        if channel not in self.channels.values():
            return {"ok": False, "error": "channel_not_found"}
        message = self.messages.get(str(ts))
        if message is None or message["channel"] != channel:
            return {"ok": False, "error": "message_not_found"}
        message.update(_content(body), updated=message["updated"] + 1)
        return {"ok": True, "channel": channel, "ts": ts, "text": message["text"]}


def _content(body: JsonObject) -> JsonObject:
    return {key: body.get(key) for key in ("text", "attachments", "blocks")}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: SlackStandIn


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded calls are the log."""

    def do_POST(self) -> None:
        standin = cast(_Server, self.server).standin
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        path = urlsplit(self.path).path
        if path == WEBHOOK_PATH:
            method = WEBHOOK
        elif path.startswith("/api/"):
            method = path.removeprefix("/api/")
        else:
            self._send(404, "no_service", "text/plain")
            return
        try:
            body = json.loads(raw) if raw.lstrip().startswith("{") else dict(parse_qsl(raw))
        except ValueError:
            self._send(200, json.dumps({"ok": False, "error": "invalid_json"}), "application/json")
            return
        scheme, _, credential = (self.headers.get("Authorization") or "").partition(" ")
        bearer = credential.strip() if scheme.lower() == "bearer" and credential.strip() else None
        token = bearer or body.pop("token", None)  # a form body may carry it; it is never recorded
        status, answer, retry_after = standin._answer(method, body, token)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if method == WEBHOOK:  # incoming webhooks answer plain text: "ok" or the error code
            self._send(status, "ok" if answer.get("ok") else str(answer["error"]), "text/plain", headers)
        else:
            self._send(status, json.dumps(answer), "application/json; charset=utf-8", headers)

    def _send(
        self, status: int, text: str, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
