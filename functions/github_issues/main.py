"""GitHub Issues as the bug tracker: one issue per failing pipeline, kept until it passes again.

Annotations: ``github-issues.integrations.tekton.dev/{owner,repo,on,labels,close}`` (docs/github-issues.md).

A failed run of a Pipeline (namespace + Pipeline name; a standalone TaskRun's Task) opens one
issue in ``owner/repo`` with the failed tasks and a link to the run; a later failure comments on
that open issue instead of opening another; the next successful run comments there and closes it
(``close: "false"``: comments once and leaves it open). The credentials are the GitHub function's
(``functions.github.client``: ``GITHUB_TOKEN``, or a GitHub App whose installation is looked up per
repository), read from the same ``GITHUB_*`` settings and Secret keys.

Exactly once: every issue body and comment carries a hidden marker with ``ctx.key()`` (one per
run UID and state), looked up on GitHub before anything is added (``lifecycle``), and the issue is
found again by its stable label and pipeline marker, so restarts, crashes and redeliveries never
open a second issue or repeat a comment. The runtime also claims each state first (the fast path).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from common import (
    CommaList,
    Context,
    Destinations,
    Idempotency,
    Integration,
    IntegrationConfig,
    Report,
    RunPhase,
    always,
    serve,
)
from common.config import RunStates
from common.settings import PerSettings
from functions.github.client import GitHubClients, GitHubSettings
from functions.github_issues.errors import FAULTS, classify
from functions.github_issues.issues import IssuesApi
from functions.github_issues.lifecycle import ISSUE_NUMBER, Lifecycle, one_at_a_time
from functions.github_issues.presentation import LABEL

MAX_LABELS = 10
MAX_LABEL_LENGTH = 50
"""GitHub refuses longer label names."""
DEFAULT_STATES = frozenset({RunPhase.FAILED, RunPhase.TIMED_OUT, RunPhase.SUCCEEDED})
"""Failures open or comment, a success closes; a cancelled run is someone's decision, not a failure
(``on: failed`` or ``cancelled`` includes it)."""

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]


def _labels(labels: list[str]) -> list[str]:
    """Extra labels for new issues: GitHub's length limit, no control characters, no repeats."""
    kept: list[str] = []
    for label in labels:
        if len(label) > MAX_LABEL_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in label):
            raise ValueError(
                f"{label[:60]!r} is not a label: at most {MAX_LABEL_LENGTH} printable characters"
            )
        if label.lower() != LABEL and label.lower() not in (k.lower() for k in kept):
            kept.append(label)
    return kept


class GitHubIssuesConfig(IntegrationConfig):
    owner: Name
    repo: Name
    on: RunStates | None = None
    """Unset: failed and timed-out runs open or comment, succeeded ones close."""
    labels: Annotated[CommaList, AfterValidator(_labels), Field(max_length=MAX_LABELS)] = Field(
        default_factory=list
    )
    """Labels added to a new issue, besides ``tekton-pipeline-failure``."""
    close: bool = True
    """Whether a success closes the issue (else it comments and leaves it open)."""


Ctx = Context[GitHubIssuesConfig, GitHubSettings]

_github_clients = PerSettings(GitHubClients)
"""The GitHub function's clients (connections pooled per thread; App installations and tokens
cached) for the current settings."""


def report(ctx: Ctx) -> Report:
    from urllib3.exceptions import HTTPError  # noqa: PLC0415 -- urllib3 only for a run it reports

    from functions.github.rest import GitHubError  # noqa: PLC0415

    config = ctx.config
    clients = _github_clients(ctx.settings)
    lifecycle: Lifecycle | None = None
    try:
        api = IssuesApi(clients.repo(config.owner, config.repo).api, config.owner, config.repo)
        lifecycle = Lifecycle(ctx, api, labels=config.labels, close=config.close)
        with one_at_a_time(f"{ctx.settings.base_url} {config.owner}/{config.repo} {lifecycle.subject}"):
            return lifecycle.passed() if ctx.run.phase is RunPhase.SUCCEEDED else lifecycle.failed()
    except (GitHubError, HTTPError) as e:
        if isinstance(e, GitHubError) and e.status in (401, 404):
            clients.forget_installation(config.owner, config.repo)  # uninstalled or moved: look again
        doing = lifecycle.api.doing if lifecycle else "look up the GitHub App installation"
        error = classify(e, f"{doing} in {config.owner}/{config.repo}")
        if lifecycle is not None and lifecycle.issue is not None:
            error.annotations = {ISSUE_NUMBER: str(lifecycle.issue), **error.annotations}
        raise error from e


integration = Integration(
    declared_in=__file__,
    config=GitHubIssuesConfig,
    settings=GitHubSettings,
    report=report,
    policy=Destinations("repositories", "repository"),
    destinations=lambda ctx: [f"{ctx.config.owner}/{ctx.config.repo}"],
    faults=FAULTS,
    states=DEFAULT_STATES,
    wants=lambda ctx: ctx.run.phase.is_done,
    idempotency=Idempotency(
        "hidden marker key = ctx.key() (run UID, state) in the issue body or comment, looked up in the "
        "pipeline's issues (label tekton-pipeline-failure + pipeline marker) before opening or "
        "commenting; one open issue per pipeline, found again by label and marker",
        claim=always,
    ),
)
handle = serve(integration)
