"""The fault matrix: for every integration, each failure class of its service and of Kubernetes gets
the right HTTP answer and the right condition on the run, and nothing is lost (DESIGN.md §1, §3).

``ROWS`` is the table, gathered from ``tests/faults/<name>.py`` for every installed integration
(the machinery is ``tests/support/faults.py``). Each row says what the service really does for a
class (an HTTP answer, a Slack error code, an SMTP reply, a refused or silent connection) and
what the function must answer: 2xx with condition ``False`` for a permanent failure; 503, or
429 with ``Retry-After``, with condition ``Unknown`` for a transient one. After a transient
failure the same event is delivered again and must report the run exactly once; after a permanent
one a redelivery must not call the service again. Where a class does not exist for a service the
row says so (its id ends in ``not-applicable``), says why, and is not run.

The Kubernetes side (``KUBE_FAULTS``) is injected with ``MemoryRunClient.before_request``, raising
what ``common.kube`` raises for the API server's answer.

Services are loopback stand-ins (``tests/support/standins``), ``tests.support.receiver`` for URL
targets, and aiosmtpd (STARTTLS and AUTH) for email. Timeouts are made short; nothing here sleeps.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import urllib3

from common import registry
from common.kube import _translated
from common.kube_api import ApiError
from common.runclient import MemoryRunClient, RunRef
from tests.conftest import Deliver, add_run, body, function_client, written_texts
from tests.support.faults import CLASSES, NotApplicable, Row, Service

INTEGRATIONS = tuple(registry.names())
"""Every installed integration: each must have ``tests/faults/<folder>.py`` with a row per class."""


def _has_faults(name: str) -> bool:
    return importlib.util.find_spec(f"tests.faults.{registry.folder_of(name)}") is not None


FAULTS = {
    name: importlib.import_module(f"tests.faults.{registry.folder_of(name)}")
    for name in INTEGRATIONS
    if _has_faults(name)
}
SERVICES: dict[str, type[Service]] = {name: module.SERVICE for name, module in FAULTS.items()}
ROWS: list[Row] = [row for module in FAULTS.values() for row in module.ROWS]
OpenService = Callable[[str], Service]


@pytest.fixture
def open_service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[OpenService]:
    """``open_service("slack")`` starts that integration's service and points the function at it."""
    with ExitStack() as stack:
        yield lambda name: SERVICES[name](monkeypatch, tmp_path, stack)


def record(kube: MemoryRunClient, ref: RunRef, integration: str) -> dict[str, Any] | None:
    value = (
        kube.runs[ref]["metadata"].get("annotations", {}).get(f"{integration}.integrations.tekton.dev/status")
    )
    return json.loads(value) if value else None


def condition(kube: MemoryRunClient, ref: RunRef, integration: str) -> tuple[str, str]:
    stored = record(kube, ref, integration)
    assert stored is not None, "no record on the run"
    first = stored["conditions"][0]
    return first["status"], first["reason"]


# -- the matrix ------------------------------------------------------------------------------------


def test_the_matrix_covers_every_class_for_every_integration() -> None:
    assert INTEGRATIONS, "the registry found no integration"
    missing_modules = sorted(set(INTEGRATIONS) - set(FAULTS))
    assert not missing_modules, f"no tests/faults/<name>.py for {missing_modules}"
    assert all(module.SERVICE.name == name for name, module in FAULTS.items())
    cells = {(row.integration, row.fault): row for row in ROWS}
    missing = [(name, fault) for name in INTEGRATIONS for fault in CLASSES if (name, fault) not in cells]
    assert not missing, f"no row for {missing}"
    assert len(cells) == len(ROWS), "a cell appears twice"
    for row in ROWS:
        assert (row.expect is None) == isinstance(row.script, NotApplicable), row.id
        if isinstance(row.script, NotApplicable):
            assert row.fault in CLASSES, f"{row.id}: only a common class can be not applicable"


def _params() -> list[Any]:
    """The rows that exist for their service; the coverage test above accounts for the rest."""
    return [pytest.param(row, id=row.id) for row in ROWS if not isinstance(row.script, NotApplicable)]


@pytest.mark.parametrize("row", _params())
def test_service_fault(row: Row, kube: MemoryRunClient, deliver: Deliver, open_service: OpenService) -> None:
    assert row.expect is not None
    assert not isinstance(row.script, NotApplicable)
    expect = row.expect
    service = open_service(row.integration)
    event = service.event()
    ref = add_run(kube, event)
    client = function_client(row.integration)

    with service.broken(row.script):
        answer = deliver(client, event)

    assert (answer.status_code, body(answer).get("reason")) == (expect.http, expect.reason)
    assert answer.headers.get("Retry-After") == (str(expect.retry_after) if expect.retry_after else None)
    assert condition(kube, ref, row.integration) == (expect.status, expect.reason)
    assert [reason for _, reason, _ in kube.events] == ["IntegrationFailed"]
    assert service.effects() == 0, "the service did not accept anything"

    if expect.transient:  # nothing is lost: the same event, delivered again, reports the run once
        again = deliver(client, event)
        assert (again.status_code, body(again)["outcome"]) == (200, "reported")
        assert condition(kube, ref, row.integration)[0] == "True"
        assert service.effects() == 1
        assert body(deliver(client, event))["outcome"] == "ignored", "a third delivery is a duplicate"
        assert service.effects() == 1
    else:  # the record says why; the sender does not redeliver, and a duplicate calls nothing
        calls = service.calls()
        again = deliver(client, event)
        assert (again.status_code, body(again)["outcome"]) == (200, "ignored")
        assert service.calls() == calls
        assert condition(kube, ref, row.integration) == ("False", expect.reason)


# -- credentials echoed back ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 500])
@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_a_credential_echoed_by_the_service_leaves_in_no_text(  # noqa: PLR0917 -- fixtures
    integration: str,
    status: int,
    kube: MemoryRunClient,
    deliver: Deliver,
    open_service: OpenService,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A server or proxy that repeats the request's credential in a 4xx/5xx body: the credential is
    in no HTTP answer, record, Kubernetes Event or log line the function writes."""
    service = open_service(integration)
    if not service.credentials():
        pytest.skip(f"the {integration} function holds no credential")
    event = service.event()
    ref = add_run(kube, event)
    client = function_client(integration)
    service.echo_credentials(status)
    answer = deliver(client, event)

    assert answer.status_code in (200, 429, 503)
    assert condition(kube, ref, integration)[0] != "True", "the echo was the answer"
    texts = written_texts(answer, kube, capsys)
    for secret in service.credentials():
        for where, text in texts.items():
            assert secret not in text, f"the {integration} credential is in the {where}"


# -- Kubernetes ------------------------------------------------------------------------------------


def kube_error(raised: Exception) -> Exception:
    """What ``common.kube``'s client raises when its transport raises ``raised``."""
    try:
        with _translated(RunRef("PipelineRun", "ci", "build-and-test-run-x7k2p")):
            raise raised
    except Exception as translated:
        return translated
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class KubeFault:
    verbs: tuple[str, ...]
    """The requests that fail (Kubernetes Events are best effort and never fail the delivery)."""
    error: Exception
    http: int
    outcome: str
    reason: str


ALL_VERBS = ("get", "patch", "patch_status")
KUBE_FAULTS = {
    "404-run-deleted": KubeFault(ALL_VERBS, ApiError(404, "Not Found", b""), 200, "ignored", ""),
    "409-conflict-forever": KubeFault(
        ("patch",), ApiError(409, "Conflict", b""), 503, "retry", "ConflictRetriesExhausted"
    ),
    "500": KubeFault(
        ALL_VERBS,
        ApiError(500, "Internal Server Error", b""),
        503,
        "retry",
        "KubernetesUnavailable",
    ),
    "unreachable": KubeFault(
        ALL_VERBS,
        urllib3.exceptions.MaxRetryError(  # what urllib3 raises when nothing listens
            urllib3.HTTPSConnectionPool("127.0.0.1", 6443),
            "/apis/tekton.dev/v1/namespaces/ci/pipelineruns/build-and-test-run-x7k2p",
            urllib3.exceptions.NewConnectionError(
                urllib3.connection.HTTPSConnection("127.0.0.1", 6443), "[Errno 111] Connection refused"
            ),
        ),
        503,
        "retry",
        "KubernetesUnavailable",
    ),
}


@pytest.mark.parametrize("fault", KUBE_FAULTS)
@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_kubernetes_fault(
    integration: str, fault: str, kube: MemoryRunClient, deliver: Deliver, open_service: OpenService
) -> None:
    case = KUBE_FAULTS[fault]
    service = open_service(integration)
    event = service.event()
    ref = add_run(kube, event)
    client = function_client(integration)
    error = kube_error(case.error)

    def fail(verb: str, _: RunRef) -> None:
        if verb in case.verbs:
            raise error

    kube.before_request = fail
    answer = deliver(client, event)
    kube.before_request = None

    assert (answer.status_code, body(answer)["outcome"], body(answer).get("reason", "")) == (
        case.http,
        case.outcome,
        case.reason,
    )
    assert record(kube, ref, integration) is None
    if fault == "409-conflict-forever" and not service.claims:
        # Without a claim the call is made before the record is written: once, not once per try.
        assert service.effects() == 1
    else:
        assert service.calls() == 0, "no call to the service before the run was read and claimed"
    if case.outcome == "ignored":
        return

    again = deliver(client, event)
    assert (again.status_code, body(again)["outcome"]) == (200, "reported")
    assert condition(kube, ref, integration)[0] == "True"
    assert service.effects() == 1


@pytest.mark.parametrize("fault", ["409-conflict-forever", "500"])
@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_kubernetes_failing_right_after_the_call_loses_nothing(
    integration: str, fault: str, kube: MemoryRunClient, deliver: Deliver, open_service: OpenService
) -> None:
    """The run is read (and claimed), the service is called, then every write of the record fails.

    Where a claim stays on the run, the redelivery on the same instance writes the record the
    call left unwritten (ids included) instead of waiting out the claim and calling again.
    """
    case = KUBE_FAULTS[fault]
    service = open_service(integration)
    event = service.event()
    ref = add_run(kube, event)
    client = function_client(integration)
    error = kube_error(case.error)
    allowed_patches = 1 if service.claims else 0  # the claim goes through
    patches = 0

    def fail_after_the_call(verb: str, _: RunRef) -> None:
        nonlocal patches
        if verb == "patch":
            patches += 1
            if patches > allowed_patches:
                raise error

    kube.before_request = fail_after_the_call
    answer = deliver(client, event)
    kube.before_request = None

    assert (answer.status_code, body(answer)["outcome"]) == (503, "retry")
    assert service.effects() == 1

    again = deliver(client, event)
    # Without a claim the call is repeated, as the same report: the same delivery id or
    # CloudEvent id, and GitLab answers a status already set with "Cannot transition".
    assert service.effects() == 1, "no second report"
    assert again.status_code == 200
    assert condition(kube, ref, integration)[0] == "True", "the redelivery records the report"
