"""The Gerrit function against the loopback Gerrit stand-in, driven through functions-framework."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import TestResponse

from common import samples
from common.errors import KubernetesUnavailableError
from common.http import use_run_client
from common.runclient import MemoryRunClient, RunRef
from functions.gerrit.client import parse
from functions.gerrit.message import MARKER, MAX_MESSAGE, TAG
from tests.conftest import Deliver, add_run, advance, body, event_request, function_client
from tests.support.policies import use_policy
from tests.support.standins.gerrit import GerritStandIn

RECORD = "gerrit.integrations.tekton.dev/status"
USER, PASSWORD = "tekton-ci", "gerrit-http-password-0123"
PROJECT, CHANGE = "acme/widget-service", 4711
OLD_SHA = "1111111111111111111111111111111111111111"
SHA = "9f1c2e7b4a6d8e0f1a2b3c4d5e6f708192a3b4c5"
OTHER_PROJECT, OTHER_CHANGE, OTHER_SHA = "acme/secrets", 4712, "2222222222222222222222222222222222222222"
CHANGE_PATH = f"/a/changes/acme%2Fwidget-service~{CHANGE}"
REVIEW_PATH = f"{CHANGE_PATH}/revisions/{SHA}/review"
LINK = "https://dashboard.example.org/#/namespaces/ci/pipelineruns/build-and-test-run-x7k2p"


@pytest.fixture
def gerrit(monkeypatch: pytest.MonkeyPatch) -> Iterator[GerritStandIn]:
    """A loopback Gerrit with the function's account, change 4711 (two patch sets) of
    acme/widget-service, and change 4712 of another project; the function points at it."""
    with GerritStandIn(
        labels={"Verified": (-1, 1), "Code-Review": (-2, 2), "CI-Verified": (-1, 1)}
    ) as standin:
        standin.add_account(USER, PASSWORD, "Tekton CI")
        standin.add_account("mallory", "mallory-password-0123")
        standin.add_change(PROJECT, CHANGE, [OLD_SHA, SHA])
        standin.add_change(OTHER_PROJECT, OTHER_CHANGE, [OTHER_SHA])
        monkeypatch.setenv("GERRIT_URL", standin.url)
        monkeypatch.setenv("GERRIT_USERNAME", USER)
        monkeypatch.setenv("GERRIT_PASSWORD", PASSWORD)
        monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org")
        yield standin


def event(sample_name: str, /, like: str | None = None, **annotations: str) -> dict[str, Any]:
    """A sample event whose run asks for Gerrit only; ``like``: as an event about that sample's run."""
    sample = samples.load(sample_name)
    _, run = samples.run_object(sample)
    if like is not None:
        run["metadata"] = json.loads(json.dumps(samples.run_object(samples.load(like))[1]["metadata"]))
    run["metadata"]["annotations"] = {
        "gerrit.integrations.tekton.dev/change": str(CHANGE),
        "gerrit.integrations.tekton.dev/revision": SHA,
        "gerrit.integrations.tekton.dev/project": PROJECT,
        **{f"gerrit.integrations.tekton.dev/{key}": value for key, value in annotations.items()},
    }
    return sample


def failing_run(kube: MemoryRunClient, **annotations: str) -> tuple[dict[str, Any], dict[str, Any], RunRef]:
    """A PipelineRun's started and failed events; its failed child TaskRun is in the store."""
    started = event("pipelinerun-started", like="pipelinerun-failed", **annotations)
    failed = event("pipelinerun-failed", **annotations)
    ref = add_run(kube, started)
    add_run(kube, samples.load("taskrun-failed"))
    return started, failed, ref


def record(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(kube.runs[ref]["metadata"]["annotations"][RECORD])
    return stored


def condition(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    first: dict[str, Any] = record(kube, ref)["conditions"][0]
    return first


def outcome(answer: TestResponse) -> str:
    return str(body(answer)["outcome"])


def posted(gerrit: GerritStandIn) -> list[dict[str, Any]]:
    """The ``ReviewInput`` of every review Gerrit applied."""
    return [review.body for review in gerrit.reviews()]


# -- what users see ----------------------------------------------------------------------------------


def test_started_then_succeeded_posts_a_review_each_and_votes_once_finished(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver
) -> None:
    started, successful = event("pipelinerun-started"), event("pipelinerun-successful")
    ref = add_run(kube, started)
    client = function_client("gerrit")

    assert outcome(deliver(client, started)) == "reported"
    advance(kube, ref, successful)
    assert outcome(deliver(client, successful)) == "reported"

    calls = [(call.method, call.path) for call in gerrit.calls_to()]
    assert calls == [("GET", CHANGE_PATH), ("POST", REVIEW_PATH)] * 2
    assert all((call.credential, call.account) == ("valid", USER) for call in gerrit.calls_to())
    first, second = posted(gerrit)
    assert "labels" not in first, "a running run does not vote"
    assert first["tag"] == second["tag"] == TAG
    assert "PipelineRun ci/build-and-test-run-x7k2p (build-and-test): Running" in first["message"]
    assert second["labels"] == {"Verified": 1}
    assert "(build-and-test): Succeeded" in second["message"]
    assert f"View the run: {LINK}" in second["message"]
    assert second["message"].splitlines()[-1].startswith(MARKER)
    assert [review.patch_set for review in gerrit.reviews()] == [2, 2], "the revision built, not the latest"
    assert gerrit.vote(CHANGE, "Verified", USER) == 1
    shown = [message["message"] for message in gerrit.messages(CHANGE)]
    assert shown[0].startswith("Patch Set 2:\n\nTekton PipelineRun")
    assert shown[1].startswith("Patch Set 2: Verified+1\n\nTekton PipelineRun")
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("True", "Reported")
    assert "with Verified+1" in cond["message"]
    assert record(kube, ref)["annotations"]["vote"] == "Verified+1"


def test_a_failed_run_votes_minus_one_on_the_configured_label_with_the_failed_tasks(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GERRIT_ALLOWED_VOTES", "CI-Verified=-1..+1")
    started, failed, ref = failing_run(kube, label="CI-Verified")
    client = function_client("gerrit")
    deliver(client, started)
    advance(kube, ref, failed)
    assert outcome(deliver(client, failed)) == "reported"

    review = posted(gerrit)[-1]
    assert review["labels"] == {"CI-Verified": -1}
    message = review["message"]
    assert "PipelineRun ci/build-and-test-run-q4m9z (build-and-test): Failed after 1m 0s" in message
    assert "Tasks that did not succeed:" in message
    assert (
        '* unit-tests: StepFailed - "step-run-tests" exited with code 1: Error '
        "(TaskRun build-and-test-run-q4m9z-unit-tests)" in message
    )
    assert "* build-image: Skipped - PipelineRun was stopping" in message
    assert gerrit.vote(CHANGE, "CI-Verified", USER) == -1
    assert gerrit.vote(CHANGE, "Verified", USER) is None, "only the configured label"
    assert condition(kube, ref)["status"] == "True"


@pytest.mark.parametrize(("reason", "vote"), [("Cancelled", -2), ("PipelineRunTimeout", -2), ("Failed", -2)])
def test_cancelled_and_timed_out_runs_vote_the_failure_value(
    kube: MemoryRunClient,
    gerrit: GerritStandIn,
    deliver: Deliver,
    *,
    monkeypatch: pytest.MonkeyPatch,
    reason: str,
    vote: int,
) -> None:
    monkeypatch.setenv("GERRIT_ALLOWED_VOTES", "Code-Review=-2..+1")
    failed = event("pipelinerun-failed", label="Code-Review=+1/-2")
    failed["data"]["pipelineRun"]["status"]["conditions"][0]["reason"] = reason
    add_run(kube, failed)
    assert outcome(deliver(function_client("gerrit"), failed)) == "reported"
    (review,) = posted(gerrit)
    assert review["labels"] == {"Code-Review": vote}


def test_label_none_posts_messages_without_votes(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GERRIT_ALLOWED_VOTES", "none")
    successful = event("pipelinerun-successful", label="none")
    add_run(kube, successful)
    assert outcome(deliver(function_client("gerrit"), successful)) == "reported"
    (review,) = posted(gerrit)
    assert "labels" not in review


def test_a_run_that_asks_only_for_failures_posts_nothing_when_it_succeeds(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver
) -> None:
    started, successful = (
        event("pipelinerun-started", on="failed"),
        event("pipelinerun-successful", on="failed"),
    )
    ref = add_run(kube, started)
    client = function_client("gerrit")
    assert outcome(deliver(client, started)) == "ignored"
    advance(kube, ref, successful)
    assert outcome(deliver(client, successful)) == "ignored"
    assert not gerrit.calls_to()


def test_a_long_failure_stays_within_gerrits_comment_size_limit(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver
) -> None:
    failed = event("pipelinerun-failed")
    failed["data"]["pipelineRun"]["status"]["conditions"][0]["message"] = "\u00e9\u6f22\U0001f525" * 20_000
    failed["data"]["pipelineRun"]["status"]["skippedTasks"] = [
        {"name": f"task-{n}", "reason": "y" * 1000} for n in range(200)
    ]
    ref = add_run(kube, failed)
    assert outcome(deliver(function_client("gerrit"), failed)) == "reported"
    (review,) = posted(gerrit)
    assert len(review["message"].encode()) <= MAX_MESSAGE + 100 < 16 << 10
    assert "* ... and " in review["message"]
    assert f"View the run: {LINK.replace('x7k2p', 'q4m9z')}" in review["message"]
    assert review["message"].splitlines()[-1].startswith(MARKER), "the marker survives the cut"
    assert condition(kube, ref)["status"] == "True"


def test_gerrits_xssi_prefix_is_stripped_from_every_json_answer() -> None:
    assert parse(')]}\'\n{"project": "acme/widget-service"}', "read") == {"project": "acme/widget-service"}
    assert parse('{"labels": {}}', "post") == {"labels": {}}, "an answer without the line is read too"
    assert parse(")]}'\n", "post") is None


def test_an_answer_that_is_not_gerrits_json_is_retried_then_posts_once(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver
) -> None:
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    client = function_client("gerrit")
    gerrit.fail_next(200, body=")]}'\n<html>Sign in</html>", method="GET")
    assert deliver(client, running).status_code == 503
    assert condition(kube, ref)["reason"] == "GerritUnavailable"
    assert outcome(deliver(client, running)) == "reported"
    assert len(gerrit.reviews()) == 1


def test_a_url_with_a_path_prefix_and_a_password_file(
    kube: MemoryRunClient, deliver: Deliver, *, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    with GerritStandIn(base_path="/gerrit") as standin:
        standin.add_account(USER, PASSWORD)
        standin.add_change(PROJECT, CHANGE, [SHA])
        monkeypatch.setenv("GERRIT_URL", standin.url + "/a/")
        monkeypatch.setenv("GERRIT_USERNAME", USER)
        monkeypatch.setenv("GERRIT_PASSWORD_FILE", str(secret))
        running = event("pipelinerun-running")
        add_run(kube, running)
        assert outcome(deliver(function_client("gerrit"), running)) == "reported"
        assert [call.path for call in standin.calls_to()] == [
            "/gerrit" + CHANGE_PATH,
            "/gerrit" + REVIEW_PATH,
        ]
    assert PASSWORD not in json.dumps(list(kube.runs.values()))


# -- exactly once ----------------------------------------------------------------------------------


def test_duplicates_and_reordering_post_nothing_new(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver
) -> None:
    names = ["pipelinerun-queued", "pipelinerun-started", "pipelinerun-running", "pipelinerun-successful"]
    events = [event(name) for name in names]
    ref = add_run(kube, events[0])
    client = function_client("gerrit")
    for sample in events:
        advance(kube, ref, sample)
        assert deliver(client, sample).status_code == 200
    assert len(gerrit.reviews()) == 2, "started and running are one phase: one message"
    calls = len(gerrit.calls_to())

    shuffled = events * 3
    random.Random(12).shuffle(shuffled)
    for sample in shuffled:
        assert deliver(client, sample).status_code == 200

    assert len(gerrit.calls_to()) == calls, "duplicates reached Gerrit"
    assert len(gerrit.reviews()) == 2
    assert condition(kube, ref)["status"] == "True"


def test_eight_concurrent_deliveries_of_one_event_post_one_review(
    kube: MemoryRunClient, gerrit: GerritStandIn
) -> None:
    successful = event("pipelinerun-successful")
    ref = add_run(kube, successful)
    app = function_client("gerrit").application
    headers, data = event_request(successful)
    start = threading.Barrier(8)
    answers: list[TestResponse] = []
    lock = threading.Lock()

    def deliver_once() -> None:
        client = app.test_client()  # Flask test clients are not shared between threads
        start.wait()
        answer = client.post("/", headers=headers, data=data)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=deliver_once) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # One delivery posts; the others find the state reported (200) or the claim in flight
    # (429 Busy), which the sender's redelivery settles.
    assert [outcome(answer) for answer in answers].count("reported") == 1
    busy = [answer for answer in answers if answer.status_code == 429]
    assert all(answer.status_code in (200, 429) for answer in answers)
    redelivered = [app.test_client().post("/", headers=headers, data=data) for _ in busy]
    assert all(outcome(answer) == "ignored" for answer in redelivered)
    assert len(gerrit.reviews()) == 1
    assert condition(kube, ref)["status"] == "True"


def test_a_record_lost_to_tekton_writing_back_older_annotations_posts_nothing_new(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver
) -> None:
    successful = event("pipelinerun-successful")
    ref = add_run(kube, successful)
    before = dict(kube.runs[ref]["metadata"].get("annotations") or {})
    client = function_client("gerrit")
    assert outcome(deliver(client, successful)) == "reported"
    kube.runs[ref]["metadata"]["annotations"] = before  # the reconciler's older copy wins

    assert outcome(deliver(client, successful)) == "reported"
    assert len(gerrit.reviews()) == 1, "found by its marker: not posted again"
    assert len(gerrit.calls_to("GET", "/a/accounts/self")) == 1, "whose it is was asked"
    assert "already" in condition(kube, ref)["message"]


def test_a_lost_answer_to_the_review_posts_nothing_new_on_redelivery(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver
) -> None:
    successful = event("pipelinerun-successful")
    ref = add_run(kube, successful)
    client = function_client("gerrit")
    gerrit.answer_lost_next(502)
    assert deliver(client, successful).status_code == 503
    assert len(gerrit.reviews()) == 1, "Gerrit applied it; the answer was lost"

    assert outcome(deliver(client, successful)) == "reported"
    assert len(gerrit.reviews()) == 1
    assert condition(kube, ref)["status"] == "True"


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


def test_a_replica_killed_between_the_review_and_the_record_leaves_one_review(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver
) -> None:
    """Gerrit applied the review, then the replica died before the record was written; the
    redelivery reaches another replica once the claim expired: it finds the message by its marker
    and posts nothing, then the run's next phase is posted once."""
    running, successful = event("pipelinerun-running"), event("pipelinerun-successful")
    ref = add_run(kube, running)
    patches = 0

    def die_before_recording(verb: str, _: RunRef) -> None:
        nonlocal patches
        patches += verb == "patch"
        if verb == "patch" and patches == 2:  # the claim was written, the record never is
            raise KubernetesUnavailableError("the replica was killed")

    kube.before_request = die_before_recording
    assert deliver(function_client("gerrit"), running).status_code == 503
    kube.before_request = None
    assert len(gerrit.reviews()) == 1
    assert record(kube, ref)["claim"] is not None

    use_run_client(ReplicaConnection(kube))  # the dead replica's memory is gone with it
    other = function_client("gerrit")
    busy = deliver(other, running)
    assert (busy.status_code, body(busy)["reason"]) == (429, "Busy"), "a fresh claim is waited for"
    expire_claim(kube, ref)
    assert outcome(deliver(other, running)) == "reported"
    assert len(gerrit.reviews()) == 1, "the redelivery found the review and posted none"
    advance(kube, ref, successful)
    assert outcome(deliver(other, successful)) == "reported"

    assert len(gerrit.reviews()) == 2
    assert posted(gerrit)[-1]["labels"] == {"Verified": 1}
    assert condition(kube, ref)["status"] == "True"


def test_the_marker_in_another_accounts_message_does_not_suppress_the_review(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver
) -> None:
    """Anyone who may comment can copy a marker (and the tag): only this account's message counts."""
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    before = dict(kube.runs[ref]["metadata"].get("annotations") or {})
    client = function_client("gerrit")
    deliver(client, running)
    ((change,),) = [[c for c in gerrit.changes if c.number == CHANGE]]
    with gerrit.lock:
        ours = change.messages.pop()  # as if it had never been posted: only mallory's copy is left
    gerrit.post_message("mallory", CHANGE, ours["message"].split("\n\n", 1)[1], tag=TAG)
    kube.runs[ref]["metadata"]["annotations"] = before

    assert outcome(deliver(client, running)) == "reported"
    assert [review.account for review in gerrit.reviews()] == [USER, USER]


def forge_record(kube: MemoryRunClient, ref: RunRef, annotations: dict[str, str]) -> None:
    """What the run's author can do with ``kubectl annotate``: a record naming anything."""
    forged = {
        "name": "gerrit.integrations.tekton.dev",
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Succeeded",
                "status": "True",
                "reason": "Reported",
                "message": "",
                "lastTransitionTime": "2024-01-01T00:00:00Z",
            }
        ],
        "annotations": annotations,
        "runUID": kube.runs[ref]["metadata"]["uid"],
        "runState": {"status": "Unknown", "reason": "Started"},
    }
    kube.patch(ref, {"metadata": {"annotations": {RECORD: json.dumps(forged)}}})


def test_a_forged_record_calls_nothing_outside_the_policy_and_touches_no_other_change(
    kube: MemoryRunClient,
    gerrit: GerritStandIn,
    deliver: Deliver,
    *,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {"gerrit": {"projects": ["acme/widget-*"]}}}})
    running, successful = event("pipelinerun-running"), event("pipelinerun-successful")
    ref = add_run(kube, running)
    forge_record(
        kube,
        ref,
        {
            "change": f"{OTHER_PROJECT}~{OTHER_CHANGE}",
            "revision": OTHER_SHA,
            "vote": "Verified+1",
            "phase": "queued",
        },
    )
    client = function_client("gerrit")
    assert outcome(deliver(client, running)) == "reported"
    advance(kube, ref, successful)
    assert outcome(deliver(client, successful)) == "reported"

    assert {call.path for call in gerrit.calls_to()} == {CHANGE_PATH, REVIEW_PATH}
    assert gerrit.messages(OTHER_CHANGE) == []
    assert [(review.change, review.patch_set) for review in gerrit.reviews()] == [(CHANGE, 2), (CHANGE, 2)]
    assert record(kube, ref)["annotations"]["change"] == f"{PROJECT}~{CHANGE}"


def test_a_change_of_another_project_is_refused_and_nothing_is_posted(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver
) -> None:
    running = event("pipelinerun-running", change=str(OTHER_CHANGE))
    ref = add_run(kube, running)
    assert outcome(deliver(function_client("gerrit"), running)) == "failed"
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "GerritNotFound"), "Gerrit looks in the project only"
    assert [call.path for call in gerrit.calls_to()] == [f"/a/changes/acme%2Fwidget-service~{OTHER_CHANGE}"]
    assert not gerrit.reviews()


def test_a_server_that_answers_for_another_projects_change_is_refused(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver
) -> None:
    """Defence in depth: the project Gerrit says the change is in is checked before posting."""
    gerrit.ignore_project_in_id = True
    running = event("pipelinerun-running", change=str(OTHER_CHANGE))
    ref = add_run(kube, running)
    assert outcome(deliver(function_client("gerrit"), running)) == "failed"
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "TargetNotAllowed")
    assert "'acme/secrets'" in cond["message"]
    assert not gerrit.calls_to("POST")
    assert gerrit.messages(OTHER_CHANGE) == []


@pytest.mark.parametrize(
    ("project", "allowed"), [(PROJECT, True), ("ACME/Widget-Service", True), (OTHER_PROJECT, False)]
)
def test_the_namespace_policy_decides_which_projects_a_run_may_review(
    kube: MemoryRunClient,
    gerrit: GerritStandIn,
    deliver: Deliver,
    *,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    project: str,
    allowed: bool,
) -> None:
    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {"gerrit": {"projects": ["acme/widget-*"]}}}})
    running = event("pipelinerun-running", project=project)
    ref = add_run(kube, running)
    assert deliver(function_client("gerrit"), running).status_code == 200
    cond = condition(kube, ref)
    if project == PROJECT:
        assert cond["status"] == "True"
        assert len(gerrit.reviews()) == 1
    elif allowed:  # the policy matches case-insensitively; Gerrit's project names are not
        assert (cond["status"], cond["reason"]) == ("False", "GerritNotFound")
        assert not gerrit.reviews()
    else:
        assert (cond["status"], cond["reason"]) == ("False", "TargetNotAllowed")
        assert project in cond["message"]
        assert not gerrit.calls_to()


# -- votes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "label", "sample", "vote"),
    [
        ("Verified=0..+1", None, "pipelinerun-failed", "Verified-1"),
        (None, "Code-Review=+2/-2", "pipelinerun-successful", "Code-Review+2"),
        ("Verified=-1..+1,Code-Review=0..0", "Code-Review=+1/-1", "pipelinerun-successful", "Code-Review+1"),
        ("none", None, "pipelinerun-successful", "Verified+1"),
    ],
)
def test_a_vote_outside_what_the_operator_allows_is_refused_and_nothing_is_sent(  # noqa: PLR0917
    kube: MemoryRunClient,
    gerrit: GerritStandIn,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    allowed: str | None,
    label: str | None,
    sample: str,
    vote: str,
) -> None:
    if allowed is not None:
        monkeypatch.setenv("GERRIT_ALLOWED_VOTES", allowed)
    finished = event(sample, **({"label": label} if label else {}))
    ref = add_run(kube, finished)
    answer = deliver(function_client("gerrit"), finished)
    assert (answer.status_code, outcome(answer)) == (200, "failed")
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "GerritVoteNotAllowed")
    assert f"the vote {vote} is not among" in cond["message"]
    assert "GERRIT_ALLOWED_VOTES" in cond["message"]
    assert "gerrit.integrations.tekton.dev/label" in cond["message"], "the hint says what to change"
    assert not gerrit.calls_to(), "nothing was sent"


def test_a_vote_within_what_the_operator_allows_is_cast(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GERRIT_ALLOWED_VOTES", "Verified=-1..+1, code-review=-1..+1")
    successful = event("pipelinerun-successful", label="Code-Review=+1/-1")
    add_run(kube, successful)
    assert outcome(deliver(function_client("gerrit"), successful)) == "reported"
    assert gerrit.vote(CHANGE, "Code-Review", USER) == 1


@pytest.mark.parametrize("status", [403, 400])
def test_a_vote_the_account_may_not_cast_is_recorded_with_the_fix(
    kube: MemoryRunClient, deliver: Deliver, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    """Gerrit answers ``Applying label "Verified": -1 is restricted`` (403; 400 on some versions)."""
    with GerritStandIn(permitted={"Verified": (0, 1)}, restricted_status=status) as standin:
        standin.add_account(USER, PASSWORD)
        standin.add_change(PROJECT, CHANGE, [SHA])
        monkeypatch.setenv("GERRIT_URL", standin.url)
        monkeypatch.setenv("GERRIT_USERNAME", USER)
        monkeypatch.setenv("GERRIT_PASSWORD", PASSWORD)
        failed = event("pipelinerun-failed")
        ref = add_run(kube, failed)
        client = function_client("gerrit")
        answer = deliver(client, failed)
        assert (answer.status_code, outcome(answer)) == (200, "failed")
        cond = condition(kube, ref)
        assert (cond["status"], cond["reason"]) == ("False", "GerritForbidden")
        assert 'Applying label "Verified": -1 is restricted' in cond["message"]
        assert "grant the account" in cond["message"]
        assert "'Label Verified' permission" in cond["message"]
        assert "access rights of acme/widget-service" in cond["message"]
        assert not standin.reviews()
        calls = len(standin.calls_to())
        assert outcome(deliver(client, failed)) == "ignored", "the refusal is final"
        assert len(standin.calls_to()) == calls


def test_a_vote_gerrit_drops_is_recorded_and_not_posted_again(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gerrit drops a label the project does not define (``change.strictLabels`` is off by default)."""
    monkeypatch.setenv("GERRIT_ALLOWED_VOTES", "Build-Verified=-1..+1")
    successful = event("pipelinerun-successful", label="Build-Verified")
    ref = add_run(kube, successful)
    client = function_client("gerrit")
    assert outcome(deliver(client, successful)) == "failed"
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "GerritVoteIgnored")
    assert "the message was posted" in cond["message"]
    assert len(gerrit.reviews()) == 1
    deliver(client, successful)
    assert len(gerrit.reviews()) == 1


# -- faults -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "path", "http", "reason", "retry_after"),
    [
        (429, {"Retry-After": "30"}, None, 429, "GerritRateLimited", "30"),
        (429, {}, "*/review", 429, "GerritRateLimited", "60"),
        (503, {}, None, 503, "GerritUnavailable", None),
        (500, {}, "*/review", 503, "GerritUnavailable", None),
        (502, {"Retry-After": "5"}, "*/review", 429, "GerritUnavailable", "5"),
    ],
)
def test_rate_limits_and_server_errors_are_retried_without_sleeping_then_post_once(  # noqa: PLR0917
    kube: MemoryRunClient,
    gerrit: GerritStandIn,
    deliver: Deliver,
    status: int,
    headers: dict[str, str],
    path: str | None,
    http: int,
    reason: str,
    retry_after: str | None,
) -> None:
    successful = event("pipelinerun-successful")
    ref = add_run(kube, successful)
    client = function_client("gerrit")
    gerrit.fail_next(status, headers=headers, path=path)
    answer = deliver(client, successful)
    assert answer.status_code == http
    assert answer.headers.get("Retry-After") == retry_after
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("Unknown", reason)
    assert len(gerrit.calls_to()) == (1 if path is None else 2), "no retry within the request"

    assert outcome(deliver(client, successful)) == "reported"
    assert len(gerrit.reviews()) == 1
    assert condition(kube, ref)["status"] == "True"


@pytest.mark.parametrize(
    ("status", "path", "reason", "hint"),
    [
        (401, None, "GerritUnauthorized", "generate a new HTTP password"),
        (403, None, "GerritForbidden", "access rights"),
        (404, None, "GerritNotFound", "check gerrit.integrations.tekton.dev/change"),
        (404, "*/review", "GerritNotFound", "no such revision"),
        (409, "*/review", "GerritRejected", "a merged change takes no lower vote"),
    ],
)
def test_refusals_record_false_with_a_hint_and_are_not_retried(  # noqa: PLR0917
    kube: MemoryRunClient,
    gerrit: GerritStandIn,
    deliver: Deliver,
    status: int,
    path: str | None,
    reason: str,
    hint: str,
) -> None:
    successful = event("pipelinerun-successful")
    ref = add_run(kube, successful)
    client = function_client("gerrit")
    gerrit.fail_next(status, path=path)
    answer = deliver(client, successful)
    assert (answer.status_code, outcome(answer)) == (200, "failed")
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", reason)
    assert hint in cond["message"]
    assert f"change {CHANGE} of {PROJECT}" in cond["message"]
    assert [name for _, name, _ in kube.events] == ["IntegrationFailed"]
    calls = len(gerrit.calls_to())
    assert outcome(deliver(client, successful)) == "ignored"
    assert len(gerrit.calls_to()) == calls
    assert not gerrit.reviews()


def test_wrong_credentials_are_unauthorized(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GERRIT_PASSWORD", "not-the-password-0123")
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    deliver(function_client("gerrit"), running)
    assert condition(kube, ref)["reason"] == "GerritUnauthorized"
    assert [call.credential for call in gerrit.calls_to()] == ["invalid"]


def test_redirects_are_not_followed_with_the_credentials(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver
) -> None:
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    with GerritStandIn() as elsewhere:
        gerrit.fail_next(302, headers={"Location": elsewhere.url + CHANGE_PATH})
        deliver(function_client("gerrit"), running)
        assert not elsewhere.calls_to()
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("False", "GerritRedirected")


def test_an_unreachable_gerrit_is_temporary(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    with GerritStandIn() as gone:
        closed = gone.url
    monkeypatch.setenv("GERRIT_URL", closed)
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    assert deliver(function_client("gerrit"), running).status_code == 503
    assert condition(kube, ref)["reason"] == "GerritUnreachable"


# -- configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("GERRIT_PASSWORD", None, "GERRIT_PASSWORD(_FILE)"),
        ("GERRIT_USERNAME", None, "GERRIT_USERNAME(_FILE)"),
        ("GERRIT_URL", None, "GERRIT_URL(_FILE)"),
        ("GERRIT_URL", "https://ci:secret@review.example.com", "GERRIT_URL: must hold no user"),
        ("GERRIT_URL", "ftp://review.example.com", "GERRIT_URL: must be an http(s) URL"),
        ("GERRIT_ALLOWED_VOTES", "Verified=+1..-1", "GERRIT_ALLOWED_VOTES: 'Verified=+1..-1': the lowest"),
        ("GERRIT_ALLOWED_VOTES", "Verified", "GERRIT_ALLOWED_VOTES: 'Verified' is not a label range"),
    ],
)
def test_missing_or_invalid_settings_are_recorded_naming_the_variable(  # noqa: PLR0917
    kube: MemoryRunClient,
    gerrit: GerritStandIn,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str | None,
    why: str,
) -> None:
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    answer = deliver(function_client("gerrit"), running)
    assert (answer.status_code, outcome(answer)) == (200, "failed")
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "GerritNotConfigured")
    assert why in cond["message"]
    assert "secret" not in cond["message"]
    assert not gerrit.calls_to()


def test_invalid_annotations_are_recorded(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver
) -> None:
    running = event(
        "pipelinerun-running",
        change="I8473b95934b5732ac55d26311a706c9c2bde9940",
        revision="HEAD",
        label="Verified+1",
    )
    running["data"]["pipelineRun"]["metadata"]["annotations"]["gerrit.integrations.tekton.dev/project"] = (
        "a/../b"
    )
    ref = add_run(kube, running)
    deliver(function_client("gerrit"), running)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "InvalidConfiguration")
    for key in ("change", "revision", "project", "label"):
        assert f"gerrit.integrations.tekton.dev/{key}" in cond["message"]
    assert not gerrit.calls_to()


@pytest.mark.parametrize(("revision", "patch_set"), [("2", 2), ("1", 1), ("current", 2), (OLD_SHA[:7], 1)])
def test_a_revision_may_be_a_patch_set_current_or_a_short_sha(
    kube: MemoryRunClient, gerrit: GerritStandIn, deliver: Deliver, revision: str, patch_set: int
) -> None:
    running = event("pipelinerun-running", revision=revision)
    add_run(kube, running)
    assert outcome(deliver(function_client("gerrit"), running)) == "reported"
    assert [review.patch_set for review in gerrit.reviews()] == [patch_set]
