"""One pull-request comment, edited in place, listing every opted-in run on the head commit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.runclient import MemoryRunClient, RunRef
from common.standins.github import GitHubStandIn, JsonObject
from tests.conftest import Deliver, add_run, advance, body, function_client
from tests.support.github_app import sign_in_as_app
from tests.support.shared_runs import (
    OTHER_SHA,
    SHA,
    add_failed_child,
    deliver_racing,
    github_annotations,
    leases,
    live,
    run_event,
)

RECORD = "github.integrations.tekton.dev/status"
PR = 7


def on_pull_request(sample: str, name: str, **extra: str) -> dict[str, Any]:
    return run_event(
        sample, name, github_annotations(**{"pull-request": str(PR), "comment": "true", **extra})
    )


def comments(github: GitHubStandIn) -> list[JsonObject]:
    return github.comments_on("acme", "widget-service", PR)


def rows(comment: JsonObject) -> dict[str, str]:
    """Each run's row of the comment's table, by run name."""
    found = {}
    for line in comment["body"].splitlines():
        if line.startswith("| `") or line.startswith("| ["):
            name = line.split("`")[1]
            found[name] = line
    return found


def record(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    return json.loads(kube.runs[ref]["metadata"]["annotations"][RECORD])


@pytest.fixture
def pull_request(github: GitHubStandIn) -> GitHubStandIn:
    github.add_pull_request("acme", "widget-service", PR, SHA)
    return github


def test_two_runs_leave_one_comment_listing_both_edited_as_they_progress(
    kube: MemoryRunClient, pull_request: GitHubStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org")
    github, client = pull_request, function_client("github")
    build = add_run(kube, on_pull_request("pipelinerun-running", "build"))
    deliver(client, live(kube, build, on_pull_request("pipelinerun-running", "build")))
    (comment,) = comments(github)
    assert "🔄 Running" in rows(comment)["build"]
    assert "[`build`](https://dashboard.example.org/#/namespaces/ci/pipelineruns/build)" in comment["body"]

    lint = add_run(kube, on_pull_request("pipelinerun-running", "lint"))
    deliver(client, live(kube, lint, on_pull_request("pipelinerun-running", "lint")))
    (comment,) = comments(github)
    assert set(rows(comment)) == {"build", "lint"}

    advance(kube, build, on_pull_request("pipelinerun-successful", "build"))
    deliver(client, live(kube, build, on_pull_request("pipelinerun-successful", "build")))
    failed = on_pull_request("pipelinerun-failed", "lint")
    add_failed_child(kube, failed, "unit-tests")
    advance(kube, lint, failed)
    deliver(client, live(kube, lint, failed))

    (comment,) = comments(github)
    table = rows(comment)
    assert "✅ Succeeded" in table["build"]
    assert "3m 45s" in table["build"], "its duration"
    assert "❌ Failed" in table["lint"]
    assert "`unit-tests`" in table["lint"], "its failed task"
    assert len(github.calls_to("POST", "/repos/*/issues/*/comments")) == 1
    assert len(github.calls_to("PATCH", "/repos/*/issues/comments/*")) == 3, (
        "edited in place as they progressed"
    )
    assert record(kube, lint)["annotations"]["comment-id"] == str(comment["id"])


def test_concurrent_first_deliveries_create_one_comment(
    kube: MemoryRunClient, pull_request: GitHubStandIn
) -> None:
    events = []
    for name in ("build", "lint", "docs"):
        ref = add_run(kube, on_pull_request("pipelinerun-running", name))
        events += [live(kube, ref, on_pull_request("pipelinerun-running", name))] * 2
    deliver_racing(kube, "github", events)

    (comment,) = comments(pull_request)
    assert set(rows(comment)) == {"build", "lint", "docs"}
    (lease,) = leases(kube)
    assert lease["metadata"]["annotations"]["integrations.tekton.dev/shared-id"] == str(comment["id"])


def test_a_comment_anyone_else_wrote_with_the_marker_is_never_edited(
    kube: MemoryRunClient, pull_request: GitHubStandIn, deliver: Deliver
) -> None:
    github, client = pull_request, function_client("github")
    build = add_run(kube, on_pull_request("pipelinerun-running", "build"))
    deliver(client, live(kube, build, on_pull_request("pipelinerun-running", "build")))
    (ours,) = comments(github)
    marker = ours["body"].splitlines()[0]
    forged = github.add_issue_comment("acme", "widget-service", PR, f"{marker}\nall green!", login="mallory")
    # A forged record naming mallory's comment changes nothing either: records are untrusted.
    stored = kube.runs[build]["metadata"]["annotations"]
    forged_record = json.loads(stored[RECORD])
    forged_record["annotations"]["comment-id"] = str(forged)
    stored[RECORD] = json.dumps(forged_record)

    advance(kube, build, on_pull_request("pipelinerun-successful", "build"))
    deliver(client, live(kube, build, on_pull_request("pipelinerun-successful", "build")))
    mine, theirs = comments(github)
    assert (theirs["id"], theirs["body"]) == (forged, f"{marker}\nall green!")
    assert mine["id"] == ours["id"]
    assert "✅ Succeeded" in rows(mine)["build"]


def test_an_app_finds_its_own_comment_by_the_app_that_wrote_it(
    kube: MemoryRunClient,
    pull_request: GitHubStandIn,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    sign_in_as_app(monkeypatch, pull_request.app_id, tmp_path)
    client = function_client("github")
    build = add_run(kube, on_pull_request("pipelinerun-running", "build"))
    deliver(client, live(kube, build, on_pull_request("pipelinerun-running", "build")))
    advance(kube, build, on_pull_request("pipelinerun-successful", "build"))
    deliver(client, live(kube, build, on_pull_request("pipelinerun-successful", "build")))

    (comment,) = comments(pull_request)
    assert comment["user"]["login"] == "tekton-integrations[bot]"
    assert "✅ Succeeded" in rows(comment)["build"]
    assert not pull_request.calls_to("GET", "/user"), "an installation token cannot ask who it is"


def test_a_run_on_an_older_commit_of_the_pull_request_changes_nothing(
    kube: MemoryRunClient, pull_request: GitHubStandIn, deliver: Deliver
) -> None:
    old = on_pull_request("pipelinerun-successful", "build", sha=OTHER_SHA)
    ref = add_run(kube, old)
    assert body(deliver(function_client("github"), live(kube, ref, old)))["outcome"] == "reported"
    assert not comments(pull_request)


def test_an_unknown_pull_request_is_recorded_as_not_found(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    event = on_pull_request("pipelinerun-running", "build")
    ref = add_run(kube, event)
    assert body(deliver(function_client("github"), live(kube, ref, event)))["outcome"] == "failed"
    condition = record(kube, ref)["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("False", "GitHubNotFound")
    assert "pull request #7" in condition["message"]
    assert record(kube, ref)["annotations"]["check-run-id"], "the run's own check run is kept"


def test_comment_without_a_pull_request_number_is_refused_with_the_fix(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    event = run_event("pipelinerun-running", "build", github_annotations(comment="true"))
    ref = add_run(kube, event)
    deliver(function_client("github"), live(kube, ref, event))
    condition = record(kube, ref)["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("False", "InvalidConfiguration")
    assert "github.integrations.tekton.dev/comment" in condition["message"]
    assert "github.integrations.tekton.dev/pull-request" in condition["message"]
    assert not github.calls
