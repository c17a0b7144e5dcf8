"""The Slack function, driven through functions-framework against the loopback Slack stand-in."""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from common import samples
from common.errors import KubernetesUnavailableError
from common.http import use_run_client
from common.runclient import MemoryRunClient, RunRef
from common.status import CLAIM_TTL
from tests.conftest import Deliver, add_run, advance, event_request, function_client
from tests.support.standins.slack import WEBHOOK, SlackStandIn

RECORD = "slack.integrations.tekton.dev/status"
TOKEN = "xoxb-unit-test-0123456789-abcdef"
SLACK_ENV = (
    "SLACK_BOT_TOKEN",
    "SLACK_BOT_TOKEN_FILE",
    "SLACK_WEBHOOK_URL",
    "SLACK_WEBHOOK_URL_FILE",
    "SLACK_API_URL",
)
POST, UPDATE = "chat.postMessage", "chat.update"
RUN_UID = "c1b7e0f4-93d2-4a58-b6e1-7f2a9d4c0e88"
"""The UID of the PipelineRun in the samples."""


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandIn]:
    """A loopback Slack; the slack function is pointed at it with a bot token."""
    for name in SLACK_ENV:
        monkeypatch.delenv(name, raising=False)
    with SlackStandIn() as standin:
        monkeypatch.setenv("SLACK_API_URL", standin.api_url)
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        yield standin


@pytest.fixture
def webhook(slack: SlackStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> SlackStandIn:
    """The same stand-in, reached only through an incoming webhook URL in a mounted secret file."""
    secret = tmp_path / "webhook-url"
    secret.write_text(slack.webhook_url + "\n")
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    monkeypatch.setenv("SLACK_WEBHOOK_URL_FILE", str(secret))
    return slack


def on_run(sample: dict[str, Any], like: dict[str, Any]) -> dict[str, Any]:
    """``sample``'s state, as an event about ``like``'s run."""
    samples.run_object(sample)[1]["metadata"] = json.loads(
        json.dumps(samples.run_object(like)[1]["metadata"])
    )
    return sample


def annotate(*events: dict[str, Any], **settings: str) -> None:
    for event in events:
        annotations = samples.run_object(event)[1]["metadata"]["annotations"]
        for key, value in settings.items():
            annotations[f"slack.integrations.tekton.dev/{key.replace('_', '-')}"] = value


def failing_run(kube: MemoryRunClient) -> tuple[dict[str, Any], dict[str, Any], RunRef]:
    """A PipelineRun's running and failed events; its failed child TaskRun is in the store."""
    failed = samples.load("pipelinerun-failed")
    running = on_run(samples.load("pipelinerun-running"), failed)
    ref = add_run(kube, running)
    add_run(kube, samples.load("taskrun-failed"))
    return running, failed, ref


def record(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    return json.loads(kube.runs[ref]["metadata"]["annotations"][RECORD])


def condition(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = record(kube, ref)["conditions"]
    return conditions[0]


def message_ids(kube: MemoryRunClient, ref: RunRef) -> dict[str, str]:
    """Where the record says the run's message is (its signature aside)."""
    annotations: dict[str, str] = record(kube, ref)["annotations"]
    assert len(annotations.get("sig", "")) == 64, "the ids are signed"
    return {key: value for key, value in annotations.items() if key != "sig"}


def chat_calls(slack: SlackStandIn) -> list[str]:
    """The calls that post or edit; lookups (auth.test, conversations.*) left out."""
    with slack.lock:
        return [call.method for call in slack.calls if call.method.startswith("chat.")]


def all_text(message: dict[str, Any]) -> str:
    return json.dumps(message)


def closed_port() -> int:
    """A loopback port nobody listens on: connections to it are refused."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def outcome(answer: TestResponse) -> str:
    body = answer.get_json()
    assert isinstance(body, dict)
    return str(body["outcome"])


def test_running_then_failed_posts_once_then_updates_that_message(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org")
    running, failed, ref = failing_run(kube)
    client = function_client("slack")

    assert deliver(client, running).status_code == 200
    (message,) = slack.messages.values()
    assert message["attachments"][0]["color"] == "#1d9bd1"
    assert ":arrows_counterclockwise:" in message["text"]

    advance(kube, ref, failed)
    assert deliver(client, failed).status_code == 200

    assert len(slack.calls_to(POST)) == 1
    assert len(slack.calls_to(UPDATE)) == 1
    (message,) = slack.messages.values()
    assert message["updated"] == 1
    assert message["text"] == (
        ":x: PipelineRun ci/build-and-test-run-q4m9z (build-and-test): Failed after 1m 0s"
    )
    assert message["attachments"][0]["color"] == "#e01e5a"
    shown = all_text(message)
    assert "Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 1" in shown
    assert '*unit-tests* (StepFailed): \\"step-run-tests\\" exited with code 1: Error' in shown
    assert "*build-image* (Skipped): PipelineRun was stopping" in shown
    assert "https://dashboard.example.org/#/namespaces/ci/pipelineruns/build-and-test-run-q4m9z" in shown
    assert "*Namespace*\\n`ci`" in shown
    assert "*Duration*\\n1m 0s" in shown

    assert message["metadata"] == {
        "event_type": "tekton_run",
        "event_payload": {"run_uid": RUN_UID, "integration": "slack", "part": "run"},
    }
    stored = record(kube, ref)
    assert message_ids(kube, ref) == {"ts": message["ts"], "channel": "C0WIDGETCI", "details-ts": ""}
    assert condition(kube, ref)["status"] == "True", "the integration succeeded; its message shows a failure"
    assert stored["runState"] == {"status": "False", "reason": "Failed"}
    assert {call.token_type for call in slack.calls} == {"xoxb"}


def test_ten_concurrent_deliveries_of_one_event_post_once(kube: MemoryRunClient, slack: SlackStandIn) -> None:
    running, _, ref = failing_run(kube)
    app = function_client("slack").application
    headers, body = event_request(running)
    start = threading.Barrier(10)
    answers: list[TestResponse] = []
    lock = threading.Lock()

    def deliver_once() -> None:
        client = app.test_client()  # Flask test clients are not shared between threads
        start.wait()
        answer = client.post("/", headers=headers, data=body)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=deliver_once) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # One delivery posts; the others either find the state reported (200) or find the claim
    # in flight and are asked to come back (429 Busy), which the sender's redelivery settles.
    assert sorted(outcome(answer) for answer in answers).count("reported") == 1
    busy = [answer for answer in answers if answer.status_code == 429]
    assert all(answer.headers["Retry-After"] == "2" for answer in busy)
    assert all(answer.status_code in (200, 429) for answer in answers)
    redelivered = [app.test_client().post("/", headers=headers, data=body) for _ in busy]
    assert all(outcome(answer) == "ignored" for answer in redelivered)
    assert len(slack.calls_to(POST)) == 1
    assert len(slack.messages) == 1
    assert record(kube, ref)["annotations"]["ts"] == next(iter(slack.messages))


def test_ratelimited_answers_429_with_retry_after_then_the_redelivery_posts_once(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver
) -> None:
    running, _, ref = failing_run(kube)
    client = function_client("slack")
    slack.fail_next("ratelimited", status=429, retry_after=17)

    answer = deliver(client, running)

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "17"
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("Unknown", "SlackRateLimited")
    assert not slack.messages

    assert deliver(client, running).status_code == 200
    assert len(slack.messages) == 1
    assert condition(kube, ref)["status"] == "True"
    assert record(kube, ref)["attempts"] == 2


@pytest.mark.parametrize(
    ("status", "retry_after", "answer_status"), [(500, None, 503), (503, 5, 429), (502, None, 503)]
)
def test_slack_server_errors_are_retryable_and_pass_retry_after_on(
    kube: MemoryRunClient,
    slack: SlackStandIn,
    deliver: Deliver,
    *,
    status: int,
    retry_after: int | None,
    answer_status: int,
) -> None:
    running, _, ref = failing_run(kube)
    slack.fail_next("internal_error", status=status, retry_after=retry_after)
    answer = deliver(function_client("slack"), running)
    assert answer.status_code == answer_status
    assert answer.headers.get("Retry-After") == (str(retry_after) if retry_after else None)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("Unknown", "SlackUnavailable")


def test_channel_not_found_answers_2xx_and_tells_the_user_what_to_do(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver
) -> None:
    running, _, ref = failing_run(kube)
    annotate(running, channel="#releases")
    kube.runs[ref]["metadata"]["annotations"]["slack.integrations.tekton.dev/channel"] = "#releases"

    answer = deliver(function_client("slack"), running)

    assert answer.status_code == 200
    assert outcome(answer) == "failed"
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "SlackChannelNotFound")
    assert "#releases" in cond["message"]
    assert "slack.integrations.tekton.dev/channel" in cond["message"]
    assert "/invite @tekton-bot in #releases" in cond["message"]
    assert [reason for _, reason, _ in kube.events] == ["IntegrationFailed"]
    assert not slack.messages


@pytest.mark.parametrize(
    ("error", "reason", "advice"),
    [
        ("not_in_channel", "SlackNotInChannel", "invite it with /invite @tekton-bot in #widget-ci"),
        ("is_archived", "SlackChannelArchived", "unarchive it"),
        ("invalid_auth", "SlackUnauthorized", "check SLACK_BOT_TOKEN"),
        ("account_inactive", "SlackUnauthorized", "reinstall the Slack app"),
        ("missing_scope", "SlackMissingScope", "add chat:write"),
        ("restricted_action", "SlackForbidden", "ask a Slack admin"),
        ("invalid_blocks", "SlackRejected", "invalid_blocks"),
    ],
)
def test_permanent_slack_errors_record_false_with_advice(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver, *, error: str, reason: str, advice: str
) -> None:
    running, _, ref = failing_run(kube)
    slack.fail_next(error, method=POST)
    answer = deliver(function_client("slack"), running)
    assert answer.status_code == 200
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", reason)
    assert advice in cond["message"]


def test_a_rejected_token_is_never_written_anywhere(
    kube: MemoryRunClient,
    slack: SlackStandIn,
    deliver: Deliver,
    *,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = tmp_path / "token"
    secret.write_text("not-a-slack-token-but-a-secret\n")
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    monkeypatch.setenv("SLACK_BOT_TOKEN_FILE", str(secret))
    running, _, ref = failing_run(kube)
    with caplog.at_level(logging.DEBUG):
        answer = deliver(function_client("slack"), running)
    assert answer.status_code == 200
    assert condition(kube, ref)["reason"] == "SlackUnauthorized"
    everything = (
        caplog.text
        + json.dumps(kube.runs[ref])
        + json.dumps(kube.events, default=str)
        + answer.get_data(True)
    )
    assert "not-a-slack-token-but-a-secret" not in everything


def test_no_credentials_is_a_configuration_error_on_the_run(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    running, _, ref = failing_run(kube)
    assert deliver(function_client("slack"), running).status_code == 200
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "SlackNotConfigured")
    assert not slack.calls


def test_an_unreadable_token_file_is_a_configuration_error(
    kube: MemoryRunClient,
    slack: SlackStandIn,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    monkeypatch.setenv("SLACK_BOT_TOKEN_FILE", str(tmp_path / "not-mounted"))
    running, _, ref = failing_run(kube)
    assert deliver(function_client("slack"), running).status_code == 200
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "SlackNotConfigured")
    assert "SLACK_BOT_TOKEN_FILE" in cond["message"]


def test_an_unreachable_slack_is_retryable(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_API_URL", f"http://127.0.0.1:{closed_port()}/api/")
    running, _, ref = failing_run(kube)
    assert deliver(function_client("slack"), running).status_code == 503
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("Unknown", "SlackUnreachable")


def test_an_unreachable_webhook_is_retryable_and_its_url_is_never_logged(
    kube: MemoryRunClient,
    webhook: SlackStandIn,
    deliver: Deliver,
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = tmp_path / "refused-webhook-url"
    secret.write_text(f"http://127.0.0.1:{closed_port()}/services/T0/B0/very-secret-part")
    monkeypatch.setenv("SLACK_WEBHOOK_URL_FILE", str(secret))
    failed = samples.load("pipelinerun-failed")
    ref = add_run(kube, failed)
    with caplog.at_level(logging.DEBUG):
        assert deliver(function_client("slack"), failed).status_code == 503
    assert condition(kube, ref)["reason"] == "SlackUnreachable"
    assert "very-secret-part" not in caplog.text + json.dumps(kube.runs[ref])


def test_duplicates_and_reordered_redeliveries_change_nothing(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver
) -> None:
    failed = samples.load("pipelinerun-failed")
    names = ["pipelinerun-queued", "pipelinerun-started", "pipelinerun-running"]
    events = [on_run(samples.load(name), failed) for name in names] + [failed]
    ref = add_run(kube, events[0])
    client = function_client("slack")
    for event in events:  # the live run moves on; each event is delivered once, in order
        advance(kube, ref, event)
        assert deliver(client, event).status_code == 200
    assert chat_calls(slack) == [POST, UPDATE, UPDATE]  # started, running, failed
    final = record(kube, ref)
    calls = len(slack.calls)

    replay = events * 3
    random.Random(11).shuffle(replay)
    for event in replay:
        assert deliver(client, event).status_code == 200

    assert len(slack.calls) == calls, "duplicates made Slack calls"
    assert record(kube, ref) == final
    assert len(slack.messages) == 1


@pytest.mark.parametrize("order", [("failed", "running"), ("running", "failed")])
def test_a_run_already_finished_gets_one_message_showing_the_end_whatever_the_order(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver, order: tuple[str, str]
) -> None:
    running, failed, ref = failing_run(kube)
    advance(kube, ref, failed)  # the run is over before any delivery
    client = function_client("slack")
    for name in order:
        assert deliver(client, {"running": running, "failed": failed}[name]).status_code == 200
    (message,) = slack.messages.values()
    assert message["text"].startswith(":x:")
    assert record(kube, ref)["runState"] == {"status": "False", "reason": "Failed"}
    assert chat_calls(slack) == [POST]


def test_failure_details_can_go_into_the_thread_once(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver
) -> None:
    running, failed, ref = failing_run(kube)
    annotate(running, failed, thread_failures="true")
    kube.runs[ref]["metadata"]["annotations"]["slack.integrations.tekton.dev/thread-failures"] = "true"
    client = function_client("slack")
    deliver(client, running)
    advance(kube, ref, failed)
    deliver(client, failed)
    for event in (failed, running, failed):
        deliver(client, event)

    assert chat_calls(slack) == [POST, UPDATE, POST]
    main, reply = slack.messages.values()
    assert reply["thread_ts"] == main["ts"]
    assert "Details in the thread" in all_text(main)
    assert "step-run-tests" not in all_text(main)
    assert '```\\"step-run-tests\\" exited with code 1: Error```' in all_text(reply)
    assert "2 tasks did not succeed" in all_text(reply)
    assert reply["metadata"]["event_payload"] == {
        "run_uid": RUN_UID,
        "integration": "slack",
        "part": "details",
    }
    assert message_ids(kube, ref) == {"ts": main["ts"], "channel": "C0WIDGETCI", "details-ts": reply["ts"]}
    assert condition(kube, ref)["status"] == "True"


def test_a_failed_thread_reply_is_retried_without_posting_the_message_again(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver
) -> None:
    running, failed, ref = failing_run(kube)
    annotate(running, failed, thread_failures="true")
    kube.runs[ref]["metadata"]["annotations"]["slack.integrations.tekton.dev/thread-failures"] = "true"
    client = function_client("slack")
    deliver(client, running)
    advance(kube, ref, failed)
    slack.fail_next("ratelimited", status=429, retry_after=3, method=POST)
    assert deliver(client, failed).status_code == 429
    assert deliver(client, failed).status_code == 200
    main, reply = slack.messages.values()
    assert reply["thread_ts"] == main["ts"]
    assert record(kube, ref)["annotations"]["details-ts"] == reply["ts"]


def test_a_reply_failing_right_after_the_first_post_keeps_the_message_and_says_so(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver
) -> None:
    _, failed, ref = failing_run(kube)
    annotate(failed, thread_failures="true")
    advance(kube, ref, failed)
    kube.runs[ref]["metadata"]["annotations"]["slack.integrations.tekton.dev/thread-failures"] = "true"
    slack.fail_next("ratelimited", status=429, retry_after=3, when=lambda body: "thread_ts" in body)
    client = function_client("slack")

    assert deliver(client, failed).status_code == 200
    assert deliver(client, failed).status_code == 200

    (message,) = slack.messages.values()
    assert message_ids(kube, ref) == {"ts": message["ts"], "channel": "C0WIDGETCI", "details-ts": ""}
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("True", "ReportedWithoutDetails")
    assert "failure details not threaded" in cond["message"]
    assert "Details in the thread" not in all_text(message)
    assert "step-run-tests" in all_text(message), "the details are shown in the message instead"


def test_a_deleted_message_is_reported_as_gone(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver
) -> None:
    running, failed, ref = failing_run(kube)
    client = function_client("slack")
    deliver(client, running)
    slack.messages.clear()  # someone deleted the message in Slack
    advance(kube, ref, failed)
    assert deliver(client, failed).status_code == 200
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "SlackMessageGone")


def test_on_limits_the_states_reported(kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver) -> None:
    successful = samples.load("pipelinerun-successful")
    annotate(successful, on="failed")
    ref = add_run(kube, successful)
    answer = deliver(function_client("slack"), successful)
    assert outcome(answer) == "ignored"
    assert not slack.calls
    assert RECORD not in kube.runs[ref]["metadata"]["annotations"]


def test_the_default_skips_queued_runs(kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver) -> None:
    queued = samples.load("pipelinerun-queued")
    add_run(kube, queued)
    assert outcome(deliver(function_client("slack"), queued)) == "ignored"
    assert not slack.calls


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"on": "finished,sometimes"}, "slack.integrations.tekton.dev/on: "),
        ({"channel": "#no spaces"}, "slack.integrations.tekton.dev/channel: "),
        ({"thread_failures": "perhaps"}, "slack.integrations.tekton.dev/thread-failures: "),
        ({"chanel": "#typo"}, "slack.integrations.tekton.dev/chanel: unknown key"),
    ],
)
def test_bad_annotations_are_recorded_as_invalid_configuration(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver, settings: dict[str, str], complaint: str
) -> None:
    running = samples.load("pipelinerun-running")
    annotate(running, **settings)
    ref = add_run(kube, running)
    assert deliver(function_client("slack"), running).status_code == 200
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "InvalidConfiguration")
    assert complaint in cond["message"]
    assert not slack.calls


def test_child_taskruns_are_left_to_their_pipelinerun_and_standalone_ones_are_reported(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver
) -> None:
    child = samples.load("taskrun-failed")
    client = function_client("slack")
    assert outcome(deliver(client, child)) == "ignored"
    assert not slack.calls

    samples.run_object(child)[1]["metadata"]["labels"].pop("tekton.dev/pipelineRun")
    add_run(kube, child)
    assert deliver(client, child).status_code == 200
    (message,) = slack.messages.values()
    assert message["text"].startswith(":x: TaskRun ci/build-and-test-run-q4m9z-unit-tests (golang-test)")
    assert "exited with code 1" in all_text(message)


def test_webhook_posts_once_when_the_run_finishes(
    kube: MemoryRunClient, webhook: SlackStandIn, deliver: Deliver, caplog: pytest.LogCaptureFixture
) -> None:
    running, failed, ref = failing_run(kube)
    client = function_client("slack")
    assert outcome(deliver(client, running)) == "ignored"  # webhooks default to finished states
    advance(kube, ref, failed)
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            assert deliver(client, failed).status_code == 200
    assert "/services/" not in caplog.text, "the webhook URL is a credential"
    (message,) = webhook.webhook_messages
    assert message["text"].startswith(":x: PipelineRun ci/build-and-test-run-q4m9z")
    assert [call.method for call in webhook.calls] == [WEBHOOK]
    assert condition(kube, ref)["status"] == "True"


def test_webhook_posts_a_new_message_for_each_state_asked_for(
    kube: MemoryRunClient, webhook: SlackStandIn, deliver: Deliver
) -> None:
    running, failed, ref = failing_run(kube)
    annotate(running, failed, on="started,finished")
    kube.runs[ref]["metadata"]["annotations"]["slack.integrations.tekton.dev/on"] = "started,finished"
    client = function_client("slack")
    deliver(client, running)
    advance(kube, ref, failed)
    deliver(client, failed)
    deliver(client, failed)
    assert [m["attachments"][0]["color"] for m in webhook.webhook_messages] == ["#1d9bd1", "#e01e5a"]


@pytest.mark.parametrize(
    ("status", "error", "answer_status", "reason"),
    [
        (404, "no_service", 200, "SlackWebhookGone"),
        (410, "channel_is_archived", 200, "SlackChannelArchived"),
        (429, "rate_limited", 429, "SlackRateLimited"),
        (500, "rollup_error", 503, "SlackUnavailable"),
    ],
)
def test_webhook_errors(
    kube: MemoryRunClient,
    webhook: SlackStandIn,
    deliver: Deliver,
    *,
    status: int,
    error: str,
    answer_status: int,
    reason: str,
) -> None:
    failed = samples.load("pipelinerun-failed")
    ref = add_run(kube, failed)
    webhook.fail_next(error, status=status, retry_after=9 if status == 429 else None)
    answer = deliver(function_client("slack"), failed)
    assert answer.status_code == answer_status
    cond = condition(kube, ref)
    assert cond["reason"] == reason
    assert webhook.webhook_url not in json.dumps(kube.runs[ref]) + json.dumps(kube.events, default=str)
    assert "/services/" not in cond["message"]


@pytest.mark.parametrize(
    ("channel", "allowed"),
    [("#widget-ci", True), ("widget-ci", True), ("C0WIDGETCI", True), ("#releases", False)],
)
def test_the_namespace_policy_decides_which_channels_a_run_may_post_to(
    kube: MemoryRunClient,
    slack: SlackStandIn,
    deliver: Deliver,
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    channel: str,
    allowed: bool,
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text('namespaces:\n  ci: {slack: {channels: ["#widget-*", "C0WIDGETCI"]}}\n')
    monkeypatch.setenv("TI_POLICY_FILE", str(policy))
    running = samples.load("pipelinerun-running")
    annotate(running, channel=channel)
    ref = add_run(kube, running)
    assert deliver(function_client("slack"), running).status_code == 200
    cond = condition(kube, ref)
    if allowed:
        assert cond["status"] == "True"
        assert len(slack.messages) == 1
    else:
        assert (cond["status"], cond["reason"]) == ("False", "TargetNotAllowed")
        assert "#releases" in cond["message"]
        assert not slack.calls


# -- exactly one message across crashes, lost answers and forged records (DESIGN.md §3) ------------


def crash_after_the_post(kube: MemoryRunClient, slack: SlackStandIn, method: str = POST) -> None:
    """The replica dies once Slack acted: every record write after the post fails."""

    def fail(verb: str, _: RunRef) -> None:
        if verb == "patch" and slack.calls_to(method):
            raise KubernetesUnavailableError("the replica was killed")

    kube.before_request = fail


def expire_claim(kube: MemoryRunClient, ref: RunRef) -> None:
    """Move the record's claim back beyond its TTL, as if the dead replica claimed long ago."""
    annotations = kube.runs[ref]["metadata"]["annotations"]
    stored = json.loads(annotations[RECORD])
    assert stored["claim"], "the dead replica left its claim"
    stored["claim"]["at"] = (datetime.now(UTC) - CLAIM_TTL - timedelta(seconds=1)).isoformat()
    annotations[RECORD] = json.dumps(stored)


class SameCluster:
    """The same run store through another connection, as another replica holds one."""

    def __init__(self, cluster: MemoryRunClient) -> None:
        self.cluster = cluster

    def get(self, ref: RunRef) -> dict[str, Any]:
        return self.cluster.get(ref)

    def patch(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self.cluster.patch(ref, patch)

    def patch_status(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self.cluster.patch_status(ref, patch)

    def record_event(self, ref: RunRef, uid: str, reason: str, message: str) -> None:
        self.cluster.record_event(ref, uid, reason, message)


def another_replica(kube: MemoryRunClient) -> FlaskClient:
    """A fresh process: nothing the first replica remembered can help.

    A new app loads a new function module (its own Slack client and caches, its own
    ``_LazyProcessor``); a new run client makes every ``Processor`` of this process rebuild on its
    next event, dropping the records it kept in memory because it could not write them.
    """
    use_run_client(SameCluster(kube))
    return function_client("slack")


def with_channel(kube: MemoryRunClient, ref: RunRef, *events: dict[str, Any], channel: str) -> None:
    annotate(*events, channel=channel)
    kube.runs[ref]["metadata"]["annotations"]["slack.integrations.tekton.dev/channel"] = channel


@pytest.mark.parametrize("channel", ["#widget-ci", "C0WIDGETCI"])
def test_a_replica_killed_between_the_post_and_the_record_leaves_one_message(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver, channel: str
) -> None:
    running, failed, ref = failing_run(kube)
    with_channel(kube, ref, running, failed, channel=channel)
    crash_after_the_post(kube, slack)
    assert deliver(function_client("slack"), running).status_code == 503
    kube.before_request = None
    (posted,) = slack.messages
    expire_claim(kube, ref)

    replica = another_replica(kube)
    answer = deliver(replica, running)

    assert (answer.status_code, outcome(answer)) == (200, "reported")
    assert chat_calls(slack) == [POST, UPDATE], "the second replica found the message and edited it"
    assert list(slack.messages) == [posted]
    assert message_ids(kube, ref) == {"ts": posted, "channel": "C0WIDGETCI", "details-ts": ""}
    # An ID is used as it is; a name is resolved once per process.
    assert len(slack.calls_to("conversations.list")) == (0 if channel.startswith("C") else 2)

    advance(kube, ref, failed)
    assert deliver(replica, failed).status_code == 200
    assert chat_calls(slack) == [POST, UPDATE, UPDATE]
    (message,) = slack.messages.values()
    assert message["text"].startswith(":x:")


def test_a_lost_answer_to_the_post_leaves_one_message(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver
) -> None:
    running, _, ref = failing_run(kube)
    slack.drop_answer_next(method=POST)  # Slack posts; the function never hears back

    answer = deliver(function_client("slack"), running)
    assert answer.status_code == 503
    assert condition(kube, ref)["reason"] == "SlackUnreachable"
    (posted,) = slack.messages

    assert deliver(another_replica(kube), running).status_code == 200
    assert chat_calls(slack) == [POST, UPDATE]
    assert list(slack.messages) == [posted]
    assert message_ids(kube, ref)["ts"] == posted
    assert condition(kube, ref)["status"] == "True"


def test_a_lost_answer_to_the_thread_reply_leaves_one_reply(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver
) -> None:
    running, failed, ref = failing_run(kube)
    annotate(running, failed, thread_failures="true")
    kube.runs[ref]["metadata"]["annotations"]["slack.integrations.tekton.dev/thread-failures"] = "true"
    client = function_client("slack")
    assert deliver(client, running).status_code == 200
    advance(kube, ref, failed)
    slack.drop_answer_next(method=POST, when=lambda body: "thread_ts" in body)

    assert deliver(client, failed).status_code == 503
    main, reply = slack.messages.values()
    assert message_ids(kube, ref)["ts"] == main["ts"], "the message's ids survive the failure"
    assert deliver(another_replica(kube), failed).status_code == 200

    assert chat_calls(slack) == [POST, UPDATE, POST, UPDATE, UPDATE]  # the retry edits both
    assert list(slack.messages) == [main["ts"], reply["ts"]]
    assert message_ids(kube, ref) == {"ts": main["ts"], "channel": "C0WIDGETCI", "details-ts": reply["ts"]}


def test_without_the_history_scopes_a_crash_before_the_record_posts_again_as_documented(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver, caplog: pytest.LogCaptureFixture
) -> None:
    slack.scopes = ["chat:write"]
    running, _, ref = failing_run(kube)
    crash_after_the_post(kube, slack)
    assert deliver(function_client("slack"), running).status_code == 503
    kube.before_request = None
    expire_claim(kube, ref)

    with caplog.at_level(logging.INFO):
        answer = deliver(another_replica(kube), running)

    assert (answer.status_code, outcome(answer)) == (200, "reported"), "an unreadable history is no error"
    assert "Slack answered missing_scope to list channels to find #widget-ci" in caplog.text
    assert chat_calls(slack) == [POST, POST], "the limit docs/slack.md states"
    assert message_ids(kube, ref)["ts"] == list(slack.messages)[-1]


def test_a_message_naming_the_run_that_this_bot_did_not_post_is_never_taken_for_its_own(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver
) -> None:
    running, _, ref = failing_run(kube)
    payload = {"run_uid": RUN_UID, "integration": "slack", "part": "run"}
    metadata = {"event_type": "tekton_run", "event_payload": payload}
    planted = slack.add_message("#widget-ci", "looks like the run's message", metadata=metadata)

    assert deliver(function_client("slack"), running).status_code == 200

    assert chat_calls(slack) == [POST]
    assert slack.messages[planted]["updated"] == 0
    assert message_ids(kube, ref)["ts"] != planted


def other_run(kube: MemoryRunClient, channel: str) -> tuple[dict[str, Any], RunRef]:
    """Another PipelineRun of the namespace, reported to ``channel``."""
    event = samples.load("pipelinerun-running")
    metadata = samples.run_object(event)[1]["metadata"]
    metadata.update(name="someone-elses-run", uid="0d6f3c52-7a1e-4c1b-9a55-3f0c2b7e9d41")
    annotate(event, channel=channel)
    return event, add_run(kube, event)


@pytest.mark.parametrize("forgery", ["copied from another run", "ids edited", "garbage"])
@pytest.mark.parametrize("victim_channel", ["#releases", "#widget-ci"])
def test_a_forged_record_calls_no_other_channel_and_edits_no_other_message(
    kube: MemoryRunClient,
    slack: SlackStandIn,
    deliver: Deliver,
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    forgery: str,
    victim_channel: str,
) -> None:
    with slack.lock:
        slack.channels["releases"] = "C0RELEASES"
    running, failed, ref = failing_run(kube)
    victim, victim_ref = other_run(kube, victim_channel)
    client = function_client("slack")
    assert deliver(client, running).status_code == 200
    assert deliver(client, victim).status_code == 200
    own, theirs = message_ids(kube, ref), record(kube, victim_ref)["annotations"]
    # From now on the namespace may use #widget-* only.
    policy = tmp_path / "policy.yaml"
    policy.write_text('namespaces:\n  ci: {slack: {channels: ["#widget-*"]}}\n')
    monkeypatch.setenv("TI_POLICY_FILE", str(policy))

    # The run's author rewrites the run's record to point at the other run's message.
    annotations = kube.runs[ref]["metadata"]["annotations"]
    forged = json.loads(annotations[RECORD])
    if forgery == "copied from another run":
        forged["annotations"] = dict(theirs)
    elif forgery == "ids edited":
        forged["annotations"].update(channel=theirs["channel"], ts=theirs["ts"])
    else:
        forged["annotations"] = {"channel": theirs["channel"], "ts": theirs["ts"], "sig": "\u00fc" * 64}
    annotations[RECORD] = json.dumps(forged)
    seen = len(slack.calls)
    advance(kube, ref, failed)
    assert deliver(client, failed).status_code == 200

    with slack.lock:
        after = slack.calls[seen:]
    if victim_channel == "#releases":
        assert all(call.body.get("channel") != "C0RELEASES" for call in after), "a call outside the policy"
    assert slack.messages[theirs["ts"]]["updated"] == 0, "another run's message was edited"
    assert slack.messages[own["ts"]]["text"].startswith(":x:"), "the run's own message was found and edited"
    assert chat_calls(slack) == [POST, POST, UPDATE]
    assert message_ids(kube, ref) == own
    assert condition(kube, ref)["status"] == "True"


# -- which credentials, decided once ----------------------------------------------------------------


def test_an_unmounted_bot_token_with_a_readable_webhook_is_the_webhook_mode_throughout(
    kube: MemoryRunClient,
    webhook: SlackStandIn,
    deliver: Deliver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN_FILE", str(tmp_path / "bot-token-not-mounted"))
    running, failed, ref = failing_run(kube)
    client = function_client("slack")

    assert outcome(deliver(client, running)) == "ignored", "the webhook's default states: finished only"
    assert not webhook.calls
    advance(kube, ref, failed)
    assert deliver(client, failed).status_code == 200

    assert [call.method for call in webhook.calls] == [WEBHOOK]
    assert condition(kube, ref)["status"] == "True"
    assert "through the incoming webhook" in condition(kube, ref)["message"]


def test_a_token_file_that_is_a_directory_is_not_configured_and_named(
    kube: MemoryRunClient,
    slack: SlackStandIn,
    deliver: Deliver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    monkeypatch.setenv("SLACK_BOT_TOKEN_FILE", str(tmp_path))
    running, _, ref = failing_run(kube)

    answer = deliver(function_client("slack"), running)

    assert (answer.status_code, outcome(answer)) == (200, "failed")
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "SlackNotConfigured")
    assert f"SLACK_BOT_TOKEN_FILE names {tmp_path}, which is a directory" in cond["message"]
    assert not slack.calls
