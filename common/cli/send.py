"""``tekton-integrations send``: POST the CloudEvent Tekton would send for a run to a function URL.

The run comes from the cluster (``RUN``, converted from v1 to the v1beta1 shape Tekton sends),
from a file (``-f``: a saved event, an event body, or ``kubectl get -o yaml`` output; ``-`` for
stdin), or from a bundled sample (``--sample``). The event type follows the run's ``Succeeded``
condition, the id is fresh, the mode is binary: what a redelivery by Tekton looks like.
``--dry-run`` prints the event instead, in a form ``send -f`` reads back.

Exit code 0 when the function answers 2xx, 1 otherwise (its answer is printed either way).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from common import samples
from common.cli.delivery import post, url_argument
from common.cli.errors import CliError, ExitCode
from common.cli.options import Takes, add_to
from common.cli.output import dump
from common.cli.runs import RUN_FORMS, find_run
from common.cli.session import Session
from common.cli.tekton_events import TektonEvent, event_for_run, event_from_document

TAKES = Takes(cluster=True, outputs=("text", "json", "yaml"))
DESCRIPTION = """\
Send the CloudEvent that Tekton would send for a run to a function URL (binary mode, a fresh
id): the tested alternative to a hand-written curl.

The run comes from the cluster (RUN), from a file (-f: a saved event, an event body, or the
output of kubectl get -o yaml; '-' reads stdin), or from a bundled sample (--sample). The event
type follows the run's Succeeded condition. --dry-run prints the event instead, in a form that
send -f reads back.

Examples:
  tekton-integrations send pipelinerun/build-1 -n ci --url http://127.0.0.1:8080/
  tekton-integrations send build-1 --dry-run > event.json
  kubectl get pr build-1 -o yaml | tekton-integrations send -f - --url http://127.0.0.1:8080/

Exit code 0 when the function answers 2xx, 1 otherwise; the answer is printed either way.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "send",
        help="send a run's CloudEvent to a function, as Tekton would",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_argument_group("the run (exactly one)")
    source.add_argument("run_name", nargs="?", metavar="RUN", help=RUN_FORMS)
    source.add_argument("-f", "--file", metavar="PATH", help="a YAML/JSON event or run object ('-': stdin)")
    source.add_argument(
        "--sample",
        choices=samples.names(),
        metavar="NAME",
        help="a bundled sample: " + ", ".join(samples.names()),
    )
    parser.add_argument("--url", type=url_argument, help="the function's URL, e.g. http://127.0.0.1:8080/")
    parser.add_argument("--dry-run", action="store_true", help="print the event instead of sending it")
    add_to(parser, TAKES)
    parser.set_defaults(run=run, takes_session=True)


def run(session: Session) -> int:
    args = session.args
    chosen = [name for name in ("run_name", "file", "sample") if getattr(args, name)]
    if len(chosen) != 1:
        raise CliError("name exactly one run: RUN, --file PATH or --sample NAME", ExitCode.USAGE)
    if not args.dry_run and not args.url:
        raise CliError("--url is required (or --dry-run to print the event)", ExitCode.USAGE)
    event = _event(session)
    if args.dry_run:
        session.print(dump(event.as_document(), "yaml" if args.output == "yaml" else "json"))
        return ExitCode.OK
    answer = post(args.url, event)
    if args.output != "text":
        session.print(dump({"event": event.as_document(), "answer": answer.as_dict()}, args.output))
    else:
        meta = event.run_object.get("metadata") or {}
        session.print(f"POST {args.url}")
        session.print(
            f"  {event.type} for {event.kind.lower()}/{meta.get('name')} (namespace {meta.get('namespace')})"
        )
        colour = "green" if answer.ok else "red"
        session.print(
            f"  -> {session.style.paint(str(answer.status), colour)} {answer.outcome}: {answer.detail}"
        )
        if answer.retry_after:
            session.print(f"     Retry-After: {answer.retry_after}")
    return ExitCode.OK if answer.ok else ExitCode.ERROR


def _event(session: Session) -> TektonEvent:
    args, now = session.args, session.clock()
    if args.sample:
        return event_from_document(samples.load(args.sample), now)
    if args.file:
        document = _read_document(args.file)
        try:
            return event_from_document(document, now)
        except ValueError as e:
            raise CliError(f"{args.file}: {e}", ExitCode.USAGE) from e
    found = find_run(session.cluster, session.namespace, args.run_name)
    return event_for_run(found.kind, found.raw, now)


def _read_document(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror}", ExitCode.USAGE) from e
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CliError(f"{path} is neither JSON nor YAML: {e}", ExitCode.USAGE) from e
