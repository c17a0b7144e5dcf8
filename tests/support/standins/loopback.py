"""What every test stand-in shares: serving its request handler on 127.0.0.1 from a thread while it
is used as a context manager. The stand-in is the server's ``standin``, for its handler to reach."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    standin: Any


class LoopbackStandIn:
    """Base of a stand-in: subclasses name their ``handler`` (and ``server`` class, for typing)."""

    handler: ClassVar[type[BaseHTTPRequestHandler]]
    server: ClassVar[type[LoopbackServer]] = LoopbackServer
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
