"""The runtime's decisions, with a tiny integration and the in-memory API server."""

from __future__ import annotations

import copy
import threading
from dataclasses import replace
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
from common.store import MirrorMode, StatusStore
from tests.conftest import add_run, advance


class EchoConfig(IntegrationConfig):
    target: str


class Recorder:
    """An integration's service: counts calls and can be told to fail.

    With ``kube`` set, it also notes whether each call was made on the run as the store holds it at
    that moment (``unproven`` lists the calls that were not): no side effect on a stale state.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.keys: list[str] = []
        self.unproven: list[str] = []
        self.fail_with: Exception | None = None
        self.kube: MemoryRunClient | None = None
        self.lock = threading.Lock()

    def report(self, ctx: Context[EchoConfig, Any]) -> Report:
        with self.lock:
            self.calls.append(ctx.run.phase.value)
            self.keys.append(ctx.key())
            if self.kube is not None:
                stored = self.kube.runs[RunRef(ctx.run.kind, ctx.run.namespace, ctx.run.name)]
                if stored["metadata"]["resourceVersion"] != ctx.run.resource_version:
                    self.unproven.append(ctx.run.phase.value)
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
    """The sample's event: its object is not the stored run's version (a late or repeated event)."""
    kind, obj = samples.run_object(sample)
    return RunEvent(id="e", type=sample["headers"]["ce-type"], phase="", run=parse_run(kind, obj))


def sent(kube: MemoryRunClient, ref: RunRef) -> RunEvent:
    """What Tekton's events controller sends for the run now: the persisted object, with its
    ``resourceVersion`` (delivered later, it is a late or repeated event)."""
    obj = copy.deepcopy(kube.runs[ref])
    return RunEvent(
        id="e", type="dev.tekton.event.pipelinerun.running.v1", phase="", run=parse_run(ref.kind, obj)
    )


def verbs(kube: MemoryRunClient) -> list[str]:
    found = [verb for verb, _ in kube.calls]
    kube.calls.clear()
    return found


def version(kube: MemoryRunClient, ref: RunRef) -> str:
    return str(kube.runs[ref]["metadata"]["resourceVersion"])


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


@pytest.mark.parametrize(
    ("claim", "first", "later", "duplicate"),
    [
        # The claim, written on the event's own resourceVersion, proves the event live: no read.
        # A duplicate's claim is refused (409, no write), and the read finds the state reported.
        (True, ["patch", "patch"], ["patch", "patch"], ["patch", "get"]),
        # No claim: the read before the call is the proof, and the record the only write.
        (False, ["get", "patch"], ["get", "patch"], ["get"]),
    ],
    ids=["claim", "no-claim"],
)
def test_requests_per_event_first_later_and_duplicate(  # noqa: PLR0917 -- parameters
    kube: MemoryRunClient,
    service: Recorder,
    claim: bool,
    first: list[str],
    later: list[str],
    duplicate: list[str],
) -> None:
    p = processor(kube, service, claim=claim)
    warm = with_echo(samples.load("pipelinerun-queued"))
    p.process(sent(kube, add_run(kube, warm)))  # the process's first record probes status.integrations
    ref = add_run(kube, with_echo(samples.load("pipelinerun-running")))
    kube.calls.clear()

    assert p.process(sent(kube, ref)).kind == "reported"
    assert verbs(kube) == first

    advance(kube, ref, samples.load("pipelinerun-successful"))
    successful = sent(kube, ref)
    assert p.process(successful).kind == "reported"
    assert verbs(kube) == later

    written = version(kube, ref)
    assert p.process(successful).detail == "duplicate: this state is already reported"
    assert verbs(kube) == duplicate
    assert version(kube, ref) == written, "a duplicate writes nothing"

    # Tekton's informer replays the run as it is now, our record included: nothing to ask.
    assert p.process(sent(kube, ref)).kind == "ignored"
    assert verbs(kube) == []
    assert service.calls == ["queued", "running", "succeeded"]


def test_an_event_without_a_resource_version_reads_the_run_first(
    kube: MemoryRunClient, service: Recorder
) -> None:
    running = with_echo(samples.load("pipelinerun-running"))
    ref = add_run(kube, running)
    old = sent(kube, ref)
    no_version = replace(old, run=replace(old.run, resource_version=""))
    kube.calls.clear()
    assert processor(kube, service, claim=True).process(no_version).kind == "reported"
    assert [verb for verb in verbs(kube) if verb != "patch_status"] == ["get", "patch", "patch"]


@pytest.mark.parametrize("claim", [True, False], ids=["claim", "no-claim"])
def test_no_call_is_ever_made_on_a_state_not_proven_live(
    kube: MemoryRunClient, service: Recorder, claim: bool
) -> None:
    service.kube = kube
    p = processor(kube, service, claim=claim)
    running = with_echo(samples.load("pipelinerun-running"))
    ref = add_run(kube, running)
    stale = sent(kube, ref)
    advance(kube, ref, samples.load("pipelinerun-successful"))  # the run moved on after the event
    assert p.process(stale).kind == "reported"
    assert p.process(stale).kind == "ignored"
    assert p.process(sent(kube, ref)).kind == "ignored"
    assert service.calls == ["succeeded"], "the live state is reported, once"
    assert service.unproven == []


@pytest.mark.parametrize("claim", [True, False], ids=["claim", "no-claim"])
def test_a_late_event_never_regresses_a_finished_record(
    kube: MemoryRunClient, service: Recorder, claim: bool
) -> None:
    p = processor(kube, service, claim=claim)
    ref = add_run(kube, with_echo(samples.load("pipelinerun-running")))
    late_running = sent(kube, ref)
    advance(kube, ref, samples.load("pipelinerun-successful"))
    assert p.process(sent(kube, ref)).kind == "reported"
    written = version(kube, ref)
    kube.calls.clear()
    assert p.process(late_running).kind == "ignored"
    assert version(kube, ref) == written
    assert verbs(kube) == (["patch", "get"] if claim else ["get"])
    assert service.calls == ["succeeded"]


@pytest.mark.parametrize(("mode", "status_writes"), [("auto", 0), ("always", 1), ("never", 0)])
def test_status_integrations_costs_no_request_where_pruned_unless_asked(
    kube: MemoryRunClient, service: Recorder, mode: MirrorMode, status_writes: int
) -> None:
    """Today's Tekton prunes the field: ``auto`` never probes for it, ``always`` learns it once."""
    p = Processor(processor(kube, service).integration, kube, RuntimeSettings(status_integrations=mode))
    running, successful = (
        with_echo(samples.load("pipelinerun-running")),
        with_echo(samples.load("pipelinerun-successful")),
    )
    ref = add_run(kube, running)
    p.process(event(running))
    advance(kube, ref, successful)
    p.process(event(successful))
    assert service.calls == ["running", "succeeded"]
    assert [verb for verb, _ in kube.calls].count("patch_status") == status_writes
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


def test_a_fresh_claim_on_the_events_object_is_checked_on_the_live_run(
    kube: MemoryRunClient, service: Recorder
) -> None:
    """The event was sent while another delivery held the claim; that delivery has recorded since."""
    p = processor(kube, service, claim=True)
    ref = add_run(kube, with_echo(samples.load("pipelinerun-running")))
    run = parse_run(ref.kind, kube.runs[ref])
    claim = new_record(
        "echo", run, "Unknown", "Reporting", "", previous=None, claim=True, now=datetime.now(UTC)
    )
    StatusStore(kube, "echo").write(run, claim)
    while_claimed = sent(kube, ref)
    assert p.process(while_claimed).reason == "Busy", "the claim is still live: ask again later"
    assert verbs(kube)[-1:] == ["get"], "a claim seen on the event alone is not trusted"
    claimed = parse_run(ref.kind, kube.runs[ref])
    done = new_record("echo", claimed, "True", "Reported", "", previous=claim, now=datetime.now(UTC))
    StatusStore(kube, "echo").write(claimed, done)
    kube.calls.clear()
    assert p.process(while_claimed).detail == "duplicate: this state is already reported"
    assert verbs(kube) == ["get"]
    assert service.calls == []


def test_concurrent_deliveries_of_the_live_event_make_one_side_effect(
    kube: MemoryRunClient, service: Recorder
) -> None:
    ref = add_run(kube, with_echo(samples.load("pipelinerun-running")))
    p = processor(kube, service, claim=True)
    live = sent(kube, ref)
    barrier = threading.Barrier(8)
    outcomes = []

    def deliver() -> None:
        barrier.wait()
        outcomes.append(p.process(live))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert service.calls == ["running"]
    assert sorted(o.kind for o in outcomes).count("reported") == 1
    assert all(o.kind == "reported" or o.reason == "Busy" or o.kind == "ignored" for o in outcomes)


@pytest.mark.parametrize("claim", [True, False], ids=["claim", "no-claim"])
def test_an_event_about_an_earlier_run_with_the_same_name_is_ignored_after_one_read(
    kube: MemoryRunClient, service: Recorder, claim: bool
) -> None:
    ref = add_run(kube, with_echo(samples.load("pipelinerun-running")))
    earlier = sent(kube, ref)
    earlier = replace(earlier, run=replace(earlier.run, uid="0000", resource_version="999"))
    kube.calls.clear()
    outcome = processor(kube, service, claim=claim).process(earlier)
    assert outcome.detail == "the event is about an earlier run with the same name"
    assert verbs(kube) == (["patch", "get"] if claim else ["get"])
    assert service.calls == []
    assert StatusStore(kube, "echo").read(parse_run(ref.kind, kube.runs[ref])) is None


def test_a_record_inherited_from_another_run_is_not_this_runs(
    kube: MemoryRunClient, service: Recorder
) -> None:
    """A child TaskRun (or a copied run) carries a record whose runUID is not its own: it does not
    make the event a duplicate, on the event's object as on the live run."""
    child = with_echo(samples.load("taskrun-running"))
    ref = add_run(kube, child)
    run = parse_run(ref.kind, kube.runs[ref])
    parents = new_record("echo", replace(run, uid="parent-uid"), "True", "Reported", "", previous=None)
    kube.patch(ref, {"metadata": {"annotations": {"echo.integrations.tekton.dev/status": parents.to_json()}}})
    p = processor(kube, service, claim=True, reports_child_taskruns=True)
    assert p.process(sent(kube, ref)).kind == "reported"
    assert service.calls == ["running"]
    assert stored(kube, ref).run_uid == run.uid


def test_an_unreadable_record_on_the_events_object_is_no_record(
    kube: MemoryRunClient, service: Recorder
) -> None:
    ref = add_run(kube, with_echo(samples.load("pipelinerun-running")))
    kube.patch(
        ref, {"metadata": {"annotations": {"echo.integrations.tekton.dev/status": '{"forged": true}'}}}
    )
    assert processor(kube, service, claim=True).process(sent(kube, ref)).kind == "reported"
    assert service.calls == ["running"]


def test_a_stale_write_back_by_tekton_makes_the_event_stale_not_live(
    kube: MemoryRunClient, service: Recorder
) -> None:
    """Tekton's syncMetadata PUTs its older copy of the annotations: our record is gone again, and
    the run looks as the event's object does, but under a new resourceVersion. The redelivered event
    is not taken for live; the read finds the record missing, and the call is made again with the
    same deterministic key (DESIGN.md §3: the service recognises it)."""
    service.kube = kube
    ref = add_run(kube, with_echo(samples.load("pipelinerun-running")))
    before = sent(kube, ref)
    p = processor(kube, service, claim=True)
    assert p.process(before).kind == "reported"
    kube.replace_annotations(ref, before.run.annotations)
    kube.calls.clear()
    assert p.process(before).kind == "reported"
    assert verbs(kube) == ["patch", "get", "patch", "patch"]
    assert service.keys[0] == service.keys[1]
    assert service.unproven == []


def test_a_refusal_is_recorded_on_the_run_as_read_never_on_the_events_word(
    kube: MemoryRunClient, service: Recorder
) -> None:
    """Only the live run's own configuration is refused on it: one read, one write. A duplicate
    reads and writes nothing."""
    running = with_echo(samples.load("pipelinerun-running"))
    running["data"]["pipelineRun"]["metadata"]["annotations"]["echo.integrations.tekton.dev/taget"] = "typo"
    ref = add_run(kube, running)
    first = sent(kube, ref)
    p = processor(kube, service, claim=True)
    kube.calls.clear()
    assert p.process(first).reason == "InvalidConfiguration"
    assert [verb for verb in verbs(kube) if verb != "patch_status"] == ["get", "patch", "record_event"]
    written = version(kube, ref)
    assert p.process(first).kind == "ignored"
    assert verbs(kube) == ["get"]
    assert version(kube, ref) == written
    assert service.calls == []


def test_a_refusal_decided_on_a_stale_event_is_decided_again_on_the_live_run(
    kube: MemoryRunClient, service: Recorder
) -> None:
    """The event's object had a typo the run no longer has: the refusal's conditional write fails,
    and the live run is reported instead of refused."""
    running = with_echo(samples.load("pipelinerun-running"))
    ref = add_run(kube, running)
    typo = sent(kube, ref)
    typo = replace(
        typo,
        run=replace(
            typo.run, annotations={**typo.run.annotations, "echo.integrations.tekton.dev/taget": "x"}
        ),
    )
    kube.patch(ref, {"metadata": {"annotations": {"other/key": "a write since the event"}}})
    assert processor(kube, service).process(typo).kind == "reported"
    assert service.calls == ["running"]


def test_a_record_left_unwritten_after_the_call_is_written_by_the_redelivery(
    kube: MemoryRunClient, service: Recorder
) -> None:
    ref = add_run(kube, with_echo(samples.load("pipelinerun-running")))
    live = sent(kube, ref)
    p = processor(kube, service, claim=True)
    patches = 0

    def api_down_after_the_claim(verb: str, _: RunRef) -> None:
        nonlocal patches
        if verb == "patch":
            patches += 1
            if patches > 1:
                raise KubernetesUnavailableError("connection refused")

    kube.before_request = api_down_after_the_claim
    assert p.process(live).reason == "KubernetesUnavailable"
    kube.before_request = None
    kube.calls.clear()
    assert p.process(live).kind == "reported", "the same event again: its claim is refused, the run read"
    assert verbs(kube) == ["patch", "get", "patch"]
    assert service.calls == ["running"]
    assert stored(kube, ref).annotations["message-id"] == "1"


@pytest.mark.parametrize("claim", [True, False], ids=["claim", "no-claim"])
def test_an_event_that_is_not_the_run_at_its_version_never_drives_a_call(
    kube: MemoryRunClient, service: Recorder, claim: bool
) -> None:
    """Anyone who can reach the function could send a run re-addressed to the run's current
    resourceVersion, with another state and another configuration. The claim's answer is the run as
    stored: unless it is the event's object, the claim is taken back and the run as read decides.
    Without a claim the call follows a read anyway."""
    service.kube = kube
    ref = add_run(kube, with_echo(samples.load("pipelinerun-running"), target="the-real-one"))
    forged = sent(kube, ref)
    succeeded = parse_run(ref.kind, samples.run_object(samples.load("pipelinerun-successful"))[1])
    forged = replace(
        forged,
        run=replace(
            forged.run,
            condition=succeeded.condition,
            annotations={**forged.run.annotations, "echo.integrations.tekton.dev/target": "elsewhere"},
        ),
    )
    kube.calls.clear()
    assert processor(kube, service, claim=claim).process(forged).kind == "reported"
    assert service.calls == ["running"], "the state of the run as stored"
    record = stored(kube, ref)
    assert (record.condition.message, record.claim) == ("told the-real-one", None)
    assert service.unproven == []
    if claim:  # the claim on the event's word, taken back; the read; the claim and the record
        assert [v for v in verbs(kube) if v != "patch_status"] == ["patch", "patch", "get", "patch", "patch"]
