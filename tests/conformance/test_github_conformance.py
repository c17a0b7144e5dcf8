"""Every request the GitHub function sends is one GitHub's OpenAPI description accepts.

Prism (proxy mode, ``--errors``) sits between the function and the stand-in: a request that
breaks the description is refused with 422 and fails the test through ``conformant_github``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common import RunPhase, samples
from common.runclient import MemoryRunClient
from functions.github import presentation
from tests.conformance.prism import PrismGitHub
from tests.conftest import Deliver, add_run, advance, function_client
from tests.support.github_app import sign_in_as_app
from tests.support.reports import log_failed_step

REPO = "/repos/acme/widget-service"
RECORD = "github.integrations.tekton.dev/status"


def sha_of(name: str) -> str:
    _, obj = samples.run_object(samples.load(name))
    return str(obj["metadata"]["annotations"]["github.integrations.tekton.dev/sha"])


def paths(github: PrismGitHub) -> list[tuple[str, str]]:
    return [(call.method, call.path) for call in github.calls]


@pytest.mark.parametrize(
    "names",
    [
        ("pipelinerun-queued", "pipelinerun-running", "pipelinerun-successful"),
        ("pipelinerun-failed",),
        ("pipelinerun-failed-before-start",),
        ("pipelinerun-cancelled",),
    ],
    ids=["queued-running-successful", "failed", "failed-before-start", "cancelled"],
)
def test_check_run_create_and_edit_conform(
    kube: MemoryRunClient, deliver: Deliver, through_prism: PrismGitHub, names: tuple[str, ...]
) -> None:
    events = [samples.load(name) for name in names]
    ref = add_run(kube, events[0])
    client = function_client("github")
    for event in events:
        advance(kube, ref, event)
        assert deliver(client, event).status_code == 200
    (check_run,) = through_prism.check_runs.values()
    assert check_run["status"] == "completed"
    assert [call for call in paths(through_prism) if "/check-runs" in call[1]] == [
        ("GET", f"{REPO}/commits/{sha_of(names[0])}/check-runs"),  # this run's, by external_id
        ("POST", f"{REPO}/check-runs"),
    ] + [
        ("GET", f"{REPO}/check-runs/{check_run['id']}"),
        ("PATCH", f"{REPO}/check-runs/{check_run['id']}"),
    ] * (len(events) - 1)


def test_a_check_run_whose_record_was_lost_is_found_and_edited_conformantly(
    kube: MemoryRunClient, deliver: Deliver, through_prism: PrismGitHub
) -> None:
    """The lookup answers a populated list (the schema of a check run in a list is checked too)."""
    running, successful = samples.load("pipelinerun-running"), samples.load("pipelinerun-successful")
    ref = add_run(kube, running)
    client = function_client("github")
    assert deliver(client, running).status_code == 200
    del kube.runs[ref]["metadata"]["annotations"][RECORD]  # e.g. an older copy written back
    advance(kube, ref, successful)
    assert deliver(client, successful).status_code == 200
    (check_run,) = through_prism.check_runs.values()
    assert check_run["conclusion"] == "success"
    assert paths(through_prism)[-2:] == [
        ("GET", f"{REPO}/commits/{sha_of('pipelinerun-running')}/check-runs"),
        ("PATCH", f"{REPO}/check-runs/{check_run['id']}"),
    ]


def test_commit_statuses_conform(kube: MemoryRunClient, deliver: Deliver, through_prism: PrismGitHub) -> None:
    events = [samples.load("pipelinerun-running"), samples.load("pipelinerun-failed")]
    for event in events:
        _, obj = samples.run_object(event)
        obj["metadata"]["annotations"]["github.integrations.tekton.dev/mode"] = "status"
    add_run(kube, events[0])
    add_run(kube, events[1])
    client = function_client("github")
    for event in events:
        assert deliver(client, event).status_code == 200
    assert [s["state"] for s in through_prism.statuses] == ["pending", "failure"]
    assert all(method == "POST" and "/statuses/" in path for method, path in paths(through_prism))


def test_app_installation_lookup_and_token_conform(
    kube: MemoryRunClient,
    deliver: Deliver,
    through_prism: PrismGitHub,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    sign_in_as_app(monkeypatch, 1, tmp_path)
    event = samples.load("pipelinerun-running")
    add_run(kube, event)
    assert deliver(function_client("github"), event).status_code == 200
    assert paths(through_prism) == [
        ("GET", "/repos/acme/widget-service/installation"),
        ("POST", "/app/installations/42/access_tokens"),
        ("GET", f"{REPO}/commits/{sha_of('pipelinerun-running')}/check-runs"),
        ("POST", f"{REPO}/check-runs"),
    ]


def test_a_request_github_would_refuse_is_caught(
    kube: MemoryRunClient, deliver: Deliver, through_prism: PrismGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tier is not a rubber stamp: a malformed check run (bad conclusion) is refused."""

    monkeypatch.setitem(presentation.CONCLUSION, RunPhase.FAILED, "broken")
    event = samples.load("pipelinerun-failed")
    add_run(kube, event)
    answer = deliver(function_client("github"), event)
    assert answer.status_code == 200  # a 422 is permanent: recorded as False
    refused = through_prism.take_violations()
    assert [(v.method, v.path, v.code) for v in refused] == [
        ("POST", "/repos/acme/widget-service/check-runs", "UNPROCESSABLE_ENTITY")
    ]
    assert not through_prism.check_runs


def test_a_failed_runs_task_table_and_step_logs_conform(
    kube: MemoryRunClient, deliver: Deliver, through_prism: PrismGitHub
) -> None:
    """The summary's task table and the text's log lines are sent as GitHub describes the output."""
    failed = samples.load("pipelinerun-failed")
    _, run = samples.run_object(failed)
    run["metadata"]["annotations"]["github.integrations.tekton.dev/log-lines"] = "3"
    add_run(kube, failed)
    add_run(kube, samples.load("taskrun-failed"))
    log_failed_step(kube, "a", "b", "FAIL")
    assert deliver(function_client("github"), failed).status_code == 200
    (check_run,) = through_prism.check_runs.values()
    assert (
        "[`unit-tests`](https://dashboard.example.org/#/namespaces/ci/taskruns/"
        in check_run["output"]["summary"]
    )
    assert "a\nb\nFAIL" in check_run["output"]["text"]
