"""What every test stand-in shares: serving its request handler on 127.0.0.1 from a thread while it
is used as a context manager. The stand-in is the server's ``standin``, for its handler to reach.

Most stand-ins use :class:`LoopbackHandler`: it reads each request into a :class:`Request`, hands
it to the stand-in's :meth:`LoopbackStandIn.serve` and sends the :class:`Reply` it gets back. The
REST stand-ins (Gerrit, GitLab, Jira) keep their scripted faults in a :class:`FaultQueue`.
"""

from __future__ import annotations

import fnmatch
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self, TypeVar, cast
from urllib.parse import parse_qs, urlsplit


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    standin: Any


@dataclass(frozen=True)
class Request:
    """One request as the handler read it."""

    method: str
    target: str
    """The request target as sent: the path and query, still URL-encoded."""
    headers: Message
    body: bytes
    """The body, ``Content-Length`` bytes of it."""

    @property
    def path(self) -> str:
        """The path as sent (still URL-encoded), without the query string."""
        return urlsplit(self.target).path

    @property
    def query_string(self) -> str:
        return urlsplit(self.target).query

    @property
    def query(self) -> dict[str, str]:
        """The query's parameters without blank ones; the last value of a repeated one wins."""
        return {name: values[-1] for name, values in parse_qs(self.query_string).items()}

    def json(self, invalid: Any = None) -> Any:
        """The body decoded as JSON: ``None`` without a body, ``invalid`` when it is not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return invalid

    def echo(self, *names: str) -> str:
        """Every value of the headers ``names``, as ``name: value`` joined by ``; `` (what a
        misbehaving proxy repeats on its error page)."""
        return "; ".join(f"{name}: {value}" for name in names for value in self.headers.get_all(name) or ())


@dataclass
class Reply:
    """What a stand-in answers; see :meth:`LoopbackHandler.send`."""

    status: int
    body: Any = None
    """JSON, text (sent as it is) or ``None`` (no body and no ``Content-Type``)."""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    """Instead of the stand-in's ``text_type`` or ``json_type``."""
    chunks: list[bytes] | None = None
    """The body, sent with ``Transfer-Encoding: chunked`` a chunk each, instead of ``body``."""
    dropped: bool = False
    """Carried out, but the connection is closed instead of answering (a lost answer)."""


def proxy_page(echo: str, status: int) -> str:
    """A misbehaving proxy's error page repeating ``echo`` (the request's credential)."""
    return f"{echo} -- {status} upstream error"


class LoopbackStandIn:
    """Base of a stand-in: subclasses answer :meth:`serve`, or name their own ``handler``."""

    handler: ClassVar[type[BaseHTTPRequestHandler]]
    server: ClassVar[type[LoopbackServer]] = LoopbackServer
    methods: ClassVar[tuple[str, ...]] = ("GET", "POST")
    """What :class:`LoopbackHandler` serves; any other method is 501, as the standard library answers."""
    text_type: ClassVar[str] = "text/plain; charset=utf-8"
    json_type: ClassVar[str] = "application/json; charset=utf-8"
    _server: LoopbackServer | None = None
    _serving: threading.Thread | None = None

    def __enter__(self) -> Self:
        server = self.server(("127.0.0.1", 0), self.handler)
        server.standin = self
        self._server = server
        self._serving = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-server",
            daemon=True,
        )
        self._serving.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._serving is not None:
            self._serving.join(timeout=5)
        self._server = self._serving = None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``, while the stand-in runs."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def serve(self, request: Request) -> Reply:
        """The answer to ``request`` (called on the server's threads)."""
        raise NotImplementedError


class LoopbackHandler(BaseHTTPRequestHandler):
    """Reads a request, asks the stand-in's :meth:`LoopbackStandIn.serve` and sends its reply."""

    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall
    protocol_version = "HTTP/1.1"
    timeout = 30

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded calls are the log (and a request line may hold a credential)."""

    def _handle(self) -> None:
        standin = cast(LoopbackStandIn, cast(LoopbackServer, self.server).standin)
        if self.command not in standin.methods:
            self.send_error(501, f"Unsupported method ({self.command!r})")
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        reply = standin.serve(Request(self.command, self.path, self.headers, raw))
        if reply.dropped:
            self.close_connection = True  # carried out; its answer is lost
            return
        self.send(standin, reply)

    def send(self, standin: LoopbackStandIn, reply: Reply) -> None:
        """The status, ``Content-Type`` (when there is a body), the reply's headers, then the body
        with its ``Content-Length`` (or in chunks)."""
        text = isinstance(reply.body, str)
        payload = b"" if reply.body is None else (reply.body if text else json.dumps(reply.body)).encode()
        self.send_response(reply.status)
        if reply.body is not None or reply.chunks is not None:
            self.send_header(
                "Content-Type", reply.content_type or (standin.text_type if text else standin.json_type)
            )
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.chunks is None:
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in reply.chunks:
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


LoopbackStandIn.handler = LoopbackHandler


@dataclass
class Fault:
    """A scripted answer for the next ``remaining`` requests that ``method`` and ``path`` match."""

    status: int
    remaining: int
    headers: dict[str, str]
    body: Any
    method: str | None
    path: str | None
    """An ``fnmatch`` pattern over the path as sent."""
    echo: bool = False
    """Repeat the request's credential (:func:`proxy_page`) instead of ``body``."""
    as_json: bool = False
    """With ``echo``: the page inside the service's JSON error, not plain text."""
    after_acting: bool = False
    """Serve the request, then answer this fault instead (an answer lost behind a proxy)."""


class FaultQueue:
    """Scripted faults in the order they were added; use under the stand-in's lock."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching the request, counted down (and dropped once used up)."""
        for fault in self._faults:
            if _matches(method, path, fault.method, fault.path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None


class Recorded(Protocol):
    """A recorded call: its method and its path as sent."""

    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str: ...


RecordedT = TypeVar("RecordedT", bound=Recorded)


def matching(calls: Iterable[RecordedT], method: str | None, path: str | None) -> list[RecordedT]:
    """The calls made with ``method`` to a path the ``fnmatch`` pattern ``path`` matches (None: any)."""
    return [call for call in calls if _matches(call.method, call.path, method, path)]


def _matches(method: str, path: str, method_wanted: str | None, path_pattern: str | None) -> bool:
    return method_wanted in (None, method) and (
        path_pattern is None or fnmatch.fnmatchcase(path, path_pattern)
    )
