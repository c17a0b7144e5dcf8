"""What the CLI knows about one integration on one run: its settings, its record, and whether the
record is behind the run (so ``resync`` should deliver the run's event again).

Records are read with ``common.store.StatusStore``, so a record inherited from a parent run or
one that cannot be parsed counts as absent, exactly as the functions see it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from common.cli.integrations import Loaded, names_on
from common.cli.session import Cluster
from common.config import RECORD_KEY, annotation_key, load_config, opted_in
from common.errors import InvalidConfigurationError
from common.events import Run
from common.integration import Integration
from common.settings import RuntimeSettings
from common.status import IntegrationStatus, RunState
from common.store import StatusStore


@dataclass(frozen=True)
class IntegrationView:
    """One integration named on a run."""

    name: str
    configured: bool
    """The run carries settings for it (it opted in), not only a record."""
    record: IntegrationStatus | None
    stored: str | None
    """The raw record annotation, present even when ``record`` is ``None`` (inherited, unreadable)."""

    @property
    def ids(self) -> Mapping[str, str]:
        """What the record keeps to find its report again: ``check-run-id``, Slack ``ts``..."""
        return self.record.annotations if self.record else {}

    def stored_problem(self, run: Run) -> str | None:
        """Why a stored record is not this run's, if it is not."""
        if self.stored is None or self.record is not None:
            return None
        try:
            other = IntegrationStatus.model_validate_json(self.stored)
        except ValidationError:
            return "the record annotation cannot be parsed: the functions treat it as absent"
        if other.run_uid != run.uid:
            return f"the record was copied from another run (UID {other.run_uid}): it is ignored"
        return "the record annotation cannot be read"


def views_of(cluster: Cluster, run: Run, only: str | None = None) -> list[IntegrationView]:
    """Every integration the run names (or just ``only``), in name order."""
    names = [n for n in names_on(run.annotations) if only is None or n == only]
    return [
        IntegrationView(
            name=name,
            configured=opted_in(name, run.annotations),
            record=StatusStore(cluster, name).read(run),
            stored=run.annotations.get(annotation_key(name, RECORD_KEY)),
        )
        for name in names
    ]


def state_text(status: str, reason: str) -> str:
    """A run state in words: ``Queued``, ``Running``, ``Succeeded``, ``Failed: StepFailed``."""
    if status == "True":
        return "Succeeded" if reason in ("", "Succeeded", "Completed") else f"Succeeded: {reason}"
    if status == "False":
        return f"Failed: {reason}" if reason and reason != "Failed" else "Failed"
    if status == "Unknown":
        return "Running" if reason in ("", "Running", "Started") else f"Running ({reason})"
    return "Queued"


NeedReason = Literal["NoRecord", "NotFinal", "Unknown"]


@dataclass(frozen=True)
class Need:
    """A run whose event should be delivered again to one integration, and why."""

    run: Run
    integration: str
    why: NeedReason
    detail: str


def need_of(
    run: Run, view: IntegrationView, loaded: Loaded, now: datetime, settings: RuntimeSettings
) -> Need | None:
    """Whether ``view``'s record lags behind ``run``.

    Needed when the run is finished and the record is missing or answers an earlier state, or
    when the record's condition is ``Unknown`` (a retry is pending). Not needed while another
    delivery holds a fresh claim, for child TaskRuns the integration does not report, or for a
    state the run's settings do not ask to report (the function would ignore it).
    """
    if not view.configured:
        return None
    integration = loaded.integration
    if run.parent_pipelinerun and not (integration and integration.reports_child_taskruns):
        return None
    record, state = view.record, RunState.of(run)
    if record is not None and record.claim is not None and record.claim.is_fresh(now):
        return None
    need: Need | None = None
    if record is not None and record.condition.status == "Unknown":
        detail = f"{record.condition.reason}: {record.condition.message}".rstrip(": ")
        need = Need(run, view.name, "Unknown", detail)
    elif state.is_done and record is None:
        need = Need(
            run, view.name, "NoRecord", f"the run is {state_text(state.status, state.reason)}; no record"
        )
    elif state.is_done and record is not None and record.run_state != state:
        was = state_text(record.run_state.status, record.run_state.reason)
        need = Need(
            run,
            view.name,
            "NotFinal",
            f"the record reports {was}; the run is {state_text(state.status, state.reason)}",
        )
    if need is None or integration is None:
        return need
    return need if wants(integration, run, record, settings) else None


def wants(
    integration: Integration[Any, Any], run: Run, record: IntegrationStatus | None, settings: RuntimeSettings
) -> bool:
    """The integration's own ``wants`` for the run as it is; invalid settings still need a record."""
    try:
        config = load_config(integration.config, integration.name, run.annotations)
    except InvalidConfigurationError:
        return True
    try:
        return integration.reports(integration.offline_context(run, config, record, settings))
    except Exception:  # a function's own predicate failing is the function's business on delivery
        return True
