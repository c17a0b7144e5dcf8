"""``tekton-integrations health``: per integration and per destination, over a window, the last
success, the last failure with its reason, and counts, computed from the records on runs.

The records are the truth: each run keeps one record per integration (the latest state it
answered), and a record's time is when its run finished if it answers that state, else when its
condition last changed (records written within the same second are ordered by when their runs
finished). Destinations are what the integration's ``destinations`` names for the
run's configuration (the same values the policy checks): a GitHub repository, a Slack channel...
It answers "is the GitHub App still installed, is the Slack token still valid?" before users ask.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from common import registry
from common.cli.errors import ExitCode
from common.cli.options import Takes, add_to, duration_argument
from common.cli.output import Cell, condition_colour, dump, format_age, parse_time, table
from common.cli.records import views_of
from common.cli.runs import RunFilter, kind_argument, list_runs
from common.cli.session import Session
from common.config import load_config
from common.errors import InvalidConfigurationError
from common.events import Run
from common.integration import Integration
from common.settings import RuntimeSettings
from common.status import IntegrationStatus, RunState

ALL = "(all)"
"""The DESTINATION of an integration's own row, over every destination."""
NO_DESTINATION = "-"
"""Where a record counts when its run names no destination (invalid settings, a fixed target)."""
OUTCOMES = {"True": "succeeded", "False": "failed", "Unknown": "retrying"}
TAKES = Takes(
    cluster=True, all_namespaces=True, selector=True, outputs=("table", "wide", "json", "yaml"), headers=True
)
DESCRIPTION = """\
Per integration and per destination (a GitHub repository, a Slack channel, ...), over a window:
how many runs were reported, failed or are being retried, when the last success was, and the
last failure with its reason. Computed from the records the functions keep on the runs, in every
namespace you can read (-n NAMESPACE narrows it).

LATEST is the outcome of the most recent record: failed there, after successes, is the sign of
a credential that expired or an App that was uninstalled.

Examples:
  tekton-integrations health
  tekton-integrations health --since 7d --integration github -o wide
  tekton-integrations health -n ci -o json
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "health",
        help="last success, last failure and counts per integration and destination",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_to(parser, TAKES)
    parser.add_argument(
        "--since",
        type=duration_argument,
        default=timedelta(hours=24),
        metavar="DURATION",
        help="the window: records from the last DURATION (default 24h; 30m, 7d, 1h30m ...)",
    )
    parser.add_argument("--integration", metavar="NAME", help="only this integration")
    parser.add_argument(
        "--kind", type=kind_argument, metavar="KIND", help="pipelinerun or taskrun (default: both)"
    )
    parser.set_defaults(run=run, takes_session=True)


@dataclass
class Outcome:
    """One record counted: when, its outcome, reason and message, and its run."""

    time: datetime
    outcome: str
    reason: str
    message: str
    run: str
    finished: datetime | None = None
    """When the run finished: orders records written within the same second."""

    @property
    def order(self) -> tuple[datetime, datetime]:
        return (self.time, self.finished or self.time)

    def as_dict(self) -> dict[str, str]:
        return {
            "time": self.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "outcome": self.outcome,
            "reason": self.reason,
            "message": self.message,
            "run": self.run,
        }


@dataclass
class Tally:
    """Counts and the last success and failure of one integration, or one of its destinations."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES.values(), 0))
    last_success: Outcome | None = None
    last_failure: Outcome | None = None
    latest: Outcome | None = None

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.outcome] += 1
        if self.latest is None or outcome.order >= self.latest.order:
            self.latest = outcome
        last = self.last_success if outcome.outcome == "succeeded" else self.last_failure
        if outcome.outcome != "retrying" and (last is None or outcome.order >= last.order):
            if outcome.outcome == "succeeded":
                self.last_success = outcome
            else:
                self.last_failure = outcome

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.counts,
            "latest": self.latest.outcome if self.latest else None,
            "lastSuccess": self.last_success.as_dict() if self.last_success else None,
            "lastFailure": self.last_failure.as_dict() if self.last_failure else None,
        }


def run(session: Session) -> int:
    args = session.args
    now = session.clock()
    scope = args.namespace or None
    keep = RunFilter(
        kinds=(args.kind,) if args.kind else RunFilter().kinds,
        integration=args.integration,
        selector=args.selector,
    )
    names = [n for n in registry.names() if args.integration in (None, n)]
    declared = {n: loaded.integration for n in names if (loaded := registry.load(n)).integration is not None}
    tallies: dict[str, dict[str, Tally]] = {name: {ALL: Tally()} for name in names}
    runtime = RuntimeSettings.from_env()
    cutoff = now - args.since
    for found in list_runs(session.cluster, scope, keep):
        for view in views_of(session.cluster, found, args.integration):
            record = view.record
            if record is None or view.name not in declared:
                continue
            when = record_time(found, record)
            if when is None or when < cutoff:
                continue
            outcome = Outcome(
                when,
                OUTCOMES[record.condition.status],
                record.condition.reason,
                record.condition.message,
                f"{found.kind.lower()}/{found.namespace}/{found.name}",
                found.completion_time,
            )
            tallies[view.name][ALL].add(outcome)
            for destination in destinations_of(declared[view.name], found, record, runtime):
                tallies[view.name].setdefault(destination, Tally()).add(outcome)
    report = {
        "since": _window(args.since),
        "namespace": scope,
        "integrations": [
            {
                "name": name,
                **per[ALL].as_dict(),
                "destinations": [
                    {"destination": d, **t.as_dict()} for d, t in sorted(per.items()) if d != ALL
                ],
                **({} if name in declared else {"problem": registry.load(name).problem}),
            }
            for name, per in tallies.items()
        ],
    }
    if args.output in ("json", "yaml"):
        session.print(dump(report, args.output))
    else:
        session.print(_table(session, tallies, now, wide=args.output == "wide"))
        where = f"namespace {scope}" if scope else "every namespace you can read"
        session.warn(f"Records of the last {_window(args.since)} in {where}.")
    return ExitCode.OK


def record_time(run: Run, record: IntegrationStatus) -> datetime | None:
    """When the record was written, as well as the record tells: when its run finished if it
    answers that final state (a change within the same condition does not move
    ``lastTransitionTime``), else when its condition last changed."""
    changed = parse_time(record.condition.last_transition_time)
    if record.run_state.is_done and record.run_state == RunState.of(run) and run.completion_time:
        return max(changed, run.completion_time) if changed else run.completion_time
    return changed


def destinations_of(
    integration: Integration[Any, Any], run: Run, record: IntegrationStatus, runtime: RuntimeSettings
) -> list[str]:
    """What the integration names as the run's destinations, with the run's configuration."""
    try:
        config = load_config(integration.config, integration.name, run.annotations)
    except InvalidConfigurationError:
        return [NO_DESTINATION]
    ctx = integration.offline_context(run, config, record, runtime)
    try:
        found = [str(value) for value in integration.destinations(ctx)]
    except Exception:  # an integration's own function failing must not stop the tally
        return [NO_DESTINATION]
    return list(dict.fromkeys(found)) or [NO_DESTINATION]


def _window(since: timedelta) -> str:
    seconds = int(since.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size and not (unit == "d" and seconds < 2 * 86400):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _table(session: Session, tallies: dict[str, dict[str, Tally]], now: datetime, *, wide: bool) -> str:
    headers = ["INTEGRATION", "DESTINATION", "LATEST", "SUCCEEDED", "FAILED", "RETRYING", "LAST SUCCESS"]
    headers += ["LAST FAILURE", "REASON"]
    if wide:
        headers += ["FAILED RUN", "MESSAGE"]
    rows: list[list[Cell | str]] = []
    for name, per in tallies.items():
        for destination in [ALL, *sorted(d for d in per if d != ALL)]:
            tally = per[destination]
            latest = tally.latest.outcome if tally.latest else "-"
            colour = condition_colour(
                {"succeeded": "True", "failed": "False", "retrying": "Unknown"}.get(latest, "")
            )
            failure = tally.last_failure
            row: list[Cell | str] = [
                name,
                destination,
                Cell(latest, colour),
                str(tally.counts["succeeded"]),
                str(tally.counts["failed"]),
                str(tally.counts["retrying"]),
                format_age(tally.last_success.time if tally.last_success else None, now),
                format_age(failure.time if failure else None, now),
                failure.reason if failure else "-",
            ]
            if wide:
                row += [failure.run if failure else "-", failure.message if failure else "-"]
            rows.append(row)
    return table(headers, rows, session.style, show_headers=not session.args.no_headers)
