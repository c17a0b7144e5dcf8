"""What an integration declares: the only place that names it and says what it needs.

Owns the declaration types; no I/O. A function file writes one ``Integration`` (its configuration
model, settings model, policy rule, default states, fault hints, idempotency, and the ``report``
that makes the external call) and exports ``handle = serve(integration)``. Everything else is
derived from the declarations the registry finds: the policy file's sections, dead letters, the
CLI, test parametrisation and the manifest checks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from common.config import ConfigT
from common.errors import IntegrationError
from common.events import Run, RunEvent, RunPhase
from common.faults import Faults
from common.policy import Destinations, TargetsNothing
from common.runclient import ClusterAccess
from common.settings import NoSettings, RuntimeSettings, ServiceSettings
from common.status import IntegrationStatus, RunState

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
EVERY_STATE = frozenset(RunPhase)
_KEYS = uuid.UUID("5b0c7b7e-3f2a-4c39-9f61-2d8e1a4b6c90")
PHASE_KEY = "phase"
"""The record key in which an integration that reports once per phase keeps the phase it reported."""


@dataclass(frozen=True)
class Report:
    """What an integration did: the record's message, reason and ids to keep (e.g. ``check-run-id``)."""

    message: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    reason: str = "Reported"


@dataclass(frozen=True)
class Context(Generic[ConfigT, SettingsT]):
    """Everything the integration's callables need: the live run, its configuration, the service
    settings, and the previous record (untrusted: re-check any id read from it before use)."""

    integration: str
    run: Run
    config: ConfigT
    settings: SettingsT
    record: IntegrationStatus | None
    runtime: RuntimeSettings
    load_children: Callable[[Run], list[Run]] = field(default=lambda _: [], repr=False)
    """Reads a run's child TaskRuns (the runtime's: ``common.children``); by default, none."""
    event: RunEvent | None = None
    """The event being handled; its run may be older than ``run``, which is live."""
    cluster: ClusterAccess | None = field(default=None, repr=False)
    """Other runs, step logs and coordination objects, when the runtime's client offers them."""

    _children: list[list[Run]] = field(default_factory=list, init=False, repr=False, compare=False)
    """The child TaskRuns once read, so a message and its step logs read them once."""

    def child_runs(self) -> list[Run]:
        """The run's child TaskRuns as they are now (``common.children``), read the first time it is asked."""
        if not self._children:
            self._children.append(self.load_children(self.run))
        return list(self._children[0])

    def recorded(self, key: str) -> str | None:
        """An id kept in the previous record's annotations, e.g. ``check-run-id``. Untrusted."""
        return self.record.annotations.get(key) if self.record else None

    @property
    def run_url(self) -> str | None:
        """The run on the Tekton Dashboard, when ``TEKTON_DASHBOARD_URL`` is set."""
        return self.runtime.run_url(self.run)

    def phase_key(self) -> str:
        """``key`` of the run's phase: one for every delivery of it, ``started`` and ``running``
        being two states of one phase, for an integration that reports once per phase."""
        return self.key(PHASE_KEY, self.run.phase.value, per_state=False)

    def key(self, *parts: str, per_state: bool = True) -> str:
        """A UUID that is the same for every delivery of this run state by this integration (and
        ``parts``, e.g. a destination): the deterministic key a service keeps (DESIGN.md §3).

        ``per_state=False`` leaves the run state out, for an integration that keys on something
        coarser it passes in ``parts`` (e-mail keys on the phase: started and running are one).
        """
        state = RunState.of(self.run)
        head = (state.status, state.reason) if per_state else ()
        joined = "/".join((self.integration, self.run.uid, *head, *parts))
        return str(uuid.uuid5(_KEYS, joined))


def always(_: Context[Any, Any]) -> bool:
    """For ``Idempotency(claim=always)``: every reported state creates something."""
    return True


def never(_: Context[Any, Any]) -> bool:
    return False


def phase_not_reported(ctx: Context[Any, Any]) -> bool:
    """``wants`` of an integration that reports once per phase (its record keeps ``PHASE_KEY``):
    not the phase its record names. The record is untrusted, but it can only hold a report back."""
    return ctx.recorded(PHASE_KEY) != ctx.run.phase.value


def _nowhere(_: Context[Any, Any]) -> Iterable[str]:
    return ()


@dataclass(frozen=True)
class Idempotency:
    """How one side effect per (run UID, integration, destination, state) is kept (DESIGN.md §3).

    ``claim``: whether this call creates something that must not be created twice, so the runtime
    claims the state with a conditional write first (a fast path). ``key``: what the service keeps
    that makes a repeat recognisable or harmless, for the docs and ``explain`` (the guarantee).
    """

    key: str
    claim: Callable[[Context[Any, Any]], bool] = never


@dataclass(frozen=True)
class Integration(Generic[ConfigT, SettingsT]):
    """One integration's declaration.

    ``declared_in`` is the declaring file (``__file__``): its folder names the integration
    (``functions/github/main.py`` is ``github``, ``functions/github_issues/main.py`` is
    ``github-issues``: annotation prefixes take no ``_``) unless ``name`` says otherwise, or an
    entry point names it. ``report`` performs the external call for ``ctx.run``'s state and returns a
    ``Report``, or raises ``PermanentError``/``TemporaryError``. ``policy`` says what its
    destinations are; ``destinations`` lists them for a run, each checked against the namespace's
    policy before anything is sent (an integration that targets nothing says so with
    ``TargetsNothing``). ``states`` are the run states reported when the run's ``on`` annotation
    does not say (a set, or a function of the settings); ``wants`` narrows further.
    """

    declared_in: str
    config: type[ConfigT]
    report: Callable[[Context[ConfigT, SettingsT]], Report]
    policy: Destinations | TargetsNothing
    idempotency: Idempotency
    settings: type[SettingsT] = NoSettings  # type: ignore[assignment]  # the default's own type
    faults: Faults = field(default_factory=lambda: Faults("Integration"))
    destinations: Callable[[Context[ConfigT, SettingsT]], Iterable[str]] = _nowhere
    states: frozenset[RunPhase] | Callable[[SettingsT], frozenset[RunPhase]] = EVERY_STATE
    wants: Callable[[Context[ConfigT, SettingsT]], bool] = always
    reports_child_taskruns: bool = False
    min_scale: int = 0
    """Replicas its Knative Service keeps warm: 1 where a cold start would delay what users watch."""
    coordinates_across_runs: bool = False
    """Keeps something that several runs share (a rollup check run, one pull-request comment):
    its creation is claimed with a Lease of a deterministic name in the runs' namespace, so its
    Service may create, get and update Leases there (derived into its RBAC)."""
    message: Callable[[Context[ConfigT, SettingsT]], Any] | None = None
    """What ``report`` sends, built without sending it: ``tekton-integrations render`` prints it.
    For an integration whose messages an operator's template may write (``Templated`` config)."""
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            folder = Path(self.declared_in).resolve().parent.name
            object.__setattr__(self, "name", folder.replace("_", "-"))

    def default_states(self, settings: SettingsT) -> frozenset[RunPhase]:
        return self.states if isinstance(self.states, frozenset) else self.states(settings)

    def reports(self, ctx: Context[ConfigT, SettingsT]) -> bool:
        """Whether the run's current state is reported: its ``on`` annotation (where the
        configuration has one), else the declared default states; then ``wants``."""
        on = getattr(ctx.config, "on", None)
        requested = on if isinstance(on, frozenset) else self.default_states(ctx.settings)
        return ctx.run.phase in requested and self.wants(ctx)

    def offline_settings(self) -> SettingsT:
        """The settings as this process sees them, or the defaults when it holds no credentials
        (the CLI explains runs without the functions' Secrets)."""
        try:
            return self.settings.load()
        except IntegrationError:
            return cast(SettingsT, self.settings.model_construct())

    def offline_context(
        self,
        run: Run,
        config: ConfigT,
        record: IntegrationStatus | None,
        runtime: RuntimeSettings,
        *,
        cluster: ClusterAccess | None = None,
        load_children: Callable[[Run], list[Run]] = lambda _: [],
    ) -> Context[ConfigT, SettingsT]:
        """The ``Context`` the function would build for ``run``, with ``offline_settings``: how the
        CLI asks an integration what it would do. Without ``load_children`` it reads no child."""
        return Context(
            integration=self.name,
            run=run,
            config=config,
            settings=self.offline_settings(),
            record=record,
            runtime=runtime,
            cluster=cluster,
            load_children=load_children,
        )

    def needs_claim(self, ctx: Context[ConfigT, SettingsT]) -> bool:
        return self.idempotency.claim(ctx)
