"""Write integration records on fake-cluster runs, as the functions would have."""

from __future__ import annotations

from datetime import datetime

from common.runclient import RunRef
from common.status import ConditionStatus, IntegrationStatus, new_record
from common.store import StatusStore
from tests.cli.conftest import NOW
from tests.cli.fakes import FakeCluster

FIVE_MINUTES_AGO = NOW.replace(minute=25)


def put_record(
    cluster: FakeCluster,
    ref: RunRef,
    integration: str,
    status: ConditionStatus,
    reason: str,
    *,
    message: str = "",
    annotations: dict[str, str] | None = None,
    claim: bool = False,
    at: datetime = FIVE_MINUTES_AGO,
) -> IntegrationStatus:
    """Record ``status``/``reason`` for the run's current state, written at ``at`` (default 5 minutes ago)."""
    store = StatusStore(cluster, integration)
    run = store.load(ref)
    record = new_record(
        integration,
        run,
        status,
        reason,
        message or f"{integration} {reason}",
        previous=None,
        annotations=annotations,
        claim=claim,
        now=at,
    )
    store.write(run, record)
    return record
