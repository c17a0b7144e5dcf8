"""The ``tekton-integrations`` command: ``status``, ``explain``, ``render``, ``send``, ``resync``,
``doctor``, ``health`` and the local ``demo``, ``manifests``, ``version`` and ``completion``.

Owns argument parsing, the session each command runs with, and turning errors into a message on
stderr and an exit code (``common.cli.errors``). Each subcommand is one module that registers
itself with ``add_parser(commands)`` and says which shared options it takes
(``common.cli.options``); those that set ``takes_session`` get a ``Session``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from typing import TextIO

from common import logs
from common.cli import (
    completion,
    demo,
    doctor,
    explain,
    health,
    manifests,
    options,
    render,
    resync,
    send,
    status,
    version,
)
from common.cli.errors import EXIT_CODES_HELP, ExitCode, as_cli_error
from common.cli.output import Style, redacting, wants_colour
from common.cli.session import Connector, Session, kube_connector

DESCRIPTION = """\
Report Tekton runs to GitHub, Slack and more, and find out why a run was not reported.

Start with:
  tekton-integrations status --repo OWNER/REPO --sha SHA    which runs built a commit
  tekton-integrations explain RUN                          why a run was (not) reported
  tekton-integrations doctor                               is the installation complete?
  tekton-integrations health                               is each service still reachable?
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tekton-integrations",
        description=DESCRIPTION,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version.installed()}", help="print the version"
    )
    options.add_global(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        status,
        explain,
        render,
        send,
        resync,
        doctor,
        health,
        demo,
        manifests,
        version,
        completion,
    ):
        module.add_parser(commands)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    connector: Connector = kube_connector,
    out: TextIO | None = None,
    err: TextIO | None = None,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run one command; returns its exit code. Tests pass their own connector, streams, clock and sleep."""
    parser = build_parser()
    args = parser.parse_args(argv)
    options.resolve(parser, args)
    out = redacting(out or sys.stdout)
    err = redacting(err or sys.stderr)
    env = os.environ if env is None else env
    if not getattr(args, "takes_session", False):
        with redirect_stdout(out), redirect_stderr(err):
            code: int = args.run(args)
        return code
    err_style = Style(wants_colour(err, env))
    session = Session(
        args=args,
        out=out,
        err=err,
        style=Style(wants_colour(out, env)),
        clock=clock,
        env=env,
        connector=connector,
        sleeper=sleep,
        err_style=err_style,
    )
    try:
        with _runtime_logs(verbose=args.verbose):
            return int(args.run(session))
    except KeyboardInterrupt:
        return int(ExitCode.OK) if getattr(args, "watch", False) else 130
    except Exception as e:
        failure = as_cli_error(e)
        if failure is None:
            raise
        message = failure.message
        server = getattr(session.connected, "server", None)
        if failure.code == ExitCode.NO_CLUSTER and server:
            message += f" (API server {server})"
        acting = getattr(session.connected, "impersonating", None)
        if failure.code == ExitCode.FORBIDDEN and acting is not None:
            message += f" (acting as {acting.describe()}, impersonated as the kubeconfig or --as says)"
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
