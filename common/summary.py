"""Words and facts about a run that several integrations show: headline, duration, failed tasks.

Pure: child TaskRuns are passed in (``Context.child_runs()`` reads them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from common.events import Run, RunPhase

HEADLINES = {
    RunPhase.QUEUED: "Queued",
    RunPhase.RUNNING: "Running",
    RunPhase.SUCCEEDED: "Succeeded",
    RunPhase.FAILED: "Failed",
    RunPhase.CANCELLED: "Cancelled",
    RunPhase.TIMED_OUT: "Timed out",
}
SYMBOLS = {
    RunPhase.QUEUED: "⏳",
    RunPhase.RUNNING: "🔄",
    RunPhase.SUCCEEDED: "✅",
    RunPhase.FAILED: "❌",
    RunPhase.CANCELLED: "🚫",
    RunPhase.TIMED_OUT: "⏰",
}
"""The symbol of each phase wherever runs or tasks are listed (the chat cards use the same)."""
SKIPPED_SYMBOL = "⏭️"
"""A task the run skipped (its when expressions, or a failure before it)."""
_PLAIN_REASONS = frozenset({"Succeeded", "Running", "Started", "Failed", "Cancelled"})


def headline(run: Run) -> str:
    """``Failed: StepFailed``, ``Succeeded``: the phase, with the reason when it says more."""
    text = HEADLINES[run.phase]
    reason = run.condition.reason if run.condition else ""
    if run.phase.is_done and reason and reason not in _PLAIN_REASONS:
        text += f": {reason}"
    return text


def one_line(run: Run, symbol: str) -> str:
    """``❌ PipelineRun ci/build-and-test-run-q4m9z (build-and-test): Failed after 1m 0s``: the run
    in one line after ``symbol`` (the phase's emoji as the service writes it), unescaped and uncut."""
    text = f"{symbol} {run.kind} {run.namespace}/{run.name} ({run.definition}): {headline(run)}"
    duration = format_duration(run.duration_seconds) if run.phase.is_done else None
    return text + (f" after {duration}" if duration else "")


def format_duration(seconds: float | None) -> str | None:
    """``1h 2m``, ``3m 45s``, ``12s``; ``None`` while the run has no end."""
    if seconds is None:
        return None
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


@dataclass(frozen=True)
class TaskOutcome:
    """A pipeline task that did not succeed: failed (with reason and message) or skipped."""

    task: str
    run_name: str | None
    reason: str
    message: str


def child_references(run: Run) -> list[tuple[str, str]]:
    """(pipeline task, TaskRun name) for each child TaskRun the run lists."""
    status = run.raw.get("status") or {}
    refs = [
        (str(ref.get("pipelineTaskName") or ref["name"]), str(ref["name"]))
        for ref in status.get("childReferences") or []
        if isinstance(ref, Mapping) and ref.get("kind", "TaskRun") == "TaskRun" and ref.get("name")
    ]
    legacy = status.get("taskRuns")  # embedded statuses of older v1beta1 runs
    if isinstance(legacy, Mapping):
        refs += [
            (str(entry.get("pipelineTaskName") or name), str(name))
            for name, entry in legacy.items()
            if isinstance(entry, Mapping)
        ]
    return refs


def unsuccessful_tasks(run: Run, children: Iterable[Run]) -> list[TaskOutcome]:
    """Failed child TaskRuns with their reasons, then tasks the run skipped, with why."""
    task_of = {name: task for task, name in child_references(run)}
    outcomes = [
        TaskOutcome(
            task=task_of.get(child.name, child.labels.get("tekton.dev/pipelineTask", child.name)),
            run_name=child.name,
            reason=child.condition.reason,
            message=child.condition.message,
        )
        for child in children
        if child.condition is not None and child.condition.status == "False"
    ]
    status: Mapping[str, Any] = run.raw.get("status") or {}
    outcomes += [
        TaskOutcome(
            task=str(item["name"]), run_name=None, reason="Skipped", message=str(item.get("reason", ""))
        )
        for item in status.get("skippedTasks") or []
        if isinstance(item, Mapping) and item.get("name")
    ]
    return outcomes
