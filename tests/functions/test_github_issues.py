"""The github-issues function, driven through functions-framework with Tekton's event shapes,
against the loopback GitHub issues stand-in (``tests/support/standins/github_issues.py``)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from common import samples
from common.errors import KubernetesUnavailableError
from common.events import parse_run
from common.http import use_run_client
from common.integration import Context
from common.runclient import MemoryRunClient, RunRef
from tests.conftest import Deliver, add_run, advance, body, function_client
from tests.support.github_app import sign_in_as_app
from tests.support.policies import use_policy
from tests.support.receiver import post_together, to_app
from tests.support.standins.github_issues import BOT_LOGIN, GitHubIssuesStandIn

PREFIX = "github-issues.integrations.tekton.dev/"
RECORD = PREFIX + "status"
REPO = "acme/widget-service"
LABEL = "tekton-pipeline-failure"
TOKEN = "issues-test-credential-0123456789abcdef"
DASHBOARD = "https://dashboard.example.org"
ISSUES = "/repos/acme/widget-service/issues"


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubIssuesStandIn]:
    """A loopback GitHub with issues; the function is pointed at it with a token."""
    with GitHubIssuesStandIn() as standin:
        monkeypatch.setenv("GITHUB_API_URL", standin.url)
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        monkeypatch.setenv("TEKTON_DASHBOARD_URL", DASHBOARD)
        yield standin


def run_of(sample: str, name: str, pipeline: str = "build-and-test", **keys: str) -> dict[str, Any]:
    """The sample as one run (its own name and UID) of ``pipeline`` that asks for github-issues only."""
    event = samples.load(sample)
    _, obj = samples.run_object(event)
    metadata = obj["metadata"]
    metadata["name"], metadata["uid"] = name, f"uid-{name}"
    metadata["labels"]["tekton.dev/pipeline"] = pipeline
    settings = {"owner": "acme", "repo": "widget-service", **keys}
    metadata["annotations"] = {PREFIX + key.replace("_", "-"): value for key, value in settings.items()}
    return event


def failing(
    kube: MemoryRunClient, name: str, pipeline: str = "build-and-test", **keys: str
) -> dict[str, Any]:
    """A failed run, stored with its failed child TaskRun (the failed tasks come from it), named and
    labelled as Tekton names and labels a run's children."""
    event = run_of("pipelinerun-failed", name, pipeline, **keys)
    for reference in samples.run_object(event)[1]["status"]["childReferences"]:
        reference["name"] = f"{name}-{reference['pipelineTaskName']}"
    add_run(kube, event)
    child = samples.load("taskrun-failed")
    metadata = samples.run_object(child)[1]["metadata"]
    metadata["name"] = f"{name}-{metadata['labels']['tekton.dev/pipelineTask']}"
    metadata["labels"]["tekton.dev/pipelineRun"] = name
    add_run(kube, child)
    return event


def passing(
    kube: MemoryRunClient, name: str, pipeline: str = "build-and-test", **keys: str
) -> dict[str, Any]:
    event = run_of("pipelinerun-successful", name, pipeline, **keys)
    add_run(kube, event)
    return event


def ref_of(event: dict[str, Any]) -> RunRef:
    _, obj = samples.run_object(event)
    return RunRef("PipelineRun", obj["metadata"]["namespace"], obj["metadata"]["name"])


def record(kube: MemoryRunClient, event: dict[str, Any]) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(kube.runs[ref_of(event)]["metadata"]["annotations"][RECORD])
    return stored


def condition(kube: MemoryRunClient, event: dict[str, Any]) -> tuple[str, str, str]:
    first = record(kube, event)["conditions"][0]
    return first["status"], first["reason"], first["message"]


def open_issues(github: GitHubIssuesStandIn, repo: str = REPO) -> list[dict[str, Any]]:
    return [issue for issue in github.issues(repo) if issue["state"] == "open"]


def keys_in(text: str) -> list[tuple[str, str]]:
    """(run UID, outcome) of each state marker in ``text``."""
    found = re.finditer(r"<!-- tekton-integrations: run=(\S+) key=\S+ outcome=(\w+) -->", text)
    return [(match.group(1), match.group(2)) for match in found]


def timeline(github: GitHubIssuesStandIn, number: int) -> list[tuple[str, str]]:
    """(run UID, outcome) of the issue's body, then of each of its comments."""
    (issue,) = (i for i in github.issues() if i["number"] == number)
    texts = [issue["body"], *(comment["body"] for comment in github.comments(number))]
    return [found for text in texts for found in keys_in(text)]


def writes(github: GitHubIssuesStandIn) -> list[tuple[str, str]]:
    return [(call.method, call.path) for call in github.calls if call.method != "GET"]


# -- the lifecycle ---------------------------------------------------------------------------------


def test_a_failed_run_opens_one_issue_with_the_failed_tasks_and_the_link(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    failed = failing(kube, "build-1")
    answer = deliver(function_client("github-issues"), failed)

    assert (answer.status_code, body(answer)["outcome"]) == (200, "reported")
    assert [(c.method, c.path, c.query.get("state")) for c in github.calls] == [
        ("GET", ISSUES, ["open"]),  # the pipeline's open issue, by label
        ("GET", ISSUES, ["closed"]),  # this failure, already reported and closed since?
        ("POST", ISSUES, None),
        ("GET", ISSUES, ["open"]),  # did another run open one at the same moment?
    ]
    assert github.calls[0].query["labels"] == [LABEL]
    assert github.calls[1].query["since"] == ["2026-03-14T09:53:41Z"], "since the run ended, less 10 min"
    (issue,) = github.issues()
    assert issue["title"] == "tekton: ci/build-and-test is failing"
    assert issue["labels"] == [LABEL]
    text = issue["body"]
    assert "<!-- tekton-integrations: pipeline=ci/build-and-test -->" in text
    assert keys_in(text) == [("uid-build-1", "failed")]
    assert f"[`build-1`]({DASHBOARD}/#/namespaces/ci/pipelineruns/build-1)" in text
    assert '| `unit-tests` | StepFailed | "step-run-tests" exited with code 1: Error |' in text
    assert "| `build-image` | Skipped | PipelineRun was stopping |" in text
    assert "after 1m 0s" in text
    assert record(kube, failed)["annotations"] == {
        "issue-number": str(issue["number"]),
        "issue-url": f"{github.url}/{REPO}/issues/{issue['number']}",
    }
    assert condition(kube, failed) == ("True", "IssueOpened", "opened issue #1: ci/build-and-test is failing")


def test_three_failures_of_one_pipeline_give_one_issue_and_two_comments(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    events = [failing(kube, f"build-{n}") for n in (1, 2, 3)]
    for event in events:  # each delivered by a fresh instance: nothing is remembered but on GitHub
        assert deliver(function_client("github-issues"), event).status_code == 200

    (issue,) = github.issues()
    assert issue["state"] == "open"
    assert timeline(github, issue["number"]) == [
        ("uid-build-1", "failed"),
        ("uid-build-2", "failed"),
        ("uid-build-3", "failed"),
    ]
    (second, third) = github.comments(issue["number"])
    assert second["body"].count("**Failed again:** run [`build-2`]") == 1
    assert "| `unit-tests` | StepFailed |" in third["body"], "each comment holds that run's failed tasks"
    assert [condition(kube, event)[:2] for event in events] == [
        ("True", "IssueOpened"),
        ("True", "IssueCommented"),
        ("True", "IssueCommented"),
    ]
    assert {record(kube, event)["annotations"]["issue-number"] for event in events} == {str(issue["number"])}


def test_a_later_success_comments_and_closes_the_issue(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    client = function_client("github-issues")
    for event in (failing(kube, "build-1"), failing(kube, "build-2")):
        deliver(client, event)
    github.calls.clear()

    fixed = passing(kube, "build-3")
    answer = deliver(client, fixed)

    assert body(answer)["outcome"] == "reported"
    assert writes(github) == [("POST", f"{ISSUES}/1/comments"), ("PATCH", f"{ISSUES}/1")]
    (issue,) = github.issues()
    assert (issue["state"], issue["state_reason"]) == ("closed", "completed")
    assert timeline(github, 1)[-1] == ("uid-build-3", "passed")
    assert github.comments(1)[-1]["body"].endswith("after 3m 45s. Closing this issue.")
    assert condition(kube, fixed) == ("True", "IssueClosed", "closed issue #1: ci/build-and-test passed")

    again = failing(kube, "build-4")  # the pipeline breaks again: a new issue
    deliver(client, again)
    assert [(i["number"], i["state"]) for i in github.issues()] == [(1, "closed"), (2, "open")]


def test_started_then_succeeded_with_no_open_issue_makes_one_lookup_and_a_true_record(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    running = run_of("pipelinerun-running", "build-1")
    successful = run_of("pipelinerun-successful", "build-1")
    add_run(kube, running)
    client = function_client("github-issues")

    started = deliver(client, running)
    assert (started.status_code, body(started)["outcome"]) == (200, "ignored")
    assert not github.calls, "a running pipeline is nothing to report"

    advance(kube, ref_of(running), successful)
    answer = deliver(client, successful)
    assert (answer.status_code, body(answer)["outcome"]) == (200, "reported")
    assert [(c.method, c.path, c.query["state"]) for c in github.calls] == [("GET", ISSUES, ["open"])]
    assert condition(kube, successful) == (
        "True",
        "NoOpenIssue",
        "no open issue for ci/build-and-test: nothing to close",
    )


def test_with_close_false_a_success_comments_once_per_failure_streak_and_leaves_the_issue_open(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    client = function_client("github-issues")
    runs = [
        failing(kube, "build-1", close="false"),
        passing(kube, "build-2", close="false"),
        passing(kube, "build-3", close="false"),  # still passing: nothing new to say
        failing(kube, "build-4", close="false"),
        passing(kube, "build-5", close="false"),
    ]
    for event in runs:
        assert deliver(client, event).status_code == 200

    (issue,) = github.issues()
    assert issue["state"] == "open"
    assert timeline(github, issue["number"]) == [
        ("uid-build-1", "failed"),
        ("uid-build-2", "passed"),
        ("uid-build-4", "failed"),
        ("uid-build-5", "passed"),
    ]
    assert "Closing" not in github.comments(issue["number"])[0]["body"]
    assert condition(kube, runs[2])[1:] == (
        "IssueCommented",
        "already said so on issue #1: ci/build-and-test passed (the issue stays open)",
    )


def test_each_pipeline_has_its_own_issue_and_labels_are_added(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    client = function_client("github-issues")
    deliver(client, failing(kube, "build-1", labels="ci, Needs Triage"))
    deliver(client, failing(kube, "deploy-1", pipeline="deploy", labels="ci"))
    deliver(client, failing(kube, "deploy-2", pipeline="deploy"))
    deliver(client, passing(kube, "build-2"))

    build, deploy = github.issues()
    assert (build["title"], build["labels"], build["state"]) == (
        "tekton: ci/build-and-test is failing",
        [LABEL, "ci", "Needs Triage"],
        "closed",
    )
    assert (deploy["title"], deploy["state"]) == ("tekton: ci/deploy is failing", "open")
    assert timeline(github, deploy["number"]) == [("uid-deploy-1", "failed"), ("uid-deploy-2", "failed")]


def test_a_cancelled_run_opens_nothing_unless_asked(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    client = function_client("github-issues")
    cancelled = run_of("pipelinerun-cancelled", "build-1")
    add_run(kube, cancelled)
    assert body(deliver(client, cancelled))["outcome"] == "ignored"
    assert not github.calls

    asked = run_of("pipelinerun-cancelled", "build-2", on="failed,succeeded")
    add_run(kube, asked)
    assert body(deliver(client, asked))["outcome"] == "reported"
    (issue,) = github.issues()
    assert "(Cancelled" in issue["body"]


def test_a_timed_out_run_is_a_failure(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    timed_out = run_of("pipelinerun-failed", "build-1")
    samples.run_object(timed_out)[1]["status"]["conditions"][0]["reason"] = "PipelineRunTimeout"
    add_run(kube, timed_out)
    deliver(function_client("github-issues"), timed_out)
    (issue,) = github.issues()
    assert "(Timed out: PipelineRunTimeout)" in issue["body"]


# -- exactly once ----------------------------------------------------------------------------------


def test_duplicates_and_reordering_produce_nothing_new(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    client = function_client("github-issues")
    runs = []
    for name, outcome in (("build-1", "failed"), ("build-2", "failed"), ("build-3", "successful")):
        states = [run_of(f"pipelinerun-{phase}", name) for phase in ("running", outcome)]
        ref = add_run(kube, states[0])
        advance(kube, ref, states[1])  # the run is done before its events arrive
        for event in states:
            deliver(client, event)
        runs.append(states)
    issues, comments, calls = github.issues(), github.comments(1), len(github.calls)
    records = [record(kube, states[1]) for states in runs]

    redelivered = [event for states in runs for event in states] * 3
    random.Random(11).shuffle(redelivered)
    for event in redelivered:
        answer = deliver(client, event)
        assert (answer.status_code, body(answer)["outcome"]) == (200, "ignored")

    assert github.issues() == issues
    assert github.comments(1) == comments
    assert len(github.calls) == calls, "duplicates made GitHub calls"
    assert [record(kube, states[1]) for states in runs] == records


def test_concurrent_deliveries_of_one_failure_open_one_issue(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    failed = failing(kube, "build-1")
    app = function_client("github-issues").application
    answers = [answer for _, answer in post_together(to_app(app), [failed] * 6)]
    outcomes = [(a.status_code, body(a)["outcome"], body(a).get("reason")) for a in answers]
    assert outcomes.count((200, "reported", "IssueOpened")) == 1
    waited = [(429, "retry", "Busy"), (200, "ignored", None)]  # the claim, or the record, was there
    assert all(outcome in waited for outcome in outcomes if outcome[1] != "reported")
    assert len(github.issues()) == 1
    assert not github.comments(1)
    for _ in range(2):  # the sender's redeliveries find the state reported
        assert body(deliver(function_client("github-issues"), failed))["outcome"] == "ignored"
    assert len(github.issues()) == 1


def test_runs_of_one_pipeline_failing_at_the_same_moment_open_one_issue(
    kube: MemoryRunClient, github: GitHubIssuesStandIn
) -> None:
    """A broken dependency fails every run at once: one instance serves them one at a time per
    pipeline, so the first opens the issue and the others comment on it."""
    events = [failing(kube, f"build-{n}") for n in range(1, 7)]
    app = function_client("github-issues").application
    answers = [answer for _, answer in post_together(to_app(app), events)]
    assert [a.status_code for a in answers] == [200] * len(events)

    (issue,) = github.issues()
    shown = sorted(uid for uid, _ in timeline(github, issue["number"]))
    assert shown == [f"uid-build-{n}" for n in range(1, 7)], "every failure once, on the one issue"


def test_duplicate_open_issues_are_converged_onto_the_oldest(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    """Two replicas opened an issue each at the same moment: the next report keeps the oldest."""
    marker = "<!-- tekton-integrations: pipeline=ci/build-and-test -->"
    older = github.add_issue(REPO, "tekton: ci/build-and-test is failing", marker, (LABEL,))
    newer = github.add_issue(REPO, "tekton: ci/build-and-test is failing", marker, (LABEL,))
    deliver(function_client("github-issues"), failing(kube, "build-1"))
    assert [i["number"] for i in open_issues(github)] == [older]
    assert timeline(github, older) == [("uid-build-1", "failed")]
    closed = github.issues()[1]
    assert (closed["number"], closed["state_reason"]) == (newer, "not_planned")


class SameCluster:
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


def another_replica(kube: MemoryRunClient) -> FlaskClient:
    use_run_client(SameCluster(kube))
    return function_client("github-issues")


def die_before_recording(kube: MemoryRunClient) -> None:
    """The claim is written; the replica dies before the record after the GitHub calls is."""
    patches = 0

    def fail(verb: str, _: RunRef) -> None:
        nonlocal patches
        patches += verb == "patch"
        if verb == "patch" and patches == 2:
            raise KubernetesUnavailableError("the replica was killed")

    kube.before_request = fail


def expire_claim(kube: MemoryRunClient, event: dict[str, Any]) -> None:
    """Time passes: the stored claim is older than a claim protects (120 s)."""
    stored = record(kube, event)
    stored["claim"]["at"] = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kube.patch(ref_of(event), {"metadata": {"annotations": {RECORD: json.dumps(stored)}}})


@pytest.mark.parametrize("existing", [0, 1], ids=["opening", "commenting"])
def test_a_replica_killed_between_the_call_and_the_record_adds_nothing_twice(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver, existing: int
) -> None:
    for n in range(existing):
        deliver(function_client("github-issues"), failing(kube, f"earlier-{n}"))
    failed = failing(kube, "build-1")
    die_before_recording(kube)
    assert deliver(function_client("github-issues"), failed).status_code == 503
    kube.before_request = None
    assert record(kube, failed)["claim"] is not None, "the claim stayed; the record was never written"
    assert len(timeline(github, 1)) == existing + 1
    issues, comments = github.issues(), github.comments(1)

    replica = another_replica(kube)
    busy = deliver(replica, failed)
    assert (busy.status_code, body(busy)["reason"]) == (429, "Busy"), "a fresh claim is waited for"
    expire_claim(kube, failed)
    answer = deliver(replica, failed)

    assert (answer.status_code, body(answer)["outcome"]) == (200, "reported")
    assert github.issues() == issues
    assert github.comments(1) == comments, "the failure was found on GitHub and not added again"
    assert condition(kube, failed)[:2] == ("True", "IssueCommented")
    assert condition(kube, failed)[2] == "issue #1 already shows this failure"
    assert record(kube, failed)["annotations"]["issue-number"] == "1"


def test_a_replica_killed_after_the_closing_comment_closes_without_a_second_comment(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    deliver(function_client("github-issues"), failing(kube, "build-1"))
    fixed = passing(kube, "build-2")
    github.fail_next(502, method="PATCH", path=f"{ISSUES}/1")  # commented; closing fails
    die_before_recording(kube)  # ... and the record of that failure is lost too
    assert deliver(function_client("github-issues"), fixed).status_code == 503
    kube.before_request = None
    expire_claim(kube, fixed)

    assert deliver(another_replica(kube), fixed).status_code == 200
    assert [outcome for _, outcome in timeline(github, 1)] == ["failed", "passed"]
    assert github.issues()[0]["state"] == "closed"
    assert condition(kube, fixed)[:2] == ("True", "IssueClosed")


def test_a_failure_redelivered_after_its_issue_was_closed_does_not_reopen_one(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    """The record of the failure was lost (an older copy written back by Tekton) and a success
    closed the issue since: the failure is found in the closed issue, nothing is opened."""
    client = function_client("github-issues")
    failed = failing(kube, "build-1")
    deliver(client, failed)
    deliver(client, passing(kube, "build-2"))
    del kube.runs[ref_of(failed)]["metadata"]["annotations"][RECORD]

    answer = deliver(another_replica(kube), failed)
    assert body(answer)["outcome"] == "reported"
    assert [(i["number"], i["state"]) for i in github.issues()] == [(1, "closed")]
    assert condition(kube, failed)[2] == "issue #1 already shows this failure"


STEPS = {
    "list-open": lambda github: github.fail_listing("open", 503),
    "list-closed": lambda github: github.fail_listing("closed", 503),
    "open": lambda github: github.fail_next(503, method="POST", path=ISSUES),
    "list-open-after-opening": lambda github: github.fail_listing("open", 503, skip=1),
    "read-comments": lambda github: github.fail_next(503, method="GET", path=f"{ISSUES}/*/comments"),
    "comment": lambda github: github.fail_next(503, method="POST", path=f"{ISSUES}/*/comments"),
    "close": lambda github: github.fail_next(503, method="PATCH", path=f"{ISSUES}/*"),
}


@pytest.mark.parametrize("step", STEPS)
def test_a_503_at_any_step_is_redelivered_into_one_issue_one_comment_and_a_close(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver, step: str
) -> None:
    client = function_client("github-issues")
    events = [failing(kube, "build-1"), failing(kube, "build-2"), passing(kube, "build-3")]
    STEPS[step](github)
    refused = 0
    for event in events:
        answer = deliver(client, event)
        if answer.status_code == 503:
            refused += 1
            assert condition(kube, event)[:2] == ("Unknown", "GitHubUnavailable")
            answer = deliver(client, event)  # the sender's redelivery
        assert answer.status_code == 200, body(answer)
    assert refused == 1
    (issue,) = github.issues()
    assert timeline(github, issue["number"]) == [
        ("uid-build-1", "failed"),
        ("uid-build-2", "failed"),
        ("uid-build-3", "passed"),
    ]
    assert issue["state"] == "closed"


# -- faults ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (500, {}, None),
        (502, {}, None),
        (503, {"Retry-After": "20"}, 20),
        (429, {"Retry-After": "17"}, 17),
        (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4102444800"}, 3600),  # primary
        (403, {"Retry-After": "45"}, 45),  # secondary
    ],
    ids=["500", "502", "503-retry-after", "429", "403-primary-rate-limit", "403-secondary-rate-limit"],
)
def test_rate_limits_and_5xx_are_retried_by_the_sender(  # noqa: PLR0917
    kube: MemoryRunClient,
    github: GitHubIssuesStandIn,
    deliver: Deliver,
    status: int,
    headers: dict[str, str],
    retry_after: int | None,
) -> None:
    failed = failing(kube, "build-1")
    github.fail_next(status, headers=headers, method="POST", path=ISSUES)
    answer = deliver(function_client("github-issues"), failed)

    limited = status in (403, 429)
    assert answer.status_code == (429 if retry_after else 503)
    assert answer.headers.get("Retry-After") == (str(retry_after) if retry_after else None)
    assert condition(kube, failed)[:2] == ("Unknown", "GitHubRateLimited" if limited else "GitHubUnavailable")
    assert not github.issues()
    assert deliver(function_client("github-issues"), failed).status_code == 200
    assert len(github.issues()) == 1


@pytest.mark.parametrize(
    ("status", "reason", "hint"),
    [
        (401, "GitHubUnauthorized", "check GITHUB_TOKEN(_FILE)"),
        (403, "GitHubForbidden", "Issues (read and write)"),
        (404, "GitHubNotFound", "check github-issues.integrations.tekton.dev/owner and repo"),
        (410, "GitHubIssuesDisabled", "issues are disabled on the repository"),
        (422, "GitHubRejected", "GitHub refused the issue or comment"),
    ],
)
def test_refusals_are_recorded_false_with_a_hint(  # noqa: PLR0917 -- fixtures and parameters
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver, status: int, reason: str, hint: str
) -> None:
    failed = failing(kube, "build-1")
    github.fail_next(status, method="POST", path=ISSUES)
    answer = deliver(function_client("github-issues"), failed)

    assert (answer.status_code, body(answer)["outcome"]) == (200, "failed")
    state, said, message = condition(kube, failed)
    assert (state, said) == ("False", reason)
    assert message.startswith(f"open an issue in {REPO}: {status} ")
    assert hint in message
    assert [reason for _, reason, _ in kube.events] == ["IntegrationFailed"]
    calls = len(github.calls)
    assert body(deliver(function_client("github-issues"), failed))["outcome"] == "ignored"
    assert len(github.calls) == calls, "a refused state is not tried again"


def test_issues_disabled_on_the_repository_is_recorded_with_the_fix(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    github.disable_issues(REPO)
    failed = failing(kube, "build-1")
    deliver(function_client("github-issues"), failed)
    assert condition(kube, failed)[:2] == ("False", "GitHubIssuesDisabled")
    assert "enable them in its settings" in condition(kube, failed)[2]


def test_a_label_github_drops_is_recorded_false_with_the_issue_and_the_fix(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    github.push_access = False  # GitHub silently drops labels set without push access
    failed = failing(kube, "build-1")
    deliver(function_client("github-issues"), failed)
    state, reason, message = condition(kube, failed)
    assert (state, reason) == ("False", "GitHubLabelDropped")
    assert "needs push access" in message
    assert record(kube, failed)["annotations"]["issue-number"] == "1"


def test_too_many_open_labelled_issues_open_nothing(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    for n in range(501):
        github.add_issue(REPO, f"someone else's {n}", "no marker", (LABEL,))
    failed = failing(kube, "build-1")
    deliver(function_client("github-issues"), failed)
    assert condition(kube, failed)[:2] == ("False", "GitHubTooManyIssues")
    assert len(github.issues()) == 501


# -- untrusted records, markers and authors ----------------------------------------------------------


def forge_record(kube: MemoryRunClient, event: dict[str, Any], number: str) -> None:
    """What the run's author can do with ``kubectl annotate``: a record naming any issue."""
    forged = {
        "name": "github-issues.integrations.tekton.dev",
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Succeeded",
                "status": "Unknown",
                "reason": "GitHubUnavailable",
                "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
        "annotations": {"issue-number": number},
        "runUID": samples.run_object(event)[1]["metadata"]["uid"],
        "runState": {"status": "Unknown", "reason": "Running"},
    }
    kube.patch(ref_of(event), {"metadata": {"annotations": {RECORD: json.dumps(forged)}}})


@pytest.mark.parametrize(
    "target", ["another-pipeline", "pull-request", "transferred", "other-repo", "not-a-number"]
)
def test_a_forged_issue_number_never_edits_what_is_not_this_pipelines(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver, target: str
) -> None:
    ours = "<!-- tekton-integrations: pipeline=ci/build-and-test -->"
    victim = {
        "another-pipeline": lambda: github.add_issue(
            REPO, "tekton: ci/deploy is failing", "<!-- tekton-integrations: pipeline=ci/deploy -->", (LABEL,)
        ),
        "pull-request": lambda: github.add_issue(REPO, "a PR", ours, (LABEL,), pull_request=True),
        "transferred": lambda: github.add_issue(REPO, "moved", ours, (LABEL,)),
        "other-repo": lambda: github.add_issue("acme/gadget", "theirs", ours, (LABEL,)),
        "not-a-number": lambda: 1,
    }[target]()
    if target == "transferred":  # GitHub answers 301 to the issue's new home: another repository
        github.transfer(REPO, victim, "acme/gadget")
    before = {repo: github.issues(repo, pull_requests=True) for repo in (REPO, "acme/gadget")}

    client = function_client("github-issues")
    failed, fixed = failing(kube, "build-1"), passing(kube, "build-2")
    for event in (failed, fixed):
        forge_record(kube, event, "../1" if target == "not-a-number" else str(victim))
        assert deliver(client, event).status_code == 200

    assert github.issues("acme/gadget", pull_requests=True) == before["acme/gadget"]
    for issue in before[REPO]:
        assert issue in github.issues(REPO, pull_requests=True), "another issue was edited"
        assert not github.comments(issue["number"])
    assert {call.path.split("/issues")[0] for call in github.calls} <= {f"/repos/{REPO}"}, (
        "only the configured repo"
    )
    (own,) = (i for i in github.issues() if i["title"] == "tekton: ci/build-and-test is failing")
    assert timeline(github, own["number"]) == [("uid-build-1", "failed"), ("uid-build-2", "passed")]
    assert own["state"] == "closed"
    assert record(kube, failed)["annotations"]["issue-number"] == str(own["number"])


def test_a_recorded_issue_the_list_does_not_show_yet_is_used_once_verified(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    """The issue was opened, a later call failed, and the list lags behind the new issue
    (GitHub's replicas): the number the failure recorded is checked with GitHub and used."""
    failed = failing(kube, "build-1")
    client = function_client("github-issues")
    github.fail_listing("open", 503, skip=1)  # the listing right after opening the issue
    assert deliver(client, failed).status_code == 503
    assert record(kube, failed)["annotations"]["issue-number"] == "1", "kept from the partial success"

    github.lagging.add(1)
    answer = deliver(client, failed)

    assert body(answer)["outcome"] == "reported"
    assert len(github.issues()) == 1
    assert github.calls_to("GET", f"{ISSUES}/1"), "the recorded number was checked with GitHub"
    assert condition(kube, failed)[2] == "issue #1 already shows this failure"


def key_of(kube: MemoryRunClient, event: dict[str, Any]) -> str:
    """The key the function gives this run's current state (``Context.key``)."""
    run = parse_run("PipelineRun", kube.runs[ref_of(event)])
    context: Context[Any, Any] = Context("github-issues", run, None, None, None, None)  # type: ignore[arg-type]
    return context.key()


def test_a_marker_in_someone_elses_comment_does_not_stand_for_this_runs(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    client = function_client("github-issues")
    deliver(client, failing(kube, "build-1"))
    second = failing(kube, "build-2")
    copied = f"<!-- tekton-integrations: run=uid-build-2 key={key_of(kube, second)} outcome=failed -->"
    github.add_comment(REPO, 1, copied, login="mallory")  # e.g. to keep the failure off the issue

    deliver(client, second)

    assert [uid for uid, _ in timeline(github, 1)].count("uid-build-2") == 2
    assert github.comments(1)[-1]["author"] == ("octocat", "User")
    assert condition(kube, second)[2] == "commented on issue #1: ci/build-and-test failed again"


def test_a_runs_own_words_cannot_mention_people_or_forge_markers(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    failed = failing(kube, "build-1")
    words = "@security-team see <!-- tekton-integrations: run=x key=y outcome=passed --> **now** | #1"
    samples.run_object(failed)[1]["status"]["conditions"][0]["message"] = words
    kube.runs[ref_of(failed)]["status"]["conditions"][0]["message"] = words
    deliver(function_client("github-issues"), failed)
    (issue,) = github.issues()
    assert "@security-team" not in issue["body"]
    assert "&#64;security-team" in issue["body"]
    assert keys_in(issue["body"]) == [("uid-build-1", "failed")], "only the function's own marker"
    assert "**now**" not in issue["body"]


def test_a_pull_request_with_the_label_and_marker_is_not_the_issue(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    marker = "<!-- tekton-integrations: pipeline=ci/build-and-test -->"
    pr = github.add_issue(REPO, "a PR", marker, (LABEL,), pull_request=True)
    deliver(function_client("github-issues"), failing(kube, "build-1"))
    assert not github.comments(pr)
    assert [i["number"] for i in github.issues()] == [pr + 1]


# -- configuration, credentials and policy -----------------------------------------------------------


def test_invalid_annotations_are_recorded_not_sent(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    failed = failing(kube, "build-1", labels="ok, " + "x" * 51, close="maybe")
    deliver(function_client("github-issues"), failed)
    state, reason, message = condition(kube, failed)
    assert (state, reason) == ("False", "InvalidConfiguration")
    assert "github-issues.integrations.tekton.dev/labels" in message
    assert "github-issues.integrations.tekton.dev/close" in message
    assert not github.calls


def test_a_repository_the_namespace_may_not_target_is_refused_without_a_call(
    kube: MemoryRunClient,
    github: GitHubIssuesStandIn,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    use_policy(
        monkeypatch, tmp_path, {"namespaces": {"ci": {"github-issues": {"repositories": ["acme/other"]}}}}
    )
    failed = failing(kube, "build-1")
    deliver(function_client("github-issues"), failed)
    state, reason, message = condition(kube, failed)
    assert (state, reason) == ("False", "TargetNotAllowed")
    assert "acme/widget-service" in message
    assert not github.calls


def test_without_credentials_it_says_which_settings_are_missing(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")
    failed = failing(kube, "build-1")
    deliver(function_client("github-issues"), failed)
    state, reason, message = condition(kube, failed)
    assert (state, reason) == ("False", "GitHubNotConfigured")
    assert "GITHUB_TOKEN(_FILE)" in message


def test_a_github_app_is_looked_up_per_repository_and_writes_as_its_bot(
    kube: MemoryRunClient, deliver: Deliver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with GitHubIssuesStandIn() as github:
        monkeypatch.setenv("GITHUB_API_URL", github.enterprise_url)
        sign_in_as_app(monkeypatch, 1, tmp_path)
        client = function_client("github-issues")
        for event in (
            failing(kube, "build-1"),
            failing(kube, "build-2"),
            failing(kube, "gadget-1", repo="gadget"),
            passing(kube, "build-3"),
        ):
            assert body(deliver(client, event))["outcome"] == "reported"

        lookups = github.calls_to("GET", "/repos/*/installation")
        issue_calls = github.calls_to(path="/repos/*/issues*")
    assert [c.path for c in lookups] == [
        "/repos/acme/widget-service/installation",
        "/repos/acme/gadget/installation",
    ]
    assert all(c.credential == "installation-token" and c.enterprise_prefix for c in issue_calls)
    (ours,) = github.issues()
    assert ours["author"] == (BOT_LOGIN, "Bot")
    assert [c["author"] for c in github.comments(1)] == [(BOT_LOGIN, "Bot")] * 2
    assert ours["state"] == "closed"
    assert len(github.issues("acme/gadget")) == 1


def test_a_standalone_taskrun_has_an_issue_of_its_task(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    event = samples.load("taskrun-failed")
    _, obj = samples.run_object(event)
    obj["metadata"]["labels"] = {"tekton.dev/task": "golang-test"}  # not a pipeline's child
    obj["metadata"]["annotations"] = {PREFIX + "owner": "acme", PREFIX + "repo": "widget-service"}
    add_run(kube, event)
    assert body(deliver(function_client("github-issues"), event))["outcome"] == "reported"
    (issue,) = github.issues()
    assert issue["title"] == "tekton: ci/golang-test (Task) is failing"
    assert "<!-- tekton-integrations: task=ci/golang-test -->" in issue["body"]
    assert "&quot;" not in issue["body"]
    assert '"step-run-tests" exited with code 1: Error' in issue["body"]


def test_with_close_false_the_newest_comments_decide_after_a_long_discussion(
    kube: MemoryRunClient, github: GitHubIssuesStandIn, deliver: Deliver
) -> None:
    client = function_client("github-issues")
    deliver(client, failing(kube, "build-1", close="false"))
    deliver(client, passing(kube, "build-2", close="false"))
    for n in range(120):  # people talk it over: the function's last word is on the first page
        github.add_comment(REPO, 1, f"comment {n}")
    deliver(client, passing(kube, "build-3", close="false"))
    assert [outcome for _, outcome in timeline(github, 1)] == ["failed", "passed"], "nothing new to say"

    deliver(client, failing(kube, "build-4", close="false"))
    for n in range(120):
        github.add_comment(REPO, 1, f"more {n}")
    deliver(client, passing(kube, "build-5", close="false"))
    assert [outcome for _, outcome in timeline(github, 1)] == ["failed", "passed", "failed", "passed"]
    pages = [call.query.get("page") for call in github.calls_to("GET", f"{ISSUES}/1/comments")[-3:]]
    assert pages == [None, ["3"], ["2"]], "the first page for the links, then from the last back"
