"""A loopback stand-in for Tekton Results' log API (v1alpha2 ``GetLog``).

``GET /apis/results.tekton.dev/v1alpha2/parents/<namespace>/results/<uid>/logs/<uid>`` answers the
log stored under that name as Results' gRPC gateway streams it: the TaskRun's whole log as ``tkn``
writes it (``[<step>] <line>`` for each line of each step), in chunks, each followed by a newline.
``answer`` makes every request fail with that status instead; ``requests`` keeps each request's path
and ``Authorization`` header.
"""

from __future__ import annotations

import threading

from tests.support.standins.loopback import LoopbackStandIn, Reply, Request

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

    methods = ("GET",)
    json_type = "application/json"

    def serve(self, request: Request) -> Reply:
        with self.lock:
            self.requests.append((request.target, request.headers.get("Authorization")))
        path = request.target
        name = path.removeprefix(PREFIX) if path.startswith(PREFIX) else None
        steps = self.logs.get(name) if name is not None else None
        if self.answer is not None or steps is None:
            status = self.answer or 404
            return Reply(status, {"code": 5 if status == 404 else 13, "message": "log not found"})
        text = "".join(f"[{step}] {line}\n" for step, lines in steps.items() for line in lines).encode()
        # the gateway's delimiter after each message
        chunks = [text[start : start + CHUNK] + b"\n" for start in range(0, len(text), CHUNK)]
        return Reply(200, chunks=chunks, content_type="text/plain")
