"""Claims across runs with a Lease: the shared thing is created once, whoever crashes where."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common import samples
from common.coordination import (
    LEASE_API,
    LEASES,
    SHARED_ID,
    SharedClaim,
    claim_shared,
    find_or_create,
    lease_name,
)
from common.errors import TemporaryError
from common.events import Run, parse_run
from common.runclient import MemoryRunClient

START = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)
KEY = "rollup/acme/widget-service/abc/tekton-all"


class Service:
    """Things at a service, found by their key, as check runs are by ``external_id``."""

    def __init__(self) -> None:
        self.things: dict[str, str] = {}
        self.created = 0

    def find(self, hint: str | None) -> str | None:
        if hint is not None and hint in self.things.values():
            return hint
        return self.things.get(KEY)

    def create(self) -> str:
        self.created += 1
        self.things[KEY] = f"thing-{self.created}"
        return self.things[KEY]


@pytest.fixture
def owner() -> Run:
    kind, obj = samples.run_object(samples.load("pipelinerun-running"))
    return parse_run(kind, obj)


def claim(kube: MemoryRunClient, owner: Run, holder: str, at: datetime = START) -> SharedClaim:
    return claim_shared(kube, "ci", KEY, holder, integration="github", owner=owner, duration=25, at=at)


def ensure(shared: SharedClaim, service: Service, at: datetime = START) -> tuple[str, bool]:
    return find_or_create(
        shared,
        find=service.find,
        create=service.create,
        id_of=lambda thing: thing,
        what="it",
        clock=lambda: at,
    )


def lease(kube: MemoryRunClient) -> dict[str, Any]:
    return kube.objects[(LEASE_API, LEASES, "ci", lease_name("github", KEY))]


def test_the_first_delivery_creates_the_thing_and_records_its_id(kube: MemoryRunClient, owner: Run) -> None:
    service = Service()
    assert ensure(claim(kube, owner, "a"), service) == ("thing-1", True)
    assert lease(kube)["metadata"]["annotations"][SHARED_ID] == "thing-1"
    assert ensure(claim(kube, owner, "b"), service) == ("thing-1", False)
    assert service.created == 1


def test_a_fresh_holder_that_has_not_created_it_yet_is_waited_for(kube: MemoryRunClient, owner: Run) -> None:
    service = Service()
    claim(kube, owner, "a")  # and "a" is still on its way to the service
    with pytest.raises(TemporaryError) as raised:
        ensure(claim(kube, owner, "b", START + timedelta(seconds=5)), service, START + timedelta(seconds=5))
    assert raised.value.reason == "Busy"
    assert raised.value.retry_after == 5.0
    assert service.created == 0


def test_a_holder_that_created_it_but_crashed_before_recording_it_is_not_waited_for(
    kube: MemoryRunClient, owner: Run
) -> None:
    service = Service()
    claim(kube, owner, "a")
    service.create()  # "a" crashed here
    assert ensure(claim(kube, owner, "b"), service) == ("thing-1", False)
    assert lease(kube)["metadata"]["annotations"][SHARED_ID] == "thing-1"


def test_after_the_lease_lapses_it_is_taken_over_and_the_thing_created_once(
    kube: MemoryRunClient, owner: Run
) -> None:
    service = Service()
    claim(kube, owner, "a")  # "a" crashed before it called the service
    later = START + timedelta(seconds=26)
    assert ensure(claim(kube, owner, "b", later), service, later) == ("thing-1", True)
    assert lease(kube)["spec"]["holderIdentity"] == "b"
    assert lease(kube)["spec"]["leaseTransitions"] == 1
    assert ensure(claim(kube, owner, "c", later), service, later) == ("thing-1", False)
    assert service.created == 1


def test_two_takeovers_of_one_lapsed_lease_let_one_through(kube: MemoryRunClient, owner: Run) -> None:
    claim(kube, owner, "a")
    later = START + timedelta(seconds=60)
    first, second = claim(kube, owner, "b", later), claim(kube, owner, "c", later)  # both read it lapsed
    assert first.take_over(later, "it").mine
    with pytest.raises(TemporaryError) as raised:
        second.take_over(later, "it")
    assert raised.value.reason == "Busy"
    assert lease(kube)["spec"]["holderIdentity"] == "b"


def test_a_recorded_id_the_service_does_not_confirm_is_not_used(kube: MemoryRunClient, owner: Run) -> None:
    """Whoever may edit the namespace may edit the Lease: its id is only a hint."""
    service = Service()
    ensure(claim(kube, owner, "a"), service)
    kube.patch_object(
        LEASE_API,
        LEASES,
        "ci",
        lease_name("github", KEY),
        {"metadata": {"annotations": {SHARED_ID: "forged"}}},
    )
    assert ensure(claim(kube, owner, "b"), service) == ("thing-1", False)
    assert lease(kube)["metadata"]["annotations"][SHARED_ID] == "thing-1"


def test_a_lease_collected_with_its_run_is_made_again_and_the_thing_found(
    kube: MemoryRunClient, owner: Run
) -> None:
    service = Service()
    ensure(claim(kube, owner, "a"), service)
    del kube.objects[(LEASE_API, LEASES, "ci", lease_name("github", KEY))]  # its run was pruned
    assert ensure(claim(kube, owner, "b"), service) == ("thing-1", False)
    assert service.created == 1
