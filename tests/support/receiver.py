"""A loopback HTTP(S) receiver for webhook and CloudEvent tests.

Records every accepted connection (before any byte is read, so "no connection" means nothing was
sent), the TLS server name asked for, and every request. Answers are scripted with ``answer``;
``hang`` makes the next request wait, unanswered, until the receiver closes.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address, IPv6Address, ip_address
from types import TracebackType
from typing import Any, Self

import pytest

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hang: bool = False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], receiver: Receiver) -> None:
        self.receiver = receiver
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        self.receiver.count_connection()
        if self.receiver.tls is not None:
            sock = self.receiver.tls.wrap_socket(sock, server_side=True)  # failures drop the connection
        return sock, address


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        receiver = self.server.receiver
        answer = receiver.record(
            Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        if answer.hang:
            receiver.released.wait()
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class Receiver:
    """``with Receiver() as r:`` serves on ``r.url`` (127.0.0.1, a free port) until the block ends."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.requests: list[Received] = []
        self.connections = 0
        self.server_names: list[str | None] = []
        self.released = threading.Event()
        self._answers: deque[Answer] = deque()
        self._lock = threading.Lock()
        if tls is not None:
            tls.sni_callback = self._record_server_name
        self._server = _Server((host, 0), self)
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/hook"

    def answer(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        """Answer the next unanswered request this way (then 200 again)."""
        with self._lock:
            self._answers.append(Answer(status, headers or {}, body))

    def hang(self) -> None:
        """Leave the next request unanswered until the receiver closes."""
        with self._lock:
            self._answers.append(Answer(hang=True))

    def count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def record(self, request: Received) -> Answer:
        with self._lock:
            self.requests.append(request)
            return self._answers.popleft() if self._answers else Answer()

    def _record_server_name(self, _: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
        with self._lock:
            self.server_names.append(name)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def free_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spy_connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record the address of every outgoing TCP connection attempt in this process from now on."""
    attempts: list[Any] = []
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


def fake_resolver(names: dict[str, list[str]]) -> Callable[[str, int], list[IPAddress]]:
    """A stand-in for ``common.targets.resolve``: ``names`` answer, anything else fails like NXDOMAIN."""

    def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ip_address(address) for address in names[host]]

    return resolve
