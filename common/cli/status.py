"""``tekton-integrations status``: runs by integrations, each with its record's condition, reason, age
and ids (check-run-id, Slack ts...). Filters by repository, commit, integration, kind and labels.

A commit is found by any prefix's ``sha``/``commit`` annotation (a misspelt prefix too) and by a
revision-like parameter; each run says how it matched. "No run found" is an answer (exit code 3).
Without ``-n``/``-A``, matches in other namespaces the user can read are pointed out. Annotations
under a prefix that names no installed integration are warnings, never failures. ``-w`` polls and
prints what changed.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from common import registry
from common.cli import integrations
from common.cli.errors import ExitCode
from common.cli.options import Takes, add_to
from common.cli.output import Cell, condition_colour, dump, format_age, parse_time, table, widths_of
from common.cli.records import IntegrationView, state_text, views_of
from common.cli.runs import RunFilter, add_filter_arguments, commits_of, list_runs
from common.cli.session import Session
from common.config import DOMAIN
from common.errors import IntegrationError
from common.events import Run
from common.summary import headline

IDS_WIDTH = 60
MAX_NAMESPACES_PROBED = 100
"""Namespaces listed one by one when the user may not list runs cluster-wide (``-A`` hint)."""
TAKES = Takes(
    cluster=True,
    all_namespaces=True,
    selector=True,
    outputs=("table", "wide", "json", "yaml", "name"),
    headers=True,
    watch=True,
)
DESCRIPTION = """\
List runs and what each integration recorded on them: one row per run and integration, newest
run first, with the record's condition, reason and ids (check-run-id, Slack ts, ...).

A commit (--sha, a prefix will do) is found by the sha or commit annotation of any integration
prefix, a misspelt one too, and by a revision-like parameter (revision, git-commit, ...); the
MATCH column says how each run matched. AGE is the time since the run was created, as in kubectl.

No matching run is an answer, not an error: exit code 3. Without -n or -A, runs that match in
other namespaces you can read are pointed out.

Examples:
  tekton-integrations status --repo acme/widget --sha 9f1c2e7
  tekton-integrations status -A --integration slack -o wide
  tekton-integrations status -l tekton.dev/pipeline=build -o name
  tekton-integrations status --sha 9f1c2e7 -w --watch-timeout 10m
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "status",
        help="runs and what each integration recorded on them",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_filter_arguments(parser)
    add_to(parser, TAKES)
    parser.set_defaults(run=run, takes_session=True)


def run(session: Session) -> int:
    keep = RunFilter.from_args(session.args)
    if session.args.watch:
        return _watch(session, keep)
    items = collect(session, keep)
    fmt = session.args.output
    if fmt in ("json", "yaml"):
        session.print(dump({"items": items}, fmt))
    elif fmt == "name":
        for name in dict.fromkeys(_name(item) for item in items):
            session.print(name)
    elif items:
        headers, rows = _rows(session, items, keep, wide=fmt == "wide")
        session.print(table(headers, rows, session.style, show_headers=not session.args.no_headers))
    _warn_unknown(session, items, set())
    _note_unreported(session, items)
    if not items:
        _say_nothing_found(session, keep)
        return ExitCode.NO_MATCH
    if not session.namespace_chosen and (keep.by_commit or keep.integration or keep.selector):
        counts = elsewhere(session, keep)
        if counts:
            session.warn(f"note: {_counted(counts, more=True)}: use -A to list them.")
    return ExitCode.OK


def collect(session: Session, keep: RunFilter) -> list[dict[str, Any]]:
    """The items shown, one per matching run in scope, newest first."""
    every = list_runs(session.cluster, session.scope, replace(keep, repo=None, sha=None, integration=None))
    items = []
    for found in every:
        how = keep.matched_by(found)
        if how is not None and _shown(session, found):
            items.append(_item(session, found, how if keep.by_commit else None))
    return items


def _shown(session: Session, run: Run) -> bool:
    """Child TaskRuns are reported through their PipelineRun: shown only when they hold a record."""
    if not run.parent_pipelinerun:
        return True
    return any(view.record is not None for view in views_of(session.cluster, run))


def _item(session: Session, run: Run, how: list[str] | None) -> dict[str, Any]:
    only = session.args.integration
    item: dict[str, Any] = {
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
    if how is not None:
        item["matchedBy"] = how
    return item


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


def _name(item: dict[str, Any]) -> str:
    """As ``kubectl get -o name`` prints it; ``explain`` and ``send`` accept it."""
    return f"{item['kind'].lower()}.tekton.dev/{item['name']}"


def _headers(session: Session, keep: RunFilter, *, wide: bool) -> list[str]:
    headers = ["NAMESPACE"] if session.scope is None else []
    headers += ["RUN", "STATE", "INTEGRATION", "CONDITION", "REASON", "AGE", "IDS"]
    if keep.by_commit:
        headers.append("MATCH")
    if wide:
        headers += ["ATTEMPTS", "CHANGED", "COMMIT", "MESSAGE"]
    return headers


def _rows(
    session: Session, items: list[dict[str, Any]], keep: RunFilter, *, wide: bool
) -> tuple[list[str], list[list[Cell | str]]]:
    rows = [row for item in items for _, row in _item_rows(session, item, keep, wide=wide)]
    return _headers(session, keep, wide=wide), rows


def _item_rows(
    session: Session, item: dict[str, Any], keep: RunFilter, *, wide: bool
) -> list[tuple[str, list[Cell | str]]]:
    """(key that changes when the row's facts change, row) per integration of the run."""
    now = session.clock()
    run_cells: list[Cell | str] = [item["namespace"]] if session.scope is None else []
    run_cells += [f"{item['kind'].lower()}/{item['name']}", _state_cell(item)]
    age = format_age(parse_time(item["creationTimestamp"]), now)
    found = []
    for entry in item["integrations"] or [_none_entry()]:
        reason = entry["reason"] + (f" (for {entry['recordFor']})" if entry.get("recordFor") else "")
        ids = " ".join(f"{k}={v}" for k, v in entry["ids"].items()) or "-"
        row: list[Cell | str] = [
            *run_cells,
            entry["name"],
            Cell(entry["condition"] or "-", condition_colour(entry["condition"] or "")),
            reason,
            age,
            ids if wide or len(ids) <= IDS_WIDTH else ids[: IDS_WIDTH - 1] + "…",
        ]
        if keep.by_commit:
            row.append(", ".join(item.get("matchedBy") or []) or "-")
        if wide:
            commits = ", ".join(f"{c['repo'] or '?'}@{c['sha'][:7] or '?'}" for c in item["commits"]) or "-"
            changed = format_age(parse_time(entry["lastTransitionTime"]), now)
            row += [str(entry["attempts"]), changed, commits, entry["message"] or "-"]
        facts = {k: v for k, v in entry.items() if k != "record"}
        key = json.dumps(
            [item["namespace"], item["kind"], item["name"], item["state"], facts], sort_keys=True
        )
        found.append((key, row))
    return found


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
        "message": f"the run carries no *.{DOMAIN} annotations",
    }


def unknown_prefix_warning(run_kind: str, name: str, namespace: str, prefix: str) -> str:
    """The warning for annotations under a prefix that names no installed integration."""
    guess = integrations.closest(prefix)
    meant = f" (did you mean {guess}.{DOMAIN}?)" if guess else ""
    return (
        f"{run_kind.lower()}/{name} in namespace {namespace}: {prefix}.{DOMAIN}/... names no "
        f"installed integration{meant}; nothing reads those annotations"
    )


def _warn_unknown(session: Session, items: list[dict[str, Any]], warned: set[tuple[str, ...]]) -> None:
    known = registry.names()
    for item in items:
        for entry in item["integrations"]:
            key = (item["namespace"], item["kind"], item["name"], entry["name"])
            if entry["name"] in known or key in warned:
                continue
            warned.add(key)
            session.warning(
                unknown_prefix_warning(item["kind"], item["name"], item["namespace"], entry["name"])
            )


def _note_unreported(session: Session, items: list[dict[str, Any]]) -> None:
    """Runs found by a parameter only, with no integration annotations: nothing reports them."""
    for item in items:
        how = item.get("matchedBy") or []
        if item["integrations"] or not how or any(not h.startswith("param ") for h in how):
            continue
        session.warn(
            f"note: {item['kind'].lower()}/{item['name']} (namespace {item['namespace']}) built the commit "
            f"({', '.join(how)}) but carries no *.{DOMAIN} annotations, so nothing reports it: add them "
            "to the TriggerTemplate or PipelineRun (docs/cli.md)."
        )


def elsewhere(session: Session, keep: RunFilter) -> Counter[str] | None:
    """Matching runs in namespaces other than the scope, by namespace; ``None`` when the user may
    list runs neither cluster-wide nor namespace by namespace."""
    cluster, scope = session.cluster, session.scope
    try:
        found = list_runs(cluster, None, keep)
    except IntegrationError as e:
        if e.reason != "KubernetesForbidden":
            raise
        try:
            namespaces = [
                str((ns.get("metadata") or {}).get("name"))
                for ns in cluster.list_objects("v1", "namespaces", None)
            ]
        except IntegrationError as again:
            if again.reason != "KubernetesForbidden":
                raise
            return None
        found = []
        for namespace in [ns for ns in namespaces if ns != scope][:MAX_NAMESPACES_PROBED]:
            try:
                found += list_runs(cluster, namespace, keep)
            except IntegrationError as again:
                if again.reason != "KubernetesForbidden":
                    raise
    return Counter(r.namespace for r in found if r.namespace != scope and _shown(session, r))


def _counted(counts: Counter[str], *, more: bool = False) -> str:
    """``2 more runs in other namespaces match (team-b: 1, team-c: 1)``."""
    total = sum(counts.values())
    listed = ", ".join(f"{ns}: {n}" for ns, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    runs = f"{total}{' more' if more else ''} run{'s' if total != 1 else ''}"
    return f"{runs} in other namespaces {'match' if total != 1 else 'matches'} ({listed})"


def _say_nothing_found(session: Session, keep: RunFilter) -> None:
    scope = session.scope
    where = f"in namespace {scope}" if scope else "in any namespace"
    filtered = keep.by_commit or keep.integration or keep.selector
    session.warn(f"No run found for {keep.describe()} {where}." if filtered else f"No runs found {where}.")
    if session.args.output in ("json", "yaml") and not filtered:
        return
    counts = None if scope is None or session.namespace_chosen else elsewhere(session, keep)
    if counts:
        session.warn(f"But {_counted(counts)}: use -A to list them, or -n NAMESPACE.")
        return
    if keep.sha is not None:
        anywhere = "" if scope is None or counts is not None else " here"
        session.warn(
            f"No build was started for it{anywhere}: check the trigger that creates the runs "
            "(EventListener, webhook), and that its runs carry the commit in an annotation or a "
            "revision parameter."
        )
    if scope is not None and counts is None:
        session.warn(
            "Only this namespace was searched"
            + ("" if session.namespace_chosen else " (you may not list runs in other namespaces)")
            + ": use -A to search every namespace."
        )


@dataclass
class _Watching:
    widths: list[int] | None = None
    seen: dict[str, str] | None = None
    warned: set[tuple[str, ...]] | None = None


def _watch(session: Session, keep: RunFilter) -> int:
    """List, then poll every ``--watch-interval`` and print the rows whose facts changed, until
    ``--watch-timeout`` (or Ctrl-C)."""
    args = session.args
    timeout = args.watch_timeout
    deadline: datetime | None = session.clock() + timeout if timeout is not None else None
    state = _Watching(seen={}, warned=set())
    matched = False
    first = True
    while True:
        items = collect(session, keep)
        matched = matched or bool(items)
        _print_changes(session, keep, items, state, first=first)
        _warn_unknown(session, items, state.warned or set())
        if first and not items:
            _say_nothing_found(session, keep)
        first = False
        session.out.flush()
        session.err.flush()
        if deadline is not None and session.clock() >= deadline:
            break
        session.sleep(args.watch_interval)
    return ExitCode.OK if matched else ExitCode.NO_MATCH


def _print_changes(
    session: Session, keep: RunFilter, items: list[dict[str, Any]], state: _Watching, *, first: bool
) -> None:
    """Print what is new or changed since the last poll: every row the first time."""
    fmt = session.args.output
    seen = state.seen if state.seen is not None else {}
    if fmt in ("json", "yaml", "name"):
        for item in items if first else reversed(items):
            facts = [
                item["state"],
                [{k: v for k, v in e.items() if k != "record"} for e in item["integrations"]],
            ]
            key = json.dumps(facts, sort_keys=True)
            if seen.get(item["uid"]) == key:
                continue
            seen[item["uid"]] = key
            if fmt == "json":
                session.print(json.dumps(item, ensure_ascii=False))
            elif fmt == "yaml":
                session.print("---\n" + dump(item, "yaml"))
            else:
                session.print(_name(item))
        return
    wide = fmt == "wide"
    headers = _headers(session, keep, wide=wide)
    changed: list[list[Cell | str]] = []
    for item in items if first else reversed(items):
        for key, row in _item_rows(session, item, keep, wide=wide):
            identity = f"{item['uid']}/{_row_name(row, session)}"
            if seen.get(identity) == key:
                continue
            seen[identity] = key
            changed.append(row)
    if not changed:
        return
    if state.widths is None:
        state.widths = widths_of(headers, changed)
    shown = table(
        headers,
        changed,
        session.style,
        show_headers=first and not session.args.no_headers,
        widths=state.widths,
    )
    session.print(shown)


def _row_name(row: list[Cell | str], session: Session) -> str:
    """The INTEGRATION cell of a row."""
    cell = row[3 if session.scope is None else 2]
    return cell.text if isinstance(cell, Cell) else cell
