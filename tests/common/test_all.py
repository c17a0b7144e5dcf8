"""The single-Service target (``common/all.py``, ``common.single``): every integration for each
event, one read of the run shared among them, the most urgent outcome as the answer.

Most tests serve three small integrations declared in a source file of their own (through
functions-framework, as ``common/all.py`` is served), whose ``report`` only counts its calls and
does what ``SCRIPT`` says, so that what the single target adds is all that is tested.
"""

from __future__ import annotations

import base64
import json
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from common import samples
from common.errors import ConflictError, KubernetesUnavailableError, PermanentError, TemporaryError
from common.integration import Context, Report
from common.runclient import MemoryRunClient, RunRef
from common.runtime import Outcome
from common.single import SharedReads, most_urgent, one_event
from tests.conftest import DEADLETTER, REPO, Deliver, add_run, advance, body, source_client

NAMES = ("alpha", "beta", "gamma")
CALLS: Counter[str] = Counter()
"""``report`` calls per integration: a side effect each."""
SCRIPT: dict[str, list[Exception]] = {}
"""Per integration, what its next ``report`` calls raise (in order), before they succeed."""

SOURCE = """
from common import Destinations, Idempotency, Integration, IntegrationConfig, TargetsNothing, always, never
from common.single import serve_all
from tests.common.test_all import report


class Config(IntegrationConfig):
    x: str | None = None


def declare(name, claim):
    return Integration(
        declared_in=__file__,
        name=name,
        config=Config,
        report=lambda ctx: report(name, ctx),
        policy=TargetsNothing(),
        idempotency=Idempotency("the test counts its calls", claim=claim),
    )


INTEGRATIONS = [declare("alpha", never), declare("beta", always), declare("gamma", never)]
handle = serve_all(INTEGRATIONS{only})
"""
"""alpha reads the run before its call (no claim), beta claims first, gamma reads again."""


def report(name: str, ctx: Context[Any, Any]) -> Report:
    CALLS[name] += 1
    planned = SCRIPT.get(name)
    if planned:
        raise planned.pop(0)
    return Report(f"{name} reported {ctx.run.phase.value}", {"call": str(CALLS[name])})


@pytest.fixture(autouse=True)
def fresh_script() -> Iterator[None]:
    CALLS.clear()
    SCRIPT.clear()
    yield
    CALLS.clear()
    SCRIPT.clear()


def served(tmp_path: Path, only: str | None = None) -> FlaskClient:
    """The three integrations (or ``only`` one of them) served by ``common.single.serve_all``."""
    folder = tmp_path / (only or "all")
    folder.mkdir(parents=True)
    source = folder / "main.py"
    selection = f"[{NAMES.index(only)}:{NAMES.index(only) + 1}]" if only else ""
    source.write_text(textwrap.dedent(SOURCE).replace("{only}", selection), encoding="utf-8")
    return source_client(source)


def opting_in(*names: str, sample: str = "pipelinerun-running") -> dict[str, Any]:
    event = samples.load(sample)
    _, run = samples.run_object(event)
    run["metadata"]["annotations"] = {f"{name}.integrations.tekton.dev/x": "1" for name in names}
    return event


def record(kube: MemoryRunClient, ref: RunRef, name: str) -> dict[str, Any] | None:
    value = kube.runs[ref]["metadata"].get("annotations", {}).get(f"{name}.integrations.tekton.dev/status")
    return json.loads(value) if value else None


def reads(kube: MemoryRunClient) -> int:
    return sum(1 for verb, _ in kube.calls if verb == "get")


# -- the outcome order -----------------------------------------------------------------------


def test_the_most_urgent_outcome_is_retry_then_failed_then_reported_then_ignored() -> None:
    ignored, reported = Outcome("ignored", "i"), Outcome("reported", "r")
    failed, retry = Outcome("failed", "f", "Rejected"), Outcome("retry", "t", "Unavailable")
    assert most_urgent([ignored, reported]) is reported
    assert most_urgent([reported, failed, ignored]) is failed
    assert most_urgent([failed, retry, reported]) is retry
    assert most_urgent([ignored]) is ignored
    with pytest.raises(ValueError, match="no outcome"):
        most_urgent([])


def test_among_retries_the_longest_wait_wins_and_a_429_beats_a_503() -> None:
    unavailable = Outcome("retry", "503", "Unavailable")
    busy = Outcome("retry", "busy", "Busy", 2.0)
    limited = Outcome("retry", "rate limited", "RateLimited", 60.0)
    assert most_urgent([unavailable, busy]) is busy
    assert most_urgent([busy, limited, unavailable]) is limited
    assert most_urgent([limited, Outcome("retry", "also 60", "RateLimited", 60.0)]) is limited, "the first"
    assert most_urgent([busy, limited]).http_status == 429


# -- one event, every integration ------------------------------------------------------------


def test_a_run_opting_into_three_integrations_is_read_once_and_each_records(
    kube: MemoryRunClient, deliver: Deliver, tmp_path: Path
) -> None:
    event = opting_in(*NAMES)
    ref = add_run(kube, event)
    answer = deliver(served(tmp_path), event)

    assert (answer.status_code, body(answer)["outcome"]) == (200, "reported")
    assert {name: o["outcome"] for name, o in body(answer)["integrations"].items()} == dict.fromkeys(
        NAMES, "reported"
    )
    assert dict.fromkeys(NAMES, 1) == CALLS
    for name in NAMES:
        found = record(kube, ref, name)
        assert found is not None
        assert found["conditions"][0]["message"] == f"{name} reported running"
    assert reads(kube) == 1, f"one read shared by the three: {kube.calls}"


def test_standalone_the_same_integrations_read_the_run_once_each(
    kube: MemoryRunClient, deliver: Deliver, tmp_path: Path
) -> None:
    event = opting_in(*NAMES)
    add_run(kube, event)
    for name in NAMES:
        deliver(served(tmp_path, only=name), event)
    assert dict.fromkeys(NAMES, 1) == CALLS
    assert reads(kube) >= 2, "alpha and gamma each read the run before their call"


def test_records_equal_the_standalone_functions_records_for_the_same_events(
    deliver: Deliver, tmp_path: Path
) -> None:
    from common.http import use_run_client

    sequence = ["pipelinerun-running", "pipelinerun-running", "pipelinerun-successful", "pipelinerun-running"]
    records = {}
    for mode in ("single", "standalone"):
        CALLS.clear()  # the records carry the call's number
        kube = MemoryRunClient()
        use_run_client(kube)
        try:
            clients = [served(tmp_path / mode)] if mode == "single" else []
            if mode == "standalone":
                clients = [served(tmp_path / mode, only=name) for name in NAMES]
            ref = None
            for sample in sequence:
                event = opting_in(*NAMES, sample=sample)
                if ref is None:
                    ref = add_run(kube, event)
                else:
                    advance(kube, ref, event)
                for client in clients:
                    assert deliver(client, event).status_code == 200
            assert ref is not None
            records[mode] = {name: _comparable(record(kube, ref, name)) for name in NAMES}
        finally:
            use_run_client(None)
    assert records["single"] == records["standalone"]
    assert all(records["single"].values())


def _comparable(found: dict[str, Any] | None) -> dict[str, Any] | None:
    """A record without what differs between two runs of the same events: times and the run's UID."""
    if found is None:
        return None
    found = dict(found)
    found.pop("runUID", None)
    found["conditions"] = [
        {k: v for k, v in condition.items() if not k.endswith("Time")} for condition in found["conditions"]
    ]
    return found


def test_a_run_opting_into_none_is_ignored_without_any_api_call(
    kube: MemoryRunClient, deliver: Deliver, tmp_path: Path
) -> None:
    event = samples.load("pipelinerun-successful-no-integrations")
    add_run(kube, event)
    answer = deliver(served(tmp_path), event)
    assert (answer.status_code, body(answer)["outcome"], body(answer)["integrations"]) == (200, "ignored", {})
    assert not kube.calls
    assert not CALLS


def test_only_the_integrations_a_run_opts_into_act_and_answer(
    kube: MemoryRunClient, deliver: Deliver, tmp_path: Path
) -> None:
    event = opting_in("gamma")
    ref = add_run(kube, event)
    answer = deliver(served(tmp_path), event)
    assert list(body(answer)["integrations"]) == ["gamma"]
    assert body(answer)["detail"] == "gamma: gamma reported running"
    assert CALLS == {"gamma": 1}
    assert record(kube, ref, "alpha") is None


# -- failures --------------------------------------------------------------------------------


def test_one_integrations_transient_failure_does_not_repeat_the_others_side_effects(
    kube: MemoryRunClient, deliver: Deliver, tmp_path: Path
) -> None:
    event = opting_in(*NAMES)
    ref = add_run(kube, event)
    client = served(tmp_path)
    SCRIPT["beta"] = [TemporaryError("BetaUnavailable", "beta answered 503")]

    first = deliver(client, event)
    assert (first.status_code, body(first)["outcome"], body(first)["reason"]) == (
        503,
        "retry",
        "BetaUnavailable",
    )
    assert body(first)["retry"] == ["beta"]
    assert body(first)["detail"] == "beta: beta answered 503"
    assert {name: o["outcome"] for name, o in body(first)["integrations"].items()} == {
        "alpha": "reported",
        "beta": "retry",
        "gamma": "reported",
    }

    again = deliver(client, event)  # the sender's redelivery
    assert (again.status_code, body(again)["outcome"]) == (200, "reported")
    assert {name: o["outcome"] for name, o in body(again)["integrations"].items()} == {
        "alpha": "ignored",
        "beta": "reported",
        "gamma": "ignored",
    }
    for _ in range(2):  # Tekton repeats itself too
        assert body(deliver(client, event))["outcome"] == "ignored"
    assert CALLS == {"alpha": 1, "beta": 2, "gamma": 1}, "alpha's and gamma's calls were not repeated"
    for name in NAMES:
        found = record(kube, ref, name)
        assert found is not None
        assert found["conditions"][0]["status"] == "True", name


def test_the_longest_retry_after_is_answered(kube: MemoryRunClient, deliver: Deliver, tmp_path: Path) -> None:
    event = opting_in(*NAMES)
    add_run(kube, event)
    SCRIPT["alpha"] = [TemporaryError("AlphaRateLimited", "slow down", retry_after=30)]
    SCRIPT["gamma"] = [TemporaryError("GammaRateLimited", "a little", retry_after=5)]
    answer = deliver(served(tmp_path), event)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "30"
    assert (body(answer)["reason"], body(answer)["retry"]) == ("AlphaRateLimited", ["alpha", "gamma"])
    assert dict.fromkeys(NAMES, 1) == CALLS, "beta reported all the same"


def test_a_permanent_failure_outranks_a_report(
    kube: MemoryRunClient, deliver: Deliver, tmp_path: Path
) -> None:
    event = opting_in(*NAMES)
    ref = add_run(kube, event)
    SCRIPT["gamma"] = [PermanentError("GammaRejected", "gamma refused the run")]
    answer = deliver(served(tmp_path), event)
    assert (answer.status_code, body(answer)["outcome"], body(answer)["reason"]) == (
        200,
        "failed",
        "GammaRejected",
    )
    found = record(kube, ref, "gamma")
    assert found is not None
    assert (found["conditions"][0]["status"], found["conditions"][0]["reason"]) == ("False", "GammaRejected")


def test_a_malformed_event_is_refused_once(kube: MemoryRunClient, tmp_path: Path) -> None:
    answer = served(tmp_path).post(
        "/",
        headers={"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/x", "ce-type": "com.example.other"},
        data=b"{}",
    )
    assert answer.status_code == 400
    assert "not a Tekton run event" in body(answer)["detail"]
    assert not kube.calls


# -- SharedReads -----------------------------------------------------------------------------


@pytest.fixture
def stored() -> tuple[MemoryRunClient, RunRef]:
    store = MemoryRunClient()
    _, run = samples.run_object(samples.load("pipelinerun-running"))
    return store, store.add("PipelineRun", run)


def _annotate(version: str | None, value: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"annotations": {"example.com/x": value}}
    if version is not None:
        metadata["resourceVersion"] = version
    return {"metadata": metadata}


def test_shared_reads_keep_one_events_reads_and_writes(stored: tuple[MemoryRunClient, RunRef]) -> None:
    store, ref = stored
    shared = SharedReads(store)
    with one_event():
        first = shared.get(ref)
        first["metadata"]["name"] = "changed by its reader"
        assert shared.get(ref)["metadata"]["name"] != "changed by its reader", "each read gets a copy"
        written = shared.patch(ref, _annotate(first["metadata"]["resourceVersion"], "1"))
        assert shared.get(ref) == written, "the next reader sees the write"
    assert [verb for verb, _ in store.calls] == ["get", "patch"]
    shared.get(ref)
    shared.get(ref)
    assert [verb for verb, _ in store.calls] == ["get", "patch", "get", "get"], "outside an event: no keeping"


def test_a_conflict_on_the_version_kept_forgets_it_an_older_one_does_not(
    stored: tuple[MemoryRunClient, RunRef],
) -> None:
    store, ref = stored
    shared = SharedReads(store)
    with one_event():
        old = shared.get(ref)["metadata"]["resourceVersion"]
        kept = shared.patch(ref, _annotate(old, "ours"))["metadata"]["resourceVersion"]
        with pytest.raises(ConflictError):
            shared.patch(ref, _annotate(old, "an event's stale version"))
        assert shared.get(ref)["metadata"]["resourceVersion"] == kept
        assert [verb for verb, _ in store.calls] == ["get", "patch", "patch"], "still kept: no read"

        store.patch(ref, _annotate(None, "someone else"))  # not through the shared client
        with pytest.raises(ConflictError):
            shared.patch(ref, _annotate(kept, "ours again"))
        assert shared.get(ref)["metadata"]["annotations"]["example.com/x"] == "someone else"
    assert [verb for verb, _ in store.calls][-2:] == ["patch", "get"], "forgotten: read again"


def test_a_failed_write_forgets_what_was_kept(stored: tuple[MemoryRunClient, RunRef]) -> None:
    store, ref = stored
    shared = SharedReads(store)

    def unavailable(verb: str, _: RunRef) -> None:
        if verb == "patch":
            raise KubernetesUnavailableError("Kubernetes answered 503")

    with one_event():
        version = shared.get(ref)["metadata"]["resourceVersion"]
        store.before_request = unavailable
        with pytest.raises(KubernetesUnavailableError):
            shared.patch(ref, _annotate(version, "x"))
        store.before_request = None
        shared.get(ref)
    assert [verb for verb, _ in store.calls] == ["get", "patch", "get"]


# -- the real integrations and the dead-letter receiver --------------------------------------


ALL = REPO / "common" / "all.py"


def test_common_all_serves_every_installed_integration(kube: MemoryRunClient, deliver: Deliver) -> None:
    event = samples.load("pipelinerun-running")  # opts into github and slack; neither has credentials
    ref = add_run(kube, event)
    answer = deliver(source_client(ALL), event)
    assert (answer.status_code, body(answer)["outcome"]) == (200, "failed")
    assert set(body(answer)["integrations"]) == {"github", "slack"}
    for name in ("github", "slack"):
        found = record(kube, ref, name)
        assert found is not None
        assert found["conditions"][0]["reason"].endswith("NotConfigured")
    assert reads(kube) <= 1


def test_ti_integrations_narrows_what_is_served(
    kube: MemoryRunClient, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from common.single import selected

    monkeypatch.setenv("TI_INTEGRATIONS", "slack, webhook")
    assert [integration.name for integration in selected()] == ["slack", "webhook"]
    monkeypatch.setenv("TI_INTEGRATIONS", "slack,pagerr")
    with pytest.raises(RuntimeError, match="pagerr"):
        selected()


def single_service_dead_letter(sample: str, retry: list[str] | None) -> dict[str, Any]:
    event = samples.load(sample)
    answer: dict[str, Any] = {"integration": "all", "run": "ci/x", "outcome": "retry"}
    if retry is not None:
        answer["retry"] = retry
    event["headers"]["ce-knativeerrordest"] = (
        "http://tekton-integrations.tekton-integrations.svc.cluster.local"
    )
    event["headers"]["ce-knativeerrorcode"] = "503"
    event["headers"]["ce-knativeerrordata"] = base64.b64encode(json.dumps(answer).encode()[:1024]).decode()
    return event


def test_a_dead_letter_of_the_single_service_records_the_integrations_that_asked_for_it(
    kube: MemoryRunClient, deliver: Deliver
) -> None:
    event = single_service_dead_letter("pipelinerun-running", ["slack"])
    ref = add_run(kube, event)
    answer = deliver(source_client(DEADLETTER), event)
    assert (answer.status_code, body(answer)["outcome"]) == (200, "failed")
    assert record(kube, ref, "github") is None, "github did not ask for a redelivery"
    found = record(kube, ref, "slack")
    assert found is not None
    assert (found["conditions"][0]["status"], found["conditions"][0]["reason"]) == ("False", "DeliveryFailed")


def test_an_unreadable_single_service_dead_letter_records_every_integration_opted_into(
    kube: MemoryRunClient, deliver: Deliver
) -> None:
    event = single_service_dead_letter("pipelinerun-running", None)
    ref = add_run(kube, event)
    assert deliver(source_client(DEADLETTER), event).status_code == 200
    for name in ("github", "slack"):
        found = record(kube, ref, name)
        assert found is not None
        assert found["conditions"][0]["reason"] == "DeliveryFailed"
    assert record(kube, ref, "webhook") is None, "not opted into"
