"""Parsing Tekton CloudEvents and run objects into the typed view every integration uses."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from hypothesis import given
from hypothesis import strategies as st

from common import samples
from common.errors import MalformedEventError
from common.events import RunPhase, parse_event, parse_run


def as_cloud_event(sample: dict[str, Any]) -> CloudEvent:
    headers = sample["headers"]
    attributes = {key.removeprefix("ce-"): value for key, value in headers.items() if key.startswith("ce-")}
    return CloudEvent(attributes, sample["data"])


@pytest.mark.parametrize("name", samples.names())
def test_every_sample_parses_into_a_run_view(name: str) -> None:
    sample = samples.load(name)
    event = parse_event(as_cloud_event(sample))
    _, obj = samples.run_object(sample)
    metadata = obj["metadata"]
    assert (event.run.namespace, event.run.name, event.run.uid) == (
        metadata["namespace"],
        metadata["name"],
        metadata["uid"],
    )
    assert event.run.generation == metadata["generation"]
    assert event.run.resource_version == metadata["resourceVersion"]
    assert event.type == sample["headers"]["ce-type"]


def test_phases_follow_the_succeeded_condition_not_the_event_type() -> None:
    def phase(name: str) -> RunPhase:
        return parse_event(as_cloud_event(samples.load(name))).run.phase

    assert phase("pipelinerun-queued") is RunPhase.QUEUED
    assert phase("pipelinerun-started") is RunPhase.RUNNING
    assert phase("taskrun-unknown-pending") is RunPhase.RUNNING
    assert phase("pipelinerun-successful") is RunPhase.SUCCEEDED
    assert phase("pipelinerun-failed") is RunPhase.FAILED
    assert phase("pipelinerun-failed-before-start") is RunPhase.FAILED
    assert phase("pipelinerun-cancelled") is RunPhase.CANCELLED


@pytest.mark.parametrize("reason", ["PipelineRunTimeout", "TaskRunTimeout"])
def test_timeouts_are_told_apart_from_failures(reason: str) -> None:
    sample = samples.load("pipelinerun-failed")
    sample["data"]["pipelineRun"]["status"]["conditions"][0]["reason"] = reason
    assert parse_event(as_cloud_event(sample)).run.phase is RunPhase.TIMED_OUT


def test_child_taskruns_know_their_pipelinerun() -> None:
    child = parse_event(as_cloud_event(samples.load("taskrun-running"))).run
    parent = parse_event(as_cloud_event(samples.load("pipelinerun-running"))).run
    assert child.parent_pipelinerun == "build-and-test-run-x7k2p"
    assert parent.parent_pipelinerun is None


def test_failed_before_start_keeps_reason_and_times() -> None:
    run = parse_event(as_cloud_event(samples.load("pipelinerun-failed-before-start"))).run
    assert run.condition is not None
    assert run.condition.reason == "CouldntGetPipeline"
    assert run.start_time is not None
    assert run.completion_time is not None


def test_v1_objects_read_from_kubernetes_give_the_same_view() -> None:
    _, v1beta1 = samples.run_object(samples.load("pipelinerun-successful"))
    v1 = copy.deepcopy(v1beta1)
    v1["apiVersion"] = "tekton.dev/v1"
    v1["status"]["results"] = v1["status"].pop("pipelineResults")
    a, b = parse_run("PipelineRun", v1beta1), parse_run("PipelineRun", v1)
    assert a == b
    assert a.results == b.results
    assert a.results


def test_customrun_events_parse() -> None:
    sample = samples.load("taskrun-running")
    sample["headers"]["ce-type"] = "dev.tekton.event.customrun.running.v1"
    sample["data"] = {"customRun": sample["data"]["taskRun"]}
    assert parse_event(as_cloud_event(sample)).run.kind == "CustomRun"


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        (lambda s: s["headers"].update({"ce-type": "com.example.push"}), "not a Tekton run event"),
        (lambda s: s.update(data={"taskRun": {}}), "'pipelineRun' object"),
        (lambda s: s["data"]["pipelineRun"]["metadata"].pop("uid"), "lacks uid"),
        (lambda s: s["data"]["pipelineRun"]["metadata"].update(generation="1"), "generation"),
        (lambda s: s["data"]["pipelineRun"]["metadata"].update(annotations={"a": 1}), "annotations"),
        (
            lambda s: s["data"]["pipelineRun"]["status"]["conditions"][0].update(status="Maybe"),
            "True, False or Unknown",
        ),
        (lambda s: s["data"]["pipelineRun"]["status"].update(startTime="yesterday"), "startTime"),
        (lambda s: s.update(data="not json"), "not JSON"),
    ],
)
def test_malformed_events_say_what_is_wrong(edit: Any, complaint: str) -> None:
    sample = samples.load("pipelinerun-running")
    edit(sample)
    with pytest.raises(MalformedEventError, match=complaint):
        parse_event(as_cloud_event(sample))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
METADATA_KEYS = ["namespace", "name", "uid", "generation", "resourceVersion", "labels", "annotations"]
STATUS_KEYS = ["conditions", "startTime", "completionTime", "results", "pipelineResults"]


@given(
    kind=st.sampled_from(["pipelinerun", "taskrun", "customrun", "run", ""]),
    phase=st.sampled_from(["queued", "started", "running", "unknown", "successful", "failed", "done"]),
    metadata=st.dictionaries(st.sampled_from(METADATA_KEYS), json_values, max_size=7),
    status=st.dictionaries(st.sampled_from(STATUS_KEYS), json_values, max_size=5) | json_values,
    wrap=st.booleans(),
)
def test_any_event_parses_or_is_refused_with_a_reason(
    kind: str, phase: str, metadata: dict[str, Any], status: Any, wrap: bool
) -> None:
    body_key = {"pipelinerun": "pipelineRun", "taskrun": "taskRun", "customrun": "customRun"}.get(kind, kind)
    obj = {"metadata": metadata, "status": status}
    event = CloudEvent(
        {"type": f"dev.tekton.event.{kind}.{phase}.v1", "source": "/x", "id": "1"},
        {body_key: obj} if wrap else obj,
    )
    try:
        parsed = parse_event(event)
    except MalformedEventError as e:
        reason = str(e)
    else:
        reason = ""
    if reason:
        return
    assert parsed.run.namespace == metadata["namespace"]
    assert parsed.run.uid == metadata["uid"]
    assert parsed.run.phase in RunPhase
