"""The plain-language next step ``explain`` ends each integration with.

Pure: decides from what ``explain`` gathered. The steps name real commands; removing a record
(``kubectl annotate ... <name>.integrations.tekton.dev/status-``) is the documented way to have a
finished run reported again, because the functions never report a state twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.cli.diagnose import PolicyCheck, Settings
from common.cli.integrations import Loaded, closest
from common.cli.records import IntegrationView, state_text
from common.config import DOMAIN, RECORD_KEY, annotation_key
from common.events import Run
from common.status import IntegrationStatus, RunState


@dataclass(frozen=True)
class Situation:
    """Everything known about one integration on one run."""

    run: Run
    view: IntegrationView
    loaded: Loaded
    settings: Settings | None
    policy: list[PolicyCheck]
    wants: bool
    claim_in_flight: bool


def next_step(s: Situation) -> str:
    run, view, record = s.run, s.view, s.view.record
    name = view.name
    if s.loaded.integration is None:
        guess = closest(name)
        meant = f" Did you mean {guess}.{DOMAIN}/...?" if guess else ""
        return (
            f"{name}.{DOMAIN} is not an integration this installation runs, so nothing reads these "
            f"annotations.{meant} Fix the annotation names where the run is created "
            "(TriggerTemplate, PipelineRun)."
        )
    if not view.configured:
        return f"The run carries a {name} record but no {name} settings: {name} will not report it."
    if s.settings is not None and s.settings.problems:
        again = _report_again(run, name, fix_first=True, record=record)
        return (
            "Fix the annotations above where the run is created (TriggerTemplate, PipelineRun) so that "
            f"later runs are reported. For this run: {again}"
        )
    refused = [check for check in s.policy if not check.allowed]
    refused_by_record = record is not None and record.condition.reason == "TargetNotAllowed"
    if refused_by_record or (record is None and refused):
        # The record decides; without one, the policy read now predicts what the function will do.
        what = f"{refused[0].value!r} ({refused[0].field})" if refused else "its destination"
        again = _report_again(run, name, fix_first=False, record=record)
        again = again if again.startswith("then ") else f"then {again}"
        if refused_by_record and s.policy and not refused:
            return (
                f"The policy refused {name}'s destination when the function ran, and the policy read now "
                f"allows it: to have the run reported, {again.removeprefix('then ')}"
            )
        return (
            f"The policy refuses {what} for namespace {run.namespace}: ask the cluster administrator to "
            f"allow it, or target an allowed destination; {again}"
        )
    if run.parent_pipelinerun and not s.loaded.integration.reports_child_taskruns:
        return (
            f"{name} reports child TaskRuns through their PipelineRun: "
            f"run `tekton-integrations explain pipelinerun/{run.parent_pipelinerun} -n {run.namespace}`."
        )
    state = RunState.of(run)
    current = state_text(state.status, state.reason)
    if s.claim_in_flight:
        return f"A delivery is reporting {current} right now: look again in a minute."
    if record is None:
        return _no_record(run, name, current, s.wants)
    condition = record.condition
    if condition.status == "Unknown":
        return (
            f"{name} is waiting to retry ({condition.reason}): the sender redelivers the event. If it stays "
            f"Unknown, fix the cause above, then run {_resync(run, name)}."
        )
    if condition.status == "False":
        again = _report_again(run, name, fix_first=False, record=record)
        return f"{name} gave up: {condition.message} Fix the cause, then {again}"
    if record.run_state == state:
        return f"Nothing to do: {name} reported the run's current state ({current}): {condition.message}"
    if state.is_done and s.wants:
        earlier = state_text(record.run_state.status, record.run_state.reason)
        return (
            f"{name} reported an earlier state ({earlier}) but not {current}: the event was lost or is "
            f"still being retried. Run {_resync(run, name)}."
        )
    return f"Nothing to do: {name} reports only the states its settings ask for, and not {current}."


def _no_record(run: Run, name: str, current: str, wants: bool) -> str:
    if not wants:
        return f"Nothing to do: the run's {name} settings do not ask to report {current}."
    if RunState.of(run).is_done:
        return (
            f"No event for this run reached the {name} function. Check that Tekton sends events "
            "(ConfigMap config-events: sink), that the function is running, and the run's Events for "
            f"CloudEventFailed; then run {_resync(run, name)}."
        )
    return (
        f"No event for this run reached the {name} function yet. If it stays that way, check that Tekton "
        "sends events (ConfigMap config-events: sink) and that the function is running; "
        f"{_resync(run, name)} delivers the final state once the run ends."
    )


def _resync(run: Run, name: str) -> str:
    return f"`tekton-integrations resync -n {run.namespace} --integration {name}`"


def _report_again(run: Run, name: str, *, fix_first: bool, record: IntegrationStatus | None) -> str:
    edit = (
        f"correct its annotations with `kubectl annotate --overwrite {run.kind.lower()}/{run.name} "
        f"-n {run.namespace} KEY=VALUE`, "
        if fix_first
        else ""
    )
    if record is None:
        return f"{edit}then run {_resync(run, name)}."
    return (
        f"{edit}remove its record with `kubectl annotate {run.kind.lower()}/{run.name} -n {run.namespace} "
        f"{annotation_key(name, RECORD_KEY)}-` (the function then reports it afresh: a new check run or "
        f"message), and run {_resync(run, name)}."
    )
