"""The ``tekton-integrations`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from common.cli import demo


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tekton-integrations",
        description="Report Tekton runs to GitHub, Slack and more, and find out why a run did not.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
