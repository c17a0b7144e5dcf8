"""``tekton-integrations manifests``: the Knative manifests of every installed integration.

Derived from the registry (``common.manifests``): a Service, a Trigger, a ServiceAccount with
its binding, and a Secret template per integration. Prints them as one YAML stream, or with
``--write DIR`` writes one folder per integration plus the index kustomization (the repository's
``knative/integrations/`` is written this way; a test checks it is up to date).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from common import manifests, registry
from common.cli.errors import ExitCode


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "manifests",
        help="print (or --write) the Knative manifests of every installed integration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--write", metavar="DIR", type=Path, help="write one folder per integration under DIR"
    )
    parser.set_defaults(run=run)


def tree() -> tuple[dict[str, dict[str, str]], list[str]]:
    """Folder per loadable integration, and the problems of those that do not load."""
    folders: dict[str, dict[str, str]] = {}
    problems = []
    for name in registry.names():
        loaded = registry.load(name)
        if loaded.integration is None:
            problems.append(f"{name}: {loaded.problem}")
            continue
        folders[name] = manifests.files(loaded.integration, manifests.source_of(name))
    return folders, problems


def run(args: argparse.Namespace) -> int:
    folders, problems = tree()
    for problem in problems:
        print(f"warning: not rendered: {problem}", file=sys.stderr)
    if args.write is not None:
        for path in manifests.write(args.write, folders):
            print(path)
    else:
        for contents in folders.values():
            for file, text in contents.items():
                if file != "kustomization.yaml":
                    print("---\n" + text, end="")
    return ExitCode.ERROR if problems else ExitCode.OK
