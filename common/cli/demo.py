"""``tekton-integrations demo``: the GitHub function end to end, with no cluster and no account.

Replays bundled Tekton event sequences (duplicates and reorderings included) through
``functions/github/main.py`` as functions-framework serves it, against an in-memory run store
and a loopback GitHub stand-in, then prints the IntegrationStatus each run ends with.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from unittest.mock import patch

import functions_framework

from common import logs, samples
from common.cli.options import Takes, add_to
from common.config import RECORD_KEY, annotation_key
from common.http import use_run_client
from common.runclient import MemoryRunClient, RunRef
from common.standins.github import GitHubStandIn

DASHBOARD = "https://tekton-dashboard.example.org"


@dataclass(frozen=True)
class Step:
    sample: str
    tekton_moves_on: bool = True
    """Whether Tekton's controller reached this state first (else it is a late or duplicate send)."""


SCENARIOS: dict[str, list[Step]] = {
    "a successful run, with a duplicate and a late event": [
        Step("pipelinerun-queued"),
        Step("pipelinerun-running"),
        Step("pipelinerun-successful"),
        Step("pipelinerun-successful", tekton_moves_on=False),
        Step("pipelinerun-running", tekton_moves_on=False),
    ],
    "a failed run whose running event was lost": [Step("pipelinerun-failed")],
    "a run that failed before it started": [Step("pipelinerun-failed-before-start")],
    "a cancelled run": [Step("pipelinerun-cancelled")],
    "a child TaskRun (reported through its PipelineRun)": [Step("taskrun-running")],
    "a run without integration annotations": [Step("pipelinerun-successful-no-integrations")],
}


DESCRIPTION = """\
Replay sample Tekton event sequences (duplicates and late events included) through the GitHub
function, with an in-memory cluster and a loopback GitHub: no cluster and no account needed.
Prints what the function answered to each event, then the record each run ends with.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="replay sample Tekton events through the GitHub function, locally",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_to(parser, Takes())
    parser.add_argument(
        "--mode",
        choices=["check-run", "status"],
        default="check-run",
        help="report as check runs (default) or commit statuses",
    )
    parser.set_defaults(run=run)


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """Only warnings from the functions: the printed replies say what the info lines would."""
    loggers = [logging.getLogger(name) for name in ("common", "functions")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    store = MemoryRunClient()
    refs: dict[str, RunRef] = {}
    with (
        GitHubStandIn() as github,
        patch.dict(
            os.environ,
            {"GITHUB_API_URL": github.url, "GITHUB_TOKEN": "demo-token", "TEKTON_DASHBOARD_URL": DASHBOARD},
        ),
    ):
        use_run_client(store)
        logs.configure()  # before quieting: configuring later would set the loggers back to INFO
        try:
            with _quiet_logs():  # the start-up notes too ("no policy file" says nothing of a demo)
                client = _github_function().test_client()
                _replay(client, store, refs, args.mode, out)
        finally:
            use_run_client(None)
        _print_results(store, refs, github, out)
    return 0


def _replay(client: Any, store: MemoryRunClient, refs: dict[str, RunRef], mode: str, out: TextIO) -> None:
    for title, steps in SCENARIOS.items():
        print(f"\n== {title}", file=out)
        for step in steps:
            sample = samples.load(step.sample)
            if mode == "status":
                _, obj = samples.run_object(sample)
                obj["metadata"].get("annotations", {})[annotation_key("github", "mode")] = "status"
            _apply(store, refs, sample, step.tekton_moves_on)
            answer = client.post("/", headers=sample["headers"], data=json.dumps(sample["data"]))
            reply = json.loads(answer.data)
            print(
                f"  {sample['headers']['ce-type']:<44} -> {answer.status_code} "
                f"{reply.get('outcome')}: {reply.get('detail')}",
                file=out,
            )


def _github_function() -> Any:
    import functions.github.main as github_main  # noqa: PLC0415 -- only the demo needs its path

    return functions_framework.create_app(  # type: ignore[no-untyped-call]
        target="handle", source=str(Path(github_main.__file__)), signature_type="cloudevent"
    )


def _apply(store: MemoryRunClient, refs: dict[str, RunRef], sample: dict[str, Any], moves_on: bool) -> None:
    """Keep the in-memory run where Tekton's controller would have it."""
    kind, obj = samples.run_object(sample)
    uid = obj["metadata"]["uid"]
    if uid not in refs:
        refs[uid] = store.add(kind, obj)
    elif moves_on:
        store.replace_status(refs[uid], obj.get("status") or {})


def _print_results(
    store: MemoryRunClient, refs: dict[str, RunRef], github: GitHubStandIn, out: TextIO
) -> None:
    key = annotation_key("github", RECORD_KEY)
    print("\n== IntegrationStatus on each run (annotation " + key + ")", file=out)
    for ref in refs.values():
        record = store.runs[ref]["metadata"].get("annotations", {}).get(key)
        print(f"\n{ref.kind} {ref.namespace}/{ref.name}:", file=out)
        print(_indent(json.dumps(json.loads(record), indent=2)) if record else "  (no record)", file=out)
    print("\n== What GitHub received", file=out)
    for check_run in github.check_runs.values():
        print(
            f"  check run {check_run['id']} {check_run['name']!r} on {check_run['head_sha'][:7]}: "
            f"{check_run['status']} / {check_run.get('conclusion')}",
            file=out,
        )
    for status in github.statuses:
        print(f"  commit status {status['context']!r} on {status['sha'][:7]}: {status['state']}", file=out)
    writes = [c for c in github.calls if c.method != "GET"]
    print(f"  {len(writes)} write requests in all, for {len(refs)} runs", file=out)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
