"""The IntegrationStatus record an integration keeps on each run it reports.

Pure: no I/O. The TEP-0004 shape (name, observedGeneration, conditions, annotations) plus the
bookkeeping that makes side effects idempotent (DESIGN.md §2-3): the UID of the run the record
describes, the run state it acted on, how many attempts that state took, and an in-flight claim.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.config import DOMAIN
from common.errors import clip
from common.events import Run

log = logging.getLogger(__name__)

ConditionStatus = Literal["True", "False", "Unknown"]
MAX_MESSAGE = 512
"""Longest condition message stored: runs stay far below the 256 KiB annotation limit."""
REDELIVERABLE_REASONS = frozenset({"DeliveryFailed"})
"""Final conditions that a later delivery of the same state may still repair: the dead-letter
receiver's record says the service was never told, not that it refused."""
CLAIM_TTL = timedelta(seconds=120)
"""How long a claim protects an in-flight side effect before another delivery may take over."""


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", defer_build=True)


class StatusCondition(_Model):
    """A Kubernetes-style condition; ``type`` is always ``Succeeded``."""

    type: str = "Succeeded"
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: str = Field(alias="lastTransitionTime")


class RunState(_Model):
    """The run's ``Succeeded`` condition (status, reason) that a record's action answered."""

    status: str
    reason: str = ""

    @classmethod
    def of(cls, run: Run) -> RunState:
        status, reason = run.state
        return cls(status=status, reason=reason)

    @property
    def is_done(self) -> bool:
        return self.status in ("True", "False")


class Claim(_Model):
    """Marks a side effect that must not repeat as in flight for ``state`` since ``at``."""

    state: RunState
    at: datetime

    def is_fresh(self, now: datetime) -> bool:
        return now - self.at < CLAIM_TTL


class IntegrationStatus(_Model):
    """One integration's record on one run, stored as JSON in ``<name>.integrations.tekton.dev/status``."""

    name: str
    observed_generation: int = Field(alias="observedGeneration")
    conditions: list[StatusCondition]
    annotations: dict[str, str] = Field(default_factory=dict)
    run_uid: str = Field(alias="runUID")
    run_state: RunState = Field(alias="runState")
    attempts: int = 1
    claim: Claim | None = None

    @property
    def condition(self) -> StatusCondition:
        return self.conditions[0]

    def is_done_for(self, state: RunState) -> bool:
        """True when this record already answers ``state`` with a final condition."""
        return (
            self.run_state == state
            and self.condition.status != "Unknown"
            and self.condition.reason not in REDELIVERABLE_REASONS
        )

    def to_json(self) -> str:
        return json.dumps(
            self.model_dump(mode="json", by_alias=True, exclude_none=True), separators=(",", ":")
        )

    def tep_view(self) -> dict[str, object]:
        """Only the TEP-0004 IntegrationStatus fields, for ``status.integrations``."""
        return self.model_dump(
            mode="json",
            by_alias=True,
            include={"name", "observed_generation", "conditions", "annotations"},
        )

    @classmethod
    def from_json(cls, value: str) -> IntegrationStatus | None:
        """Parse a stored record; an unreadable one is logged and treated as absent."""
        try:
            return cls.model_validate_json(value)
        except ValidationError as e:
            log.warning("ignoring unreadable integration record: %s", clip(str(e), 300))
            return None


def new_record(
    integration: str,
    run: Run,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    previous: IntegrationStatus | None,
    annotations: dict[str, str] | None = None,
    claim: bool = False,
    now: datetime | None = None,
) -> IntegrationStatus:
    """The record that follows ``previous`` once ``run``'s current state was acted on.

    ``lastTransitionTime`` moves only when the condition's status changes; ``attempts`` counts
    tries at the same run state; annotations (ids such as ``check-run-id``) carry over.
    """
    now = now or datetime.now(UTC)
    state = RunState.of(run)
    transition = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    attempts = 1
    kept: dict[str, str] = {}
    if previous is not None:
        kept = dict(previous.annotations)
        if previous.condition.status == status:
            transition = previous.condition.last_transition_time
        if previous.run_state == state:
            attempts = previous.attempts + (0 if previous.claim else 1)
    return IntegrationStatus(
        name=f"{integration}.{DOMAIN}",
        observed_generation=run.generation,
        conditions=[
            StatusCondition(
                status=status,
                reason=reason,
                message=clip(message, MAX_MESSAGE),
                last_transition_time=transition,
            )
        ],
        annotations={**kept, **(annotations or {})},
        run_uid=run.uid,
        run_state=state,
        attempts=attempts,
        claim=Claim(state=state, at=now) if claim else None,
    )
