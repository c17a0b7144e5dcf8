"""``send`` and ``resync`` build the event Tekton's events controller sends (tekton/README.md §1-2)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from common import samples
from common.cli.tekton_events import event_for_run, event_from_document, event_type, to_v1beta1
from common.events import RunKind, parse_event

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def with_condition(status: str | None, reason: str = "") -> dict[str, Any]:
    conditions = [] if status is None else [{"type": "Succeeded", "status": status, "reason": reason}]
    return {"metadata": {"name": "r", "namespace": "ci"}, "status": {"conditions": conditions}}


@pytest.mark.parametrize(
    ("kind", "status", "reason", "expected"),
    [
        ("PipelineRun", None, "", "dev.tekton.event.pipelinerun.queued.v1"),
        ("PipelineRun", "Unknown", "Started", "dev.tekton.event.pipelinerun.started.v1"),
        ("PipelineRun", "Unknown", "Running", "dev.tekton.event.pipelinerun.running.v1"),
        ("PipelineRun", "Unknown", "PipelineRunStopping", "dev.tekton.event.pipelinerun.unknown.v1"),
        ("PipelineRun", "True", "Succeeded", "dev.tekton.event.pipelinerun.successful.v1"),
        ("PipelineRun", "False", "Cancelled", "dev.tekton.event.pipelinerun.failed.v1"),
        ("TaskRun", None, "", "dev.tekton.event.taskrun.queued.v1"),
        ("TaskRun", "Unknown", "Pending", "dev.tekton.event.taskrun.unknown.v1"),
        ("TaskRun", "False", "TaskRunTimeout", "dev.tekton.event.taskrun.failed.v1"),
        ("CustomRun", None, "", "dev.tekton.event.customrun.started.v1"),
        ("CustomRun", "Unknown", "Pending", "dev.tekton.event.customrun.running.v1"),
        ("CustomRun", "True", "Succeeded", "dev.tekton.event.customrun.successful.v1"),
    ],
)
def test_the_type_follows_the_succeeded_condition_as_tekton_chooses_it(
    kind: RunKind, status: str | None, reason: str, expected: str
) -> None:
    assert event_type(kind, with_condition(status, reason)) == expected


@pytest.mark.parametrize("name", samples.names())
def test_every_samples_type_is_recomputed_identically(name: str) -> None:
    sample = samples.load(name)
    kind, obj = samples.run_object(sample)
    assert event_type(kind, obj) == sample["headers"]["ce-type"]


def test_a_v1_pipelinerun_becomes_the_v1beta1_body_tekton_sends() -> None:
    v1: dict[str, Any] = {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": "build-1", "namespace": "ci", "uid": "u-1"},
        "spec": {
            "pipelineRef": {"name": "build"},
            "taskRunTemplate": {"serviceAccountName": "builder", "podTemplate": {"nodeSelector": {"a": "b"}}},
            "taskRunSpecs": [{"pipelineTaskName": "t", "serviceAccountName": "sa", "podTemplate": {}}],
        },
        "status": {
            "conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}],
            "results": [{"name": "digest", "value": "sha256:1"}],
        },
    }
    event = event_for_run("PipelineRun", v1, NOW, event_id="e-1")
    body = event.data["pipelineRun"]
    assert "apiVersion" not in body
    assert "kind" not in body
    assert body["status"]["pipelineResults"] == [{"name": "digest", "value": "sha256:1"}]
    assert "results" not in body["status"]
    assert body["spec"]["serviceAccountName"] == "builder"
    assert body["spec"]["podTemplate"] == {"nodeSelector": {"a": "b"}}
    assert "taskRunTemplate" not in body["spec"]
    assert body["spec"]["taskRunSpecs"] == [
        {"pipelineTaskName": "t", "taskServiceAccountName": "sa", "taskPodTemplate": {}}
    ]
    assert dict(event.headers) == {
        "ce-specversion": "1.0",
        "ce-type": "dev.tekton.event.pipelinerun.successful.v1",
        "ce-source": "/apis///namespaces/ci//build-1",
        "ce-subject": "build-1",
        "ce-id": "e-1",
        "ce-time": "2026-03-14T09:30:00.000000Z",
        "content-type": "application/json",
    }
    assert v1["status"]["results"], "the input is not modified"


def test_a_v1_taskrun_gets_task_results_and_old_override_names() -> None:
    v1 = {
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": {"name": "t", "namespace": "ci", "uid": "u"},
        "spec": {"stepSpecs": [{"name": "s"}], "sidecarSpecs": []},
        "status": {"results": [{"name": "r", "value": "1"}], "podName": "p"},
    }
    body = to_v1beta1("TaskRun", v1)
    assert body["status"]["taskResults"] == [{"name": "r", "value": "1"}]
    assert body["spec"] == {"stepOverrides": [{"name": "s"}], "sidecarOverrides": []}


def test_the_event_parses_as_the_runtime_parses_tektons() -> None:
    sample = samples.load("pipelinerun-successful")
    _, obj = samples.run_object(sample)
    event = event_from_document(sample, NOW)
    parsed = parse_event(event)
    assert parsed.type == sample["headers"]["ce-type"]
    assert parsed.run.uid == obj["metadata"]["uid"]
    assert parsed.run.results == parse_event(_Sample(sample)).run.results
    assert event.headers["ce-id"] != sample["headers"]["ce-id"], "a resend has a fresh id"


class _Sample:
    def __init__(self, sample: dict[str, Any]) -> None:
        self.sample = sample

    def get_attributes(self) -> dict[str, Any]:
        headers: dict[str, str] = self.sample["headers"]
        return {k.removeprefix("ce-"): v for k, v in headers.items()}

    def get_data(self) -> Any:
        return self.sample["data"]


@pytest.mark.parametrize(
    "document",
    [
        lambda s: s,  # a saved event
        lambda s: s["data"],  # its body
        lambda s: {"apiVersion": "tekton.dev/v1beta1", "kind": "PipelineRun", **s["data"]["pipelineRun"]},
    ],
    ids=["event", "body", "run-object"],
)
def test_files_may_hold_an_event_a_body_or_a_run(document: Any) -> None:
    sample = samples.load("pipelinerun-failed")
    event = event_from_document(document(sample), NOW)
    assert event.type == "dev.tekton.event.pipelinerun.failed.v1"
    assert event.data["pipelineRun"]["metadata"]["name"] == "build-and-test-run-q4m9z"


@pytest.mark.parametrize("document", [[], {"foo": 1}, {"kind": "Deployment", "metadata": {}}])
def test_other_documents_are_refused_with_what_was_expected(document: Any) -> None:
    with pytest.raises(ValueError, match="expected"):
        event_from_document(document, NOW)
