"""Finding runs: one named on the command line, or every run in scope that passes the filters.

Owns the ``RUN`` argument (``NAME``, ``pipelinerun/NAME``, ``taskrun/NAME``, ``pr/NAME``,
``tr/NAME``, ``pipelinerun.tekton.dev/NAME`` as ``-o name`` prints it), the shared filters
(``--kind``, ``--repo``, ``--sha``, ``--integration``, ``-l``) and which commit a run builds: read
from its annotations (any prefix, a misspelt one too) or from a revision-like parameter.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass

from common import registry
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
RUN_FORMS = "NAME, pipelinerun/NAME or taskrun/NAME"
"""What ``RUN`` may be, as the commands' help and errors say it."""
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
    prefix = prefix.lower().removesuffix(".tekton.dev")
    if prefix not in KINDS or not name:
        raise CliError(f"{text!r} is not a run: use {RUN_FORMS}", ExitCode.USAGE)
    return KINDS[prefix], name


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
    """From every prefix's ``{owner,repo,sha|commit}`` (GitHub) or ``{project,sha|commit}`` (GitLab)
    annotations; a misspelt prefix (``githib``) counts too, so its run is still found."""
    notes = run.annotations
    found = []
    for name in names_on(notes):

        def value(*keys: str, name: str = name) -> str:
            return next((notes[k] for key in keys if (k := annotation_key(name, key)) in notes), "").strip()

        sha = value("sha", "commit")
        owner, repo, project = value("owner"), value("repo"), value("project")
        full = project or (f"{owner}/{repo}" if owner and repo else "")
        if sha or full or owner or repo:
            found.append(Commit(name, full, sha.lower()))
    return found


REVISION_PARAM = re.compile(r"(?i)(revision|commit|sha)")
"""A parameter whose name says it holds the commit (``revision``, ``git-commit``, ``head-sha``...)."""
REPOSITORY_PARAM = re.compile(r"(?i)(repo|git)")
"""A parameter whose name says it holds the repository URL (``repo-url``, ``git-url``...)."""
_HEX = re.compile(r"^[0-9a-f]{4,64}$")


def params_naming(run: Run, sha: str) -> list[str]:
    """Names of the run's revision-like parameters whose value is that commit (either may be a prefix)."""
    names = []
    for name, raw in _params(run):
        value = raw.strip().lower()
        if (
            REVISION_PARAM.search(name)
            and _HEX.match(value)
            and (value.startswith(sha) or sha.startswith(value))
        ):
            names.append(name)
    return names


def _params(run: Run) -> list[tuple[str, str]]:
    params = (run.raw.get("spec") or {}).get("params") or []
    return [
        (str(param["name"]), param["value"])
        for param in params
        if isinstance(param, Mapping) and "name" in param and isinstance(param.get("value"), str)
    ]


def _repos_in_params(run: Run) -> list[str]:
    """Repository paths the parameters name: ``https://github.com/acme/widget.git`` is ``acme/widget``."""
    found = []
    for name, value in _params(run):
        if not REPOSITORY_PARAM.search(name):
            continue
        match = re.match(r"^(?:[a-z+]+://[^/]+/|git@[^:]+:)(?P<path>[^?#\s]+?)(?:\.git)?/?$", value.strip())
        if match:
            found.append(match["path"].lower())
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

    @property
    def by_commit(self) -> bool:
        return self.repo is not None or self.sha is not None

    def matches(self, run: Run) -> bool:
        return self.matched_by(run) is not None

    def matched_by(self, run: Run) -> list[str] | None:
        """How the run matches the commit filters (``annotation``, ``param revision``...); ``[]``
        without commit filters; ``None`` when it does not match."""
        if self.integration and self.integration not in names_on(run.annotations):
            return None
        if not self.by_commit:
            return []
        commits = commits_of(run)
        known = registry.names()
        how = []
        for commit in commits:
            if self._matches_commit(commit, run):
                how.append(
                    "annotation"
                    if commit.integration in known
                    else f"annotation {commit.integration}.* (unknown)"
                )
        annotated = any(commit.sha for commit in commits)
        if self.sha is not None and (how or not annotated) and self._repo_possible(run, commits):
            # A parameter counts unless the annotations name another commit: they are what reports.
            how += [f"param {name}" for name in params_naming(run, self.sha)]
        return list(dict.fromkeys(how)) or None

    def _matches_commit(self, commit: Commit, run: Run) -> bool:
        if self.sha is not None and not (commit.sha and commit.sha.startswith(self.sha)):
            return False
        if self.repo is None:
            return True
        if commit.repo:
            return commit.repo.lower() == self.repo.lower()
        repos = _repos_in_params(run)
        return not repos or self.repo.lower() in repos

    def _repo_possible(self, run: Run, commits: list[Commit]) -> bool:
        """Whether the run may build ``repo``: nothing names another repository."""
        if self.repo is None:
            return True
        named = [c.repo.lower() for c in commits if c.repo] + _repos_in_params(run)
        return not named or self.repo.lower() in named

    def describe(self) -> str:
        """``commit 9f1c2e7 of acme/widget``, for messages."""
        parts = []
        if self.sha:
            parts.append(f"commit {self.sha[:12]}")
        if self.repo:
            parts.append(f"{'of' if self.sha else 'repository'} {self.repo}")
        if self.integration:
            parts.append(f"using {self.integration}")
        if self.selector:
            parts.append(f"with labels {self.selector}")
        return " ".join(parts) or "the filters"


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument(
        "--repo", type=repo_argument, metavar="OWNER/REPO", help="runs reporting to this repository"
    )
    group.add_argument(
        "--sha",
        type=sha_argument,
        metavar="SHA",
        help="runs for this commit, by annotation or by a revision parameter (a prefix will do)",
    )
    group.add_argument(
        "--integration", metavar="NAME", help="runs using this integration (github, slack, ...)"
    )
    group.add_argument(
        "--kind", type=kind_argument, metavar="KIND", help="pipelinerun or taskrun (default: both)"
    )


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
