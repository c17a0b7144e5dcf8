"""Total deadlines for outbound calls: connect plus every read, whatever the client library.

Owns cutting off a service that answers too slowly. Per-read timeouts (what urllib3, requests,
urllib and smtplib offer) do not bound a receiver that drips its answer a byte at a time; this
module does, for every library at once, without touching their code:

- ``within(seconds)`` opens a scope on the calling thread and arms a timer;
- every connection the thread makes inside a scope becomes the thread's: plain sockets are
  noticed through Python's ``socket.connect`` audit event (PEP 578), TLS sockets through
  ``ssl.SSLContext.sslsocket_class`` (the documented way to have ``wrap_socket`` return a
  subclass); a connection begun after the deadline is refused with ``TimeoutError``;
- when the timer fires, every live connection of the thread is shut down: the blocked read
  returns at once and the library raises its own error, or returns what it had read, which is why
  the caller treats any expired scope as a cut-off (``Scope.expired``);
- connections outlive their scope, so a keep-alive connection is reused by the thread's next
  call, and is covered by that call's deadline in turn.

So a connection must only ever be used by the thread that made it: clients used inside a scope
keep their connection pools per thread (``common.settings.PerSettings(..., per_thread=True)``) or
connect per call. A client whose pool is shared between threads (the Kubernetes client) is used
outside scopes, or inside ``suspended()``: its connections are never the thread's, and it keeps
its own timeouts.

It makes no call of its own and knows nothing of services: ``common.runtime`` opens the scope
around an integration's ``report``.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

MAX_CONNECTIONS = 64
"""Live connections remembered per thread; pools keep far fewer."""

_local = threading.local()


class Scope:
    """One deadline on one thread."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._connections: _Connections = _thread_connections()

    def expire(self) -> None:
        with self._lock:
            self.expired = True
        self._connections.shut_all()

    def check(self) -> None:
        """Refuse a new connection once the deadline has passed."""
        with self._lock:
            if self.expired:
                raise TimeoutError(f"the total deadline of {self.seconds:g}s has passed")


class _Connections:
    """The live sockets one thread made inside scopes (weakly held: closing or dropping one is enough)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[weakref.ref[socket.socket]] = []

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets = [ref for ref in self._sockets if _live(ref())][-MAX_CONNECTIONS:]
            self._sockets.append(weakref.ref(sock))

    def shut_all(self) -> None:
        with self._lock:
            sockets = [sock for ref in self._sockets if (sock := ref()) is not None and _live(sock)]
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def within(seconds: float) -> Iterator[Scope]:
    """Run the block with the thread's connections cut off ``seconds`` after it starts."""
    _install()
    scope = Scope(seconds)
    outer = getattr(_local, "scope", None)
    _local.scope = scope
    timer = threading.Timer(seconds, scope.expire)
    timer.daemon = True
    timer.start()
    try:
        yield scope
    finally:
        timer.cancel()
        _local.scope = outer


@contextmanager
def suspended() -> Iterator[None]:
    """Run the block outside the thread's scope: its connections are not the thread's and are
    never cut (for a client whose pool other threads share; it keeps its own timeouts)."""
    outer = getattr(_local, "scope", None)
    _local.scope = None
    try:
        yield
    finally:
        _local.scope = outer


def _thread_connections() -> _Connections:
    connections: _Connections | None = getattr(_local, "connections", None)
    if connections is None:
        connections = _local.connections = _Connections()
    return connections


def _live(sock: socket.socket | None) -> bool:
    return sock is not None and sock.fileno() != -1


def _noticed(sock: socket.socket) -> None:
    scope: Scope | None = getattr(_local, "scope", None)
    if scope is None:
        return
    scope.check()
    _thread_connections().add(sock)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect" and isinstance(args[0], socket.socket):
        _noticed(args[0])


class _NoticedSSLSocket(ssl.SSLSocket):
    """``ssl.SSLSocket`` that makes itself the thread's connection (the plain socket it wraps is
    detached by ``wrap_socket`` and can no longer be shut down)."""

    @classmethod
    def _create(cls, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        created: ssl.SSLSocket = super()._create(*args, **kwargs)  # type: ignore[misc]
        if getattr(_local, "scope", None) is not None:
            _thread_connections().add(created)
        return created


_installed = False
_install_lock = threading.Lock()


def _install() -> None:
    """Add the audit hook (cheap: one string comparison per audited event) and the TLS socket
    class, once per process; neither can be removed, neither changes what sockets do."""
    global _installed  # noqa: PLW0603
    with _install_lock:
        if not _installed:
            sys.addaudithook(_audit)
            ssl.SSLContext.sslsocket_class = _NoticedSSLSocket
            _installed = True
