"""Why the Knative Services probe over TCP, and that each function starts with its Service's env.

functions-framework mounts a CloudEvent function on POST only: GET / (and any other GET) answers
405, which an httpGet probe counts as a failure. So the probes connect to the port instead.
The server is started exactly as the image's CMD starts it, on a loopback port, with the
environment the function's Knative Service sets (minus the mounted secrets and policy).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests import FUNCTIONS, env_of, service_file
from tests.support.tiers import REPO_ROOT

TRIVIAL = """
import functions_framework


@functions_framework.cloud_event
def handle(event):
    return None
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def http_status(method: str, port: int, path: str = "/") -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as e:
        return e.code


def post_event(port: int) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/",
        data=b"{}",
        method="POST",
        headers={
            "ce-id": "probe-test",
            "ce-source": "/tests/deploy",
            "ce-type": "dev.example.not-tekton",
            "ce-specversion": "1.0",
            "content-type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as e:
        return e.code


def service_env(name: str) -> dict[str, str]:
    """The literal environment the function's Knative Service sets (no Secret/ConfigMap refs)."""
    service = yaml.safe_load(service_file(name).read_text())
    return {k: v["value"] for k, v in env_of(service).items() if "value" in v}


@contextmanager
def serve(cwd: Path, env: dict[str, str], port: int) -> Iterator[subprocess.Popen[str]]:
    """functions-framework as the image's CMD runs it, on ``port``; stopped with SIGTERM."""
    executable = Path(sys.executable).parent / "functions-framework"
    process = subprocess.Popen(
        [str(executable), "--signature-type", "cloudevent"],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", ""), **env, "PORT": str(port), "GUNICORN_LOG_LEVEL": "info"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    watchdog = threading.Timer(30, process.kill)  # a server that never says it listens is stopped
    watchdog.start()
    seen: list[str] = []
    started = False
    try:
        for line in process.stdout:  # gunicorn says when it listens: read it, no polling
            seen.append(line)
            if "Listening at" in line:
                started = tcp_open(port)
                break
        watchdog.cancel()
        if started:
            yield process
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            output = "".join(seen) + process.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            output = "".join(seen) + process.communicate()[0]
    if not started:
        pytest.fail(f"functions-framework did not listen on port {port}:\n{output[-3000:]}")


@pytest.fixture
def trivial_function(tmp_path: Path) -> Iterator[int]:
    (tmp_path / "functions" / "probe").mkdir(parents=True)
    (tmp_path / "functions" / "probe" / "main.py").write_text(TRIVIAL)
    env = service_env("github") | {"FUNCTION_SOURCE": "functions/probe/main.py"}
    port = free_port()
    with serve(tmp_path, env, port):
        yield port


def test_http_get_probes_would_fail_and_tcp_probes_pass(trivial_function: int) -> None:
    port = trivial_function
    assert tcp_open(port), "a tcpSocket probe succeeds"
    for path in ("/", "/healthz", "/ready"):
        assert http_status("GET", port, path) == 405, f"GET {path}: an httpGet probe would fail"
    assert post_event(port) == 200, "the function itself answers POSTed CloudEvents"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_starts_with_its_service_environment(name: str) -> None:
    # The Dockerfile's WORKDIR is site-packages, which holds common/ and functions/ as the repo
    # root does: run from the repo root with the Service's FUNCTION_SOURCE, THREADS, TMPDIR...
    port = free_port()
    with serve(REPO_ROOT, service_env(name), port):
        assert tcp_open(port)
        assert http_status("GET", port) == 405
