"""``tekton-integrations status``: runs by integrations, each with its record's condition, reason, age
and ids (check-run-id, Slack ts...). Filters by repository, commit, integration and kind.

"No run found for this commit" is an answer (exit code 3): no build was started for it, or the run
that built it did not opt in (then the runs whose parameters name the commit are listed).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from common.cli import integrations
from common.cli.errors import ExitCode
from common.cli.output import Cell, condition_colour, dump, format_age, parse_time, table
from common.cli.records import IntegrationView, state_text, views_of
from common.cli.runs import RunFilter, add_filter_arguments, commits_of, kind_of, list_runs, params_naming
from common.cli.session import Session, add_cluster_arguments
from common.events import Run
from common.summary import headline

IDS_WIDTH = 60


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "status",
        help="runs and what each integration recorded on them",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_cluster_arguments(parser)
    add_filter_arguments(parser)
    parser.add_argument("-o", "--output", choices=["table", "wide", "json", "yaml"], default="table")
    parser.set_defaults(run=run, takes_session=True)


def run(session: Session) -> int:
    keep = RunFilter.from_args(session.args)
    scope = session.scope
    every = list_runs(session.cluster, scope, replace(keep, repo=None, sha=None, integration=None))
    items = [_item(session, r) for r in every if keep.matches(r) and _shown(session, r)]
    fmt = session.args.output
    if fmt in ("json", "yaml"):
        session.print(dump({"items": items}, fmt))
    elif items:
        session.print(_table(session, items, wide=fmt == "wide"))
    if not items:
        _say_nothing_found(session, keep, scope, every)
        return ExitCode.NO_MATCH
    return ExitCode.OK


def _shown(session: Session, run: Run) -> bool:
    """Child TaskRuns are reported through their PipelineRun: shown only when they hold a record."""
    if not run.parent_pipelinerun:
        return True
    return any(view.record is not None for view in views_of(session.cluster, run))


def _item(session: Session, run: Run) -> dict[str, Any]:
    only = session.args.integration
    return {
        "kind": run.kind,
        "namespace": run.namespace,
        "name": run.name,
        "uid": run.uid,
        "state": {"status": run.state[0], "reason": run.state[1], "summary": headline(run)},
        "creationTimestamp": run.raw["metadata"].get("creationTimestamp"),
        "completionTime": (run.raw.get("status") or {}).get("completionTime"),
        "commits": [vars(c) for c in commits_of(run)],
        "integrations": [_integration(run, view) for view in views_of(session.cluster, run, only)],
    }


def _integration(run: Run, view: IntegrationView) -> dict[str, Any]:
    loaded = integrations.load(view.name)
    record = view.record
    entry: dict[str, Any] = {
        "name": view.name,
        "configured": view.configured,
        "implemented": loaded.integration is not None,
        "condition": record.condition.status if record else None,
        "reason": record.condition.reason
        if record
        else _missing_reason(view, loaded.integration is not None),
        "message": record.condition.message if record else (view.stored_problem(run) or loaded.problem or ""),
        "lastTransitionTime": record.condition.last_transition_time if record else None,
        "attempts": record.attempts if record else 0,
        "ids": dict(view.ids),
        "record": record.model_dump(mode="json", by_alias=True, exclude_none=True) if record else None,
    }
    if record is not None and record.run_state.model_dump() != {
        "status": run.state[0],
        "reason": run.state[1],
    }:
        entry["recordFor"] = state_text(record.run_state.status, record.run_state.reason)
    return entry


def _missing_reason(view: IntegrationView, implemented: bool) -> str:
    if not implemented:
        return "UnknownIntegration"
    if not view.configured:
        return "NotConfigured"
    return "NoRecord"


def _table(session: Session, items: list[dict[str, Any]], *, wide: bool) -> str:
    all_namespaces = session.scope is None
    headers = ["NAMESPACE"] if all_namespaces else []
    headers += ["RUN", "STATE", "INTEGRATION", "CONDITION", "REASON", "AGE", "IDS"]
    if wide:
        headers += ["ATTEMPTS", "COMMIT", "MESSAGE"]
    now = session.clock()
    rows = []
    for item in items:
        run_cells = [item["namespace"]] if all_namespaces else []
        run_cells += [f"{item['kind'].lower()}/{item['name']}", _state_cell(item)]
        for entry in item["integrations"] or [_none_entry()]:
            reason = entry["reason"] + (f" (for {entry['recordFor']})" if entry.get("recordFor") else "")
            ids = " ".join(f"{k}={v}" for k, v in entry["ids"].items()) or "-"
            row: list[Cell | str] = [
                *run_cells,
                entry["name"],
                Cell(entry["condition"] or "-", condition_colour(entry["condition"] or "")),
                reason,
                format_age(parse_time(entry["lastTransitionTime"]), now),
                ids if wide or len(ids) <= IDS_WIDTH else ids[: IDS_WIDTH - 1] + "…",
            ]
            if wide:
                commits = ", ".join(f"{c['repo']}@{c['sha'][:7]}" for c in item["commits"]) or "-"
                row += [str(entry["attempts"]), commits, entry["message"] or "-"]
            rows.append(row)
    return table(headers, rows, session.style)


def _state_cell(item: dict[str, Any]) -> Cell:
    status = item["state"]["status"]
    return Cell(item["state"]["summary"], condition_colour(status) if status != "Unknown" else None)


def _none_entry() -> dict[str, Any]:
    return {
        "name": "-",
        "condition": None,
        "reason": "NoIntegrations",
        "lastTransitionTime": None,
        "ids": {},
        "attempts": 0,
        "message": "the run carries no *.integrations.tekton.dev annotations",
    }


def _say_nothing_found(session: Session, keep: RunFilter, scope: str | None, every: list[Run]) -> None:
    where = f"in namespace {scope}" if scope else "in any namespace"
    if keep.repo is None and keep.sha is None and keep.integration is None:
        session.warn(f"No runs found {where}.")
        return
    session.warn(f"No run found for {keep.describe()} {where}.")
    built = [(r, params_naming(r, keep.sha)) for r in every] if keep.sha else []
    built = [(r, names) for r, names in built if names]
    if built:
        session.warn("These runs have the commit in a parameter but no github/gitlab annotations, so nothing")
        session.warn("reports them: add the annotations to the TriggerTemplate or PipelineRun (docs/cli.md).")
        for found, names in built:
            session.warn(
                f"  {kind_of(found)}/{found.name} (namespace {found.namespace}, param {', '.join(names)})"
            )
        return
    if keep.sha is not None:
        session.warn(
            "No build was started for it: check the trigger that creates the runs (EventListener, webhook)."
        )
    if scope is not None:
        session.warn("Only this namespace was searched: use -A to search every namespace.")
