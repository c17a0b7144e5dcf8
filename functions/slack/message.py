"""What a run looks like in Slack: the run's message and the thread reply with failure details.

Pure. Each message is Block Kit inside one attachment, whose ``color`` draws the bar on the left,
with a plain-text ``text`` fallback for notifications and screen readers. Keeps within Slack's
limits: 3000 characters per text object, 50 blocks per message.
Everything taken from the run is escaped for mrkdwn (``&``, ``<``, ``>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common import Run, RunPhase
from common.summary import TaskOutcome, format_duration, headline

TEXT_LIMIT = 3000
MAX_BLOCKS = 50
MAX_TASKS_IN_MESSAGE = 10
TASK_MESSAGE_LIMIT = 1500
"""Characters of one task's failure message shown in the thread reply."""


@dataclass(frozen=True)
class Look:
    emoji: str
    color: str
    verb: str


LOOKS = {
    RunPhase.QUEUED: Look(":hourglass_flowing_sand:", "#9e9e9e", "is queued"),
    RunPhase.RUNNING: Look(":arrows_counterclockwise:", "#1d9bd1", "is running"),
    RunPhase.SUCCEEDED: Look(":white_check_mark:", "#2eb886", "succeeded"),
    RunPhase.FAILED: Look(":x:", "#e01e5a", "failed"),
    RunPhase.CANCELLED: Look(":no_entry_sign:", "#9e9e9e", "was cancelled"),
    RunPhase.TIMED_OUT: Look(":alarm_clock:", "#daa038", "timed out"),
}


@dataclass(frozen=True)
class SlackMessage:
    text: str
    """The plain fallback: notifications, screen readers, clients without Block Kit."""
    blocks: list[dict[str, Any]]
    color: str

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``chat.postMessage``/``chat.update`` and incoming webhooks."""
        attachment = {"color": self.color, "fallback": self.text, "blocks": self.blocks[:MAX_BLOCKS]}
        return {"text": self.text, "attachments": [attachment]}


_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def escape(text: str, limit: int | None = None) -> str:
    """``text`` shown literally in mrkdwn (Slack reads ``<...>`` as links and mentions), cut to
    ``limit`` characters after escaping, never inside an entity."""
    escaped = "".join(_ENTITIES.get(char, char) for char in text)
    if limit is None or len(escaped) <= limit:
        return escaped
    kept: list[str] = []
    size = 0
    for char in text:
        piece = _ENTITIES.get(char, char)
        if size + len(piece) > limit - 1:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + "…"


def run_message(
    run: Run, tasks: Sequence[TaskOutcome], url: str | None, *, details_in_thread: bool = False
) -> SlackMessage:
    """The run's one message, edited in place as the run moves on."""
    look = LOOKS[run.phase]
    name = escape(run.definition, 150)
    title = f"{look.emoji} *{f'<{url}|{name}>' if url else name}* {look.verb}"
    timing = (
        ("Duration", format_duration(run.duration_seconds) or "-")
        if run.phase.is_done
        else ("Started", _date(run.start_time) if run.start_time else "not yet")
    )
    fields = [
        (run.kind, f"`{escape(run.name)}`"),
        ("Namespace", f"`{escape(run.namespace)}`"),
        ("Status", escape(headline(run), 500)),
        timing,
    ]
    blocks: list[dict[str, Any]] = [
        _section(title),
        {"type": "section", "fields": [_mrkdwn(f"*{k}*\n{v}") for k, v in fields]},
    ]
    if run.condition and run.condition.message.strip():
        blocks.append(_section(escape(run.condition.message, TEXT_LIMIT)))
    if tasks:
        blocks.append(_section(_task_summary(tasks, details_in_thread)))
    footer = [f"<{url}|Open in the Tekton Dashboard>"] if url else []
    blocks.append({"type": "context", "elements": [_mrkdwn(" · ".join([*footer, "tekton-integrations"]))]})
    return SlackMessage(fallback_text(run), blocks, look.color)


def details_message(run: Run, tasks: Sequence[TaskOutcome]) -> SlackMessage:
    """The thread reply: every task that did not succeed, with its reason and message."""
    look = LOOKS[run.phase]
    shown = tasks[: MAX_BLOCKS - 2]
    blocks = [_section(f"*{len(tasks)} task{'s' if len(tasks) != 1 else ''} did not succeed*")]
    for task in shown:
        where = f" (`{escape(task.run_name, 300)}`)" if task.run_name else ""
        text = f"*{escape(task.task, 300)}*{where}: {escape(task.reason, 300)}"
        if task.message.strip():  # a fence inside the message would end the code block early
            text += "\n```" + escape(task.message.replace("```", "'''"), TASK_MESSAGE_LIMIT) + "```"
        blocks.append(_section(text))
    if len(tasks) > len(shown):
        blocks.append({"type": "context", "elements": [_mrkdwn(f"and {len(tasks) - len(shown)} more")]})
    names = ", ".join(task.task for task in tasks)
    text = f"{look.emoji} {run.kind} {run.namespace}/{run.name}: did not succeed: {names}"
    return SlackMessage(escape(text, TEXT_LIMIT), blocks, look.color)


def fallback_text(run: Run) -> str:
    """``:x: PipelineRun ci/build-and-test-run-q4m9z (build-and-test): Failed after 1m 0s``."""
    duration = format_duration(run.duration_seconds) if run.phase.is_done else None
    text = (
        f"{LOOKS[run.phase].emoji} {run.kind} {run.namespace}/{run.name} ({run.definition}): {headline(run)}"
    )
    return escape(text + (f" after {duration}" if duration else ""), TEXT_LIMIT)


def _task_summary(tasks: Sequence[TaskOutcome], details_in_thread: bool) -> str:
    if details_in_thread:
        names = ", ".join(f"*{escape(task.task, 100)}*" for task in tasks[:MAX_TASKS_IN_MESSAGE])
        more = f" and {len(tasks) - MAX_TASKS_IN_MESSAGE} more" if len(tasks) > MAX_TASKS_IN_MESSAGE else ""
        return f"Did not succeed: {names}{more}. Details in the thread."
    lines = ["*Did not succeed*"]
    budget = TEXT_LIMIT - 20  # room for the "and N more" line
    for task in tasks[:MAX_TASKS_IN_MESSAGE]:
        first = task.message.strip().splitlines()[0] if task.message.strip() else ""
        line = f"• *{escape(task.task, 100)}* ({escape(task.reason, 100)})" + (
            f": {escape(first, 200)}" if first else ""
        )
        budget -= len(line) + 1
        if budget < 0:
            break
        lines.append(line)
    if len(tasks) > len(lines) - 1:
        lines.append(f"and {len(tasks) - (len(lines) - 1)} more")
    return "\n".join(lines)


def _date(moment: datetime) -> str:
    """A time each reader sees in their own time zone, with a UTC fallback."""
    utc = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{utc}>"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}
