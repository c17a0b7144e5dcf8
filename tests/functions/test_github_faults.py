"""Fault matrix for the GitHub function: each failure class gets the right answer and condition,
and nothing is lost (a retryable answer always leaves the run recordable on redelivery)."""

from __future__ import annotations

import fnmatch
import http.client
import json
import socket
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest

from common import samples
from common.errors import ConflictError, KubernetesUnavailableError, RunNotFoundError
from common.http import use_run_client
from common.runclient import MemoryRunClient, RunRef
from common.standins.github import GitHubStandIn
from tests.conftest import Deliver, add_run, advance, body, function_client

RECORD = "github.integrations.tekton.dev/status"


def record(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(kube.runs[ref]["metadata"]["annotations"][RECORD])
    return stored


def condition(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    first: dict[str, Any] = record(kube, ref)["conditions"][0]
    return first


RATE_RESET = "4102444800"  # far in the future: the answer caps the wait


@pytest.mark.parametrize(
    ("status", "headers", "http", "condition_status", "reason"),
    [
        (500, {}, 503, "Unknown", "GitHubUnavailable"),
        (502, {}, 503, "Unknown", "GitHubUnavailable"),
        (503, {}, 503, "Unknown", "GitHubUnavailable"),
        (429, {"Retry-After": "17"}, 429, "Unknown", "GitHubRateLimited"),
        (429, {}, 429, "Unknown", "GitHubRateLimited"),
        (
            403,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": RATE_RESET},
            429,
            "Unknown",
            "GitHubRateLimited",
        ),
        (403, {"Retry-After": "60"}, 429, "Unknown", "GitHubRateLimited"),
        (401, {}, 200, "False", "GitHubUnauthorized"),
        (403, {}, 200, "False", "GitHubForbidden"),
        (404, {}, 200, "False", "GitHubNotFound"),
        (422, {}, 200, "False", "GitHubRejected"),
    ],
    ids=[
        "500",
        "502",
        "503",
        "429-retry-after",
        "429-bare",
        "403-primary-limit",
        "403-secondary-limit",
        "401",
        "403",
        "404",
        "422",
    ],
)
def test_service_faults(  # noqa: PLR0917 -- pytest passes fixtures and parameters positionally
    kube: MemoryRunClient,
    github: GitHubStandIn,
    deliver: Deliver,
    status: int,
    headers: dict[str, str],
    http: int,
    condition_status: str,
    reason: str,
) -> None:
    running = samples.load("pipelinerun-running")
    ref = add_run(kube, running)
    github.fail_next(status, headers=headers)
    answer = deliver(function_client("github"), running)
    assert answer.status_code == http
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == (condition_status, reason)
    assert len(github.calls) == 1, "no in-process retry loop on an HTTP answer"
    if http == 429:
        assert 1 <= int(answer.headers["Retry-After"]) <= 3600
    if http != 200:  # nothing is lost: the redelivery reports the run
        assert deliver(function_client("github"), running).status_code == 200
        assert condition(kube, ref)["status"] == "True"


def test_connection_refused_is_transient(
    kube: MemoryRunClient, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    running = samples.load("pipelinerun-running")
    ref = add_run(kube, running)
    answer = deliver(function_client("github"), running)
    assert answer.status_code == 503
    assert condition(kube, ref)["reason"] == "GitHubUnreachable"


def test_a_slow_github_times_out_as_transient(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TIMEOUT_SECONDS", "1")
    github.latency_seconds = 3.0
    running = samples.load("pipelinerun-running")
    ref = add_run(kube, running)
    answer = deliver(function_client("github"), running)
    assert answer.status_code == 503
    assert condition(kube, ref)["reason"] == "GitHubTimeout"


@pytest.mark.parametrize(
    ("error", "http", "outcome"),
    [
        ("not-found", 200, "ignored"),
        ("conflict", 503, "retry"),
        ("unavailable", 503, "retry"),
    ],
)
def test_kubernetes_faults(  # noqa: PLR0917 -- pytest passes fixtures and parameters positionally
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, error: str, http: int, outcome: str
) -> None:
    running = samples.load("pipelinerun-running")
    add_run(kube, running)
    raised = {
        "not-found": (("get", "patch"), RunNotFoundError("gone")),  # a deleted run answers 404 to all
        "conflict": (("patch",), ConflictError("stale")),
        "unavailable": (("get", "patch"), KubernetesUnavailableError("connection refused")),
    }[error]

    def fail(verb: str, _: RunRef) -> None:
        if verb in raised[0]:
            raise raised[1]

    kube.before_request = fail
    answer = deliver(function_client("github"), running)
    assert (answer.status_code, body(answer)["outcome"]) == (http, outcome)
    assert not github.check_runs, "no side effect without a claim"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/repos/*/commits/*/check-runs"),
        ("POST", "/repos/*/check-runs"),
        ("GET", "/repos/*/check-runs/*"),
        ("PATCH", "/repos/*/check-runs/*"),
    ],
    ids=["find", "create", "verify-recorded", "edit"],
)
def test_a_503_at_any_step_is_redelivered_into_one_check_run(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, method: str, path: str
) -> None:
    running, successful = samples.load("pipelinerun-running"), samples.load("pipelinerun-successful")
    ref = add_run(kube, running)
    client = function_client("github")
    github.fail_next(503, method=method, path=path)
    refused = 0
    for event in (running, successful):
        advance(kube, ref, event)
        answer = deliver(client, event)
        if answer.status_code == 503:
            refused += 1
            assert condition(kube, ref)["reason"] == "GitHubUnavailable"
            answer = deliver(client, event)  # the sender's redelivery
        assert answer.status_code == 200
    assert refused == 1
    (check_run,) = github.check_runs.values()
    assert (check_run["status"], check_run["conclusion"]) == ("completed", "success")
    assert record(kube, ref)["annotations"]["check-run-id"] == str(check_run["id"])


class ReplicaConnection:
    """Another replica's own connection to the same API server: it shares the runs, not the memory
    of the replica that served before."""

    def __init__(self, server: MemoryRunClient) -> None:
        self.server = server

    def get(self, ref: RunRef) -> dict[str, Any]:
        return self.server.get(ref)

    def patch(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self.server.patch(ref, patch)

    def patch_status(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self.server.patch_status(ref, patch)

    def record_event(self, ref: RunRef, uid: str, reason: str, message: str) -> None:
        self.server.record_event(ref, uid, reason, message)


def expire_claim(kube: MemoryRunClient, ref: RunRef) -> None:
    """Time passes: the stored claim was taken longer ago than a claim protects (120 s)."""
    stored = record(kube, ref)
    long_ago = datetime.now(UTC) - timedelta(minutes=3)
    stored["claim"]["at"] = long_ago.strftime("%Y-%m-%dT%H:%M:%SZ")
    kube.patch(ref, {"metadata": {"annotations": {RECORD: json.dumps(stored)}}})


def test_a_replica_killed_before_recording_leaves_one_check_run(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    """GitHub created the check run, then the replica died before the record was written; the
    redelivery reaches another replica once the claim expired: it finds the check run by
    ``external_id`` and edits it instead of creating a second."""
    running, successful = samples.load("pipelinerun-running"), samples.load("pipelinerun-successful")
    ref = add_run(kube, running)
    patches = 0

    def die_before_recording(verb: str, _: RunRef) -> None:
        nonlocal patches
        patches += verb == "patch"
        if verb == "patch" and patches == 2:  # the claim was written, the record never is
            raise KubernetesUnavailableError("the replica was killed")

    kube.before_request = die_before_recording
    assert deliver(function_client("github"), running).status_code == 503
    kube.before_request = None
    (created,) = github.check_runs.values()
    left = record(kube, ref)
    assert left["claim"] is not None
    assert "check-run-id" not in left["annotations"]

    use_run_client(ReplicaConnection(kube))  # the dead replica's memory is gone with it
    other = function_client("github")
    busy = deliver(other, running)
    assert (busy.status_code, body(busy)["reason"]) == (429, "Busy"), "a fresh claim is waited for"
    expire_claim(kube, ref)
    assert deliver(other, running).status_code == 200
    advance(kube, ref, successful)
    assert deliver(other, successful).status_code == 200

    (check_run,) = github.check_runs.values()
    assert check_run["id"] == created["id"]
    assert (check_run["status"], check_run["conclusion"]) == ("completed", "success")
    assert len(github.calls_to("POST", "/repos/*/check-runs")) == 1
    assert record(kube, ref)["annotations"]["check-run-id"] == str(check_run["id"])
    assert condition(kube, ref)["status"] == "True"


Losing = Literal["dropped", "held"]


class AnswerLosingProxy:
    """A loopback proxy in front of the stand-in that passes the first request matching
    ``method`` and ``path`` on to GitHub, lets it act, and loses GitHub's answer: the connection
    is closed without one (``dropped``) or held open past the caller's deadline (``held``).
    Every other request is relayed unchanged."""

    def __init__(self, upstream: str, method: str, path: str, how: Losing) -> None:
        self.upstream = urlsplit(upstream)
        self.method, self.path, self.how = method, path, how
        self.lost: list[str] = []
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> AnswerLosingProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def loses(self, method: str, path: str) -> bool:
        """Whether this request's answer is the one to lose (the first that matches)."""
        with self._lock:
            if self.lost or method != self.method or not fnmatch.fnmatchcase(path, self.path):
                return False
            self.lost.append(f"{method} {path}")
            return True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Relay(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._relay()

            def do_POST(self) -> None:
                self._relay()

            def do_PATCH(self) -> None:
                self._relay()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the stand-in records the calls."""

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length) if length else None
                headers = {
                    name: value for name, value in self.headers.items() if name.lower() != "connection"
                }
                upstream = http.client.HTTPConnection(
                    proxy.upstream.hostname or "", proxy.upstream.port, timeout=10
                )
                try:  # the Host header is kept, so GitHub's answers name the proxy in their URLs
                    upstream.request(self.command, self.path, payload, headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                if proxy.loses(self.command, urlsplit(self.path).path):
                    if proxy.how == "held":
                        proxy.released.wait(30)
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Relay


@pytest.fixture(params=["dropped", "held"])
def answer_lost(
    request: pytest.FixtureRequest, github: GitHubStandIn, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AnswerLosingProxy]:
    """GitHub creates the check run, but its answer never reaches the function."""
    how: Losing = request.param
    monkeypatch.setenv("GITHUB_TIMEOUT_SECONDS", "1")
    with AnswerLosingProxy(github.url, "POST", "/repos/*/check-runs", how) as proxy:
        monkeypatch.setenv("GITHUB_API_URL", proxy.url)
        yield proxy


def test_a_lost_answer_is_redelivered_into_one_check_run(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, answer_lost: AnswerLosingProxy
) -> None:
    running, successful = samples.load("pipelinerun-running"), samples.load("pipelinerun-successful")
    ref = add_run(kube, running)
    client = function_client("github")

    assert deliver(client, running).status_code == 503
    assert answer_lost.lost == ["POST /repos/acme/widget-service/check-runs"]
    assert len(github.check_runs) == 1, "GitHub acted on the request whose answer was lost"
    assert condition(kube, ref)["reason"] == (
        "GitHubUnreachable" if answer_lost.how == "dropped" else "GitHubTimeout"
    )

    assert deliver(client, running).status_code == 200  # the sender's redelivery
    advance(kube, ref, successful)
    assert deliver(client, successful).status_code == 200
    (check_run,) = github.check_runs.values()
    assert (check_run["status"], check_run["conclusion"]) == ("completed", "success")
    assert len(github.calls_to("POST", "/repos/*/check-runs")) == 1
    assert record(kube, ref)["annotations"]["check-run-id"] == str(check_run["id"])
