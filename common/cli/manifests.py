"""``tekton-integrations manifests``: the Knative manifests of every installed integration.

Derived from the registry (``common.manifests``): a Service, a Trigger, a ServiceAccount with
its binding, and a Secret template per integration. Prints them as one YAML stream, or with
``--write DIR`` writes one folder per integration plus the index kustomization (the repository's
``knative/integrations/`` is written this way; a test checks it is up to date). With
``--single-service``, the single-Service option instead: one Service running every integration,
one Trigger, one ServiceAccount (``knative/single-service/`` is written this way).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from common import manifests, registry
from common.cli.errors import ExitCode
from common.cli.options import Takes, add_to

DESCRIPTION = """\
Print the Knative manifests of every installed integration, derived from its declaration: a
Service, a Trigger, a ServiceAccount with its ClusterRoleBinding, and a Secret template.

  tekton-integrations manifests                                  one YAML stream on stdout
  tekton-integrations manifests --write knative/integrations     one folder per integration

With --single-service: one Service (tekton-integrations, running common/all.py) for every
integration, with one Trigger and one ServiceAccount, on top of knative/common:

  tekton-integrations manifests --single-service --write knative/single-service
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "manifests",
        help="print (or --write) the Knative manifests of every installed integration",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_to(parser, Takes())
    parser.add_argument(
        "--write", metavar="DIR", type=Path, help="write one folder per integration under DIR"
    )
    parser.add_argument(
        "--single-service",
        action="store_true",
        help="the single-Service option: one Service for every integration (with --write: its folder)",
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


def single_service() -> tuple[dict[str, str], list[str]]:
    """The single-Service folder, and the problems of the integrations that do not load (left out)."""
    declared, problems = [], []
    for name in registry.names():
        loaded = registry.load(name)
        if loaded.integration is None:
            problems.append(f"{name}: {loaded.problem}")
        else:
            declared.append(loaded.integration)
    return manifests.single_service_files(declared), problems


def run(args: argparse.Namespace) -> int:
    if args.single_service:
        return _run_single_service(args)
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


def _run_single_service(args: argparse.Namespace) -> int:
    contents, problems = single_service()
    for problem in problems:
        print(f"warning: not rendered: {problem}", file=sys.stderr)
    if args.write is not None:
        for path in manifests.write_folder(args.write, contents):
            print(path)
    else:
        for file, text in contents.items():
            if file != "kustomization.yaml":
                print("---\n" + text, end="")
    return ExitCode.ERROR if problems else ExitCode.OK
