"""Finding runs: one named on the command line, or every run in scope that passes the filters.

Owns the ``RUN`` argument (``NAME``, ``pipelinerun/NAME``, ``taskrun/NAME``, ``pr/NAME``,
``tr/NAME``), the shared filters (``--kind``, ``--repo``, ``--sha``, ``--integration``,
``-l``) and which commit a run builds, read from its github/gitlab annotations.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass

from common.cli.errors import CliError, ExitCode
from common.cli.integrations import names_on
from common.cli.session import Cluster
from common.config import annotation_key
from common.errors import MalformedEventError, RunNotFoundError
from common.events import Run, RunKind, parse_run
from common.runclient import RunRef

KINDS: Mapping[str, RunKind] = {
    "pipelinerun": "PipelineRun",
    "pipelineruns": "PipelineRun",
    "pr": "PipelineRun",
    "taskrun": "TaskRun",
    "taskruns": "TaskRun",
    "tr": "TaskRun",
}
LISTED_KINDS: tuple[RunKind, ...] = ("PipelineRun", "TaskRun")
_SHA = re.compile(r"^[0-9a-fA-F]{4,64}$")
_REPO = re.compile(r"^[^/\s]+(/[^/\s]+)+$")


def kind_argument(text: str) -> RunKind:
    """``--kind``: ``pipelinerun`` or ``taskrun`` (plural and ``pr``/``tr`` accepted)."""
    try:
        return KINDS[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a run kind: use pipelinerun or taskrun") from None


def sha_argument(text: str) -> str:
    if not _SHA.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a commit SHA (4 to 64 hexadecimal digits)")
    return text.lower()


def repo_argument(text: str) -> str:
    if not _REPO.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a repository: use owner/repo (GitLab: group/project)"
        )
    return text.strip("/")


def kind_of(run: Run) -> str:
    """``pipelinerun``, as in ``pipelinerun/NAME``."""
    return run.kind.lower()


def split_run_argument(text: str) -> tuple[RunKind | None, str]:
    """``pipelinerun/build-1`` -> (``PipelineRun``, ``build-1``); a bare name has no kind."""
    prefix, slash, name = text.partition("/")
    if not slash:
        return None, text
    if prefix.lower() not in KINDS or not name:
        raise CliError(f"{text!r} is not a run: use NAME, pipelinerun/NAME or taskrun/NAME", ExitCode.USAGE)
    return KINDS[prefix.lower()], name


def find_run(cluster: Cluster, namespace: str, text: str) -> Run:
    """The run named ``text`` in ``namespace``; a bare name is looked up as a PipelineRun, then a TaskRun."""
    kind, name = split_run_argument(text)
    for candidate in (kind,) if kind else LISTED_KINDS:
        try:
            return parse_run(candidate, cluster.get(RunRef(candidate, namespace, name)))
        except RunNotFoundError:
            continue
    message = (
        f"{kind.lower()}/{name} not found in namespace {namespace}"
        if kind
        else f"no pipelinerun or taskrun named {name!r} in namespace {namespace}"
    )
    raise CliError(
        message,
        ExitCode.RUN_NOT_FOUND,
        "list the namespace's runs with `tekton-integrations status -n NAMESPACE`, or pass -n",
    )


@dataclass(frozen=True)
class Commit:
    """A repository and commit a run reports to, and the integration whose annotations say so."""

    integration: str
    repo: str
    sha: str


def commits_of(run: Run) -> list[Commit]:
    """From ``github.../{owner,repo,sha|commit}`` and ``gitlab.../{project,sha|commit}``."""
    notes = run.annotations
    found = []

    def value(integration: str, *keys: str) -> str:
        return next(
            (notes[k] for key in keys if (k := annotation_key(integration, key)) in notes), ""
        ).strip()

    sha = value("github", "sha", "commit")
    owner, repo = value("github", "owner"), value("github", "repo")
    if owner or repo or sha:
        found.append(Commit("github", f"{owner}/{repo}" if owner and repo else "", sha.lower()))
    sha, project = value("gitlab", "sha", "commit"), value("gitlab", "project")
    if project or sha:
        found.append(Commit("gitlab", project, sha.lower()))
    return found


@dataclass(frozen=True)
class RunFilter:
    """Which runs a listing keeps."""

    kinds: tuple[RunKind, ...] = LISTED_KINDS
    repo: str | None = None
    sha: str | None = None
    integration: str | None = None
    selector: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunFilter:
        kind: RunKind | None = args.kind
        return cls(
            kinds=(kind,) if kind else LISTED_KINDS,
            repo=args.repo,
            sha=args.sha,
            integration=args.integration,
            selector=args.selector,
        )

    def matches(self, run: Run) -> bool:
        if self.integration and self.integration not in names_on(run.annotations):
            return False
        if self.repo is None and self.sha is None:
            return True
        return any(self._matches_commit(commit) for commit in commits_of(run))

    def _matches_commit(self, commit: Commit) -> bool:
        if self.repo is not None and commit.repo.lower() != self.repo.lower():
            return False
        return self.sha is None or (bool(commit.sha) and commit.sha.startswith(self.sha))

    def describe(self) -> str:
        """``commit 9f1c2e7 of acme/widget``, for messages."""
        parts = []
        if self.sha:
            parts.append(f"commit {self.sha[:12]}")
        if self.repo:
            parts.append(f"{'of' if self.sha else 'repository'} {self.repo}")
        if self.integration:
            parts.append(f"using {self.integration}")
        return " ".join(parts) or "the filters"


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument(
        "--repo", type=repo_argument, metavar="OWNER/REPO", help="runs reporting to this repository"
    )
    group.add_argument(
        "--sha", type=sha_argument, metavar="SHA", help="runs for this commit (a prefix will do)"
    )
    group.add_argument(
        "--integration", metavar="NAME", help="runs using this integration (github, slack, ...)"
    )
    group.add_argument(
        "--kind", type=kind_argument, metavar="KIND", help="pipelinerun or taskrun (default: both)"
    )
    group.add_argument("-l", "--selector", metavar="SELECTOR", help="label selector, as in kubectl")


def list_runs(cluster: Cluster, namespace: str | None, keep: RunFilter) -> list[Run]:
    """The runs in scope that pass ``keep``, newest first. Objects that are not valid runs are skipped."""
    runs = []
    for kind in keep.kinds:
        for obj in cluster.list_runs(kind, namespace, keep.selector):
            try:
                run = parse_run(kind, obj)
            except MalformedEventError:
                continue
            if keep.matches(run):
                runs.append(run)
    return sorted(
        runs, key=lambda r: (str(r.raw["metadata"].get("creationTimestamp") or ""), r.name), reverse=True
    )


def params_naming(run: Run, sha: str) -> list[str]:
    """Names of the run's parameters whose value is (a prefix-match of) ``sha``."""
    params = (run.raw.get("spec") or {}).get("params") or []
    return [
        str(param["name"])
        for param in params
        if isinstance(param, Mapping)
        and isinstance(param.get("value"), str)
        and len(param["value"]) >= len(sha)
        and param["value"].strip().lower().startswith(sha)
        and "name" in param
    ]
