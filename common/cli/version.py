"""``tekton-integrations version`` (and ``--version``): the installed distribution's version."""

from __future__ import annotations

import argparse
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from common.cli.options import Takes, add_to
from common.cli.output import dump

DISTRIBUTION = "tekton-integrations"
TAKES = Takes(outputs=("text", "json", "yaml"))


def installed() -> str:
    """The version ``pip`` installed, or ``unknown`` when run from a source tree that is not installed."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "version",
        help="print the version",
        description="Print the version of tekton-integrations (the same as --version).",
    )
    add_to(parser, TAKES)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.output == "text":
        print(f"{DISTRIBUTION} {installed()}")
    else:
        print(dump({"version": installed(), "python": platform.python_version()}, args.output))
    return 0
