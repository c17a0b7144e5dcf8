"""The GitHub function, driven through functions-framework with Tekton's event shapes."""

from __future__ import annotations

import copy
import itertools
import json
import random
from typing import Any

import pytest

from common import samples
from common.runclient import MemoryRunClient, RunRef
from common.standins.github import GitHubStandIn
from tests.conftest import Deliver, add_run, advance, body, function_client
from tests.support.receiver import post_together, to_app

RECORD = "github.integrations.tekton.dev/status"
SHA = "9f1c2e7b4a6d8e0f1a2b3c4d5e6f708192a3b4c5"


def record(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    return json.loads(kube.runs[ref]["metadata"]["annotations"][RECORD])


def condition(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = record(kube, ref)["conditions"]
    return conditions[0]


def test_running_then_successful_creates_one_check_run_then_completes_it(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org/")
    running, successful = samples.load("pipelinerun-running"), samples.load("pipelinerun-successful")
    ref = add_run(kube, running)
    client = function_client("github")

    assert deliver(client, running).status_code == 200
    lookup, create = github.calls_to(path="/repos/*/check-runs*")
    assert (lookup.method, lookup.path) == ("GET", f"/repos/acme/widget-service/commits/{SHA}/check-runs")
    assert lookup.query == {"check_name": ["tekton/build-and-test"], "filter": ["all"], "per_page": ["100"]}
    assert (create.method, create.path) == ("POST", "/repos/acme/widget-service/check-runs")
    (check_run,) = github.check_runs.values()
    assert check_run["external_id"] == kube.runs[ref]["metadata"]["uid"]
    assert check_run["status"] == "in_progress"
    assert check_run["name"] == "tekton/build-and-test"
    assert check_run["head_sha"] == SHA
    assert check_run["details_url"] == (
        "https://dashboard.example.org/#/namespaces/ci/pipelineruns/build-and-test-run-x7k2p"
    )

    advance(kube, ref, successful)
    assert deliver(client, successful).status_code == 200
    (check_run,) = github.check_runs.values()
    verify, edit = github.calls_to(path="/repos/*/check-runs*")[2:]
    assert [(c.method, c.path) for c in (verify, edit)] == [
        ("GET", f"/repos/acme/widget-service/check-runs/{check_run['id']}"),
        ("PATCH", f"/repos/acme/widget-service/check-runs/{check_run['id']}"),
    ], "the recorded id is checked with GitHub, then edited: no second lookup, no second check run"
    assert (check_run["status"], check_run["conclusion"]) == ("completed", "success")
    stored = record(kube, ref)
    assert stored["name"] == "github.integrations.tekton.dev"
    assert stored["annotations"]["check-run-id"] == str(check_run["id"])
    assert stored["observedGeneration"] == 1
    assert condition(kube, ref)["status"] == "True"


def test_redelivery_in_any_order_creates_no_second_check_run(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    names = ["pipelinerun-queued", "pipelinerun-started", "pipelinerun-running", "pipelinerun-successful"]
    events = [samples.load(name) for name in names]
    ref = add_run(kube, events[0])
    client = function_client("github")
    for event in events:  # the live run moves on; each event is delivered once, in order
        advance(kube, ref, event)
        assert deliver(client, event).status_code == 200
    final_record = record(kube, ref)
    calls_after_first_pass = len(github.calls)

    shuffled = [*events * 3]
    random.Random(7).shuffle(shuffled)
    for event in shuffled:
        assert deliver(client, event).status_code == 200

    assert len(github.check_runs) == 1
    assert len(github.calls) == calls_after_first_pass, "duplicates made GitHub calls"
    assert record(kube, ref) == final_record
    (check_run,) = github.check_runs.values()
    assert check_run["conclusion"] == "success"


def test_duplicates_make_no_kubernetes_write(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    successful = samples.load("pipelinerun-successful")
    ref = add_run(kube, successful)
    client = function_client("github")
    deliver(client, successful)
    written = kube.runs[ref]["metadata"]["resourceVersion"]
    kube.calls.clear()
    for _ in range(3):
        assert body(deliver(client, successful))["outcome"] == "ignored"
    # Each: the claim on the event's own resourceVersion is refused (409, nothing written), and the
    # read finds the state reported.
    assert [verb for verb, _ in kube.calls] == ["patch", "get"] * 3
    assert kube.runs[ref]["metadata"]["resourceVersion"] == written


@pytest.mark.parametrize("order", list(itertools.permutations(["running", "successful"])))
def test_late_running_event_never_regresses_a_finished_record(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, order: tuple[str, ...]
) -> None:
    ref = add_run(kube, samples.load("pipelinerun-running"))
    advance(kube, ref, samples.load("pipelinerun-successful"))  # the run is done before any delivery
    client = function_client("github")
    for phase in order:
        deliver(client, samples.load(f"pipelinerun-{phase}"))
    (check_run,) = github.check_runs.values()
    assert check_run["conclusion"] == "success"
    assert condition(kube, ref)["status"] == "True"
    assert record(kube, ref)["runState"] == {"status": "True", "reason": "Succeeded"}


def test_failed_before_start_is_reported_as_failure_with_its_reason(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    failed = samples.load("pipelinerun-failed-before-start")
    add_run(kube, failed)
    deliver(function_client("github"), failed)
    (check_run,) = github.check_runs.values()
    assert (check_run["status"], check_run["conclusion"]) == ("completed", "failure")
    assert check_run["output"]["title"] == "Failed: CouldntGetPipeline"
    assert "build-and-test-v2" in check_run["output"]["summary"]


@pytest.mark.parametrize(
    ("reason", "conclusion"),
    [("Cancelled", "cancelled"), ("PipelineRunTimeout", "timed_out"), ("Failed", "failure")],
)
def test_cancelled_and_timed_out_runs_are_distinguishable(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, reason: str, conclusion: str
) -> None:
    failed = samples.load("pipelinerun-failed")
    failed["data"]["pipelineRun"]["status"]["conditions"][0]["reason"] = reason
    add_run(kube, failed)
    deliver(function_client("github"), failed)
    (check_run,) = github.check_runs.values()
    assert check_run["conclusion"] == conclusion


def test_status_mode_posts_pending_then_success(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    running, successful = samples.load("pipelinerun-running"), samples.load("pipelinerun-successful")
    for event in (running, successful):
        event["data"]["pipelineRun"]["metadata"]["annotations"]["github.integrations.tekton.dev/mode"] = (
            "status"
        )
    ref = add_run(kube, running)
    client = function_client("github")
    deliver(client, running)
    advance(kube, ref, successful)
    deliver(client, successful)
    assert [s["state"] for s in github.statuses] == ["pending", "success"]
    assert all(len(s["description"]) <= 140 for s in github.statuses)
    assert {s["context"] for s in github.statuses} == {"tekton/build-and-test"}
    assert not github.check_runs


def test_status_mode_reports_failure(kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver) -> None:
    failed = samples.load("pipelinerun-failed")
    failed["data"]["pipelineRun"]["metadata"]["annotations"]["github.integrations.tekton.dev/mode"] = "status"
    add_run(kube, failed)
    deliver(function_client("github"), failed)
    assert [s["state"] for s in github.statuses] == ["failure"]


def test_github_503_answers_503_and_records_unknown_then_recovers(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    running = samples.load("pipelinerun-running")
    ref = add_run(kube, running)
    client = function_client("github")
    github.fail_next(503)
    answer = deliver(client, running)
    assert answer.status_code == 503
    assert condition(kube, ref)["status"] == "Unknown"
    assert condition(kube, ref)["reason"] == "GitHubUnavailable"

    assert deliver(client, running).status_code == 200  # the sender's redelivery
    assert len(github.check_runs) == 1
    assert condition(kube, ref)["status"] == "True"
    assert record(kube, ref)["attempts"] == 2


def test_github_404_answers_2xx_and_records_false_with_the_reason(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    running = samples.load("pipelinerun-running")
    ref = add_run(kube, running)
    github.fail_next(404)
    answer = deliver(function_client("github"), running)
    assert answer.status_code == 200
    assert body(answer)["outcome"] == "failed"
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "GitHubNotFound")
    assert "acme/widget-service" in cond["message"]
    assert [reason for _, reason, _ in kube.events] == ["IntegrationFailed"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Retry-After": "30"}, 429),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4102444800"}, 403),
        ({"Retry-After": "7"}, 403),
    ],
)
def test_rate_limits_answer_429_with_retry_after(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, headers: dict[str, str], status: int
) -> None:
    running = samples.load("pipelinerun-running")
    ref = add_run(kube, running)
    github.fail_next(status, headers=headers)
    answer = deliver(function_client("github"), running)
    assert answer.status_code == 429
    assert 1 <= int(answer.headers["Retry-After"]) <= 3600
    assert condition(kube, ref)["reason"] == "GitHubRateLimited"


def test_invalid_annotations_are_recorded_not_skipped(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    running = samples.load("pipelinerun-running")
    annotations = running["data"]["pipelineRun"]["metadata"]["annotations"]
    annotations["github.integrations.tekton.dev/sha"] = "not-a-sha"
    annotations["github.integrations.tekton.dev/contxt"] = "typo"
    ref = add_run(kube, running)
    answer = deliver(function_client("github"), running)
    assert answer.status_code == 200
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "InvalidConfiguration")
    assert "github.integrations.tekton.dev/sha" in cond["message"]
    assert "github.integrations.tekton.dev/contxt: unknown key" in cond["message"]
    assert not github.calls


def test_commit_is_accepted_as_an_alias_of_sha(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    running = samples.load("pipelinerun-running")
    annotations = running["data"]["pipelineRun"]["metadata"]["annotations"]
    annotations["github.integrations.tekton.dev/commit"] = annotations.pop(
        "github.integrations.tekton.dev/sha"
    )
    add_run(kube, running)
    deliver(function_client("github"), running)
    (check_run,) = github.check_runs.values()
    assert check_run["head_sha"] == SHA


def test_child_taskruns_are_not_reported(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    child = samples.load("taskrun-running")
    add_run(kube, child)
    answer = deliver(function_client("github"), child)
    assert body(answer)["outcome"] == "ignored"
    assert not github.calls
    assert not kube.calls


def test_runs_without_annotations_cost_nothing(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    plain = samples.load("pipelinerun-successful-no-integrations")
    answer = deliver(function_client("github"), plain)
    assert answer.status_code == 200
    assert not github.calls
    assert not kube.calls


def test_a_deleted_run_is_ignored(kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver) -> None:
    answer = deliver(function_client("github"), samples.load("pipelinerun-running"))
    assert answer.status_code == 200
    assert body(answer)["detail"] == "the run no longer exists"
    assert not github.calls


def a_run_of(sample_name: str, name: str, repo: str = "widget-service") -> dict[str, Any]:
    """The sample as another run (its own name and UID) of the same pipeline, commit and context."""
    sample = samples.load(sample_name)
    metadata = sample["data"]["pipelineRun"]["metadata"]
    metadata["name"] = name
    metadata["uid"] = f"0000-{name}"
    metadata["annotations"]["github.integrations.tekton.dev/repo"] = repo
    return sample


def forge_record(kube: MemoryRunClient, ref: RunRef, check_run_id: str) -> None:
    """What the run's author can do with ``kubectl annotate``: a record naming any check run."""
    forged = {
        "name": "github.integrations.tekton.dev",
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
        "annotations": {"check-run-id": check_run_id, "context": "tekton/build-and-test"},
        "runUID": kube.runs[ref]["metadata"]["uid"],
        "runState": {"status": "Unknown", "reason": "Started"},
    }
    kube.patch(ref, {"metadata": {"annotations": {RECORD: json.dumps(forged)}}})


@pytest.mark.parametrize("target", ["another-run", "another-repository", "not-an-id"])
def test_a_forged_check_run_id_never_edits_another_runs_check_run(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, target: str
) -> None:
    client = function_client("github")
    victim = a_run_of(
        "pipelinerun-running", "victim", "gadget" if target == "another-repository" else "widget-service"
    )
    add_run(kube, victim)
    assert deliver(client, victim).status_code == 200
    ((victim_id, victim_check),) = github.check_runs.items()
    snapshot = json.loads(json.dumps(victim_check))

    running, successful = (
        a_run_of("pipelinerun-running", "author"),
        a_run_of("pipelinerun-successful", "author"),
    )
    ref = add_run(kube, running)
    forge_record(kube, ref, str(victim_id) if target != "not-an-id" else f"{victim_id}/../{victim_id}")
    assert deliver(client, running).status_code == 200
    advance(kube, ref, successful)
    assert deliver(client, successful).status_code == 200

    assert github.check_runs[victim_id] == snapshot, "another run's check run was edited"
    assert not github.calls_to("PATCH", f"/repos/*/check-runs/{victim_id}")
    (own,) = (check for check in github.check_runs.values() if check["id"] != victim_id)
    assert own["external_id"] == "0000-author"
    assert (own["status"], own["conclusion"]) == ("completed", "success")
    assert record(kube, ref)["annotations"]["check-run-id"] == str(own["id"])


@pytest.mark.parametrize("mode", ["check-run", "status"])
def test_an_upper_case_sha_is_accepted_and_sent_lower_case(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, mode: str
) -> None:
    running = samples.load("pipelinerun-running")
    annotations = running["data"]["pipelineRun"]["metadata"]["annotations"]
    annotations["github.integrations.tekton.dev/sha"] = SHA.upper()
    annotations["github.integrations.tekton.dev/mode"] = mode
    ref = add_run(kube, running)
    assert deliver(function_client("github"), running).status_code == 200
    assert condition(kube, ref)["status"] == "True"
    assert all(SHA.upper() not in call.path for call in github.calls)
    if mode == "status":
        (status,) = github.statuses
        assert status["sha"] == SHA
        return
    (check_run,) = github.check_runs.values()
    assert check_run["head_sha"] == SHA
    assert github.calls_to("GET", f"/repos/acme/widget-service/commits/{SHA}/check-runs")


def test_concurrent_events_of_many_runs_all_report(kube: MemoryRunClient, github: GitHubStandIn) -> None:
    """Deliveries served at the same time by one instance each keep their own connections to
    GitHub: one ending (or hitting its deadline) never cuts another's request."""
    events = []
    for number in range(24):
        event = copy.deepcopy(samples.load("pipelinerun-running"))
        _, run = samples.run_object(event)
        run["metadata"]["name"] = f"build-{number}"
        run["metadata"]["uid"] = f"0000-{number:04d}"
        add_run(kube, event)
        events.append(event)
    app = function_client("github").application
    answers = [answer for _, answer in post_together(to_app(app), events)]
    assert [(a.status_code, body(a)["outcome"]) for a in answers] == [(200, "reported")] * len(events)
    assert len(github.check_runs) == len(events)
