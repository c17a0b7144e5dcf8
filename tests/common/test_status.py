"""IntegrationStatus records: the TEP shape, bookkeeping, and what is kept small."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from common import samples
from common.events import Run, parse_run
from common.status import IntegrationStatus, new_record


def run(name: str = "pipelinerun-running") -> Run:
    kind, obj = samples.run_object(samples.load(name))
    return parse_run(kind, obj)


T0 = datetime(2026, 3, 14, 9, 21, tzinfo=UTC)


def test_a_record_round_trips_through_its_annotation_in_the_teps_shape() -> None:
    record = new_record(
        "github", run(), "True", "Reported", "ok", previous=None, annotations={"check-run-id": "7"}, now=T0
    )
    stored = json.loads(record.to_json())
    assert stored["name"] == "github.integrations.tekton.dev"
    assert stored["observedGeneration"] == 1
    assert stored["conditions"] == [
        {
            "type": "Succeeded",
            "status": "True",
            "reason": "Reported",
            "message": "ok",
            "lastTransitionTime": "2026-03-14T09:21:00Z",
        }
    ]
    assert stored["annotations"] == {"check-run-id": "7"}
    assert IntegrationStatus.from_json(record.to_json()) == record
    assert set(record.tep_view()) == {"name", "observedGeneration", "conditions", "annotations"}


def test_transition_time_moves_only_when_the_condition_status_changes() -> None:
    first = new_record("x", run(), "Unknown", "Down", "", previous=None, now=T0)
    again = new_record("x", run(), "Unknown", "StillDown", "", previous=first, now=T0 + timedelta(minutes=1))
    done = new_record("x", run(), "True", "Reported", "", previous=again, now=T0 + timedelta(minutes=2))
    assert again.condition.last_transition_time == first.condition.last_transition_time
    assert done.condition.last_transition_time == "2026-03-14T09:23:00Z"
    assert (first.attempts, again.attempts, done.attempts) == (1, 2, 3)


def test_ids_carry_over_and_attempts_restart_for_a_new_run_state() -> None:
    running = new_record("x", run(), "True", "Reported", "", previous=None, annotations={"ts": "1.2"}, now=T0)
    finished = new_record(
        "x", run("pipelinerun-successful"), "True", "Reported", "", previous=running, now=T0
    )
    assert finished.annotations == {"ts": "1.2"}
    assert finished.attempts == 1
    assert finished.run_state.is_done


def test_messages_are_truncated_so_runs_stay_small() -> None:
    record = new_record("x", run(), "False", "Rejected", "e" * 100_000, previous=None, now=T0)
    assert len(record.to_json()) < 1024


def test_an_unreadable_record_counts_as_absent() -> None:
    assert IntegrationStatus.from_json("{not json") is None
    assert IntegrationStatus.from_json('{"name": "x"}') is None
