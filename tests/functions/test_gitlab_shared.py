"""What runs on one commit report together on GitLab: one rollup status name, one merge-request note."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from common.runclient import MemoryRunClient, RunRef
from tests.conftest import Deliver, add_run, advance, body, function_client
from tests.support.shared_runs import SHA, deliver_racing, finished_twice, leases, live, run_event
from tests.support.standins.gitlab import GitLabStandIn

TOKEN = "glpat-unit-test-token-0123456789"
PROJECT = "acme/widget-service"
ROLLUP = "tekton/all"
MR = 12
RECORD = "gitlab.integrations.tekton.dev/status"


@pytest.fixture
def gitlab(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitLabStandIn]:
    with GitLabStandIn({PROJECT: 17}, token=TOKEN) as standin:
        monkeypatch.setenv("GITLAB_URL", standin.url)
        monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
        monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org")
        standin.add_merge_request(PROJECT, MR, SHA)
        yield standin


def event(sample: str, name: str, **extra: str) -> dict[str, Any]:
    return run_event(sample, name, {"project": PROJECT, "sha": SHA, **extra}, integration="gitlab")


def in_rollup(sample: str, name: str) -> dict[str, Any]:
    return event(sample, name, rollup=ROLLUP)


def on_merge_request(sample: str, name: str) -> dict[str, Any]:
    return event(sample, name, **{"merge-request": str(MR), "comment": "true"})


def rollup_statuses(gitlab: GitLabStandIn) -> list[dict[str, Any]]:
    with gitlab.lock:
        return [dict(status) for status in gitlab.statuses if status["name"] == ROLLUP]


def record(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    return json.loads(kube.runs[ref]["metadata"]["annotations"][RECORD])


@pytest.mark.parametrize("seed", [1, 2])
def test_three_runs_delivered_concurrently_with_duplicates_leave_one_rollup_status(
    kube: MemoryRunClient, gitlab: GitLabStandIn, seed: int
) -> None:
    events = finished_twice(kube, in_rollup, seed)
    deliver_racing(kube, "gitlab", events)

    (rollup,) = rollup_statuses(gitlab)
    assert rollup["status"] == "failed"
    assert rollup["description"] == "3 runs: 2 succeeded, 1 failed"
    assert rollup["target_url"] == "https://dashboard.example.org/#/namespaces/ci/pipelineruns/lint"


def test_the_rollup_status_runs_until_every_run_is_done(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver
) -> None:
    client = function_client("gitlab")
    refs = {name: add_run(kube, in_rollup("pipelinerun-running", name)) for name in ("build", "lint")}
    deliver(client, live(kube, refs["build"], in_rollup("pipelinerun-running", "build")))
    deliver(client, live(kube, refs["lint"], in_rollup("pipelinerun-running", "lint")))
    for name in ("build", "lint"):
        advance(kube, refs[name], in_rollup("pipelinerun-successful", name))
        deliver(client, live(kube, refs[name], in_rollup("pipelinerun-successful", name)))

    assert gitlab.states(ROLLUP) == ["running", "success"], "nothing posted twice"
    (rollup,) = rollup_statuses(gitlab)
    assert (rollup["status"], rollup["description"]) == ("success", "2 runs: 2 succeeded")
    assert record(kube, refs["lint"])["annotations"]["rollup-state"] == "success"


def test_a_run_that_joins_a_finished_rollup_runs_it_again(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver
) -> None:
    client = function_client("gitlab")
    first = add_run(kube, in_rollup("pipelinerun-successful", "build"))
    deliver(client, live(kube, first, in_rollup("pipelinerun-successful", "build")))
    rerun = add_run(kube, in_rollup("pipelinerun-running", "build-rerun"))
    deliver(client, live(kube, rerun, in_rollup("pipelinerun-running", "build-rerun")))
    newest = rollup_statuses(gitlab)[-1]
    assert (newest["status"], newest["description"]) == ("running", "2 runs: 1 running, 1 succeeded")


def test_two_runs_leave_one_merge_request_note_listing_both(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver
) -> None:
    client = function_client("gitlab")
    refs = {name: add_run(kube, on_merge_request("pipelinerun-running", name)) for name in ("build", "lint")}
    deliver(client, live(kube, refs["build"], on_merge_request("pipelinerun-running", "build")))
    (note,) = gitlab.notes(PROJECT, MR)
    first_body = note["body"]
    assert "`build`" in first_body
    assert "`lint`" in first_body
    assert "🔄 Running" in first_body

    someone = gitlab.add_note(PROJECT, MR, first_body.splitlines()[0] + "\nforged")
    advance(kube, refs["build"], on_merge_request("pipelinerun-successful", "build"))
    deliver(client, live(kube, refs["build"], on_merge_request("pipelinerun-successful", "build")))
    advance(kube, refs["lint"], on_merge_request("pipelinerun-failed", "lint"))
    deliver(client, live(kube, refs["lint"], on_merge_request("pipelinerun-failed", "lint")))

    ours, theirs = gitlab.notes(PROJECT, MR)
    assert ours["id"] == note["id"], "edited in place"
    assert "✅ Succeeded" in ours["body"]
    assert "❌ Failed" in ours["body"]
    assert (theirs["id"], theirs["body"].splitlines()[-1]) == (someone, "forged"), "never edited"
    assert len(gitlab.calls_to("PUT")) == 2
    assert record(kube, refs["lint"])["annotations"]["note-id"] == str(note["id"])


def test_concurrent_first_deliveries_create_one_note(kube: MemoryRunClient, gitlab: GitLabStandIn) -> None:
    events = []
    for name in ("build", "lint", "docs"):
        ref = add_run(kube, on_merge_request("pipelinerun-running", name))
        events.append(live(kube, ref, on_merge_request("pipelinerun-running", name)))
    # GitLab claims no running state: each delivery reaches the note, duplicates too, so the race
    # is run with one delivery per run, and the duplicates follow, all at once.
    deliver_racing(kube, "gitlab", events, then=events)

    (note,) = gitlab.notes(PROJECT, MR)
    assert all(f"`{name}`" in note["body"] for name in ("build", "lint", "docs"))
    (lease,) = leases(kube)
    assert lease["metadata"]["name"].startswith("ti-gitlab-")


def test_comment_without_a_merge_request_is_refused_with_the_fix(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver
) -> None:
    bad = event("pipelinerun-running", "build", comment="true")
    ref = add_run(kube, bad)
    assert body(deliver(function_client("gitlab"), live(kube, ref, bad)))["outcome"] == "failed"
    condition = record(kube, ref)["conditions"][0]
    assert condition["reason"] == "InvalidConfiguration"
    assert "gitlab.integrations.tekton.dev/merge-request" in condition["message"]
