"""Fault matrix for the GitHub function: each failure class gets the right answer and condition,
and nothing is lost (a retryable answer always leaves the run recordable on redelivery)."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from common import samples
from common.errors import ConflictError, KubernetesUnavailableError, RunNotFoundError
from common.runclient import MemoryRunClient, RunRef
from common.standins.github import GitHubStandIn
from tests.conftest import Deliver, add_run, body, function_client


def condition(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    record = json.loads(kube.runs[ref]["metadata"]["annotations"]["github.integrations.tekton.dev/status"])
    first: dict[str, Any] = record["conditions"][0]
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
        "not-found": (("get",), RunNotFoundError("gone")),
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
