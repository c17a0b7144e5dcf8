"""The Jira function's project mode: one open issue per failing pipeline, commented on at each
further failure, and told (and resolved, if configured) when the pipeline passes again."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from common import samples
from common.runclient import MemoryRunClient, RunRef
from tests.conftest import Deliver, add_run, function_client
from tests.functions.test_jira import (
    annotate,
    another_replica,
    api_calls,
    bot_comments,
    cloud,
    condition,
    die_after,
    expire_claim,
    forge_record,
    jira,
    outcome,
    plain,
    record,
)
from tests.support.policies import use_policy
from tests.support.standins.jira import BOT, JiraStandIn

__all__ = ["cloud", "jira"]  # the fixtures, shared with test_jira.py

LABEL = "tekton-" + hashlib.sha256(b"ci/build-and-test").hexdigest()[:16]
"""The label of the pipeline ci/build-and-test's issue."""


def run_of(
    sample: str, name: str, *, pipeline: str = "build-and-test", namespace: str = "ci", **settings: str
) -> dict[str, Any]:
    """The sample as another run (its own name and UID) of ``namespace/pipeline``."""
    event = samples.load(f"pipelinerun-{sample}")
    metadata = samples.run_object(event)[1]["metadata"]
    metadata["name"], metadata["uid"], metadata["namespace"] = name, f"uid-{namespace}-{name}", namespace
    metadata["labels"]["tekton.dev/pipeline"] = pipeline
    annotate(event, **({"project": "WID", "on": "failed"} | settings))
    return event


def fail(kube: MemoryRunClient, name: str, **settings: str) -> tuple[dict[str, Any], RunRef]:
    event = run_of("failed", name, **settings)
    return event, add_run(kube, event)


def succeed(kube: MemoryRunClient, name: str, **settings: str) -> tuple[dict[str, Any], RunRef]:
    event = run_of("successful", name, **settings)
    return event, add_run(kube, event)


def opened(jira: JiraStandIn) -> list[str]:
    return jira.opened_by_bot()


@pytest.mark.parametrize("first", ["build-and-test-run-q4m9z", "build-and-test-run-0001"])
def test_three_failures_of_one_pipeline_give_one_issue_and_two_comments(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver, first: str
) -> None:
    client = function_client("jira")
    add_run(kube, samples.load("taskrun-failed"))  # the failed sample's child: its failed task
    names = [first, "build-and-test-run-0002", "build-and-test-run-0003"]
    refs = []
    for name in names:
        event, ref = fail(kube, name)
        refs.append(ref)
        assert outcome(deliver(client, event)) == "reported"

    (key,) = opened(jira)
    assert key == "WID-2", "WID-1 is the fixture's issue"
    issue = jira.issue(key)
    assert issue["summary"] == "Pipeline ci/build-and-test is failing"
    assert issue["labels"] == [LABEL]
    assert issue["issuetype"] == "Bug"
    description = plain(issue["description"])
    assert "FAILED The pipeline ci/build-and-test failed: PipelineRun ci/" + first in description
    assert "build-image (Skipped): PipelineRun was stopping" in description
    if first.endswith("q4m9z"):
        assert 'unit-tests (StepFailed): "step-run-tests" exited with code 1: Error' in description
    assert LABEL in description, "the pipeline's marker is in the description too"
    comments = bot_comments(jira, key)
    assert len(comments) == 2
    for comment, name in zip(comments, names[1:], strict=True):
        assert f"FAILED Failed again: PipelineRun ci/{name}" in plain(comment["body"])
    assert [record(kube, ref)["annotations"] for ref in refs] == [{"issue": key}] * 3
    assert [condition(kube, ref)["message"] for ref in refs] == [
        f"opened {key} for failing pipeline ci/build-and-test",
        f"comment {comments[0]['id']} on {key}: ci/build-and-test failed again",
        f"comment {comments[1]['id']} on {key}: ci/build-and-test failed again",
    ]
    searches = jira.calls_to("POST", "*/search*")
    assert len(searches) == 3
    assert searches[0].body == {
        "jql": f'project = "WID" AND labels = "{LABEL}" AND creator = currentUser() '
        "AND statusCategory != Done ORDER BY created ASC",
        "fields": ["summary", "labels", "project", "status", "description"],
        "maxResults": 10,
    }


def test_request_shapes_follow_the_edition(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    """Cloud: enhanced search and ADF (REST v3); Data Center: /search and wiki markup (REST v2)."""
    client = function_client("jira")
    for name in ("run-1", "run-2"):
        deliver(client, fail(kube, name)[0])
    search = "/search/jql" if jira.edition == "cloud" else "/search"
    assert api_calls(jira) == [
        ("POST", search),
        ("POST", "/issue"),
        ("POST", search),
        ("GET", "/myself"),
        ("GET", "/issue/WID-2/comment"),
        ("POST", "/issue/WID-2/comment"),
    ]
    (create,) = jira.calls_to("POST", "*/issue")
    fields = create.body["fields"]
    assert {key: fields[key] for key in ("project", "issuetype", "labels")} == {
        "project": {"key": "WID"},
        "issuetype": {"name": "Bug"},
        "labels": [LABEL],
    }
    (comment,) = jira.calls_to("POST", "*/comment")
    if jira.edition == "cloud":
        assert fields["description"]["type"] == "doc"
        assert comment.body["body"]["type"] == "doc"
    else:
        assert isinstance(fields["description"], str)
        assert isinstance(comment.body["body"], str)
        assert "{color:#de350b}*FAILED*{color} Failed again:" in comment.body["body"]


@pytest.mark.parametrize(
    ("resolve", "status"), [(None, "To Do"), ("Resolve Issue", "Resolved"), ("done", "Done")]
)
def test_a_later_success_comments_and_resolves_as_configured(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver, resolve: str | None, status: str
) -> None:
    settings = {"resolve": resolve} if resolve else {}
    client = function_client("jira")
    for name in ("run-1", "run-2", "run-3"):
        deliver(client, fail(kube, name, **settings)[0])
    (key,) = opened(jira)
    event, ref = succeed(kube, "run-4", **settings)
    assert outcome(deliver(client, event)) == "reported"

    assert jira.issue(key)["status"] == status
    *_, last = bot_comments(jira, key)
    assert len(bot_comments(jira, key)) == 3
    text = plain(last["body"])
    assert "SUCCEEDED The pipeline passes again: PipelineRun ci/run-4" in text
    assert ("Resolving this issue" in text) == bool(resolve)
    assert condition(kube, ref)["status"] == "True"
    assert ("resolved " + key in condition(kube, ref)["message"]) == bool(resolve)
    description = plain(jira.issue(key)["description"])
    if resolve:
        assert "the issue is resolved when the pipeline passes again" in description

    again, _ = succeed(kube, "run-5", **settings)
    deliver(client, again)
    assert len(bot_comments(jira, key)) == (3 if resolve else 4), "told once per run while it stays open"

    new, _ = fail(kube, "run-6", **settings)
    deliver(client, new)
    assert len(opened(jira)) == (2 if resolve else 1), "a failure after resolution opens a new issue"


def test_a_success_with_no_open_issue_writes_nothing(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    event, ref = succeed(kube, "run-1", resolve="Done")
    assert outcome(deliver(function_client("jira"), event)) == "reported"
    assert not jira.writes()
    assert (
        condition(kube, ref)["message"]
        == "pipeline ci/build-and-test has no open issue in WID: nothing to tell"
    )


def test_started_and_running_runs_are_not_looked_at(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    event = run_of("running", "run-1")
    add_run(kube, event)
    assert outcome(deliver(function_client("jira"), event)) == "ignored"
    assert not jira.calls


def test_duplicates_and_reordering_produce_nothing_new(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    client = function_client("jira")
    delivered = []
    for name in ("run-1", "run-2", "run-3"):
        event, _ = fail(kube, name, resolve="Done")
        delivered.append(event)
        deliver(client, event)
    event, _ = succeed(kube, "run-4", resolve="Done")
    delivered.append(event)
    deliver(client, event)
    (key,) = opened(jira)
    calls = len(jira.calls)

    shuffled = delivered * 3
    random.Random(5).shuffle(shuffled)
    for event in shuffled:
        assert outcome(deliver(client, event)) == "ignored"

    assert len(jira.calls) == calls
    assert opened(jira) == [key]
    assert len(bot_comments(jira, key)) == 3
    assert len(jira.calls_to("POST", "*/transitions")) == 1


def test_each_pipeline_and_namespace_has_its_own_issue(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    client = function_client("jira")
    for name, pipeline, namespace in [
        ("a-1", "build-and-test", "ci"),
        ("a-2", "build-and-test", "ci"),
        ("b-1", "deploy", "ci"),
        ("c-1", "build-and-test", "team-b"),
    ]:
        deliver(client, fail(kube, name, pipeline=pipeline, namespace=namespace)[0])
    summaries = sorted(jira.issue(key)["summary"] for key in opened(jira))
    assert summaries == [
        "Pipeline ci/build-and-test is failing",
        "Pipeline ci/deploy is failing",
        "Pipeline team-b/build-and-test is failing",
    ]
    assert len({tuple(jira.issue(key)["labels"]) for key in opened(jira)}) == 3


def test_extra_labels_and_issue_type_are_set_on_the_issue(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    event, _ = fail(kube, "run-1", labels="ci, flaky", **{"issue-type": "Task"})
    deliver(function_client("jira"), event)
    (key,) = opened(jira)
    assert jira.issue(key)["labels"] == [LABEL, "ci", "flaky"]
    assert jira.issue(key)["issuetype"] == "Task"


def test_an_issue_type_the_project_lacks_is_recorded_with_jiras_words(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    event, ref = fail(kube, "run-1", **{"issue-type": "Incident"})
    deliver(function_client("jira"), event)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "JiraRejected")
    assert "issuetype: Specify a valid issue type" in cond["message"]


def test_an_open_issue_someone_else_labelled_is_left_alone(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    """Only issues this account opened count: a person's issue carrying the label gets nothing."""
    theirs = jira.add_issue("WID", "Pipeline ci/build-and-test is failing", labels=(LABEL,))
    client = function_client("jira")
    deliver(client, fail(kube, "run-1")[0])
    deliver(client, fail(kube, "run-2")[0])
    assert not jira.comments(theirs)
    (key,) = opened(jira)
    assert key != theirs
    assert len(bot_comments(jira, key)) == 1


def test_an_issue_a_person_closed_is_not_commented_on(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    client = function_client("jira")
    deliver(client, fail(kube, "run-1")[0])
    (first,) = opened(jira)
    with jira.lock:
        jira.issues[first]["status"] = "Done"  # closed in the UI
    deliver(client, fail(kube, "run-2")[0])
    assert not bot_comments(jira, first)
    assert len(opened(jira)) == 2


# -- exactly once across crashes and forged records (DESIGN.md §3) ----------------------------------


def test_a_replica_killed_after_opening_the_issue_leaves_one_issue(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    event, ref = fail(kube, "run-1")
    die_after(kube, jira, "POST", "*/issue")
    assert deliver(function_client("jira"), event).status_code == 503
    kube.before_request = None
    (key,) = opened(jira)
    assert "issue" not in record(kube, ref)["annotations"]

    replica = another_replica(kube)
    assert outcome(deliver(replica, event)) == "retry", "a fresh claim is waited for"
    expire_claim(kube, ref)
    assert outcome(deliver(replica, event)) == "reported"

    assert opened(jira) == [key]
    assert not bot_comments(jira, key), "the issue was opened for this very failure: no comment"
    assert condition(kube, ref)["message"] == f"{key} was opened for this failure of ci/build-and-test"
    assert record(kube, ref)["annotations"] == {"issue": key}


def test_a_replica_killed_after_commenting_leaves_one_comment(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    client = function_client("jira")
    deliver(client, fail(kube, "run-1")[0])
    (key,) = opened(jira)
    event, ref = fail(kube, "run-2")
    die_after(kube, jira, "POST", "*/comment")
    assert deliver(client, event).status_code == 503
    kube.before_request = None

    replica = another_replica(kube)
    expire_claim(kube, ref)
    assert outcome(deliver(replica, event)) == "reported"

    (comment,) = bot_comments(jira, key)
    assert condition(kube, ref)["message"] == f"{key} already has comment {comment['id']} on this failure"


def test_a_replica_killed_after_resolving_neither_comments_nor_resolves_again(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    client = function_client("jira")
    deliver(client, fail(kube, "run-1", resolve="Resolve Issue")[0])
    (key,) = opened(jira)
    event, ref = succeed(kube, "run-2", resolve="Resolve Issue")
    die_after(kube, jira, "POST", "*/transitions")
    assert deliver(client, event).status_code == 503
    kube.before_request = None
    assert jira.issue(key)["status"] == "Resolved"

    replica = another_replica(kube)
    expire_claim(kube, ref)
    assert outcome(deliver(replica, event)) == "reported"

    assert len(bot_comments(jira, key)) == 1
    assert len(jira.calls_to("POST", "*/transitions")) == 1
    assert condition(kube, ref)["message"].endswith("has no open issue in WID: nothing to tell")


def test_a_transition_that_failed_is_taken_on_redelivery_without_a_second_comment(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    client = function_client("jira")
    deliver(client, fail(kube, "run-1", resolve="Done")[0])
    (key,) = opened(jira)
    event, ref = succeed(kube, "run-2", resolve="Done")
    jira.fail_next(503, method="POST", path="*/transitions")
    assert deliver(client, event).status_code == 503
    assert condition(kube, ref)["reason"] == "JiraUnavailable"
    assert outcome(deliver(client, event)) == "reported"
    assert jira.issue(key)["status"] == "Done"
    assert len(bot_comments(jira, key)) == 1


def test_a_forged_record_points_the_function_nowhere_else(
    kube: MemoryRunClient,
    cloud: JiraStandIn,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The project mode reads nothing from the record: an issue or comment it names is never used."""
    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {"jira": {"projects": ["WID"]}}}})
    ops = cloud.add_issue("OPS", "Pipeline ci/build-and-test is failing", creator=BOT, labels=(LABEL,))
    theirs = cloud.add_comment(ops, {"type": "doc", "version": 1, "content": []}, author=BOT)
    client = function_client("jira")
    deliver(client, fail(kube, "run-1", resolve="Done")[0])
    event, ref = succeed(kube, "run-2", resolve="Done")
    forge_record(kube, ref, {"issue": ops, "comment-id": theirs})
    snapshot = (cloud.issue(ops), cloud.comments(ops))
    cloud.calls.clear()

    deliver(client, event)

    assert not [call for call in cloud.calls if "OPS" in call.path or "OPS" in json.dumps(call.body)]
    assert (cloud.issue(ops), cloud.comments(ops)) == snapshot
    (key,) = [k for k in opened(cloud) if k.startswith("WID")]
    assert cloud.issue(key)["status"] == "Done"
    assert record(kube, ref)["annotations"]["issue"] == key


def test_the_policy_decides_which_projects_issues_are_opened_in(
    kube: MemoryRunClient,
    jira: JiraStandIn,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {"jira": {"projects": ["OPS"]}}}})
    event, ref = fail(kube, "run-1")
    deliver(function_client("jira"), event)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "TargetNotAllowed")
    assert not jira.calls


def test_a_run_of_an_embedded_pipeline_is_known_by_its_generate_name(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    client = function_client("jira")
    for name in ("nightly-abc12", "nightly-def34"):
        event = run_of("failed", name)
        metadata = samples.run_object(event)[1]["metadata"]
        del metadata["labels"]["tekton.dev/pipeline"]
        metadata["generateName"] = "nightly-"
        samples.run_object(event)[1]["spec"] = {"pipelineSpec": {"tasks": []}}
        add_run(kube, event)
        deliver(client, event)
    (key,) = opened(jira)
    assert jira.issue(key)["summary"] == "Pipeline ci/nightly is failing"
    assert len(bot_comments(jira, key)) == 1


def test_the_failed_states_asked_for_are_the_ones_reported(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    """``on: timed-out`` opens issues for timed-out runs only; a plain failure is not reported."""
    client = function_client("jira")
    failed, _ = fail(kube, "run-1", on="timed-out")
    assert outcome(deliver(client, failed)) == "ignored"
    timed_out = run_of("failed", "run-2", on="timed-out")
    samples.run_object(timed_out)[1]["status"]["conditions"][0]["reason"] = "PipelineRunTimeout"
    add_run(kube, timed_out)
    assert outcome(deliver(client, timed_out)) == "reported"
    (key,) = opened(jira)
    assert "TIMED OUT" in plain(jira.issue(key)["description"])
