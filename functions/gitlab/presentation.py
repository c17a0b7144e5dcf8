"""What a run looks like as a GitLab commit status: its state, name and description.

Pure. GitLab refuses ``name``, ``description`` and ``target_url`` longer than 255 characters.
Timed-out runs are ``failed``, as GitLab reports its own job timeouts; cancelled runs are ``canceled``.
"""

from __future__ import annotations

from common import Run, RunPhase
from common.errors import clip
from common.summary import headline

FIELD_LIMIT = 255

STATE = {
    RunPhase.QUEUED: "pending",
    RunPhase.RUNNING: "running",
    RunPhase.SUCCEEDED: "success",
    RunPhase.FAILED: "failed",
    RunPhase.CANCELLED: "canceled",
    RunPhase.TIMED_OUT: "failed",
}
"""A commit status's state: a run's, and a rollup's (``functions.gitlab.rollup``)."""


def commit_state(run: Run) -> str:
    return STATE[run.phase]


def default_name(run: Run) -> str:
    """``tekton/<pipeline or task>``: stable across a run's events and distinct per pipeline, so
    one pipeline's success never replaces another's failure in the commit's pipeline status."""
    return clip(f"tekton/{run.definition}", FIELD_LIMIT)


def description(run: Run) -> str:
    message = run.condition.message if run.condition else ""
    return clip(headline(run) + (f" - {message}" if message else ""), FIELD_LIMIT)
