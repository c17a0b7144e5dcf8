"""Total deadlines for outbound calls: connect plus every read, whatever the client library.

Owns cutting off a service that answers too slowly. Per-read timeouts (what urllib3, requests,
urllib and smtplib offer) do not bound a receiver that drips its answer a byte at a time; this
module does, for every library at once, without touching their code:

- ``within(seconds)`` opens a scope on the calling thread and arms a timer;
- every socket the thread connects inside the scope is noticed through Python's ``socket.connect``
  audit event (PEP 578), so plain and TLS connections of any client are covered; a connection
  begun after the deadline is refused with ``TimeoutError``;
- when the timer fires, those sockets are shut down: the blocked read returns at once and the
  library raises its own connection error, which the caller turns into a temporary error
  (``Scope.expired`` says the deadline, not the service, ended the call);
- when the scope ends, its connections are shut down too, so a pooled keep-alive connection
  opened here is never reused by a later call outside any deadline.

It makes no call of its own and knows nothing of services: ``common.runtime`` opens the scope
around an integration's ``report``.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

_local = threading.local()


class Scope:
    """The connections one thread opened under one deadline."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._sockets: list[tuple[socket.socket, int, Any]] = []
        self._closed = False

    def opened(self, sock: socket.socket, address: Any) -> None:
        """Note a connection about to be made; refuse it once the deadline has passed."""
        with self._lock:
            if self.expired:
                raise TimeoutError(f"the total deadline of {self.seconds:g}s has passed")
            if not self._closed:
                self._sockets.append((sock, sock.fileno(), address))

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock, fd, address in sockets:
            _shut(sock, fd, address)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
        for sock, fd, address in sockets:
            _shut(sock, fd, address)


@contextmanager
def within(seconds: float) -> Iterator[Scope]:
    """Run the block with every connection it opens cut off ``seconds`` after it starts."""
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
        scope.close()


def _shut(sock: socket.socket, fd: int, address: Any) -> None:
    """Shut the connection down (both directions), even after TLS took over its descriptor.

    ``ssl`` detaches the plain socket it wraps, keeping the descriptor: then a duplicate of the
    descriptor is shut down instead, provided it still leads to the same peer (it may have been
    closed and its number reused meanwhile).
    """
    with suppress(OSError):
        if sock.fileno() != -1:
            sock.shutdown(socket.SHUT_RDWR)
            return
        if fd < 0:
            return
        duplicate = socket.socket(fileno=_dup(fd))
        try:
            if duplicate.getpeername()[:2] == tuple(address)[:2]:
                duplicate.shutdown(socket.SHUT_RDWR)
        finally:
            duplicate.close()


def _dup(fd: int) -> int:
    import os  # noqa: PLC0415 -- only on the rare path of a TLS connection cut off

    return os.dup(fd)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect":
        return
    scope: Scope | None = getattr(_local, "scope", None)
    if scope is not None and isinstance(args[0], socket.socket):
        scope.opened(args[0], args[1])


_installed = False
_install_lock = threading.Lock()


def _install() -> None:
    """Add the audit hook once per process (hooks cannot be removed; this one is a cheap test)."""
    global _installed  # noqa: PLW0603
    with _install_lock:
        if not _installed:
            sys.addaudithook(_audit)
            _installed = True
