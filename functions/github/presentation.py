"""What a run looks like on GitHub: check-run status/conclusion/output and commit-status fields.

Pure. Keeps within GitHub's limits: status description 140 characters, check output title
255, summary and text 65535 each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common import Run, RunPhase
from common.errors import clip
from common.summary import format_duration, headline

DESCRIPTION_LIMIT = 140
TITLE_LIMIT = 255
OUTPUT_LIMIT = 65535

_CONCLUSION = {
    RunPhase.SUCCEEDED: "success",
    RunPhase.FAILED: "failure",
    RunPhase.CANCELLED: "cancelled",
    RunPhase.TIMED_OUT: "timed_out",
}
_COMMIT_STATE = {
    RunPhase.QUEUED: "pending",
    RunPhase.RUNNING: "pending",
    RunPhase.SUCCEEDED: "success",
    RunPhase.FAILED: "failure",
    RunPhase.CANCELLED: "error",
    RunPhase.TIMED_OUT: "error",
}


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

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for PyGithub's ``create_check_run``/``CheckRun.edit``."""
        fields: dict[str, Any] = {
            "status": self.status,
            "output": {"title": self.title, "summary": self.summary, "text": self.text},
        }
        if self.started_at:
            fields["started_at"] = self.started_at
        if self.conclusion:
            fields["conclusion"] = self.conclusion
            fields["completed_at"] = self.completed_at
        return fields


def check_run_fields(run: Run, now: datetime) -> CheckRunFields:
    phase = run.phase
    status = {RunPhase.QUEUED: "queued", RunPhase.RUNNING: "in_progress"}.get(phase, "completed")
    started = run.start_time
    completed = (run.completion_time or now) if phase.is_done else None
    if phase.is_done and started is None:
        started = completed  # failed before it started: GitHub still wants an interval
    return CheckRunFields(
        status=status,
        conclusion=_CONCLUSION.get(phase),
        started_at=started,
        completed_at=completed,
        title=clip(headline(run), TITLE_LIMIT),
        summary=clip(_summary(run), OUTPUT_LIMIT),
        text=clip(_details(run), OUTPUT_LIMIT),
    )


def commit_state(run: Run) -> str:
    return _COMMIT_STATE[run.phase]


def commit_description(run: Run) -> str:
    message = run.condition.message if run.condition else ""
    text = headline(run) + (f" - {message}" if message else "")
    return clip(text, DESCRIPTION_LIMIT)


def _summary(run: Run) -> str:
    duration = run.duration_seconds
    lines = [
        f"{run.kind} `{run.namespace}/{run.name}` ({run.definition}): **{headline(run)}**"
        + (f" after {format_duration(duration)}" if duration is not None else "")
    ]
    if run.condition and run.condition.message:
        lines += ["", run.condition.message]
    return "\n".join(lines)


def _details(run: Run) -> str:
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
    return "\n".join(rows)
