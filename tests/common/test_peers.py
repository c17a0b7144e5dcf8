"""The runs that share a report: which were skipped, and their joint state."""

from __future__ import annotations

from typing import Any

import pytest

from common import RunPhase, samples
from common.events import Run, parse_run
from common.peers import Aggregate, Peer, was_skipped


def run(sample: str, **status: Any) -> Run:
    kind, obj = samples.run_object(samples.load(sample))
    for key, value in status.items():
        if value is None:
            obj["status"].pop(key, None)
        else:
            obj["status"][key] = value
    return parse_run(kind, obj)


@pytest.mark.parametrize(
    ("case", "skipped"),
    [
        (run("pipelinerun-cancelled", childReferences=None), True),  # cancelled before a task started
        (run("pipelinerun-cancelled"), False),  # cancelled while its tasks ran
        (run("pipelinerun-successful", childReferences=None, skippedTasks=[{"name": "deploy"}]), True),
        (run("pipelinerun-successful"), False),
        (run("pipelinerun-failed-before-start"), False),  # it never ran, but it failed: not a skip
        (
            run(
                "taskrun-failed",
                podName=None,
                conditions=[{"type": "Succeeded", "status": "False", "reason": "TaskRunCancelled"}],
            ),
            True,
        ),
        (
            run(
                "taskrun-failed",
                conditions=[{"type": "Succeeded", "status": "False", "reason": "TaskRunCancelled"}],
            ),
            False,
        ),
        (run("pipelinerun-running", childReferences=None), False),  # not finished
    ],
    ids=[
        "cancelled-before-any-task",
        "cancelled-while-running",
        "every-task-skipped",
        "succeeded",
        "failed-before-start",
        "taskrun-cancelled-before-its-pod",
        "taskrun-cancelled-with-a-pod",
        "running",
    ],
)
def test_what_counts_as_skipped(case: Run, skipped: bool) -> None:
    assert was_skipped(case) is skipped


@pytest.mark.parametrize(
    ("phases", "joint"),
    [
        (["queued", "queued"], RunPhase.QUEUED),
        (["queued", "succeeded"], RunPhase.RUNNING),
        (["failed", "running"], RunPhase.RUNNING),
        (["succeeded", "timed-out", "cancelled"], RunPhase.FAILED),
        (["succeeded", "cancelled"], RunPhase.CANCELLED),
        (["succeeded", "succeeded"], RunPhase.SUCCEEDED),
    ],
)
def test_the_joint_state_waits_for_every_run_then_the_worst_wins(phases: list[str], joint: RunPhase) -> None:
    sample = {
        "queued": run("pipelinerun-queued"),
        "running": run("pipelinerun-running"),
        "succeeded": run("pipelinerun-successful"),
        "failed": run("pipelinerun-failed"),
        "cancelled": run("pipelinerun-cancelled"),
        "timed-out": run(
            "pipelinerun-failed",
            conditions=[{"type": "Succeeded", "status": "False", "reason": "PipelineRunTimeout"}],
        ),
    }
    assert Aggregate.of([Peer(sample[phase], {}) for phase in phases]).phase is joint


def test_a_skipped_run_counts_as_a_success_only_when_it_asks() -> None:
    skipped = run("pipelinerun-cancelled", childReferences=None)
    assert Peer(skipped, {"rollup-skipped": "success"}).counted_as is RunPhase.SUCCEEDED
    assert Peer(skipped, {}).counted_as is RunPhase.CANCELLED
    ran = run("pipelinerun-cancelled")
    assert Peer(ran, {"rollup-skipped": "success"}).counted_as is RunPhase.CANCELLED
