"""The GitHub function, driven through functions-framework with Tekton's event shapes."""

from __future__ import annotations

import copy
import itertools
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from common import samples
from common.runclient import MemoryRunClient, RunRef
from common.standins.github import GitHubStandIn
from tests.conftest import Deliver, add_run, advance, body, function_client
from tests.support.receiver import post_together, to_app
from tests.support.reports import FAILED_STEP, log_failed_step, mount_templates, pod_log_reads

RECORD = "github.integrations.tekton.dev/status"
SHA = "9f1c2e7b4a6d8e0f1a2b3c4d5e6f708192a3b4c5"


def record(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    return json.loads(kube.runs[ref]["metadata"]["annotations"][RECORD])


def condition(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = record(kube, ref)["conditions"]
    return conditions[0]


def annotate(*events: dict[str, Any], **values: str) -> None:
    """Set ``github.integrations.tekton.dev/<key>`` on the events' runs."""
    for event in events:
        samples.run_object(event)[1]["metadata"]["annotations"].update(
            {f"github.integrations.tekton.dev/{key}": value for key, value in values.items()}
        )


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
    annotate(running, successful, mode="status")
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
    annotate(failed, mode="status")
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


# -- the client: GitHub's REST API as documented ------------------------------------------------


def test_every_request_names_the_api_version_and_the_client(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    running = samples.load("pipelinerun-running")
    add_run(kube, running)
    assert deliver(function_client("github"), running).status_code == 200
    assert github.calls
    for call in github.calls:
        headers = {name.lower(): value for name, value in call.headers.items()}
        assert headers["accept"] == "application/vnd.github+json"
        assert headers["x-github-api-version"] == "2022-11-28"
        assert headers["user-agent"].startswith("tekton-integrations/")
        assert call.auth_scheme == "token"


@pytest.mark.parametrize("enterprise", [False, True], ids=["github.com", "enterprise"])
def test_this_runs_check_run_is_found_on_a_later_page(
    kube: MemoryRunClient,
    github: GitHubStandIn,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    enterprise: bool,
) -> None:
    """Other runs' check runs of the same name come first (newest first): this run's is found by
    following GitHub's ``Link`` pages, under an Enterprise ``/api/v3`` base URL too."""
    if enterprise:
        monkeypatch.setenv("GITHUB_API_URL", github.enterprise_url)
    running, successful = samples.load("pipelinerun-running"), samples.load("pipelinerun-successful")
    ref = add_run(kube, running)
    client = function_client("github")
    assert deliver(client, running).status_code == 200
    ((own_id, own),) = github.check_runs.items()
    with github.lock:
        for n in range(150):  # later check runs of other runs on the same commit and name
            other = copy.deepcopy(own)
            other_id = own_id + 1000 + n
            other.update(
                id=other_id, external_id=f"other-{n}", url=own["url"].replace(str(own_id), str(other_id))
            )
            github.check_runs[other_id] = other
    del kube.runs[ref]["metadata"]["annotations"][RECORD]  # the record is lost: look it up
    advance(kube, ref, successful)
    assert deliver(client, successful).status_code == 200

    pages = github.calls_to("GET", f"/repos/acme/widget-service/commits/{SHA}/check-runs")[1:]
    assert [call.query.get("page") for call in pages] == [None, ["2"]]
    assert all(call.enterprise_prefix == enterprise for call in github.calls)
    assert github.check_runs[own_id]["conclusion"] == "success"
    assert len(github.check_runs) == 151, "no second check run for this run"


def test_a_redirect_is_not_followed(kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver) -> None:
    running = samples.load("pipelinerun-running")
    ref = add_run(kube, running)
    github.fail_next(307, headers={"Location": "https://elsewhere.example.org/repos/acme/widget-service"})
    answer = deliver(function_client("github"), running)
    assert (answer.status_code, body(answer)["reason"]) == (200, "GitHubRedirected")
    assert condition(kube, ref)["status"] == "False"
    assert len(github.calls) == 1, "the credential never travels to the redirect's target"


# -- what the check run shows: tasks, failed steps' logs, templates ----------------------------

PLANTED = "ghp_" + "Zq7" * 12  # a GitHub token's shape: masked wherever it appears


def failed_pipeline(kube: MemoryRunClient, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A failed PipelineRun whose ``fetch-source`` succeeded and ``unit-tests`` failed (its pod's
    log in the store), and ``build-image`` was skipped."""
    failed = samples.load("pipelinerun-failed")
    annotate(failed, **(annotations or {}))
    add_run(kube, failed)
    add_run(kube, samples.load("taskrun-failed"))
    fetched = samples.load("taskrun-successful")
    _, child = samples.run_object(fetched)
    child["metadata"]["name"] = "build-and-test-run-q4m9z-fetch-source"
    child["metadata"]["uid"] = "0000-fetch-source"
    child["metadata"]["labels"]["tekton.dev/pipelineRun"] = "build-and-test-run-q4m9z"
    add_run(kube, fetched)
    log_failed_step(
        kube,
        *(f"=== RUN TestWidget{n}" for n in range(1, 15)),
        f"    token={PLANTED} leaked",
        "FAIL",
        "exit 1",
        "done",
    )
    return failed


def test_a_failed_run_with_log_lines_shows_the_last_lines_of_its_failed_step_masked(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    failed = failed_pipeline(kube, {"log-lines": "5"})
    assert deliver(function_client("github"), failed).status_code == 200

    (check_run,) = github.check_runs.values()
    text = check_run["output"]["text"]
    assert "Task `unit-tests`, step `run-tests`" in text
    last_five = ["=== RUN TestWidget14", "    token=[REDACTED] leaked", "FAIL", "exit 1", "done"]
    assert "\n".join(last_five) in text
    assert "TestWidget13" not in text, "only the last 5 lines"
    assert PLANTED not in json.dumps(github.calls_to(), default=str) + json.dumps(check_run)
    assert len(text) <= 65535
    assert [ref.name for ref in pod_log_reads(kube)] == [FAILED_STEP[1]]
    assert [verb for verb, _ in kube.calls if verb in ("get", "list")] == ["list"], (
        "the TaskRuns are read once, with one list, for the task table and the logs"
    )


def test_without_log_lines_no_log_is_read(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    failed = failed_pipeline(kube)
    assert deliver(function_client("github"), failed).status_code == 200
    (check_run,) = github.check_runs.values()
    assert "TestWidget" not in check_run["output"]["text"]
    assert not pod_log_reads(kube), "no pods/log request"


def test_a_finished_pipelineruns_summary_lists_its_tasks_with_links(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org")
    failed = failed_pipeline(kube)
    kube.calls.clear()
    assert deliver(function_client("github"), failed).status_code == 200

    summary = next(iter(github.check_runs.values()))["output"]["summary"]
    taskruns = "https://dashboard.example.org/#/namespaces/ci/taskruns"
    assert "| Task | Status | Duration |" in summary
    assert (
        f"| [`fetch-source`]({taskruns}/build-and-test-run-q4m9z-fetch-source) | ✅ Succeeded | 11s |"
        in summary
    )
    assert (
        f"| [`unit-tests`]({taskruns}/build-and-test-run-q4m9z-unit-tests) | ❌ Failed: StepFailed | 47s |"
        in summary
    )
    assert "| `build-image` | ⏭️ Skipped: PipelineRun was stopping | - |" in summary
    assert "<details>" not in summary, "a short table is shown open"
    assert [verb for verb, _ in kube.calls].count("list") == 1, "the TaskRuns are read with one list"


def test_a_running_pipelinerun_reads_no_taskrun(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    running = samples.load("pipelinerun-running")
    add_run(kube, running)
    kube.calls.clear()
    assert deliver(function_client("github"), running).status_code == 200
    assert {verb for verb, _ in kube.calls} <= {"patch", "get"}, "only the run's own claim and record"
    assert "| Task |" not in next(iter(github.check_runs.values()))["output"]["summary"]


def test_a_long_task_table_is_collapsed_under_the_failed_tasks_and_kept_within_githubs_limit(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org/" + "d" * 150)
    failed = samples.load("pipelinerun-failed")
    _, run = samples.run_object(failed)
    run["status"]["skippedTasks"] = []
    references = []
    for n in range(400):
        task = f"step-{n:03d}-" + "t" * 40
        name = f"build-and-test-run-q4m9z-{task}"
        references.append(
            {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": name, "pipelineTaskName": task}
        )
        child_event = samples.load("taskrun-failed" if n == 7 else "taskrun-successful")
        _, child = samples.run_object(child_event)
        child["metadata"].update(name=name, uid=f"0000-{n}")
        child["metadata"]["labels"]["tekton.dev/pipelineRun"] = "build-and-test-run-q4m9z"
        add_run(kube, child_event)
    run["status"]["childReferences"] = references
    add_run(kube, failed)
    assert deliver(function_client("github"), failed).status_code == 200

    summary = next(iter(github.check_runs.values()))["output"]["summary"]
    assert len(summary) <= 65535
    failed_line, details = summary.split("\n\n", 3)[2:]
    assert failed_line == "**Failed:** `step-007-" + "t" * 40 + "`"
    assert details.startswith("<details><summary>400 tasks (399 succeeded, 1 failed)</summary>")
    assert details.endswith("</details>")
    assert "| `step-000-" in details or "| [`step-000-" in details
    assert re.search(r"\| … \| \d+ more \| \|", details), "rows that do not fit are counted"


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return mount_templates(
        tmp_path,
        monkeypatch,
        {
            "short.github.j2": "{{ run.name }}: "
            "{% for task in tasks %}{{ task.name }}={{ task.status }} {% endfor %}",
            "sneaky.github.j2": "{{ ''.__class__.__mro__ }}",
        },
    )


def test_an_operators_template_renders_the_summary(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, templates: Path
) -> None:
    failed = failed_pipeline(kube, {"template": "short"})
    assert deliver(function_client("github"), failed).status_code == 200
    summary = next(iter(github.check_runs.values()))["output"]["summary"]
    assert summary.startswith("build-and-test-run-q4m9z: ")
    assert "fetch-source=" in summary
    assert "unit-tests=" in summary


def test_a_template_that_cannot_be_used_falls_back_to_the_default_summary(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, templates: Path
) -> None:
    failed = failed_pipeline(kube, {"template": "sneaky"})
    ref = RunRef("PipelineRun", "ci", "build-and-test-run-q4m9z")
    assert deliver(function_client("github"), failed).status_code == 200
    summary = next(iter(github.check_runs.values()))["output"]["summary"]
    assert "| Task | Status | Duration |" in summary, "the default summary was sent"
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("True", "TemplateFailed")
    assert "template 'sneaky' failed" in cond["message"]


def test_a_failure_of_the_shared_reports_keeps_the_runs_own_check_run_in_the_record(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    """The run's own check run is edited first; when its rollup then fails, the record still names
    the own check run, and the redelivery finishes both without a second."""
    running, successful = samples.load("pipelinerun-running"), samples.load("pipelinerun-successful")
    annotate(running, successful, rollup="all")
    ref = add_run(kube, running)
    client = function_client("github")
    assert deliver(client, running).status_code == 200
    ids = {check["name"]: check_id for check_id, check in github.check_runs.items()}
    own_id, rollup_id = ids["tekton/build-and-test"], ids["all"]

    advance(kube, ref, successful)
    github.fail_next(503, method="PATCH", path=f"/repos/*/check-runs/{rollup_id}")
    assert deliver(client, successful).status_code == 503
    assert github.check_runs[own_id]["conclusion"] == "success"
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("Unknown", "GitHubUnavailable")
    assert record(kube, ref)["annotations"]["check-run-id"] == str(own_id)

    assert deliver(client, successful).status_code == 200
    assert {check["name"]: check["conclusion"] for check in github.check_runs.values()} == {
        "tekton/build-and-test": "success",
        "all": "success",
    }
