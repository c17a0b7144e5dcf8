"""The runtime's decisions, with a tiny integration and the in-memory API server."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common import (
    Context,
    Idempotency,
    Integration,
    IntegrationConfig,
    PermanentError,
    Report,
    TargetsNothing,
    TemporaryError,
    samples,
)
from common.errors import ConflictError, KubernetesUnavailableError
from common.events import RunEvent, parse_run
from common.runclient import MemoryRunClient, RunRef
from common.runtime import Processor
from common.settings import RuntimeSettings
from common.status import IntegrationStatus, new_record
from common.store import StatusStore
from tests.conftest import add_run, advance


class EchoConfig(IntegrationConfig):
    target: str


class Recorder:
    """An integration's service: counts calls and can be told to fail."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail_with: Exception | None = None
        self.lock = threading.Lock()

    def report(self, ctx: Context[EchoConfig, Any]) -> Report:
        with self.lock:
            self.calls.append(ctx.run.phase.value)
        if self.fail_with is not None:
            raise self.fail_with
        return Report(f"told {ctx.config.target}", {"message-id": str(len(self.calls))})


@pytest.fixture
def service() -> Recorder:
    return Recorder()


def with_echo(sample: dict[str, Any], target: str = "x") -> dict[str, Any]:
    _, obj = samples.run_object(sample)
    obj["metadata"].setdefault("annotations", {})["echo.integrations.tekton.dev/target"] = target
    return sample


def event(sample: dict[str, Any]) -> RunEvent:
    kind, obj = samples.run_object(sample)
    return RunEvent(id="e", type=sample["headers"]["ce-type"], phase="", run=parse_run(kind, obj))


def processor(
    kube: MemoryRunClient, service: Recorder, *, claim: bool = False, **kwargs: Any
) -> Processor[EchoConfig, Any]:
    integration = Integration(
        declared_in=__file__,
        name="echo",
        config=EchoConfig,
        report=service.report,
        policy=TargetsNothing(),
        idempotency=Idempotency("a message id", claim=lambda ctx: claim),
        **kwargs,
    )
    return Processor(integration, kube, RuntimeSettings())


def stored(kube: MemoryRunClient, ref: RunRef) -> IntegrationStatus:
    record = StatusStore(kube, "echo").read(parse_run(ref.kind, kube.runs[ref]))
    assert record is not None
    return record


def test_acts_on_the_live_state_not_the_events(kube: MemoryRunClient, service: Recorder) -> None:
    running = with_echo(samples.load("pipelinerun-running"))
    ref = add_run(kube, running)
    advance(kube, ref, samples.load("pipelinerun-successful"))
    outcome = processor(kube, service).process(event(running))
    assert outcome.kind == "reported"
    assert service.calls == ["succeeded"]
    assert stored(kube, ref).run_state.status == "True"


def test_one_get_and_one_patch_per_event_and_only_a_get_for_a_duplicate(
    kube: MemoryRunClient, service: Recorder
) -> None:
    running = with_echo(samples.load("pipelinerun-running"))
    add_run(kube, running)
    kube.calls.clear()
    p = processor(kube, service)
    p.process(event(running))
    assert [verb for verb, _ in kube.calls] == ["get", "patch", "patch_status"]
    kube.calls.clear()
    p.process(event(running))
    p.process(event(running))
    assert [verb for verb, _ in kube.calls] == ["get", "get"]
    assert service.calls == ["running"]


def test_status_integrations_is_tried_once_then_not_where_pruned(
    kube: MemoryRunClient, service: Recorder
) -> None:
    p = processor(kube, service)
    running, successful = (
        with_echo(samples.load("pipelinerun-running")),
        with_echo(samples.load("pipelinerun-successful")),
    )
    ref = add_run(kube, running)
    p.process(event(running))
    advance(kube, ref, successful)
    p.process(event(successful))
    assert service.calls == ["running", "succeeded"]
    assert [verb for verb, _ in kube.calls].count("patch_status") == 1
    assert "integrations" not in kube.runs[ref]["status"]


def test_status_integrations_is_written_where_the_schema_keeps_it(service: Recorder) -> None:
    kube = MemoryRunClient(keeps_status_integrations=True)
    running = with_echo(samples.load("pipelinerun-running"))
    ref = add_run(kube, running)
    kube.runs[ref]["status"]["integrations"] = [{"name": "other.integrations.tekton.dev"}]
    processor(kube, service).process(event(running))
    entries = kube.runs[ref]["status"]["integrations"]
    assert [e["name"] for e in entries] == ["other.integrations.tekton.dev", "echo.integrations.tekton.dev"]
    assert entries[1]["conditions"][0]["status"] == "True"
    assert set(entries[1]) == {"name", "observedGeneration", "conditions", "annotations"}


def test_a_conflict_after_the_side_effect_rewrites_the_record_without_repeating_it(
    kube: MemoryRunClient, service: Recorder
) -> None:
    running = with_echo(samples.load("pipelinerun-running"))
    ref = add_run(kube, running)
    patches = 0

    def tekton_writes_status_first(verb: str, target: RunRef) -> None:
        nonlocal patches
        if verb == "patch":
            patches += 1
            if patches == 1:
                kube.runs[target]["metadata"]["annotations"]["other/key"] = "kept"
                kube.runs[target]["metadata"]["resourceVersion"] += "0"

    kube.before_request = tekton_writes_status_first
    outcome = processor(kube, service).process(event(running))
    assert outcome.kind == "reported"
    assert service.calls == ["running"]
    assert stored(kube, ref).condition.status == "True"
    assert kube.runs[ref]["metadata"]["annotations"]["other/key"] == "kept"


def test_endless_conflicts_answer_retry(kube: MemoryRunClient, service: Recorder) -> None:
    running = with_echo(samples.load("pipelinerun-running"))
    add_run(kube, running)

    def always_conflict(verb: str, _: RunRef) -> None:
        if verb == "patch":
            raise ConflictError("stale")

    kube.before_request = always_conflict
    outcome = processor(kube, service).process(event(running))
    assert (outcome.kind, outcome.http_status) == ("retry", 503)


def test_kubernetes_unavailable_answers_503(kube: MemoryRunClient, service: Recorder) -> None:
    running = with_echo(samples.load("pipelinerun-running"))
    add_run(kube, running)

    def down(verb: str, _: RunRef) -> None:
        raise KubernetesUnavailableError("connection refused")

    kube.before_request = down
    outcome = processor(kube, service).process(event(running))
    assert (outcome.kind, outcome.http_status, outcome.reason) == ("retry", 503, "KubernetesUnavailable")
    assert service.calls == []


@pytest.mark.parametrize(
    ("error", "status", "http"),
    [
        (PermanentError("Nope", "no such channel"), "False", 200),
        (TemporaryError("Busy", "try later"), "Unknown", 503),
        (TemporaryError("Limited", "slow down", retry_after=12), "Unknown", 429),
        (RuntimeError("bug"), "Unknown", 503),
    ],
)
def test_errors_become_conditions_and_answers(
    kube: MemoryRunClient, service: Recorder, error: Exception, status: str, http: int
) -> None:
    running = with_echo(samples.load("pipelinerun-running"))
    ref = add_run(kube, running)
    service.fail_with = error
    outcome = processor(kube, service).process(event(running))
    assert outcome.http_status == http
    assert stored(kube, ref).condition.status == status
    if http == 429:
        assert outcome.retry_after == 12


def test_ten_concurrent_deliveries_with_a_claim_make_one_side_effect(
    kube: MemoryRunClient, service: Recorder
) -> None:
    running = with_echo(samples.load("pipelinerun-running"))
    add_run(kube, running)
    p = processor(kube, service, claim=True)
    barrier = threading.Barrier(10)
    outcomes = []

    def deliver() -> None:
        barrier.wait()
        outcomes.append(p.process(event(running)))

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert service.calls == ["running"]
    assert sorted(o.kind for o in outcomes).count("reported") == 1
    assert all(o.http_status == 200 or (o.http_status, o.reason) == (429, "Busy") for o in outcomes)
    assert [p.process(event(running)).kind for o in outcomes if o.kind == "retry"] == [
        "ignored" for o in outcomes if o.kind == "retry"
    ], "a delivery asked to come back finds the state reported"


def test_a_claim_for_an_earlier_state_asks_for_redelivery(kube: MemoryRunClient, service: Recorder) -> None:
    running, successful = (
        with_echo(samples.load("pipelinerun-running")),
        with_echo(samples.load("pipelinerun-successful")),
    )
    ref = add_run(kube, running)
    now = datetime.now(UTC)
    run = parse_run("PipelineRun", kube.runs[ref])
    claim = new_record("echo", run, "Unknown", "Reporting", "", previous=None, claim=True, now=now)
    StatusStore(kube, "echo").write(run, claim)
    advance(kube, ref, successful)
    outcome = processor(kube, service, claim=True).process(event(successful))
    assert (outcome.http_status, outcome.reason) == (429, "Busy")
    assert service.calls == []

    stale = processor(kube, service, claim=True)
    stale.clock = lambda: now + timedelta(minutes=5)
    assert stale.process(event(successful)).kind == "reported", "an abandoned claim is taken over"


def test_invalid_configuration_is_recorded_once(kube: MemoryRunClient, service: Recorder) -> None:
    running = with_echo(samples.load("pipelinerun-running"))
    running["data"]["pipelineRun"]["metadata"]["annotations"]["echo.integrations.tekton.dev/taget"] = "typo"
    ref = add_run(kube, running)
    p = processor(kube, service)
    assert p.process(event(running)).kind == "failed"
    record = stored(kube, ref)
    assert record.condition.reason == "InvalidConfiguration"
    assert "echo.integrations.tekton.dev/taget: unknown key" in record.condition.message
    kube.calls.clear()
    assert p.process(event(running)).kind == "ignored"
    assert [verb for verb, _ in kube.calls] == ["get"]
    assert service.calls == []


def test_child_taskruns_can_be_reported_when_an_integration_asks(
    kube: MemoryRunClient, service: Recorder
) -> None:
    child = with_echo(samples.load("taskrun-running"))
    add_run(kube, child)
    assert processor(kube, service).process(event(child)).kind == "ignored"
    assert processor(kube, service, reports_child_taskruns=True).process(event(child)).kind == "reported"


def test_an_event_for_an_earlier_run_with_the_same_name_is_ignored(
    kube: MemoryRunClient, service: Recorder
) -> None:
    running = with_echo(samples.load("pipelinerun-running"))
    add_run(kube, running)
    stale = with_echo(samples.load("pipelinerun-running"))
    stale["data"]["pipelineRun"]["metadata"]["uid"] = "0000"
    assert (
        processor(kube, service).process(event(stale)).detail.startswith("the event is about an earlier run")
    )
    assert service.calls == []
