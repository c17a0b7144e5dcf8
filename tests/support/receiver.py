"""A loopback HTTP(S) receiver for webhook and CloudEvent tests.

Records every accepted connection (before any byte is read, so "no connection" means nothing was
sent), the TLS server name asked for, and every request. Answers are scripted, one per request,
in order (then 200 again):

- ``answer``: a status, headers and body; with ``echo``, the body also echoes the request line
  and every request header, as some receivers' and proxies' error pages do;
- ``hang``: the request waits, unanswered, until the receiver closes;
- ``hold``: the request waits until the test sets the returned event, then gets 200;
- ``lose``: the request is read, then the connection is closed without an answer (a lost answer);
- ``drip``: the answer's status line and headers are sent one byte at a time; ``cut_off`` is set
  when the client closes the connection before the last byte.

``post_together`` delivers events from several threads at once, as Tekton and a broker do, and
``deliver_while_the_run_moves_on`` plays the concurrency scenario of the exactly-once tests.
"""

from __future__ import annotations

import json
import queue
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address, IPv6Address, ip_address
from types import TracebackType
from typing import Any, Self, TypeVar

import pytest
from flask import Flask
from werkzeug.test import TestResponse

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
    echo: bool = False
    hang: bool = False
    gate: threading.Event | None = None
    lose: bool = False
    drip: tuple[float, int] | None = None
    """Seconds between bytes, and the length of the dripped answer."""


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
        if answer.gate is not None:
            answer.gate.wait()
        if answer.lose:
            self.close_connection = True  # read, never answered: the client sees the connection close
            return
        if answer.drip is not None:
            self._drip(*answer.drip)
            return
        content = answer.body
        if answer.echo:
            content += "".join(f"\n{line}" for line in self._request_lines()).encode()
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def _request_lines(self) -> list[str]:
        return [self.requestline, *(f"{name}: {value}" for name, value in self.headers.items())]

    def _drip(self, interval: float, length: int) -> None:
        """``HTTP/1.1 200 OK`` and one long header, ``length`` bytes in all, a byte every ``interval`` s."""
        receiver = self.server.receiver
        self.close_connection = True
        head = b"HTTP/1.1 200 OK\r\nX-Drip: "
        answer = head + b"." * max(0, length - len(head) - 4) + b"\r\n\r\n"
        for index in range(len(answer)):
            try:
                self.wfile.write(answer[index : index + 1])
            except OSError:
                receiver.cut_off.set()
                return
            with receiver.lock:
                receiver.dripped += 1
            if receiver.released.wait(interval):
                return

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
        self.cut_off = threading.Event()
        """Set when a client closed the connection while an answer was being dripped."""
        self.dripped = 0
        """Bytes of dripped answers sent."""
        self.lock = threading.Lock()
        self._answers: deque[Answer] = deque()
        self._gates: list[threading.Event] = []
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

    def answer(
        self, status: int, headers: dict[str, str] | None = None, body: bytes = b"", *, echo: bool = False
    ) -> None:
        """Answer the next unanswered request this way; ``echo`` adds its request line and headers."""
        self._script(Answer(status, headers or {}, body, echo=echo))

    def hang(self) -> None:
        """Leave the next request unanswered until the receiver closes."""
        self._script(Answer(hang=True))

    def hold(self) -> threading.Event:
        """Keep the next request waiting until the returned event is set; then answer 200."""
        gate = threading.Event()
        self._gates.append(gate)
        self._script(Answer(gate=gate))
        return gate

    def lose(self) -> None:
        """Read the next request, then close the connection without answering."""
        self._script(Answer(lose=True))

    def drip(self, interval: float, length: int) -> None:
        """Answer the next request a byte every ``interval`` seconds, ``length`` bytes in all."""
        self._script(Answer(drip=(interval, length)))

    def _script(self, answer: Answer) -> None:
        with self.lock:
            self._answers.append(answer)

    def count_connection(self) -> None:
        with self.lock:
            self.connections += 1

    def record(self, request: Received) -> Answer:
        with self.lock:
            self.requests.append(request)
            return self._answers.popleft() if self._answers else Answer()

    def _record_server_name(self, _: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
        with self.lock:
            self.server_names.append(name)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.released.set()
        for gate in self._gates:  # a test that failed before opening its gate leaves no thread behind
            gate.set()
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


Event = dict[str, Any]
Answered = TypeVar("Answered")


def post_together(post: Callable[[Event], Answered], events: list[Event]) -> Iterator[tuple[Event, Answered]]:
    """``post`` each event from a thread of its own, all at once, as Tekton and a broker do; yield
    ``(event, answer)`` pairs in the order the answers come."""
    answers: queue.Queue[tuple[Event, Answered]] = queue.Queue()
    start = threading.Barrier(len(events))

    def deliver(event: Event) -> None:
        start.wait()
        answers.put((event, post(event)))

    threads = [threading.Thread(target=deliver, args=(event,), daemon=True) for event in events]
    for thread in threads:
        thread.start()
    for _ in threads:
        yield answers.get(timeout=60)
    for thread in threads:
        thread.join()


def to_app(app: Flask) -> Callable[[Event], TestResponse]:
    """Post an event to the function ``app`` as Tekton would (binary mode)."""

    def post(event: Event) -> TestResponse:
        client = app.test_client()  # Flask test clients are not shared between threads
        return client.post("/", headers=dict(event["headers"]), data=json.dumps(event["data"]).encode())

    return post


def deliver_while_the_run_moves_on(
    post: Callable[[Event], Answered],
    events: list[Event],
    gate: threading.Event,
    move_on: Callable[[], object],
    status_of: Callable[[Answered], int],
) -> tuple[list[tuple[Event, Answered]], list[Answered]]:
    """Deliver ``events`` together while the first request to reach the receiver is held at
    ``gate`` (``Receiver.hold()``); once every other delivery has answered, ``move_on()`` (the run
    moves on) and release it. Then deliver again, all at once, every event answered 429 (as its
    sender does once ``Retry-After`` passed), until none is.

    Returns the first round's ``(event, answer)`` pairs and the answers of the redeliveries.
    """
    deliveries = post_together(post, events)
    answered = [next(deliveries) for _ in events[1:]]  # all but the one sending: none waits for it
    move_on()
    gate.set()
    answered += list(deliveries)
    redelivered: list[Answered] = []
    busy = [event for event, answer in answered if status_of(answer) == 429]
    for _ in range(len(busy)):  # each round settles at least one: the one that got the claim
        if not busy:
            break
        round_ = list(post_together(post, busy))
        redelivered += [answer for _, answer in round_]
        busy = [event for event, answer in round_ if status_of(answer) == 429]
    assert not busy, "deliveries kept being asked to come back"
    return answered, redelivered
