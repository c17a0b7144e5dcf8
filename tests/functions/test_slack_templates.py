"""Slack with an operator's template and with the failed steps' last lines: a template from the
ConfigMap writes the message, a template that fails falls back to the default message and says so
on the run, and the logs go into the run's thread (into the message, with a webhook)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.runclient import MemoryRunClient, RunRef
from tests.conftest import Deliver, advance, function_client
from tests.functions.test_slack import (
    POST,
    UPDATE,
    all_text,
    annotate,
    chat_calls,
    condition,
    failing_run,
    message_ids,
    slack,
    webhook,
)
from tests.support.reports import LOG_TOKEN, log_failed_step, mount_templates, pod_log_reads
from tests.support.standins.slack import SlackStandIn

__all__ = ["slack", "webhook"]  # the fixtures, shared with test_slack.py

PREFIX = "slack.integrations.tekton.dev/"
DASHBOARD = "https://dashboard.example.org"
RUN_URL = f"{DASHBOARD}/#/namespaces/ci/pipelineruns/build-and-test-run-q4m9z"
LOG = [f"=== RUN TestWidget/case-{i}" for i in range(8)] + [
    f"    widget_test.go:42: pushing with {LOG_TOKEN}",
    "--- FAIL: TestWidget (0.01s)",
]
SHORT = (
    "*{{ run.definition }}* {{ run.headline }} in `{{ run.namespace }}`, for {{ run.annotations.owner }}\n"
    "{% for t in failed_tasks %}• {{ t.name }}: {{ t.reason }}\n{% endfor %}"
    "<{{ links.run_url }}|Open the run>"
)
SHORT_TEXT = (
    "*build-and-test* Failed in `ci`, for &lt;!channel&gt; &amp; team\n"
    "• unit-tests: StepFailed\n"
    "• build-image: Skipped\n"
    f"<{RUN_URL}|Open the run>"
)
"""``SHORT`` rendered for the failed sample run: the run's values escaped, the operator's mrkdwn kept."""


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", DASHBOARD)
    return mount_templates(
        tmp_path,
        monkeypatch,
        {"short.slack.j2": SHORT, "evil.j2": "{{ ''.__class__.__mro__[1].__subclasses__() }}"},
    )


def configure(kube: MemoryRunClient, ref: RunRef, *events: dict[str, Any], **settings: str) -> None:
    """Set ``slack.integrations.tekton.dev/<key>`` on the events' runs and on the stored run."""
    annotate(*events, **settings)
    stored = kube.runs[ref]["metadata"]["annotations"]
    stored.update({PREFIX + key.replace("_", "-"): value for key, value in settings.items()})


def owned_by(kube: MemoryRunClient, ref: RunRef, *events: dict[str, Any]) -> None:
    """An annotation a template shows, holding what would be a mention in mrkdwn."""
    for held in [kube.runs[ref]["metadata"]["annotations"]] + [
        event["data"]["pipelineRun"]["metadata"]["annotations"] for event in events
    ]:
        held["owner"] = "<!channel> & team"


def blocks_text(blocks: list[dict[str, Any]] | None) -> list[str]:
    return [block["text"]["text"] for block in blocks or [] if "text" in block]


def test_a_template_from_the_configmap_writes_the_slack_message(
    kube: MemoryRunClient, slack: SlackStandIn, templates: Path, deliver: Deliver
) -> None:
    _, failed, ref = failing_run(kube)
    advance(kube, ref, failed)
    configure(kube, ref, failed, template="short")
    owned_by(kube, ref, failed)

    assert deliver(function_client("slack"), failed).status_code == 200

    (message,) = slack.messages.values()
    assert message["blocks"] == [{"type": "section", "text": {"type": "mrkdwn", "text": SHORT_TEXT}}]
    assert (
        message["text"] == ":x: PipelineRun ci/build-and-test-run-q4m9z (build-and-test): Failed after 1m 0s"
    )
    (attachment,) = message["attachments"]
    assert attachment["color"] == "#e01e5a"
    assert blocks_text(attachment["blocks"]) == []  # only the footer: the template replaced the facts
    assert "Open in the Tekton Dashboard" in json.dumps(attachment["blocks"])
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("True", "Reported")


def test_a_template_reaching_for_python_internals_is_refused_and_the_default_message_is_sent(
    kube: MemoryRunClient, slack: SlackStandIn, templates: Path, deliver: Deliver
) -> None:
    running, failed, ref = failing_run(kube)
    configure(kube, ref, running, template="short")
    owned_by(kube, ref, running, failed)
    client = function_client("slack")
    assert deliver(client, running).status_code == 200
    assert next(iter(slack.messages.values()))["blocks"], "the running message is the template's"

    advance(kube, ref, failed)
    configure(kube, ref, failed, template="evil")
    assert deliver(client, failed).status_code == 200

    assert chat_calls(slack) == [POST, UPDATE]
    (message,) = slack.messages.values()
    assert message["blocks"] == [], "the template's blocks are cleared from the message"
    shown = all_text(message)
    assert "*Did not succeed*" in shown
    assert "__class__" not in shown
    assert "subclasses" not in shown
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("True", "TemplateFailed")
    assert cond["message"].endswith(
        "; template 'evil' failed (SecurityError: access to attribute '__class__' of 'str' object is "
        "unsafe.): the default message was used"
    )


def test_a_template_missing_from_the_configmap_is_recorded_and_the_default_message_sent(
    kube: MemoryRunClient, slack: SlackStandIn, templates: Path, deliver: Deliver
) -> None:
    _, failed, ref = failing_run(kube)
    advance(kube, ref, failed)
    configure(kube, ref, failed, template="nowhere")

    assert deliver(function_client("slack"), failed).status_code == 200

    (message,) = slack.messages.values()
    assert "blocks" not in message or not message["blocks"]
    assert "*Did not succeed*" in all_text(message)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("True", "TemplateNotFound")
    assert "template 'nowhere' was not found (no key nowhere.slack.j2 or nowhere.j2" in cond["message"]


def test_the_failed_steps_last_lines_go_into_the_runs_thread_once_with_tokens_masked(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver
) -> None:
    running, failed, ref = failing_run(kube)
    configure(kube, ref, running, failed, log_lines="3")
    log_failed_step(kube, *LOG)
    client = function_client("slack")

    deliver(client, running)
    assert not pod_log_reads(kube), "a running run's logs are never read"
    advance(kube, ref, failed)
    for event in (failed, failed, running):
        assert deliver(client, event).status_code == 200

    assert chat_calls(slack) == [POST, UPDATE, POST]
    assert len(pod_log_reads(kube)) == 1
    main, reply = slack.messages.values()
    assert reply["thread_ts"] == main["ts"]
    (section,) = blocks_text(reply["attachments"][0]["blocks"])
    assert section == (
        "Task `unit-tests`, step `run-tests` (TaskRun `build-and-test-run-q4m9z-unit-tests`), last 3 lines:\n"
        "```\n=== RUN TestWidget/case-7\n    widget_test.go:42: pushing with [REDACTED]\n"
        "--- FAIL: TestWidget (0.01s)\n```"
    )
    assert LOG_TOKEN not in json.dumps(slack.messages)
    assert "The failed steps' last lines are in the thread" in all_text(main)
    assert "*unit-tests* (StepFailed)" in all_text(main), "without thread-failures the details stay"
    assert message_ids(kube, ref) == {"ts": main["ts"], "channel": "C0WIDGETCI", "details-ts": reply["ts"]}


def test_without_log_lines_no_log_is_read(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver
) -> None:
    _, failed, ref = failing_run(kube)
    advance(kube, ref, failed)
    log_failed_step(kube, *LOG)

    assert deliver(function_client("slack"), failed).status_code == 200

    assert not pod_log_reads(kube)
    assert chat_calls(slack) == [POST]


def test_failure_details_and_logs_share_one_thread_reply(
    kube: MemoryRunClient, slack: SlackStandIn, deliver: Deliver
) -> None:
    _, failed, ref = failing_run(kube)
    advance(kube, ref, failed)
    configure(kube, ref, failed, log_lines="2", thread_failures="true")
    log_failed_step(kube, *LOG)

    assert deliver(function_client("slack"), failed).status_code == 200

    main, reply = slack.messages.values()
    texts = blocks_text(reply["attachments"][0]["blocks"])
    assert texts[0] == "*2 tasks did not succeed*"
    assert texts[-1].endswith("pushing with [REDACTED]\n--- FAIL: TestWidget (0.01s)\n```")
    assert "Details in the thread" in all_text(main)


def test_a_template_and_the_logs_together(
    kube: MemoryRunClient, slack: SlackStandIn, templates: Path, deliver: Deliver
) -> None:
    _, failed, ref = failing_run(kube)
    advance(kube, ref, failed)
    configure(kube, ref, failed, log_lines="1", template="short")
    owned_by(kube, ref, failed)
    log_failed_step(kube, *LOG)

    assert deliver(function_client("slack"), failed).status_code == 200

    main, reply = slack.messages.values()
    assert blocks_text(main["blocks"]) == [SHORT_TEXT]
    assert "The failed steps' last lines are in the thread" in all_text(main)
    assert blocks_text(reply["attachments"][0]["blocks"])[0].endswith(
        "```\n--- FAIL: TestWidget (0.01s)\n```"
    )


def test_a_webhook_shows_the_logs_in_its_message(
    kube: MemoryRunClient, webhook: SlackStandIn, deliver: Deliver
) -> None:
    _, failed, ref = failing_run(kube)
    advance(kube, ref, failed)
    configure(kube, ref, failed, log_lines="2")
    log_failed_step(kube, *LOG)

    assert deliver(function_client("slack"), failed).status_code == 200

    (message,) = webhook.webhook_messages
    shown = all_text(message)
    assert "pushing with [REDACTED]" in shown
    assert "--- FAIL: TestWidget (0.01s)" in shown
    assert "in the thread" not in shown
    assert LOG_TOKEN not in shown
