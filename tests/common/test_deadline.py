"""Total deadlines: a server that drips its answer is cut off, whatever client library reads it."""

from __future__ import annotations

import http.client
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import urllib3

from common import deadline
from tests.support.tls import make_certificates

DRIP = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000
"""An answer whose header never ends: each byte comes well within any per-read timeout."""
BYTE_EVERY = 0.02
"""Seconds between two dripped bytes: 10,000 bytes would take minutes."""


@dataclass
class DrippingServer:
    """Accepts connections and drips ``answer`` to each, a byte at a time, until cut off."""

    answer: bytes = DRIP
    tls: ssl.SSLContext | None = None
    finished: list[bool] = field(default_factory=list)
    """One entry per connection: ``True`` if the whole answer went out, ``False`` if it was cut off."""
    cut_off: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with suppress(OSError):
            while not self._stop.is_set():
                connection, _ = self.listener.accept()
                threading.Thread(target=self._drip, args=(connection,), daemon=True).start()

    def _drip(self, connection: socket.socket) -> None:
        stream = connection
        with closing(connection):
            try:
                if self.tls is not None:
                    stream = self.tls.wrap_socket(connection, server_side=True)
                for byte in self.answer:
                    stream.sendall(bytes([byte]))
                    if self._stop.wait(BYTE_EVERY):
                        return
            except OSError:
                self.finished.append(False)
                self.cut_off.set()
                return
            finally:
                stream.close()
            self.finished.append(True)

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


@pytest.fixture
def server() -> Iterator[DrippingServer]:
    dripping = DrippingServer()
    yield dripping
    dripping.close()


def cut_off_within(seconds: float, call: Callable[[], object]) -> bool:
    """Run ``call`` under a deadline; whether the deadline expired. A cut-off call raises or returns
    what it had read (http.client takes the end of the stream for the end of the headers), which is
    why the runtime treats any expired call as not done."""
    with deadline.within(seconds) as scope, suppress(Exception):
        call()
    return scope.expired


def test_urllib3_reading_a_dripping_answer_is_cut_off(server: DrippingServer) -> None:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", server.port, timeout=urllib3.Timeout(connect=2, read=2))
    assert cut_off_within(0.3, lambda: pool.urlopen("GET", "/", retries=False))
    assert server.cut_off.wait(5), "the server saw its connection shut down"
    assert server.finished == [False]


def test_requests_reading_a_dripping_answer_is_cut_off(server: DrippingServer) -> None:
    with requests.Session() as session:
        assert cut_off_within(0.3, lambda: session.get(f"http://127.0.0.1:{server.port}/", timeout=2))
    assert server.cut_off.wait(5)
    assert server.finished == [False]


def test_a_tls_connection_is_cut_off_too(tmp_path: Path) -> None:
    certificates = make_certificates(tmp_path, "localhost")
    dripping = DrippingServer(tls=certificates.server_context())
    try:
        client = ssl.create_default_context(cafile=str(certificates.ca_file))
        connection = http.client.HTTPSConnection("localhost", dripping.port, timeout=2, context=client)

        def get() -> None:
            connection.request("GET", "/")
            connection.getresponse()

        assert cut_off_within(0.5, get)
        assert dripping.cut_off.wait(5)
        connection.close()
    finally:
        dripping.close()


def test_an_smtp_relay_that_drips_its_greeting_is_cut_off() -> None:
    dripping = DrippingServer(answer=b"220-" + b"x" * 10_000)
    try:
        assert cut_off_within(0.3, lambda: smtplib.SMTP("127.0.0.1", dripping.port, timeout=2))
        assert dripping.cut_off.wait(5)
    finally:
        dripping.close()


def test_a_call_that_finishes_in_time_is_untouched(server: DrippingServer) -> None:
    quick = DrippingServer(answer=b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
    try:
        pool = urllib3.HTTPConnectionPool("127.0.0.1", quick.port, timeout=2)
        with deadline.within(30) as scope:
            answer = pool.urlopen("GET", "/", retries=False)
        assert answer.status == 204
        assert not scope.expired
    finally:
        quick.close()


def test_a_kept_alive_connection_is_cut_in_a_later_scope(server: DrippingServer) -> None:
    """A pooled connection made under one deadline and reused under the next is cut at the next."""
    with deadline.within(30):
        connection = socket.create_connection(("127.0.0.1", server.port))
    with closing(connection):
        assert connection.recv(1) == b"H", "the connection outlives its scope: it can be reused"
        with deadline.within(0.2) as later:
            connection.settimeout(5)
            with suppress(OSError):
                while connection.recv(100):
                    pass
        assert later.expired
    assert server.cut_off.wait(5)
    assert server.finished == [False]


def test_a_connection_begun_after_the_deadline_is_refused(server: DrippingServer) -> None:
    with deadline.within(0.05) as scope:
        dripping = socket.create_connection(("127.0.0.1", server.port))
        with closing(dripping):
            with suppress(OSError):
                while dripping.recv(100):
                    pass
            assert scope.expired
            with pytest.raises(TimeoutError, match="total deadline"):
                socket.create_connection(("127.0.0.1", server.port))


def test_connections_made_while_suspended_are_never_cut(server: DrippingServer) -> None:
    """The Kubernetes client's pool is shared between threads: its connections are nobody's."""
    with deadline.within(0.2) as scope:
        with deadline.suspended():
            shared = socket.create_connection(("127.0.0.1", server.port))
        with closing(socket.create_connection(("127.0.0.1", server.port))) as mine:
            mine.settimeout(5)
            with suppress(OSError):
                while mine.recv(100):
                    pass
    assert scope.expired
    with closing(shared):
        shared.settimeout(5)
        assert shared.recv(1), "still open"


def test_other_threads_are_not_affected(server: DrippingServer) -> None:
    outside: list[socket.socket] = []

    def connect_elsewhere() -> None:
        outside.append(socket.create_connection(("127.0.0.1", server.port)))

    with deadline.within(0.2) as scope:
        thread = threading.Thread(target=connect_elsewhere)
        thread.start()
        thread.join()
        with closing(socket.create_connection(("127.0.0.1", server.port))) as mine:
            mine.settimeout(5)
            with suppress(OSError):
                while mine.recv(100):
                    pass
    assert scope.expired
    with closing(outside[0]) as theirs:
        theirs.settimeout(5)
        assert theirs.recv(1), "a connection another thread opened keeps going"
