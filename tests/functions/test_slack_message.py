"""The Slack messages themselves: what they say, Slack's limits, and mrkdwn injection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common import Run, RunPhase, samples
from common.events import parse_run
from common.steplogs import StepLog
from common.summary import TaskOutcome
from functions.slack.message import (
    LOOKS,
    MAX_BLOCKS,
    TEXT_LIMIT,
    details_message,
    escape,
    log_sections,
    run_message,
    templated_message,
)

HOSTILE = "<!channel> <https://evil.example|click> & ``` " * 200


def run_of(name: str, **status: Any) -> Run:
    kind, obj = samples.run_object(samples.load(name))
    obj["status"].update(status)
    return parse_run(kind, obj)


def texts(blocks: list[dict[str, Any]]) -> Iterator[str]:
    for block in blocks:
        if "text" in block:
            yield block["text"]["text"]
        for item in block.get("fields", []) + block.get("elements", []):
            yield item["text"]


def test_each_state_has_its_own_colour_and_emoji() -> None:
    assert len({look.color for look in LOOKS.values()}) >= 5
    assert len({look.emoji for look in LOOKS.values()}) == len(RunPhase)


def test_a_running_message_shows_when_it_started_and_no_duration() -> None:
    message = run_message(run_of("pipelinerun-running"), [], None)
    shown = json.dumps(message.blocks)
    assert "*Started*\\n<!date^1773480067^{date_short_pretty} {time}|2026-03-14 09:21 UTC>" in shown
    assert "Duration" not in shown
    assert (
        message.text
        == ":arrows_counterclockwise: PipelineRun ci/build-and-test-run-x7k2p (build-and-test): Running"
    )


def test_hostile_run_text_cannot_mention_or_link_and_stays_within_limits() -> None:
    run = run_of(
        "pipelinerun-failed",
        conditions=[{"type": "Succeeded", "status": "False", "reason": "Failed", "message": HOSTILE}],
    )
    tasks = [TaskOutcome(f"task-{i}", f"run-{i}", "StepFailed", HOSTILE) for i in range(60)]
    for message in (run_message(run, tasks, "https://dash.example.org/#/x"), details_message(run, tasks)):
        attachment = message.as_kwargs()["attachments"][0]
        assert len(attachment["blocks"]) <= MAX_BLOCKS
        for text in [message.text, *texts(attachment["blocks"])]:
            assert len(text) <= TEXT_LIMIT
            assert "<!channel>" not in text
            assert "<https://evil" not in text
    details = details_message(run, tasks)
    assert "and 12 more" in json.dumps(details.blocks)
    assert "and 50 more" in json.dumps(run_message(run, tasks, None).blocks)


@pytest.mark.parametrize(
    ("name", "verb", "status"),
    [
        ("pipelinerun-successful", "succeeded", "Succeeded"),
        ("pipelinerun-cancelled", "was cancelled", "Cancelled"),
        ("pipelinerun-failed-before-start", "failed", "Failed: CouldntGetPipeline"),
    ],
)
def test_finished_messages_name_the_outcome(name: str, verb: str, status: str) -> None:
    message = run_message(run_of(name), [], None)
    title, fields = message.blocks[0]["text"]["text"], json.dumps(message.blocks[1])
    assert title.endswith(f"* {verb}")
    assert f"*Status*\\n{status}" in fields
    assert "*Duration*" in fields


@given(st.text(), st.integers(min_value=2, max_value=400))
def test_escaped_text_never_exceeds_its_limit_or_leaves_markup(text: str, limit: int) -> None:
    escaped = escape(text, limit)
    assert len(escaped) <= limit
    assert "<" not in escaped
    assert ">" not in escaped
    if len(escape(text)) <= limit:
        assert escaped == escape(text)


def test_a_long_template_text_is_split_into_sections_within_slacks_limit_never_inside_an_entity() -> None:
    line = "x" * (TEXT_LIMIT - 2) + "&amp;&lt;"  # an entity right at the limit
    text = "\n".join([line, "short line", "y" * 2500, "z" * 7000])
    message = templated_message(run_of("pipelinerun-failed"), text, None)

    sections = [block["text"]["text"] for block in message.body]
    assert all(0 < len(section) <= TEXT_LIMIT for section in sections)
    assert sections[0] == "x" * (TEXT_LIMIT - 2)
    assert sections[1].startswith("&amp;&lt;\nshort line")
    assert "".join(sections).replace("\n", "") == text.replace("\n", "")
    assert message.as_kwargs()["blocks"] == message.body


@given(st.lists(st.text(min_size=0, max_size=400), min_size=1, max_size=40))
def test_failed_steps_logs_are_escaped_and_each_step_fits_one_section(lines: list[str]) -> None:
    logs = [StepLog("unit-tests", "run-1", "run-tests", tuple(line + HOSTILE[:200] for line in lines), False)]
    for section in log_sections(logs):
        text = section["text"]["text"]
        assert len(text) <= TEXT_LIMIT
        assert "<!channel>" not in text
        assert text.count("```") == 2, "one code block; a fence in a line cannot end it"
