"""The integration runtime: what happens to one Tekton event, whatever the service.

An integration declares itself (``common.integration``); the runtime does the rest (DESIGN.md §2-4):

1. ignore runs that did not opt in, and child TaskRuns, without any API call;
2. decide on the event's own object, and prove it live before any side effect: Tekton's events
   carry the persisted run with its ``resourceVersion``, so the claim, written conditionally on
   that version, succeeds only if the event is still the live run. A call without a claim, and a
   refusal to record, read the live run first instead (one request either way; a read writes
   nothing). On a conflict, or for an event without a ``resourceVersion``, the live run is read
   and the decision is made again on *its* state;
3. skip duplicates and never regress a record that already reports a finished run;
4. validate the configuration and the service settings, recording ``InvalidConfiguration`` or
   ``<Service>NotConfigured`` when they are wrong;
5. keep to the states the run asks for (its ``on`` annotation, else the declared defaults);
6. check every destination against the namespace's policy (an integration with destinations
   cannot skip this: its declared rule is applied);
7. claim with a conditional write before a side effect that must not repeat;
8. call ``report`` within the service's total deadline (``common.deadline``) and turn its result
   or error into a record, written conditionally, re-reading and deciding again on a conflict,
   within a bound. Every message passes the redaction boundary before it is written.

Every path ends in an ``Outcome``; nothing raises out of ``Processor.process``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, Literal

from common import deadline, metrics, tracing
from common.children import read_children
from common.config import ConfigT, load_config, opted_in, settings_from_annotations
from common.errors import (
    ConflictError,
    IntegrationError,
    PermanentError,
    RunNotFoundError,
    TargetNotAllowedError,
    TemporaryError,
)
from common.events import Run, RunEvent
from common.integration import Context, Integration, SettingsT
from common.policy import Destinations, load_policy
from common.redaction import redact
from common.runclient import ClusterAccess, RunClient
from common.settings import RuntimeSettings
from common.status import ConditionStatus, IntegrationStatus, RunState, new_record
from common.store import StatusStore, ref_of

log = logging.getLogger(__name__)

MAX_DECISIONS = 4
"""Conditional writes lost in a row before the event is handed back for redelivery."""
MAX_UNWRITTEN = 1000
"""Records kept in memory after a side effect whose record could not be written."""
BUSY_RETRY_AFTER = 2.0
"""Seconds a delivery waits while another one holds the claim for a different run state."""


OutcomeKind = Literal["reported", "failed", "retry", "ignored"]


@dataclass(frozen=True)
class Outcome:
    """How one event ended, and the HTTP answer that tells the sender whether to redeliver."""

    kind: OutcomeKind
    detail: str
    reason: str = ""
    retry_after: float | None = None

    @property
    def http_status(self) -> int:
        if self.kind != "retry":
            return 200
        return 429 if self.retry_after else 503


def screen(integration: Integration[Any, Any], event: RunEvent) -> Outcome | None:
    """Why the event is ignored without any API call (not opted in, a child TaskRun), else ``None``."""
    run = event.run
    if not opted_in(integration.name, run.annotations):
        return Outcome("ignored", f"the run has no {integration.name}.integrations.tekton.dev annotations")
    if run.parent_pipelinerun and not integration.reports_child_taskruns:
        return Outcome("ignored", f"child of PipelineRun {run.parent_pipelinerun}, which is reported instead")
    return None


class Processor(Generic[ConfigT, SettingsT]):
    """Runs one integration against events, with one run client and one set of settings."""

    def __init__(
        self,
        integration: Integration[ConfigT, SettingsT],
        client: RunClient,
        settings: RuntimeSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.integration = integration
        self.client = client
        self.settings = settings
        self.clock = clock
        self.store = StatusStore(client, integration.name, settings.status_integrations)
        self._unwritten: dict[tuple[str, str, str], IntegrationStatus] = {}
        """Records of claimed side effects whose write failed, by run UID and state: the next
        delivery of that state here writes them, instead of waiting out the claim and repeating
        the side effect without the ids it returned."""
        self._unwritten_lock = threading.Lock()

    def process(self, event: RunEvent) -> Outcome:
        """Handle one event; never raises."""
        run = event.run
        screened = screen(self.integration, event)
        if screened is not None:
            return screened
        try:
            return self._decisions(event)
        except RunNotFoundError:
            return Outcome("ignored", "the run no longer exists")
        except TemporaryError as e:
            return Outcome("retry", e.message, e.reason, e.retry_after)
        except IntegrationError as e:
            return Outcome("failed", e.message, e.reason)
        except Exception:
            log.exception("unexpected error while handling %s", ref_of(run))
            return Outcome("retry", "internal error; see the function's log", "InternalError")

    def _decisions(self, event: RunEvent) -> Outcome:
        """Decide on the event's object first; read the live run only when that is not proven live."""
        if event.run.resource_version:
            try:
                decided = self._decide(event, event.run, proven=False)
            except ConflictError:
                decided = None  # the event is not the live run (a late or repeated event): read it
            if decided is not None:
                return decided
        for _ in range(MAX_DECISIONS):
            with tracing.span("read run"):
                live = self.store.load(ref_of(event.run))
            try:
                outcome = self._decide(event, live, proven=True)
            except ConflictError:
                metrics.write_conflict(self.integration.name, "claim")
                continue  # the run changed under us: re-read and decide again
            if outcome is not None:  # always: a decision on the run as read ends in an outcome
                return outcome
        return Outcome("retry", "the run kept changing while being recorded", "ConflictRetriesExhausted")

    def _decide(self, event: RunEvent, live: Run, *, proven: bool) -> Outcome | None:
        """Decide on ``live``: the run as read (``proven``), or the event's own object.

        The event's object may be ignored on its own word (what it shows is reported already, or
        not asked for: its own event, or a later one, reports the rest), and the claim's conditional
        write proves it live. Anything else (a call without a claim, a refusal to record, a claim
        in flight) needs the live run first: ``None`` asks for it.
        """
        if live.uid != event.run.uid:
            return Outcome("ignored", "the event is about an earlier run with the same name")
        if not opted_in(self.integration.name, live.annotations):
            return Outcome("ignored", "the run no longer carries this integration's annotations")
        record = self.store.read(live)
        if not proven and record is not None and record.claim is not None:
            return None  # in flight, or recorded since, or left unwritten here: the live run says
        state = RunState.of(live)
        unwritten = self._take_unwritten(live, record, state)
        if unwritten is not None:  # the side effect happened; only its record is missing
            done = unwritten.condition
            return self._record(
                live, live, record, done.status, done.reason, done.message, unwritten.annotations
            )
        skip = self._skip_reason(record, state)
        if skip is not None:
            return skip
        try:
            config = load_config(self.integration.config, self.integration.name, live.annotations)
            settings = self.integration.settings.load()
        except PermanentError as e:
            # Only the live run's own configuration is refused on the run.
            return self._record(live, live, record, "False", e.reason, e.message, {}) if proven else None
        ctx = Context(
            integration=self.integration.name,
            run=live,
            config=config,
            settings=settings,
            record=record,
            runtime=self.settings,
            load_children=lambda run: read_children(self.client, run),
            event=event,
            cluster=self.client if isinstance(self.client, ClusterAccess) else None,
        )
        if not self.integration.reports(ctx):
            return Outcome("ignored", f"{live.phase.value} is not a state this run asks to report")
        try:
            self._check_policy(ctx)
        except TargetNotAllowedError as e:
            return self._record(live, live, record, "False", e.reason, e.message, {}) if proven else None
        acted_on = live
        claims = self.integration.needs_claim(ctx)
        if not proven and not claims:
            return None  # no conditional write comes before the call to prove the state live: read it
        if claims:
            claim = new_record(
                self.integration.name,
                live,
                "Unknown",
                "Reporting",
                f"reporting {live.phase.value}",
                previous=record,
                claim=True,
                now=self.clock(),
            )
            with tracing.span("claim"):
                live = self.store.write(live, claim)
            if not proven and not self._stored_as_sent(acted_on, live):
                # Not Tekton's object (one resourceVersion is one object): take back the claim made
                # on its word and decide on the run as it is, as for any event that is not live.
                log.warning("%s: the event's run is not the run stored at its resourceVersion", ref_of(live))
                self.store.withdraw(live)
                return None
            ctx = replace(ctx, run=live, record=claim)
            record = claim
        return self._act(ctx, acted_on, record)

    def _stored_as_sent(self, sent: Run, stored: Run) -> bool:
        """Whether the run as the claim's answer has it is the event's object: the same state and
        configuration. It always is for Tekton's events (one resourceVersion, one object); an event
        re-addressed to the run's version by anyone else never drives a call."""
        name = self.integration.name
        return (stored.uid, stored.generation, stored.state) == (sent.uid, sent.generation, sent.state) and (
            settings_from_annotations(name, stored.annotations)
            == settings_from_annotations(name, sent.annotations)
        )

    def _check_policy(self, ctx: Context[ConfigT, SettingsT]) -> None:
        """Refuse destinations the namespace's policy does not allow (DESIGN.md §4)."""
        rule = self.integration.policy
        values = list(self.integration.destinations(ctx))
        if not isinstance(rule, Destinations):
            if values:
                raise TargetNotAllowedError(
                    f"{self.integration.name} declares that it targets nothing, yet named {len(values)} "
                    "destination(s): refused"
                )
            return
        if values:
            namespace_policy = load_policy().for_namespace(ctx.run.namespace)
            for value in values:
                namespace_policy.require(self.integration.name, rule, value)

    def _skip_reason(self, record: IntegrationStatus | None, state: RunState) -> Outcome | None:
        if record is None:
            return None
        if record.run_state.is_done and not state.is_done:
            return Outcome("ignored", "the record already reports the finished run")
        if record.is_done_for(state):
            return Outcome("ignored", "duplicate: this state is already reported")
        if record.claim is not None and record.claim.is_fresh(self.clock()):
            # Asked again later rather than ignored: if the claimant fails before recording,
            # this delivery is what still reports the state (once the claim is recorded or stale).
            which = "this" if record.claim.state == state else "an earlier"
            metrics.claim_wait(self.integration.name)
            return Outcome("retry", f"another delivery is reporting {which} state", "Busy", BUSY_RETRY_AFTER)
        return None

    def _act(
        self, ctx: Context[ConfigT, SettingsT], acted_on: Run, record: IntegrationStatus | None
    ) -> Outcome:
        try:
            with deadline.within(ctx.settings.timeout_seconds) as scope:
                service = self.integration.faults.service
                try:
                    with (
                        tracing.span(f"call {service}"),
                        metrics.service_call(self.integration.name, service),
                    ):
                        report = self.integration.report(ctx)
                except Exception as e:
                    if not scope.expired:
                        raise
                    cut_off = self._cut_off(ctx)
                    if isinstance(e, IntegrationError):
                        cut_off.annotations.update(e.annotations)  # e.g. the delivery id it tried
                    raise cut_off from e
                if scope.expired:  # what a cut-off call read may look complete: it is not
                    raise self._cut_off(ctx)
        except PermanentError as e:
            return self._record(ctx.run, acted_on, record, "False", e.reason, e.message, e.annotations)
        except TemporaryError as e:
            outcome = self._record(ctx.run, acted_on, record, "Unknown", e.reason, e.message, e.annotations)
            return replace(outcome, kind="retry", retry_after=e.retry_after)
        except Exception:
            log.exception("%s failed unexpectedly on %s", self.integration.name, ref_of(acted_on))
            outcome = self._record(
                ctx.run,
                acted_on,
                record,
                "Unknown",
                "InternalError",
                "unexpected error; see the function's log",
                {},
            )
            return replace(outcome, kind="retry")
        return self._record(
            ctx.run, acted_on, record, "True", report.reason, report.message, report.annotations
        )

    def _cut_off(self, ctx: Context[ConfigT, SettingsT]) -> TemporaryError:
        seconds = ctx.settings.timeout_seconds
        variable = type(ctx.settings).variable("timeout_seconds")
        error = self.integration.faults.timeout(f"the {self.integration.name} call", seconds)
        error.message += f" (the total deadline, {variable}); the call was cut off"
        return error

    def _record(  # noqa: PLR0917 -- private; every caller passes the full decision
        self,
        target: Run,
        acted_on: Run,
        previous: IntegrationStatus | None,
        status: ConditionStatus,
        reason: str,
        message: str,
        annotations: Mapping[str, str],
    ) -> Outcome:
        """Write the record for what was done on ``acted_on``'s state, after a side effect.

        The side effect is not repeated: on a conflict the run is re-read and the record is
        written again on top, unless another delivery meanwhile recorded this state or a later one.
        """
        kind = _OUTCOME_OF[status]
        message = redact(message)
        annotations = {key: redact(value) for key, value in annotations.items()}
        for _ in range(MAX_DECISIONS):
            record = new_record(
                self.integration.name,
                acted_on,
                status,
                reason,
                message,
                previous=previous,
                annotations=dict(annotations),
                now=self.clock(),
            )
            try:
                with tracing.span("write record"):
                    self.store.write(target, record)
            except TemporaryError:
                self._keep_unwritten(target, previous, record)
                raise
            except ConflictError:
                metrics.write_conflict(self.integration.name, "record")
                with tracing.span("read run"):
                    target = self.store.load(ref_of(target))
                fresh = self.store.read(target)
                if fresh is not None and fresh != previous and _supersedes(fresh, record.run_state):
                    return Outcome(kind, message, reason)
                previous = fresh
                continue
            if status != "True":
                self.client.record_event(
                    ref_of(target),
                    target.uid,
                    "IntegrationFailed",
                    redact(f"{self.integration.name}: {reason}: {message}"),
                )
            return Outcome(kind, message, reason)
        self._keep_unwritten(target, previous, record)
        raise TemporaryError("ConflictRetriesExhausted", "the run kept changing while being recorded")

    def _keep_unwritten(
        self, run: Run, previous: IntegrationStatus | None, record: IntegrationStatus
    ) -> None:
        """Remember a record that follows a claim: the claim stays on the run until it is written."""
        if previous is None or previous.claim is None:
            return
        with self._unwritten_lock:
            if len(self._unwritten) >= MAX_UNWRITTEN:
                self._unwritten.pop(next(iter(self._unwritten)))
            self._unwritten[(run.uid, record.run_state.status, record.run_state.reason)] = record

    def _take_unwritten(
        self, run: Run, record: IntegrationStatus | None, state: RunState
    ) -> IntegrationStatus | None:
        if record is None or record.claim is None or record.claim.state != state:
            return None
        with self._unwritten_lock:
            return self._unwritten.pop((run.uid, state.status, state.reason), None)


_OUTCOME_OF: Mapping[ConditionStatus, OutcomeKind] = {
    "True": "reported",
    "False": "failed",
    "Unknown": "retry",
}


def _supersedes(fresh: IntegrationStatus, state: RunState) -> bool:
    """Whether a record written by another delivery already covers ``state`` or a later one."""
    if fresh.is_done_for(state):
        return True
    return _rank(fresh.run_state) > _rank(state) and fresh.condition.status != "Unknown"


def _rank(state: RunState) -> int:
    return {"None": 0, "Unknown": 1}.get(state.status, 2)
