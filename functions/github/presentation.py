"""What a run looks like on GitHub: check-run status/conclusion/output and commit-status fields.

Pure. Keeps within GitHub's limits: status description 140 characters, check output title
255, summary and text 65535 each. The summary's task table lists each task of a finished
PipelineRun (status, duration, a link to its TaskRun on the Dashboard when there is one); a
long table is collapsed in a ``<details>`` block under a line naming the failed tasks, and rows
that would not fit are counted instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common import Run, RunPhase
from common.errors import clip
from common.summary import HEADLINES, SKIPPED_SYMBOL, SYMBOLS, child_references, format_duration, headline

DESCRIPTION_LIMIT = 140
TITLE_LIMIT = 255
OUTPUT_LIMIT = 65535
OPEN_TASKS = 10
"""Tasks listed openly; a longer table is collapsed (``<details>``)."""
MAX_TASKS = 300
"""Rows in the task table; more are counted, not listed."""
MAX_CELL = 200

CONCLUSION = {
    RunPhase.SUCCEEDED: "success",
    RunPhase.FAILED: "failure",
    RunPhase.CANCELLED: "cancelled",
    RunPhase.TIMED_OUT: "timed_out",
}
"""A finished check run's conclusion: a run's, and a rollup's (``functions.github.rollup``)."""
COMMIT_STATE = {
    RunPhase.QUEUED: "pending",
    RunPhase.RUNNING: "pending",
    RunPhase.SUCCEEDED: "success",
    RunPhase.FAILED: "failure",
    RunPhase.CANCELLED: "error",
    RunPhase.TIMED_OUT: "error",
}
"""A commit status's state: a run's, and a rollup's in ``mode: status``."""


def default_context(run: Run) -> str:
    """``tekton/<pipeline or task>``: stable across a run's events and distinct per pipeline."""
    return f"tekton/{run.definition}"


@dataclass(frozen=True)
class CheckRunFields:
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None
    title: str
    summary: str
    text: str

    def as_json(self) -> dict[str, Any]:
        """The fields of GitHub's create and update check run requests (times in UTC, ``Z``)."""
        fields: dict[str, Any] = {
            "status": self.status,
            "output": {"title": self.title, "summary": self.summary, "text": self.text},
        }
        if self.started_at:
            fields["started_at"] = timestamp(self.started_at)
        if self.conclusion:
            fields["conclusion"] = self.conclusion
            fields["completed_at"] = timestamp(self.completed_at)
        return fields


@dataclass(frozen=True)
class TaskRow:
    """One task of a PipelineRun as its check run lists it."""

    task: str
    state: str
    """``Succeeded``, ``Failed``, ``Skipped``... (``common.summary.HEADLINES``, or ``Skipped``)."""
    status: str
    """The state with its reason when that says more: ``Failed: StepFailed``."""
    duration: str | None
    link: str | None

    @property
    def failed(self) -> bool:
        return self.state in (HEADLINES[RunPhase.FAILED], HEADLINES[RunPhase.TIMED_OUT])


SKIPPED = "Skipped"
_ICONS = {HEADLINES[phase]: symbol for phase, symbol in SYMBOLS.items()} | {SKIPPED: SKIPPED_SYMBOL}


def task_rows(run: Run, children: Iterable[Run], link: Callable[[Run], str | None]) -> list[TaskRow]:
    """The run's tasks in the order it lists them: each child TaskRun (``link`` gives its
    address, if any), then the tasks it skipped, with why."""
    references = child_references(run)
    order = {name: index for index, (_, name) in enumerate(references)}
    task_of = {name: task for task, name in references}
    rows = [
        TaskRow(
            task=task_of.get(child.name, child.labels.get("tekton.dev/pipelineTask", child.name)),
            state=HEADLINES[child.phase],
            status=headline(child),
            duration=format_duration(child.duration_seconds),
            link=link(child),
        )
        for child in sorted(children, key=lambda child: order.get(child.name, len(order)))
    ]
    status: Mapping[str, Any] = run.raw.get("status") or {}
    for skipped in status.get("skippedTasks") or []:
        if isinstance(skipped, Mapping) and skipped.get("name"):
            why = str(skipped.get("reason") or "")
            rows.append(
                TaskRow(str(skipped["name"]), SKIPPED, SKIPPED + (f": {why}" if why else ""), None, None)
            )
    return rows


def default_summary(run: Run, tasks: Sequence[TaskRow]) -> str:
    """The check run's default summary: the outcome, the run's message and the task table."""
    duration = run.duration_seconds
    lines = [
        f"{run.kind} `{run.namespace}/{run.name}` ({run.definition}): **{headline(run)}**"
        + (f" after {format_duration(duration)}" if duration is not None else "")
    ]
    if run.condition and run.condition.message:
        lines += ["", run.condition.message]
    head = "\n".join(lines)
    if not tasks:
        return clip(head, OUTPUT_LIMIT)
    head = clip(head, OUTPUT_LIMIT // 4)
    return head + "\n\n" + task_table(tasks, OUTPUT_LIMIT - len(head) - 2)


def task_table(tasks: Sequence[TaskRow], limit: int) -> str:
    """A Markdown table of ``tasks`` within ``limit`` characters, collapsed when long."""
    collapsed = len(tasks) > OPEN_TASKS
    failed = [task.task for task in tasks if task.failed]
    before = ""
    if collapsed and failed:
        before = clip("**Failed:** " + ", ".join(_code(name) for name in failed), MAX_CELL * 5) + "\n\n"
    if collapsed:
        states = [task.state for task in tasks]
        counts = ", ".join(f"{states.count(state)} {state.lower()}" for state in dict.fromkeys(states))
        before += f"<details><summary>{len(tasks)} tasks ({counts})</summary>\n\n"
    after = "\n\n</details>" if collapsed else ""
    lines = ["| Task | Status | Duration |", "| --- | --- | --- |"]
    budget = limit - len(before) - len(after) - sum(len(line) + 1 for line in lines) - 40
    for index, task in enumerate(tasks[:MAX_TASKS]):
        name = _code(task.task)
        linked = f"[{name}]({task.link})" if task.link else name
        row = f"| {linked} | {_ICONS[task.state]} {_cell(task.status)} | {task.duration or '-'} |"
        if len(row) + 1 > budget:
            lines.append(f"| … | {len(tasks) - index} more | |")
            break
        budget -= len(row) + 1
        lines.append(row)
    else:
        if len(tasks) > MAX_TASKS:
            lines.append(f"| … | {len(tasks) - MAX_TASKS} more | |")
    return before + "\n".join(lines) + after


def check_run_fields(run: Run, now: datetime, *, summary: str, text: str) -> CheckRunFields:
    phase = run.phase
    status = {RunPhase.QUEUED: "queued", RunPhase.RUNNING: "in_progress"}.get(phase, "completed")
    started = run.start_time
    completed = (run.completion_time or now) if phase.is_done else None
    if phase.is_done and started is None:
        started = completed  # failed before it started: GitHub still wants an interval
    return CheckRunFields(
        status=status,
        conclusion=CONCLUSION.get(phase),
        started_at=started,
        completed_at=completed,
        title=clip(headline(run), TITLE_LIMIT),
        summary=clip(summary, OUTPUT_LIMIT),
        text=clip(text, OUTPUT_LIMIT),
    )


def commit_state(run: Run) -> str:
    return COMMIT_STATE[run.phase]


def commit_description(run: Run) -> str:
    message = run.condition.message if run.condition else ""
    text = headline(run) + (f" - {message}" if message else "")
    return clip(text, DESCRIPTION_LIMIT)


def details(run: Run, logs: Callable[[int], str] | None = None) -> str:
    """The check run's text: the run's facts, then what ``logs`` writes within the room left
    (the failed steps' last lines)."""
    condition = run.condition
    rows = [
        "| | |",
        "|---|---|",
        f"| {run.kind} | `{run.namespace}/{run.name}` |",
        f"| Status | {condition.status if condition else 'queued'} |",
        f"| Reason | {(condition.reason if condition else '') or '-'} |",
    ]
    for name, value in run.results.items():
        rows.append(f"| Result `{name}` | `{clip(str(value), 200)}` |")
    facts = clip("\n".join(rows), OUTPUT_LIMIT // 4)
    shown = logs(OUTPUT_LIMIT - len(facts) - 2) if logs is not None else ""
    return facts + (f"\n\n{shown}" if shown else "")


def _code(name: str) -> str:
    return f"`{clip(name.replace('`', ''), MAX_CELL)}`"


def _cell(text: str) -> str:
    """Text in a table cell: one line, no column breaks, bounded."""
    return clip(" ".join(text.split()), MAX_CELL).replace("|", "\\|")


def timestamp(moment: datetime | None) -> str | None:
    """A check run's time as GitHub writes it: UTC, whole seconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None
