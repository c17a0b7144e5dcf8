"""``tekton-integrations resync``: the safety net for lost events.

Finds the runs whose record lags behind them (for each integration they opted into): the run is
finished and the record is missing or answers an earlier state, or the record's condition is
``Unknown``. Then delivers the run's current event again, to each integration in this process
(its ``Processor`` with this cluster client, needing the function's credentials) or to each
function's URL (``--url github=http://...``, needing nothing but read access to runs).

Safe to run while the functions run: every delivery goes through the runtime's duplicate
detection and conditional writes, so a state is reported once whoever delivers it. A second
resync finds nothing to do and makes no external call. Exit code 1 when a delivery did not end in
a record (the function asked for a retry, or could not be reached); the next resync tries again.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import Any

from common import registry
from common.cli import integrations
from common.cli.delivery import post, url_argument
from common.cli.errors import CliError, ExitCode
from common.cli.options import Takes, add_to, duration_argument
from common.cli.output import Cell, dump, parse_time, table
from common.cli.records import Need, need_of, views_of
from common.cli.runs import RunFilter, add_filter_arguments, list_runs
from common.cli.session import Session
from common.cli.status import unknown_prefix_warning
from common.cli.tekton_events import event_for_run
from common.events import Run, parse_event
from common.runtime import Processor
from common.settings import RuntimeSettings

DONE_OUTCOMES = frozenset({"reported", "failed", "ignored"})
"""Outcomes after which nothing is left to deliver (``failed`` is recorded on the run)."""


def named_url_argument(text: str) -> tuple[str, str]:
    """``--url NAME=URL``."""
    name, equals, url = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: use NAME=URL, e.g. github=http://github.example.svc")
    return name.strip(), url_argument(url.strip())


TAKES = Takes(
    cluster=True, all_namespaces=True, selector=True, outputs=("table", "json", "yaml", "name"), headers=True
)
DESCRIPTION = """\
Deliver again the events of runs whose records lag behind them: the safety net for lost events
(Tekton retries each event for about 20 seconds, then drops it).

For each integration a run opted into, a run needs it when it has finished and its record is
missing (NoRecord) or answers an earlier state (NotFinal), or when its record is Unknown (a retry
is pending). Child TaskRuns, runs whose record another delivery has just claimed, and states the
run's settings do not ask to report are left out. Annotations under a prefix that names no
installed integration (a typo such as githib) are reported as warnings and skipped.

Deliveries run in this process (the functions' credentials are needed in the environment), or go
to each function's URL with --url NAME=URL, or to every integration's with --url-template, where
{name} stands for the integration (only list access to runs is needed). It is safe to run
alongside the functions: a state is reported once, whoever delivers it.

Examples:
  tekton-integrations resync -n ci --dry-run
  tekton-integrations resync -A --since 24h --url github=http://github.tekton-integrations.svc.cluster.local
  tekton-integrations resync -A --since 24h --url-template 'http://{name}.tekton-integrations.svc.cluster.local'

Exit code 1 when a delivery did not end in a record (the function asked for a retry, or could
not be reached); the next resync tries again.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "resync",
        help="deliver again the events of runs whose records lag behind",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_to(parser, TAKES)
    add_filter_arguments(parser)
    parser.add_argument(
        "--since",
        type=duration_argument,
        metavar="DURATION",
        help="only runs that finished (or, unfinished, started) within DURATION, e.g. 2h",
    )
    parser.add_argument("--dry-run", action="store_true", help="list the runs that need it; deliver nothing")
    parser.add_argument(
        "--url",
        type=named_url_argument,
        action="append",
        default=[],
        metavar="NAME=URL",
        help="deliver to this function URL instead of in-process (repeat per integration)",
    )
    parser.add_argument(
        "--url-template",
        type=url_template_argument,
        metavar="URL",
        help="deliver to every integration's function at this URL, {name} standing for the integration "
        "(--url wins for the integrations it names)",
    )
    parser.set_defaults(run=run, takes_session=True)


def url_template_argument(text: str) -> str:
    """``http://{name}.tekton-integrations.svc.cluster.local``: a URL once ``{name}`` is filled in."""
    if "{name}" not in text:
        raise argparse.ArgumentTypeError(f"{text!r} has no {{name}} to stand for the integration")
    try:
        url_argument(text.replace("{name}", "github"))
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: {e}") from e
    return text


def run(session: Session) -> int:
    args = session.args
    urls: dict[str, str] = dict(args.url)
    if args.url_template:
        urls = {name: args.url_template.format(name=name) for name in integrations.available()} | urls
    needs, warnings = find_needs(session, RunFilter.from_args(args), args.since)
    for warning in warnings:
        session.warning(warning)
    processors: dict[str, Processor[Any, Any]] = {}
    results = [] if args.dry_run else [_deliver(session, need, urls, processors) for need in needs]
    items = [_item(need, results[i] if results else None) for i, need in enumerate(needs)]
    if args.output in ("json", "yaml"):
        session.print(dump({"items": items, "warnings": warnings}, args.output))
    elif args.output == "name":
        for item in items:
            session.print(f"{item['kind'].lower()}.tekton.dev/{item['name']}")
    elif items:
        session.print(_table(session, items))
    else:
        where = f"namespace {session.scope}" if session.scope else "any namespace"
        session.print(f"Nothing to resync in {where}: every record is up to date with its run.")
    undone = [r for r in results if r["outcome"] not in DONE_OUTCOMES]
    return ExitCode.ERROR if undone else ExitCode.OK


def find_needs(session: Session, keep: RunFilter, since: timedelta | None) -> tuple[list[Need], list[str]]:
    """Every (run, integration) whose record lags behind the run, oldest run first; and a warning
    for each run whose annotations name no installed integration (skipped: nothing could read them)."""
    now = session.clock()
    settings = RuntimeSettings.from_env()
    known = registry.names()
    needs, warnings = [], []
    for found in reversed(list_runs(session.cluster, session.scope, keep)):
        if since is not None and not _recent(found, now - since):
            continue
        for view in views_of(session.cluster, found, keep.integration):
            if view.name not in known:
                if view.configured:
                    warnings.append(
                        unknown_prefix_warning(found.kind, found.name, found.namespace, view.name)
                    )
                continue
            need = need_of(found, view, integrations.load(view.name), now, settings)
            if need is not None:
                needs.append(need)
    return needs, warnings


def _recent(found: Run, cutoff: datetime) -> bool:
    when = (
        found.completion_time
        or found.start_time
        or parse_time(found.raw["metadata"].get("creationTimestamp"))
    )
    return when is not None and when >= cutoff


def _deliver(
    session: Session, need: Need, urls: dict[str, str], processors: dict[str, Processor[Any, Any]]
) -> dict[str, str]:
    """Deliver the run's current event to one integration; the outcome and its detail."""
    event = event_for_run(need.run.kind, need.run.raw, session.clock())
    if urls:
        if need.integration not in urls:
            return {"outcome": "skipped", "detail": f"no --url {need.integration}=URL given"}
        try:
            answer = post(urls[need.integration], event)
        except CliError as e:
            return {"outcome": "unreachable", "detail": e.message}
        return {"outcome": answer.outcome if answer.ok else f"HTTP {answer.status}", "detail": answer.detail}
    loaded = integrations.load(need.integration)
    if loaded.integration is None:
        return {"outcome": "skipped", "detail": loaded.problem or "not available"}
    if need.integration not in processors:
        processors[need.integration] = Processor(
            loaded.integration, session.cluster, RuntimeSettings.from_env()
        )
    outcome = processors[need.integration].process(parse_event(event))
    detail = (
        f"{outcome.reason}: {outcome.detail}"
        if outcome.reason and outcome.kind != "reported"
        else outcome.detail
    )
    return {"outcome": outcome.kind, "detail": detail}


def _item(need: Need, result: dict[str, str] | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": need.run.kind,
        "namespace": need.run.namespace,
        "name": need.run.name,
        "integration": need.integration,
        "why": need.why,
        "detail": need.detail,
    }
    if result is not None:
        item["result"] = result
    return item


def _table(session: Session, items: list[dict[str, Any]]) -> str:
    all_namespaces = session.scope is None
    delivered = any("result" in item for item in items)
    headers = (["NAMESPACE"] if all_namespaces else []) + ["RUN", "INTEGRATION", "WHY", "DETAIL"]
    if delivered:
        headers += ["RESULT"]
    rows = []
    for item in items:
        row: list[Cell | str] = [item["namespace"]] if all_namespaces else []
        row += [f"{item['kind'].lower()}/{item['name']}", item["integration"], item["why"], item["detail"]]
        if delivered:
            result = item["result"]
            colour = "green" if result["outcome"] in DONE_OUTCOMES else "red"
            row.append(Cell(f"{result['outcome']}: {result['detail']}", colour))
        rows.append(row)
    return table(headers, rows, session.style, show_headers=not session.args.no_headers)
