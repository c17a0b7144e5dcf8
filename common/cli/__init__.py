"""The ``tekton-integrations`` command: ``status``, ``explain``, ``send``, ``resync`` and ``demo``.

Owns argument parsing, the session each command runs with, and turning errors into a message on
stderr and an exit code (``common.cli.errors``). Each subcommand is one module that registers
itself with ``add_parser(commands)``; those that set ``takes_session`` get a ``Session``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from typing import TextIO

from common import logs
from common.cli import demo, explain, manifests, resync, send, status
from common.cli.errors import ExitCode, as_cli_error
from common.cli.output import Style, redacting, wants_colour
from common.cli.session import Connector, Session, kube_connector


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tekton-integrations",
        description="Report Tekton runs to GitHub, Slack and more, and find out why a run did not.",
        epilog="Exit codes: 0 done, 1 error, 2 usage, 3 no run matched, 4 run not found, "
        "5 no cluster, 6 permission denied (docs/cli.md).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the runtime does, to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status.add_parser(commands)
    explain.add_parser(commands)
    send.add_parser(commands)
    resync.add_parser(commands)
    demo.add_parser(commands)
    manifests.add_parser(commands)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    connector: Connector = kube_connector,
    out: TextIO | None = None,
    err: TextIO | None = None,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Run one command; returns its exit code. Tests pass their own connector, streams and clock."""
    args = build_parser().parse_args(argv)
    out = redacting(out or sys.stdout)
    err = redacting(err or sys.stderr)
    env = os.environ if env is None else env
    if not getattr(args, "takes_session", False):
        with redirect_stdout(out), redirect_stderr(err):
            code: int = args.run(args)
        return code
    session = Session(
        args=args,
        out=out,
        err=err,
        style=Style(wants_colour(out, env)),
        clock=clock,
        env=env,
        connector=connector,
    )
    try:
        with _runtime_logs(verbose=args.verbose):
            return int(args.run(session))
    except Exception as e:
        failure = as_cli_error(e)
        if failure is None:
            raise
        err_style = Style(wants_colour(err, env))
        message = failure.message
        server = getattr(session.connected, "server", None)
        if failure.code == ExitCode.NO_CLUSTER and server:
            message += f" (API server {server})"
        print(f"{err_style.paint('error:', 'red')} {message}", file=err)
        if failure.hint:
            print(f"hint: {failure.hint}", file=err)
        return int(failure.code)


@contextmanager
def _runtime_logs(*, verbose: bool) -> Iterator[None]:
    """The runtime's JSON log lines are for function logs; the CLI shows only warnings unless ``-v``."""
    logs.configure()
    levels = {
        "common": logging.WARNING,
        "functions": logging.WARNING,
        "common.status": logging.ERROR,  # unreadable records: explain reports them itself
        "common.policy": logging.ERROR,  # "no policy file" on this machine says nothing of the cluster's
    }
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(logging.INFO if verbose else level)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


__all__ = ["ExitCode", "build_parser", "main"]


if __name__ == "__main__":
    sys.exit(main())
