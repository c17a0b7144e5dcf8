"""What a run looks like in Google Chat: one message per reported state, all in the run's thread.

Pure. Each message is a ``cardsV2`` card (the state, the run, its duration or start; for a run that
did not succeed, the tasks that did not, from ``common.summary``; a button to the run on the Tekton
Dashboard when ``TEKTON_DASHBOARD_URL`` is set) with a one-line ``text``, which notifications and
the collapsed thread show. Everything taken from the run is escaped: card text is Chat's HTML
subset, and in plain text Chat reads ``<users/all>`` as a mention and ``<url|text>`` as a link.

An operator's template (``common.templates``) replaces the card's facts and tasks: its text is one
``textParagraph`` (Chat's HTML subset; the template's values are escaped for it) under the header.
A failed run's failed steps' last lines (``log-lines``) are a section of their own
(``common.steplogs.as_plain``, one line a line: Chat's card HTML has no monospace).

Keeps within Chat's documented limits: ``text`` at most 4,096 characters, at most 100 widgets per
card, the whole message at most 32,000 bytes (tasks beyond ``MAX_TASKS`` are counted, not listed,
and more are dropped if a message would still be too large; then the logs lose their oldest lines,
then a template's text is cut).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common import Run, RunPhase
from common.errors import clip
from common.summary import TaskOutcome, format_duration, headline, one_line

if TYPE_CHECKING:  # step logs load with the first message that shows them
    from common.steplogs import StepLog

TEXT_LIMIT = 4096
MESSAGE_BYTES = 32_000
MAX_WIDGETS = 100
MAX_TASKS = 20
TASK_TEXT = 300
"""Characters of a task's reason and first message line shown in the card."""
CONDITION_TEXT = 1000
LOG_LIMIT = 8000
"""Characters of the failed steps' logs shown at most (fewer when the message would be too large)."""
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


def run_message(
    run: Run,
    tasks: Sequence[TaskOutcome],
    url: str | None,
    *,
    thread_key: str,
    text: str | None = None,
    logs: Sequence[StepLog] = (),
) -> JsonObject:
    """The message for the run's current state, in the thread ``thread_key`` names; ``text``: an
    operator's template's output, instead of the card's facts and tasks; ``logs``: the failed
    steps' last lines."""
    shown = min(len(tasks), MAX_TASKS)
    from common.steplogs import as_plain  # noqa: PLC0415 -- loaded with the first message

    log_text = as_plain(logs, LOG_LIMIT)

    def built() -> JsonObject:
        body = card(run, tasks, url, shown=shown) if text is None else templated_card(run, text, url)
        if log_text:
            body["sections"].insert(len(body["sections"]) - bool(url), _logs_section(log_text))
        return {
            "text": plain_text(run, tasks),
            "thread": {"threadKey": thread_key},
            "cardsV2": [{"cardId": CARD_ID, "card": body}],
        }

    message = built()
    while _size(message) > MESSAGE_BYTES and shown:
        shown //= 2
        message = built()
    while _size(message) > MESSAGE_BYTES and log_text:  # escaping at most sextuples a character
        log_text = as_plain(logs, len(log_text) - (_size(message) - MESSAGE_BYTES) // 6 - 1)
        message = built()
    while _size(message) > MESSAGE_BYTES and text is not None and len(text) > 1:
        text = clip(text, max(1, len(text) - (_size(message) - MESSAGE_BYTES) - 3))  # "…": 3 bytes
        message = built()
    return message


def _size(message: JsonObject) -> int:
    return len(json.dumps(message).encode())


def plain_text(run: Run, tasks: Sequence[TaskOutcome]) -> str:
    """``❌ PipelineRun ci/build-and-test-run-q4m9z (build-and-test): Failed after 1m 0s``, and the
    tasks that did not succeed."""
    text = one_line(run, LOOKS[run.phase].emoji)
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
        sections.append(_button(url))
    return {
        "header": {"title": clip(f"{look.emoji} {run.definition} {look.verb}", 200)},
        "sections": sections,
    }


def templated_card(run: Run, text: str, url: str | None) -> JsonObject:
    """The card with an operator's template's ``text`` (Chat's HTML subset) under the header."""
    look = LOOKS[run.phase]
    sections: list[JsonObject] = [{"widgets": [{"textParagraph": {"text": text}}]}]
    if url:
        sections.append(_button(url))
    return {
        "header": {"title": clip(f"{look.emoji} {run.definition} {look.verb}", 200)},
        "sections": sections,
    }


def _logs_section(text: str) -> JsonObject:
    shown = _escape(text, len(text)).replace("\n", "<br>")
    return {"header": "The failed steps' last lines", "widgets": [{"textParagraph": {"text": shown}}]}


def _button(url: str) -> JsonObject:
    button = {"text": "Open in Tekton Dashboard", "onClick": {"openLink": {"url": url}}}
    return {"widgets": [{"buttonList": {"buttons": [button]}}]}


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
