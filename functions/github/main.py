"""GitHub: report a Tekton run as a check run (one per run and context, edited as it progresses)
or as commit statuses.

Annotations: ``github.integrations.tekton.dev/{owner,repo,sha|commit,context,mode}``.

One check run per run: it carries ``external_id`` = the run's UID. A check-run id read from the
record is used only once GitHub confirms that check run is this run's (same ``external_id``,
name and commit, in the configured repository); without a usable id, this run's check run is
looked up by ``external_id`` among the commit's check runs of that name before one is created,
so a crash, a lost answer or Tekton writing back an older record never creates a second.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AliasChoices, BeforeValidator, Field, StringConstraints

from common import Context, Destinations, Idempotency, Integration, IntegrationConfig, Report, serve
from common.settings import PerSettings
from functions.github.client import GitHubClients, GitHubSettings
from functions.github.errors import FAULTS, classify
from functions.github.presentation import (
    check_run_fields,
    commit_description,
    commit_state,
    default_context,
)

if TYPE_CHECKING:  # PyGithub (and requests) is imported by the first report
    from github import Github
    from github.CheckRun import CheckRun
    from github.Repository import Repository

log = logging.getLogger(__name__)

MAX_CHECK_RUNS_SEARCHED = 300
"""Check runs of one name on one commit looked through for this run's (re-runs add more)."""

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]
Sha = Annotated[
    str,
    BeforeValidator(lambda value: value.strip().lower() if isinstance(value, str) else value),
    StringConstraints(pattern=r"^([0-9a-f]{40}|[0-9a-f]{64})$"),
]


class GitHubConfig(IntegrationConfig):
    owner: Name
    repo: Name
    sha: Sha = Field(validation_alias=AliasChoices("sha", "commit"))
    context: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    mode: Literal["check-run", "status"] = "check-run"


_github_clients = PerSettings(GitHubClients)
"""The clients, with their cached App installations and tokens, for the current settings."""

Ctx = Context[GitHubConfig, GitHubSettings]


def report(ctx: Ctx) -> Report:
    from github import GithubException  # noqa: PLC0415 -- PyGithub only for a run it reports
    from requests.exceptions import RequestException  # noqa: PLC0415

    config = ctx.config
    context = config.context or default_context(ctx.run)
    step = "look up the GitHub App installation"
    clients = _github_clients(ctx.settings)
    try:
        github = clients.for_repo(config.owner, config.repo)
        try:
            repo = github.get_repo(f"{config.owner}/{config.repo}")
            if config.mode == "status":
                step = "create commit status"
                return _post_status(ctx, repo, context)
            step = "find this run's check run"
            check = _own_check_run(ctx, repo, context)
            step = "update check run" if check is not None else "create check run"
            return _upsert_check_run(ctx, repo, context, check)
        finally:
            _note_budget(github)
    except (GithubException, RequestException) as e:
        if isinstance(e, GithubException) and e.status in (401, 404):
            clients.forget_installation(config.owner, config.repo)  # uninstalled or moved: look again
        raise classify(e, f"{step} on {config.owner}/{config.repo}") from e


def _note_budget(github: Github) -> None:
    """Pass on the rate-limit budget GitHub's last answer reported (PyGithub keeps it from the
    headers of every answer; ``Github.rate_limiting`` itself may ask GitHub again)."""
    requester = github.requester
    remaining, limit = requester.rate_limiting
    if limit >= 0:
        FAULTS.seen(
            {
                "x-ratelimit-remaining": str(remaining),
                "x-ratelimit-limit": str(limit),
                "x-ratelimit-reset": str(requester.rate_limiting_resettime),
                "x-ratelimit-resource": "core",  # the REST budget every call here draws on
            }
        )


def _post_status(ctx: Ctx, repo: Repository, context: str) -> Report:
    state = commit_state(ctx.run)
    kwargs: dict[str, str] = {"description": commit_description(ctx.run), "context": context}
    if ctx.run_url:
        kwargs["target_url"] = ctx.run_url
    repo.get_commit(ctx.config.sha).create_status(state, **kwargs)
    return Report(f"commit status {context} set to {state}", {"context": context, "state": state})


def _own_check_run(ctx: Ctx, repo: Repository, context: str) -> CheckRun | None:
    """This run's check run: the recorded one if GitHub confirms it, else found by ``external_id``."""
    recorded = ctx.recorded("check-run-id")
    if recorded:
        check = _recorded_check_run(repo, recorded)
        if check is not None and _is_this_runs(check, ctx, context):
            return check
        log.warning(
            "the record on %s/%s names check run %r, which is not this run's check run on %s: ignored",
            ctx.run.namespace,
            ctx.run.name,
            recorded[:40],
            repo.full_name,
        )
    candidates = repo.get_commit(ctx.config.sha).get_check_runs(check_name=context, filter="all")
    for check in islice(candidates, MAX_CHECK_RUNS_SEARCHED):
        if _is_this_runs(check, ctx, context):
            return check
    return None


def _recorded_check_run(repo: Repository, recorded: str) -> CheckRun | None:
    from github import GithubException  # noqa: PLC0415 -- imported already by report

    if not recorded.isdigit() or len(recorded) > 20:
        return None
    try:
        return repo.get_check_run(int(recorded)).complete()  # lazy clients fetch only when asked
    except GithubException as e:
        if e.status == 404:
            return None  # another repository's, or deleted
        raise


def _is_this_runs(check: CheckRun, ctx: Ctx, context: str) -> bool:
    return check.external_id == ctx.run.uid and check.name == context and check.head_sha == ctx.config.sha


def _upsert_check_run(ctx: Ctx, repo: Repository, context: str, check: CheckRun | None) -> Report:
    fields = check_run_fields(ctx.run, datetime.now(UTC)).as_kwargs()
    if ctx.run_url:
        fields["details_url"] = ctx.run_url
    if check is not None:
        check.edit(**fields)
        check_run_id = str(check.id)
    else:
        created = repo.create_check_run(
            name=context, head_sha=ctx.config.sha, external_id=ctx.run.uid, **fields
        )
        check_run_id = str(created.id)
    outcome = fields.get("conclusion") or fields["status"]
    return Report(
        f"check run {context} ({check_run_id}) set to {outcome}",
        {"check-run-id": check_run_id, "context": context},
    )


def _creates_check_run(ctx: Ctx) -> bool:
    """Creating a check run must happen once per run: claim it first (the fast path)."""
    return ctx.config.mode == "check-run" and not ctx.recorded("check-run-id")


integration = Integration(
    declared_in=__file__,
    config=GitHubConfig,
    settings=GitHubSettings,
    report=report,
    policy=Destinations("repositories", "repository"),
    destinations=lambda ctx: [f"{ctx.config.owner}/{ctx.config.repo}"],
    faults=FAULTS,
    min_scale=1,  # a cold start would delay the first status users see on their commit
    idempotency=Idempotency(
        "check run external_id = run UID, looked up among the commit's check runs before creating",
        claim=_creates_check_run,
    ),
)
handle = serve(integration)
