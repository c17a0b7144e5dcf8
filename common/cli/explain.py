"""``tekton-integrations explain RUN``: why a run was (not) reported, integration by integration.

For each integration the run names: its parsed settings or each bad annotation with the fix, what
the namespace's policy allows, the record (condition, attempts, last error, the state it answered),
the run's Kubernetes Events from the integrations, and a plain-language next step.

The policy is read from ``--policy FILE``, else ``$TI_POLICY_FILE``, else the ConfigMap the
deployment generates (label ``app.kubernetes.io/name=tekton-integrations``, key ``policy.yaml``) in
``--integrations-namespace``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from common.cli import integrations
from common.cli.advice import Situation, next_step
from common.cli.diagnose import PolicyCheck, check_policy, check_settings
from common.cli.options import Takes, add_to
from common.cli.output import condition_colour, dump, format_age, parse_time
from common.cli.records import IntegrationView, state_text, views_of, wants
from common.cli.runs import RUN_FORMS, commits_of, find_run
from common.cli.session import Session
from common.config import DOMAIN
from common.errors import IntegrationError
from common.events import Run
from common.integration import Context, Integration
from common.settings import RuntimeSettings
from common.status import IntegrationStatus
from common.store import ref_of
from common.summary import headline

INTEGRATIONS_NAMESPACE = "tekton-integrations"
POLICY_LABEL = "app.kubernetes.io/name=tekton-integrations"
POLICY_KEY = "policy.yaml"
COMPONENT = "tekton-integrations"
TEKTON_EVENT_REASONS = frozenset({"CloudEventFailed", "CloudEventSent"})


TAKES = Takes(cluster=True, outputs=("text", "json", "yaml"))
DESCRIPTION = """\
Explain why a run was, or was not, reported, integration by integration, and what to do.

For each integration the run names: its settings (or each bad annotation with the fix), what
the cluster's policy allows, the record the function wrote (condition, attempts, last error),
the run's Kubernetes Events from the integrations, and a next step. The verdict follows the
record: when the cluster's policy disagrees with it, that is reported as a disagreement.

RUN is NAME, pipelinerun/NAME or taskrun/NAME (also pr/NAME, tr/NAME); a bare name is looked up
as a PipelineRun, then as a TaskRun.

The policy is read from --policy FILE, else $TI_POLICY_FILE, else the ConfigMap the deployment
generates (label app.kubernetes.io/name=tekton-integrations, key policy.yaml) in
--integrations-namespace.

Examples:
  tekton-integrations explain build-and-test-run-q4m9z -n ci
  tekton-integrations explain pr/build-and-test-run-q4m9z -o json
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "explain",
        help="why a run was or was not reported, and what to do",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_name", metavar="RUN", help=RUN_FORMS)
    add_to(parser, TAKES)
    parser.add_argument("--policy", metavar="FILE", help="the tenancy policy file to check against")
    parser.add_argument(
        "--integrations-namespace",
        default=INTEGRATIONS_NAMESPACE,
        help=f"where the functions and their policy ConfigMap live (default {INTEGRATIONS_NAMESPACE})",
    )
    parser.set_defaults(run=run, takes_session=True)


def run(session: Session) -> int:
    found = find_run(session.cluster, session.namespace, session.args.run_name)
    events, events_note = _events(session, found)
    policy = _policy_document(session)
    views = views_of(session.cluster, found)
    report = {
        "run": _run_summary(session, found),
        "integrations": [_explain(session, found, view, policy, events) for view in views],
        "events": [_event(session, e) for e in events if _owner(e, [v.name for v in views]) is None],
    }
    if events_note:
        report["eventsNote"] = events_note
    if not views:
        report["nextStep"] = (
            f"The run carries no *.{DOMAIN} annotations, so no integration reports it. Add them where "
            f"the run is created (TriggerTemplate, PipelineRun), e.g. github.{DOMAIN}/owner, /repo and "
            "/sha: see docs/."
        )
    fmt = session.args.output
    session.print(dump(report, fmt) if fmt != "text" else _text(session, report))
    return 0


def _run_summary(session: Session, found: Run) -> dict[str, Any]:
    status = found.raw.get("status") or {}
    return {
        "kind": found.kind,
        "namespace": found.namespace,
        "name": found.name,
        "uid": found.uid,
        "state": headline(found),
        "message": found.condition.message if found.condition else "",
        "completionTime": status.get("completionTime"),
        "age": format_age(parse_time(found.raw["metadata"].get("creationTimestamp")), session.clock()),
        "parentPipelineRun": found.parent_pipelinerun,
        "commits": [vars(c) for c in commits_of(found)],
    }


def _explain(
    session: Session,
    found: Run,
    view: IntegrationView,
    policy: tuple[str, str] | str,
    events: list[dict[str, Any]],
) -> dict[str, Any]:
    loaded = integrations.load(view.name)
    settings = check_settings(loaded.integration, found.annotations) if loaded.integration else None
    checks: list[PolicyCheck] = []
    policy_note: str | None = None
    record = view.record
    runtime = RuntimeSettings.from_env()
    if loaded.integration is not None and settings is not None and settings.config is not None:
        ctx = loaded.integration.offline_context(found, settings.config, record, runtime)
        checks, policy_note = _policy(policy, loaded.integration, ctx)
    now = session.clock()
    asked = wants(loaded.integration, found, record, runtime) if loaded.integration else True
    situation = Situation(
        run=found,
        view=view,
        loaded=loaded,
        settings=settings,
        policy=checks,
        wants=asked,
        claim_in_flight=bool(record and record.claim and record.claim.is_fresh(now)),
    )
    return {
        "name": view.name,
        "implemented": loaded.integration is not None,
        "problem": loaded.problem,
        "configured": view.configured,
        "configuration": settings.configuration if settings else None,
        "defaults": sorted(settings.defaults) if settings else [],
        "problems": [vars(p) for p in settings.problems] if settings else [],
        "policy": [vars(c) for c in checks],
        "policyNote": policy_note,
        "policyDisagreement": disagreement(view.name, record, checks),
        "record": record.model_dump(mode="json", by_alias=True, exclude_none=True) if record else None,
        "recordNote": view.stored_problem(found),
        "events": [_event(session, e) for e in events if _owner(e, [view.name]) == view.name],
        "nextStep": next_step(situation),
    }


def disagreement(name: str, record: IntegrationStatus | None, checks: list[PolicyCheck]) -> str | None:
    """Where the policy read now disagrees with what the record says happened. The record stands:
    it is what the function did with the policy it had."""
    if record is None or not checks:
        return None
    refused = [check for check in checks if not check.allowed]
    condition = record.condition
    if refused and condition.reason != "TargetNotAllowed":
        sent = (
            "reported the run" if condition.status == "True" else f"got past the policy ({condition.reason})"
        )
        return (
            f"the record says {name} {sent}, but the policy read now refuses {refused[0].value!r}: the "
            "policy changed since, or the functions read another policy file than this one. The "
            "record stands; the policy applies to the next event."
        )
    if not refused and condition.reason == "TargetNotAllowed":
        return (
            f"the record says the policy refused {name}'s destination, but the policy read now allows "
            "it: the policy changed since, or the functions read another policy file than this one."
        )
    return None


def _policy(
    policy: tuple[str, str] | str, integration: Integration[Any, Any], ctx: Context[Any, Any]
) -> tuple[list[PolicyCheck], str | None]:
    if isinstance(policy, str):
        return [], policy
    try:
        checks = check_policy(policy[0], policy[1], integration, ctx)
    except ValueError as e:
        return [], f"the policy is invalid, so the functions send nothing: {e}"
    return checks, None if checks else "the policy does not restrict this integration by name"


def _policy_document(session: Session) -> tuple[str, str] | str:
    """(YAML, where) of the policy, or why it is unknown."""
    path = session.args.policy or session.env.get("TI_POLICY_FILE")
    if path and (session.args.policy or os.path.exists(path)):
        try:
            return Path(path).read_text(encoding="utf-8"), path
        except OSError as e:
            return f"cannot read the policy file {path}: {e.strerror}"
    where = session.args.integrations_namespace
    try:
        text = session.cluster.read_config_map(where, POLICY_LABEL, POLICY_KEY)
    except IntegrationError as e:
        return (
            f"unknown: cannot read the policy ConfigMap in namespace {where} ({e.message}); use --policy FILE"
        )
    if text is None:
        return f"no policy ConfigMap in namespace {where}: the functions then allow every destination"
    return text, f"ConfigMap {where}/tekton-integrations-policy"


def _events(session: Session, found: Run) -> tuple[list[dict[str, Any]], str | None]:
    try:
        listed = session.cluster.list_events(ref_of(found), found.uid)
    except IntegrationError as e:
        return [], f"cannot list the run's Events: {e.message}"
    kept = [
        e
        for e in listed
        if (e.get("source") or {}).get("component") == COMPONENT
        or e.get("reportingComponent") == COMPONENT
        or e.get("reason") in TEKTON_EVENT_REASONS
    ]
    return kept, None


def _owner(event: dict[str, Any], names: list[str]) -> str | None:
    message = str(event.get("message") or "")
    return next((name for name in names if message.startswith(f"{name}: ")), None)


def _event(session: Session, event: dict[str, Any]) -> dict[str, Any]:
    when = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
    return {
        "reason": event.get("reason"),
        "message": event.get("message"),
        "count": event.get("count") or 1,
        "type": event.get("type"),
        "lastTimestamp": when,
        "age": format_age(parse_time(when), session.clock()),
    }


def _text(session: Session, report: dict[str, Any]) -> str:
    style, summary = session.style, report["run"]
    lines = [style.bold(f"{summary['kind']} {summary['namespace']}/{summary['name']}")]
    state = summary["state"] + (f": {summary['message']}" if summary["message"] else "")
    lines.append(f"  state:   {state}")
    lines.append(f"  created: {summary['age']} ago    uid: {summary['uid']}")
    for commit in summary["commits"]:
        lines.append(f"  commit:  {commit['repo'] or '?'} @ {commit['sha'] or '?'} ({commit['integration']})")
    if summary["parentPipelineRun"]:
        lines.append(f"  part of: pipelinerun/{summary['parentPipelineRun']}")
    for item in report["integrations"]:
        lines += ["", *_integration_text(session, item)]
    if report.get("events") or report.get("eventsNote"):
        lines += ["", style.bold("Tekton's CloudEvent deliveries")]
        lines += [_event_line(e) for e in report.get("events", [])]
        if report.get("eventsNote"):
            lines.append(f"  {report['eventsNote']}")
    if report.get("nextStep"):
        lines += ["", f"{style.bold('next step:')} {report['nextStep']}"]
    return "\n".join(lines)


def _integration_text(session: Session, item: dict[str, Any]) -> list[str]:
    style = session.style
    lines = [style.bold(item["name"]) + (f"  ({item['problem']})" if item["problem"] else "")]
    if item["problems"]:
        lines.append("  configuration: " + style.paint("INVALID", "red"))
        for problem in item["problems"]:
            value = f" = {problem['value']!r}" if problem["value"] is not None else ""
            lines.append(f"    {style.paint('✗', 'red')} {problem['key']}{value}: {problem['problem']}")
            if problem["fix"]:
                lines.append(f"      fix: {problem['fix']}")
    elif item["configuration"] is not None:
        lines.append("  configuration:")
        width = max((len(k) for k in item["configuration"]), default=0)
        for key, value in item["configuration"].items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            default = style.dim("  (default)") if key in item["defaults"] else ""
            lines.append(f"    {key.ljust(width)}  {'-' if shown is None else shown}{default}")
    now = " now" if item["record"] is not None else ""
    for check in item["policy"]:
        verdict = (
            style.paint(f"allowed{now}", "green") if check["allowed"] else style.paint(f"refused{now}", "red")
        )
        lines.append(f"  policy:  {verdict}: {check['message']}")
    if item["policyNote"]:
        lines.append(f"  policy:  {item['policyNote']}")
    if item["policyDisagreement"]:
        lines.append(f"  {style.paint('disagreement:', 'yellow')} {item['policyDisagreement']}")
    lines += _record_text(session, item)
    for event in item["events"]:
        lines.append(_event_line(event))
    lines.append(f"  {style.bold('next step:')} {item['nextStep']}")
    return lines


def _record_text(session: Session, item: dict[str, Any]) -> list[str]:
    record = item["record"]
    if record is None:
        return ["  record:  none" + (f" ({item['recordNote']})" if item["recordNote"] else "")]
    condition = record["conditions"][0]
    age = format_age(parse_time(condition.get("lastTransitionTime")), session.clock())
    painted = session.style.paint(condition["status"], condition_colour(condition["status"]))
    answered = state_text(record["runState"]["status"], record["runState"].get("reason", ""))
    lines = [
        f"  record:  {painted} {condition['reason']}, since {age} ago, "
        f"{record.get('attempts', 1)} attempt(s), for the run's {answered} state",
    ]
    if condition.get("message"):
        label = "error" if condition["status"] != "True" else "message"
        lines.append(f"    last {label}: {condition['message']}")
    if record.get("annotations"):
        lines.append("    ids: " + " ".join(f"{k}={v}" for k, v in record["annotations"].items()))
    if record.get("claim"):
        lines.append(f"    claimed at {record['claim']['at']} for {record['claim']['state']}")
    return lines


def _event_line(event: dict[str, Any]) -> str:
    count = f" (x{event['count']})" if event["count"] and event["count"] > 1 else ""
    return f"  event:   {event['age']} ago {event['reason']}{count}: {event['message']}"
