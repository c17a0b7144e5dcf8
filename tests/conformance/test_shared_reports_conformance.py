"""The requests of the reports runs share on GitHub (a rollup check run, one pull-request comment)
are ones GitHub's OpenAPI description accepts, and so are the stand-in's answers to them."""

from __future__ import annotations

from common.runclient import MemoryRunClient
from tests.conformance.prism import PrismGitHub
from tests.conftest import Deliver, add_run, advance, function_client
from tests.support.shared_runs import SHA, github_annotations, live, run_event

REPO = "/repos/acme/widget-service"


def test_a_rollup_check_run_is_created_found_and_edited_conformantly(
    kube: MemoryRunClient, deliver: Deliver, through_prism: PrismGitHub
) -> None:
    client = function_client("github")
    refs = {}
    for name in ("build", "lint"):
        event = run_event("pipelinerun-running", name, github_annotations(rollup="tekton/all"))
        refs[name] = add_run(kube, event)
        assert deliver(client, live(kube, refs[name], event)).status_code == 200
    for name, final in (("build", "pipelinerun-successful"), ("lint", "pipelinerun-failed")):
        event = run_event(final, name, github_annotations(rollup="tekton/all"))
        advance(kube, refs[name], event)
        assert deliver(client, live(kube, refs[name], event)).status_code == 200
    (rollup,) = [check for check in through_prism.check_runs.values() if check["name"] == "tekton/all"]
    assert (rollup["status"], rollup["conclusion"]) == ("completed", "failure")
    created = [
        call.body
        for call in through_prism.calls
        if (call.method, call.path) == ("POST", f"{REPO}/check-runs")
    ]
    assert [body["name"] for body in created].count("tekton/all") == 1
    edits = [call for call in through_prism.calls if call.path == f"{REPO}/check-runs/{rollup['id']}"]
    assert edits, "the rollup was edited as the runs progressed"
    assert {call.method for call in edits} == {"PATCH"}


def test_a_pull_request_comment_is_created_found_and_edited_conformantly(
    kube: MemoryRunClient, deliver: Deliver, through_prism: PrismGitHub
) -> None:
    through_prism.standin.add_pull_request("acme", "widget-service", 7, SHA)
    client = function_client("github")
    annotations = github_annotations(**{"pull-request": "7", "comment": "true"})
    running = run_event("pipelinerun-running", "build", annotations)
    ref = add_run(kube, running)
    assert deliver(client, live(kube, ref, running)).status_code == 200
    done = run_event("pipelinerun-successful", "build", annotations)
    advance(kube, ref, done)
    assert deliver(client, live(kube, ref, done)).status_code == 200

    (comment,) = through_prism.standin.comments_on("acme", "widget-service", 7)
    assert "✅ Succeeded" in comment["body"]
    calls = [(call.method, call.path) for call in through_prism.calls if "/check-runs" not in call.path]
    assert calls == [
        ("GET", f"{REPO}/pulls/7"),
        ("GET", "/user"),
        ("GET", f"{REPO}/issues/7/comments"),
        ("GET", f"{REPO}/issues/7/comments"),  # again once its creation is claimed
        ("POST", f"{REPO}/issues/7/comments"),
        ("GET", f"{REPO}/pulls/7"),
        ("GET", f"{REPO}/issues/7/comments"),
        ("PATCH", f"{REPO}/issues/comments/{comment['id']}"),
    ]
