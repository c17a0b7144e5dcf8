"""The GitLab function against the loopback GitLab stand-in, driven through functions-framework."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import TestResponse

from common import samples
from common.runclient import MemoryRunClient, RunRef
from tests.conftest import Deliver, add_run, advance, body, function_client, written_texts
from tests.support.policies import use_policy
from tests.support.standins.gitlab import GitLabStandIn

RECORD = "gitlab.integrations.tekton.dev/status"
TOKEN = "glpat-unit-test-token-0123456789"
SHA = "9f1c2e7b4a6d8e0f1a2b3c4d5e6f708192a3b4c5"
STATUS_PATH = f"/api/v4/projects/acme%2Fwidget-service/statuses/{SHA}"


@pytest.fixture
def gitlab(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitLabStandIn]:
    """A loopback GitLab that knows acme/widget-service (id 17); the function points at it."""
    for name in ("GITLAB_TOKEN", "GITLAB_TOKEN_FILE", "GITLAB_URL"):
        monkeypatch.delenv(name, raising=False)
    with GitLabStandIn({"acme/widget-service": 17}, token=TOKEN) as standin:
        monkeypatch.setenv("GITLAB_URL", standin.url)
        monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
        monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org")
        yield standin


def event(sample_name: str, /, **annotations: str) -> dict[str, Any]:
    """A sample event whose run asks for GitLab instead of GitHub."""
    sample = samples.load(sample_name)
    ((_, run),) = sample["data"].items()
    run["metadata"]["annotations"] = {
        "gitlab.integrations.tekton.dev/project": "acme/widget-service",
        "gitlab.integrations.tekton.dev/sha": SHA,
        **{f"gitlab.integrations.tekton.dev/{key}": value for key, value in annotations.items()},
    }
    return sample


def outcome(answer: TestResponse) -> str:
    return str(body(answer)["outcome"])


def condition(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = json.loads(kube.runs[ref]["metadata"]["annotations"][RECORD])[
        "conditions"
    ]
    return conditions[0]


def test_pending_then_success_for_one_run(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver
) -> None:
    queued, successful = event("pipelinerun-queued"), event("pipelinerun-successful")
    ref = add_run(kube, queued)
    client = function_client("gitlab")

    assert deliver(client, queued).status_code == 200
    (status,) = gitlab.statuses
    assert (status["status"], status["name"], status["sha"]) == ("pending", "tekton/build-and-test", SHA)

    advance(kube, ref, successful)
    assert deliver(client, successful).status_code == 200
    (status,) = gitlab.statuses
    assert status["status"] == "success"
    assert (
        status["target_url"]
        == "https://dashboard.example.org/#/namespaces/ci/pipelineruns/build-and-test-run-x7k2p"
    )
    assert gitlab.states() == ["pending", "success"]
    assert [call.path for call in gitlab.calls] == [STATUS_PATH] * 2
    assert all(call.credential == "valid" for call in gitlab.calls)
    assert condition(kube, ref)["status"] == "True"


def test_every_state_moves_one_status_and_a_repeated_running_is_accepted(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver
) -> None:
    names = ["pipelinerun-queued", "pipelinerun-started", "pipelinerun-running", "pipelinerun-successful"]
    events = [event(name) for name in names]
    ref = add_run(kube, events[0])
    client = function_client("gitlab")
    for sample in events:
        advance(kube, ref, sample)
        assert outcome(deliver(client, sample)) == "reported"
    # started and running are two Tekton states but one GitLab state: GitLab answers the
    # second "running" with 400 "Cannot transition status via :run from :running".
    assert [call.status for call in gitlab.calls] == [201, 201, 400, 201]
    assert gitlab.states() == ["pending", "running", "success"]
    assert [status["status"] for status in gitlab.statuses] == ["success"]


def test_duplicates_in_any_order_post_nothing_new(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver
) -> None:
    events = [event(name) for name in ("pipelinerun-queued", "pipelinerun-running", "pipelinerun-successful")]
    ref = add_run(kube, events[0])
    client = function_client("gitlab")
    for sample in events:
        advance(kube, ref, sample)
        deliver(client, sample)
    calls = len(gitlab.calls)

    shuffled = events * 3
    random.Random(3).shuffle(shuffled)
    for sample in shuffled:
        assert deliver(client, sample).status_code == 200

    assert len(gitlab.calls) == calls, "duplicates reached GitLab"
    assert [status["status"] for status in gitlab.statuses] == ["success"]


@pytest.mark.parametrize(
    ("reason", "state"),
    [("Failed", "failed"), ("PipelineRunTimeout", "failed"), ("Cancelled", "canceled")],
)
def test_a_failure_posts_failed_and_a_cancellation_canceled(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver, reason: str, state: str
) -> None:
    failed = event("pipelinerun-failed")
    failed["data"]["pipelineRun"]["status"]["conditions"][0]["reason"] = reason
    add_run(kube, failed)
    assert deliver(function_client("gitlab"), failed).status_code == 200
    (status,) = gitlab.statuses
    assert status["status"] == state
    assert status["description"].startswith({"failed": "Failed", "canceled": "Cancelled"}[state]) or (
        reason == "PipelineRunTimeout" and status["description"].startswith("Timed out")
    )


def test_name_ref_and_numeric_project_are_sent_as_given(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver
) -> None:
    running = event("pipelinerun-running", project="17", name="ci/widget", ref="release-1.2")
    add_run(kube, running)
    deliver(function_client("gitlab"), running)
    (call,) = gitlab.calls
    assert call.path == f"/api/v4/projects/17/statuses/{SHA}"
    assert (call.params["name"], call.params["ref"], call.params["state"]) == (
        "ci/widget",
        "release-1.2",
        "running",
    )


def test_long_messages_are_cut_to_gitlabs_limit(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver
) -> None:
    failed = event("pipelinerun-failed")
    failed["data"]["pipelineRun"]["status"]["conditions"][0]["message"] = "x" * 5000
    ref = add_run(kube, failed)
    deliver(function_client("gitlab"), failed)
    (status,) = gitlab.statuses
    assert len(status["description"]) == 255
    assert condition(kube, ref)["status"] == "True"


@pytest.mark.parametrize(
    ("status", "reason"),
    [(401, "GitLabUnauthorized"), (403, "GitLabForbidden"), (404, "GitLabNotFound"), (422, "GitLabRejected")],
)
def test_refusals_record_false_with_a_reason_and_answer_2xx(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver, status: int, reason: str
) -> None:
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    gitlab.fail_next(status)
    answer = deliver(function_client("gitlab"), running)
    assert (answer.status_code, outcome(answer)) == (200, "failed")
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", reason)
    assert "acme/widget-service" in cond["message"]


def test_unknown_project_is_not_found(kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver) -> None:
    running = event("pipelinerun-running", project="acme/nope")
    ref = add_run(kube, running)
    deliver(function_client("gitlab"), running)
    assert condition(kube, ref)["reason"] == "GitLabNotFound"
    assert "404 Project Not Found" in condition(kube, ref)["message"]


def test_server_errors_answer_503_then_redelivery_recovers(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver
) -> None:
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    client = function_client("gitlab")
    gitlab.fail_next(502)
    assert deliver(client, running).status_code == 503
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == (
        "Unknown",
        "GitLabUnavailable",
    )

    assert deliver(client, running).status_code == 200
    assert gitlab.states() == ["running"]
    assert condition(kube, ref)["status"] == "True"


@pytest.mark.parametrize(
    ("status", "headers", "reason"),
    [
        (429, {"Retry-After": "30"}, "GitLabRateLimited"),
        (429, {}, "GitLabRateLimited"),
        (503, {"Retry-After": "5"}, "GitLabUnavailable"),
    ],
)
def test_throttling_answers_429_with_retry_after_without_sleeping(
    kube: MemoryRunClient,
    gitlab: GitLabStandIn,
    deliver: Deliver,
    *,
    status: int,
    headers: dict[str, str],
    reason: str,
) -> None:
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    gitlab.fail_next(status, headers=headers, count=5)
    answer = deliver(function_client("gitlab"), running)
    assert answer.status_code == 429
    assert int(answer.headers["Retry-After"]) == int(headers.get("Retry-After", "60"))
    assert len(gitlab.calls) == 1, "python-gitlab retried"
    assert condition(kube, ref)["reason"] == reason


def test_unreachable_gitlab_is_temporary(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    with GitLabStandIn() as gone:
        closed = gone.url
    monkeypatch.setenv("GITLAB_URL", closed)
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    assert deliver(function_client("gitlab"), running).status_code == 503
    assert condition(kube, ref)["reason"] == "GitLabUnreachable"


def test_redirects_are_not_followed_with_the_token(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver
) -> None:
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    with GitLabStandIn() as elsewhere:
        gitlab.fail_next(307, headers={"Location": elsewhere.url + STATUS_PATH})
        deliver(function_client("gitlab"), running)
        assert not elsewhere.calls
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("False", "GitLabRedirected")


def test_the_token_goes_to_no_instance_but_gitlab_url(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver
) -> None:
    with GitLabStandIn() as other:
        running = event("pipelinerun-running", url=other.url)
        ref = add_run(kube, running)
        answer = deliver(function_client("gitlab"), running)
        assert not other.calls
    assert not gitlab.calls
    assert outcome(answer) == "failed"
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("False", "TargetNotAllowed")


def test_url_naming_the_configured_instance_is_accepted(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver
) -> None:
    running = event("pipelinerun-running", url=gitlab.url.upper().replace("HTTP://", "http://") + "/api/v4/")
    add_run(kube, running)
    assert outcome(deliver(function_client("gitlab"), running)) == "reported"
    assert gitlab.states() == ["running"]


def test_token_from_file_and_never_in_records_or_logs(
    kube: MemoryRunClient,
    gitlab: GitLabStandIn,
    deliver: Deliver,
    *,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    monkeypatch.delenv("GITLAB_TOKEN")
    monkeypatch.setenv("GITLAB_TOKEN_FILE", str(secret))
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    gitlab.fail_next(401)
    caplog.set_level(logging.DEBUG)
    client = function_client("gitlab")
    deliver(client, running)
    assert TOKEN not in json.dumps(kube.runs[ref])
    assert TOKEN not in caplog.text
    deliver(client, running)  # the failure is final: nothing more is sent
    assert len(gitlab.calls) == 1


@pytest.mark.parametrize(
    ("token_file", "why"),
    [
        (None, "GITLAB_TOKEN(_FILE)"),
        ("missing", "which does not exist"),  # an optional Secret, not mounted yet
        ("directory", "which is a directory"),  # the Secret's mount point instead of its key
        ("empty", "which is empty"),
    ],
)
def test_a_missing_or_unusable_token_is_recorded_naming_the_path(
    kube: MemoryRunClient,
    gitlab: GitLabStandIn,
    deliver: Deliver,
    *,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    token_file: str | None,
    why: str,
) -> None:
    monkeypatch.delenv("GITLAB_TOKEN")
    path = {"missing": tmp_path / "absent", "directory": tmp_path, "empty": tmp_path / "empty"}.get(
        token_file or ""
    )
    (tmp_path / "empty").write_text("\n")
    if path is not None:
        monkeypatch.setenv("GITLAB_TOKEN_FILE", str(path))
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    answer = deliver(function_client("gitlab"), running)
    assert (answer.status_code, outcome(answer)) == (200, "failed")
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "GitLabNotConfigured")
    assert why in cond["message"]
    if path is not None:
        assert f"GITLAB_TOKEN_FILE names {path}" in cond["message"]
    assert not gitlab.calls


def test_an_upper_case_sha_is_accepted_and_sent_in_lower_case(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver
) -> None:
    running = event("pipelinerun-running", sha=SHA.upper())
    ref = add_run(kube, running)
    assert outcome(deliver(function_client("gitlab"), running)) == "reported"
    (call,) = gitlab.calls
    assert call.path == STATUS_PATH
    assert condition(kube, ref)["status"] == "True"


@pytest.mark.parametrize(
    ("sample", "answers", "statuses"),
    [
        ("pipelinerun-running", [201, 400], ["running"]),  # Cannot transition status: done
        ("pipelinerun-successful", [201, 201], ["success", "success"]),  # the newer supersedes
    ],
)
def test_a_repeat_after_a_lost_record_leaves_the_commit_status_as_it_was(
    kube: MemoryRunClient,
    gitlab: GitLabStandIn,
    deliver: Deliver,
    *,
    sample: str,
    answers: list[int],
    statuses: list[str],
) -> None:
    """Nothing is claimed, because a repeat of a state cannot change the commit's status."""
    repeated = event(sample)
    ref = add_run(kube, repeated)
    before = dict(kube.runs[ref]["metadata"].get("annotations") or {})
    assert outcome(deliver(function_client("gitlab"), repeated)) == "reported"
    # Tekton's reconciler writes back its older copy of the annotations: the record is gone.
    kube.runs[ref]["metadata"]["annotations"] = before

    assert outcome(deliver(function_client("gitlab"), repeated)) == "reported"
    assert [call.status for call in gitlab.calls] == answers
    with gitlab.lock:
        assert [(status["name"], status["status"]) for status in gitlab.statuses] == [
            ("tekton/build-and-test", state) for state in statuses
        ]
    assert condition(kube, ref)["status"] == "True"


@pytest.mark.parametrize(("status", "as_json"), [(401, True), (500, False)])
def test_a_token_echoed_by_gitlab_appears_in_no_answer_record_log_or_event(
    kube: MemoryRunClient,
    gitlab: GitLabStandIn,
    deliver: Deliver,
    *,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    status: int,
    as_json: bool,
) -> None:
    # No well-known token shape: only the redaction of the credentials the function holds masks it.
    token = "plain-gitlab-credential-4711-unshaped"
    monkeypatch.setenv("GITLAB_TOKEN", token)
    gitlab.echo_credentials_next(status, as_json=as_json)
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    caplog.set_level(logging.DEBUG)

    answer = deliver(function_client("gitlab"), running)

    assert answer.status_code == (200 if status == 401 else 503)
    cond = condition(kube, ref)
    assert "PRIVATE-TOKEN: [REDACTED]" in cond["message"], "GitLab's echo is quoted, masked"
    produced = written_texts(answer, kube, capsys, caplog)
    assert kube.events, "the failure is reported as a Kubernetes Event"
    assert [where for where, text in produced.items() if token in text] == []


def test_invalid_annotations_are_recorded(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver
) -> None:
    running = event("pipelinerun-running", sha="HEAD", name="bad\nname")
    running["data"]["pipelineRun"]["metadata"]["annotations"]["gitlab.integrations.tekton.dev/project"] = (
        "../x"
    )
    ref = add_run(kube, running)
    deliver(function_client("gitlab"), running)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "InvalidConfiguration")
    for key in ("project", "sha", "name"):
        assert f"gitlab.integrations.tekton.dev/{key}" in cond["message"]
    assert not gitlab.calls


@pytest.mark.parametrize(
    ("project", "allowed"),
    [("acme/widget-service", True), ("17", False), ("other/project", False)],
)
def test_the_namespace_policy_decides_which_projects_a_run_may_report_to(
    kube: MemoryRunClient,
    gitlab: GitLabStandIn,
    deliver: Deliver,
    *,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    project: str,
    allowed: bool,
) -> None:
    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {"gitlab": {"projects": ["ACME/widget-*"]}}}})
    running = event("pipelinerun-running", project=project)
    ref = add_run(kube, running)
    assert deliver(function_client("gitlab"), running).status_code == 200
    cond = condition(kube, ref)
    if allowed:
        assert cond["status"] == "True"
        assert gitlab.states() == ["running"]
    else:
        assert (cond["status"], cond["reason"]) == ("False", "TargetNotAllowed")
        assert project in cond["message"]
        assert not gitlab.calls


@pytest.mark.parametrize("log_lines", ["5", None])
def test_a_failed_run_asking_for_logs_links_its_failed_task_run_where_the_dashboard_shows_them(
    kube: MemoryRunClient, gitlab: GitLabStandIn, deliver: Deliver, log_lines: str | None
) -> None:
    """GitLab's description is too small for a log: the status links to the failed TaskRun."""
    failed = event("pipelinerun-failed", **({"log-lines": log_lines} if log_lines else {}))
    add_run(kube, failed)
    _, child = samples.run_object(samples.load("taskrun-failed"))  # the run's failed unit-tests task
    kube.add("TaskRun", child)
    assert deliver(function_client("gitlab"), failed).status_code == 200
    (status,) = gitlab.statuses
    dashboard = "https://dashboard.example.org/#/namespaces/ci"
    assert status["target_url"] == (
        f"{dashboard}/taskruns/build-and-test-run-q4m9z-unit-tests"
        if log_lines
        else f"{dashboard}/pipelineruns/build-and-test-run-q4m9z"
    )
    assert "pod_log" not in [verb for verb, _ in kube.calls], "GitLab shows no log: none is read"
