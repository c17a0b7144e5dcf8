"""What a run looks like in Google Chat: one message per reported state, all in the run's thread.

Pure. Each message is a ``cardsV2`` card (the state, the run, its duration or start; for a run that
did not succeed, the tasks that did not, from ``common.summary``; a button to the run on the Tekton
Dashboard when ``TEKTON_DASHBOARD_URL`` is set) with a one-line ``text``, which notifications and
the collapsed thread show. Everything taken from the run is escaped: card text is Chat's HTML
subset, and in plain text Chat reads ``<users/all>`` as a mention and ``<url|text>`` as a link.

Keeps within Chat's documented limits: ``text`` at most 4,096 characters, at most 100 widgets per
card, the whole message at most 32,000 bytes (tasks beyond ``MAX_TASKS`` are counted, not listed,
and more are dropped if a message would still be too large).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common import Run, RunPhase
from common.errors import clip
from common.summary import TaskOutcome, format_duration, headline

TEXT_LIMIT = 4096
MESSAGE_BYTES = 32_000
MAX_WIDGETS = 100
MAX_TASKS = 20
TASK_TEXT = 300
"""Characters of a task's reason and first message line shown in the card."""
CONDITION_TEXT = 1000
CARD_ID = "tekton-run"

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Look:
    emoji: str
    color: str
    verb: str


LOOKS = {
    RunPhase.QUEUED: Look("⏳", "#5f6368", "is queued"),
    RunPhase.RUNNING: Look("🔄", "#1a73e8", "is running"),
    RunPhase.SUCCEEDED: Look("✅", "#188038", "succeeded"),
    RunPhase.FAILED: Look("❌", "#d93025", "failed"),
    RunPhase.CANCELLED: Look("🚫", "#5f6368", "was cancelled"),
    RunPhase.TIMED_OUT: Look("⏰", "#e37400", "timed out"),
}


def run_message(run: Run, tasks: Sequence[TaskOutcome], url: str | None, *, thread_key: str) -> JsonObject:
    """The message for the run's current state, in the thread ``thread_key`` names."""
    shown = min(len(tasks), MAX_TASKS)
    while True:
        message: JsonObject = {
            "text": plain_text(run, tasks),
            "thread": {"threadKey": thread_key},
            "cardsV2": [{"cardId": CARD_ID, "card": card(run, tasks, url, shown=shown)}],
        }
        if shown == 0 or len(json.dumps(message).encode()) <= MESSAGE_BYTES:
            return message
        shown //= 2


def plain_text(run: Run, tasks: Sequence[TaskOutcome]) -> str:
    """``❌ PipelineRun ci/build-and-test-run-q4m9z (build-and-test): Failed after 1m 0s``, and the
    tasks that did not succeed."""
    duration = format_duration(run.duration_seconds) if run.phase.is_done else None
    text = (
        f"{LOOKS[run.phase].emoji} {run.kind} {run.namespace}/{run.name} ({run.definition}): {headline(run)}"
    )
    if duration:
        text += f" after {duration}"
    if tasks:
        text += ". Did not succeed: " + ", ".join(task.task for task in tasks)
    return clip(text.replace("<", "\u2039").replace(">", "\u203a"), TEXT_LIMIT)


def card(run: Run, tasks: Sequence[TaskOutcome], url: str | None, *, shown: int = MAX_TASKS) -> JsonObject:
    look = LOOKS[run.phase]
    state = f'<font color="{look.color}"><b>{_escape(headline(run), 200)}</b></font>'
    if run.phase.is_done:
        timing = _fact("Duration", format_duration(run.duration_seconds) or "-")
    else:
        started = run.start_time.strftime("%Y-%m-%d %H:%M:%S UTC") if run.start_time else "not yet"
        timing = _fact("Started", started)
    widgets = [
        _fact("State", state, escaped=True),
        _fact("Run", f"{run.kind} {run.namespace}/{run.name}"),
        timing,
    ]
    if run.condition and run.condition.message.strip():
        widgets.append({"textParagraph": {"text": _escape(run.condition.message.strip(), CONDITION_TEXT)}})
    sections: list[JsonObject] = [{"widgets": widgets}]
    if tasks:
        sections.append(_tasks_section(tasks, shown))
    if url:
        button = {"text": "Open in Tekton Dashboard", "onClick": {"openLink": {"url": url}}}
        sections.append({"widgets": [{"buttonList": {"buttons": [button]}}]})
    return {
        "header": {"title": clip(f"{look.emoji} {run.definition} {look.verb}", 200)},
        "sections": sections,
    }


def widget_count(message: JsonObject) -> int:
    """Widgets in the message's cards (Chat ignores those beyond 100 per card)."""
    return sum(
        len(section.get("widgets", []))
        for entry in message.get("cardsV2", [])
        for section in entry["card"].get("sections", [])
    )


def _tasks_section(tasks: Sequence[TaskOutcome], shown: int) -> JsonObject:
    widgets: list[JsonObject] = []
    for task in tasks[:shown]:
        first = task.message.strip().splitlines()[0] if task.message.strip() else ""
        text = f"<b>{_escape(task.reason or 'Failed', 100)}</b>" + (
            f": {_escape(first, TASK_TEXT)}" if first else ""
        )
        widget: JsonObject = {"topLabel": clip(task.task, 100), "text": text, "wrapText": True}
        if task.run_name:
            widget["bottomLabel"] = clip(task.run_name, 100)
        widgets.append({"decoratedText": widget})
    if len(tasks) > shown:
        widgets.append({"textParagraph": {"text": f"and {len(tasks) - shown} more"}})
    section: JsonObject = {"header": f"Did not succeed ({len(tasks)})", "widgets": widgets}
    if len(widgets) > 5:
        section |= {"collapsible": True, "uncollapsibleWidgetsCount": 5}
    return section


def _fact(label: str, text: str, *, escaped: bool = False) -> JsonObject:
    return {"decoratedText": {"topLabel": label, "text": text if escaped else _escape(text, 500)}}


def _escape(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, then shown literally in Chat's card HTML."""
    return html.escape(clip(text, limit), quote=False)
