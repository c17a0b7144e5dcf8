"""What a run looks like in Slack: the run's message and the thread reply with failure details
and the last lines of the failed steps.

Pure. Each message is Block Kit inside one attachment, whose ``color`` draws the bar on the left,
with a plain-text ``text`` fallback for notifications and screen readers. An operator's template
(``common.templates``) replaces the run's facts: its text is the message's own blocks, above the
coloured attachment, which then keeps only the footer. Keeps within Slack's limits: 3000
characters per text object, 50 blocks per message.
Everything taken from the run is escaped for mrkdwn (``&``, ``<``, ``>``); a template's values are
escaped by ``common.templates``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from common import Run, RunPhase
from common.summary import TaskOutcome, format_duration, headline, one_line

if TYPE_CHECKING:  # step logs load with the first message that shows them
    from common.steplogs import StepLog

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
    """In the coloured attachment."""
    color: str
    body: list[dict[str, Any]] = field(default_factory=list)
    """The message's own blocks, above the attachment: a template's text."""

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``chat.postMessage``/``chat.update`` and incoming webhooks."""
        attachment = {"color": self.color, "fallback": self.text, "blocks": self.blocks[:MAX_BLOCKS]}
        kwargs: dict[str, Any] = {"text": self.text, "attachments": [attachment]}
        if self.body:
            kwargs["blocks"] = self.body[: MAX_BLOCKS - 1]
        return kwargs


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
    run: Run,
    tasks: Sequence[TaskOutcome],
    url: str | None,
    *,
    details_in_thread: bool = False,
    logs: Sequence[StepLog] = (),
    logs_in_thread: bool = False,
) -> SlackMessage:
    """The run's one message, edited in place as the run moves on. ``logs``: the failed steps'
    last lines, shown at its end unless ``logs_in_thread`` (then it says they are in the thread)."""
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
    if not logs_in_thread:
        blocks += log_sections(logs)
    blocks.append(_footer(url, logs_note=logs_in_thread and bool(logs)))
    return SlackMessage(fallback_text(run), blocks, look.color)


def templated_message(
    run: Run,
    text: str,
    url: str | None,
    *,
    details_in_thread: bool = False,
    logs: Sequence[StepLog] = (),
    logs_in_thread: bool = False,
) -> SlackMessage:
    """The run's message with an operator's template's ``text`` (mrkdwn, its values escaped) in
    sections of at most ``TEXT_LIMIT`` characters; the coloured attachment keeps the failed
    steps' logs (unless they are in the thread) and the footer."""
    look = LOOKS[run.phase]
    attachment = [] if logs_in_thread else log_sections(logs)
    if details_in_thread:
        attachment.append({"type": "context", "elements": [_mrkdwn("Failure details in the thread.")]})
    attachment.append(_footer(url, logs_note=logs_in_thread and bool(logs)))
    body = [_section(chunk) for chunk in chunks(text, TEXT_LIMIT)]
    return SlackMessage(fallback_text(run), attachment, look.color, body)


def thread_reply(run: Run, tasks: Sequence[TaskOutcome], logs: Sequence[StepLog]) -> SlackMessage:
    """The thread reply: the failure details of ``tasks`` (if any are given), then the failed
    steps' last lines (if any)."""
    look = LOOKS[run.phase]
    log_blocks = log_sections(logs)
    if not tasks:
        text = f"{look.emoji} {run.kind} {run.namespace}/{run.name}: the last lines of the failed steps"
        return SlackMessage(escape(text, TEXT_LIMIT), log_blocks, look.color)
    details = details_message(run, tasks, room=MAX_BLOCKS - len(log_blocks))
    return replace(details, blocks=details.blocks + log_blocks)


def log_sections(logs: Sequence[StepLog]) -> list[dict[str, Any]]:
    """One section per failed step: where it is, then its last lines in a code block; the oldest
    lines are left out to keep within ``TEXT_LIMIT`` (``common.steplogs.as_markdown``)."""
    from common.steplogs import as_markdown  # noqa: PLC0415 -- loaded with the first message

    shown = (as_markdown([_escaped_log(log)], TEXT_LIMIT) for log in logs)
    return [_section(text) for text in shown if text]


def chunks(text: str, limit: int) -> Iterator[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at line ends where a line fits,
    never inside an ``&...;`` entity."""
    pieces: list[str] = []
    piece = ""
    for whole in text.splitlines():
        line = whole
        while len(line) > limit:
            pieces += [piece, line[: _cut(line, limit)]]
            piece, line = "", line[len(pieces[-1]) :]
        joined = f"{piece}\n{line}" if piece else line
        if len(joined) > limit:
            pieces.append(piece)
            joined = line
        piece = joined
    yield from (piece for piece in [*pieces, piece] if piece.strip())


def _cut(line: str, limit: int) -> int:
    """Where to cut ``line`` at ``limit``: before an entity that the cut would split."""
    amp = line.rfind("&", max(0, limit - 5), limit)
    return amp if amp > 0 and ";" not in line[amp:limit] else limit


def _escaped_log(log: StepLog) -> StepLog:
    """``log`` shown literally in mrkdwn; a fence in a line would end the code block early."""
    return replace(
        log,
        task=escape(log.task),
        task_run=escape(log.task_run),
        step=escape(log.step),
        lines=tuple(escape(line.replace("```", "'''")) for line in log.lines),
        note=escape(log.note) if log.note else None,
    )


def _footer(url: str | None, *, logs_note: bool) -> dict[str, Any]:
    parts = [f"<{url}|Open in the Tekton Dashboard>"] if url else []
    if logs_note:
        parts.append("The failed steps' last lines are in the thread")
    return {"type": "context", "elements": [_mrkdwn(" · ".join([*parts, "tekton-integrations"]))]}


def details_message(run: Run, tasks: Sequence[TaskOutcome], *, room: int = MAX_BLOCKS) -> SlackMessage:
    """The thread reply: every task that did not succeed, with its reason and message, in at
    most ``room`` blocks."""
    look = LOOKS[run.phase]
    shown = tasks[: room - 2]
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
    return escape(one_line(run, LOOKS[run.phase].emoji), TEXT_LIMIT)


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
