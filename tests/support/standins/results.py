"""A loopback stand-in for Tekton Results' log API (v1alpha2 ``GetLog``).

``GET /apis/results.tekton.dev/v1alpha2/parents/<namespace>/results/<uid>/logs/<uid>`` answers the
log stored under that name as Results' gRPC gateway streams it: the TaskRun's whole log as ``tkn``
writes it (``[<step>] <line>`` for each line of each step), in chunks, each followed by a newline.
``answer`` makes every request fail with that status instead; ``requests`` keeps each request's path
and ``Authorization`` header.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, cast

from tests.support.standins.loopback import LoopbackServer, LoopbackStandIn

PREFIX = "/apis/results.tekton.dev/v1alpha2/parents/"
CHUNK = 32 * 1024
"""What Results' log streamer sends at once (``log.DefaultBufferSize``)."""


class ResultsStandIn(LoopbackStandIn):
    """Results' log API on ``127.0.0.1``; use with ``with``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.logs: dict[str, dict[str, list[str]]] = {}
        """Log name -> step name -> lines."""
        self.answer: int | None = None
        self.requests: list[tuple[str, str | None]] = []

    def store(self, name: str, steps: dict[str, list[str]]) -> None:
        """Keep a TaskRun's log under ``name`` (``<namespace>/results/<uid>/logs/<uid>``)."""
        with self.lock:
            self.logs[name] = steps


class _Server(LoopbackServer):
    standin: ResultsStandIn


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on ``requests``."""

    def do_GET(self) -> None:
        standin = cast(_Server, self.server).standin
        with standin.lock:
            standin.requests.append((self.path, self.headers.get("Authorization")))
        name = self.path.removeprefix(PREFIX) if self.path.startswith(PREFIX) else None
        steps = standin.logs.get(name) if name is not None else None
        if standin.answer is not None or steps is None:
            status = standin.answer or 404
            body = json.dumps({"code": 5 if status == 404 else 13, "message": "log not found"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        text = "".join(f"[{step}] {line}\n" for step, lines in steps.items() for line in lines).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(text), CHUNK):
            piece = text[start : start + CHUNK] + b"\n"  # the gateway's delimiter after each message
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


ResultsStandIn.handler = _Handler
ResultsStandIn.server = _Server
