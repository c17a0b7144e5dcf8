"""Serve a function with the real server (``functions-framework`` → gunicorn) and observe it.

Owns: starting the process on a free loopback port, timing process start to the first answered
event, finding the gunicorn worker, reading resident memory from ``/proc``, and stopping the
process it started (by its own pid only).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from benchmarks.paths import REPO, child_env, functions_framework_command
from benchmarks.workload import Request

START_TIMEOUT = 60.0
"""Seconds a server may take to answer its first event before the benchmark gives up."""
POLL_SECONDS = 0.002
"""Pause between connection attempts while the server is not yet listening."""


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    started: float
    """``time.perf_counter()`` just before the process was started."""
    log_path: Path
    log: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def log_text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@dataclass(frozen=True)
class Answer:
    seconds: float
    """Seconds from the start of the process (or of the request) to the end of the answer."""
    status: int
    body: bytes


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(source: Path, log_path: Path, env: Mapping[str, str] | None = None) -> Served:
    """Start ``functions-framework --source <source> --target handle --signature-type cloudevent``."""
    port = free_port()
    command = [
        *functions_framework_command(),
        "--source",
        str(source),
        "--target",
        "handle",
        "--signature-type",
        "cloudevent",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = log_path.open("wb")
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=child_env(env), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return Served(process, port, started, log_path, log)


def post(port: int, request: Request, timeout: float = 30.0) -> Answer:
    """POST one event on a fresh connection; ``seconds`` is the request's own duration."""
    headers, body = request
    began = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return Answer(time.perf_counter() - began, response.status, data)
    finally:
        connection.close()


def first_answer(served: Served, request: Request) -> Answer:
    """Post ``request`` as soon as the server accepts connections; time from process start.

    gunicorn's master binds the socket before it forks the worker, so an early connection waits
    in the backlog and the figure includes the worker's start.
    """
    deadline = served.started + START_TIMEOUT
    while True:
        try:
            answer = post(served.port, request, timeout=START_TIMEOUT)
        except ConnectionRefusedError:
            if served.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited before answering:\n{served.log_text()[-2000:]}"
                ) from None
            if time.perf_counter() > deadline:
                raise RuntimeError(
                    f"no answer within {START_TIMEOUT} s:\n{served.log_text()[-2000:]}"
                ) from None
            time.sleep(POLL_SECONDS)
            continue
        return Answer(time.perf_counter() - served.started, answer.status, answer.body)


def worker_pids(served: Served) -> list[int]:
    """The gunicorn workers: the server's child processes."""
    master = served.process.pid
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == master:
            children.append(int(entry.name))
    return sorted(children)


def rss_kb(pid: int) -> int:
    """``VmRSS`` of ``pid`` in kB."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def private_kb(pid: int) -> int:
    """Memory of ``pid`` that no other process shares (``Private_Clean`` + ``Private_Dirty`` in kB):
    what a gunicorn worker adds to its pod on top of the master it was forked from."""
    total = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii").splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            total += int(line.split()[1])
    return total


def worker_private_kb(served: Served) -> int:
    return sum(private_kb(pid) for pid in worker_pids(served))


def worker_rss_kb(served: Served) -> int:
    """Resident memory of the (single) gunicorn worker, which handles the events."""
    pids = worker_pids(served)
    if not pids:
        raise RuntimeError(f"no gunicorn worker found under pid {served.process.pid}")
    return sum(rss_kb(pid) for pid in pids)


def stop(served: Served) -> None:
    """Stop the server gracefully (SIGTERM to the gunicorn master), then make sure it is gone."""
    process = served.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # our own session: the master and its worker
            process.wait()
    served.log.close()
