"""GitHub: report a Tekton run as a check run (one per run and context, edited as it progresses)
or as commit statuses.

Annotations: ``github.integrations.tekton.dev/{owner,repo,sha|commit,context,mode}``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Annotated, Literal

from github import GithubException
from github.Repository import Repository
from pydantic import AliasChoices, Field, StringConstraints
from requests.exceptions import RequestException

from common import Context, Integration, IntegrationConfig, Report, serve
from functions.github.client import GitHubClients, GitHubSettings
from functions.github.errors import classify
from functions.github.presentation import (
    check_run_fields,
    commit_description,
    commit_state,
    default_context,
)

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]
Sha = Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{40}|[0-9a-f]{64})$", to_lower=True)]


class GitHubConfig(IntegrationConfig):
    owner: Name
    repo: Name
    sha: Sha = Field(validation_alias=AliasChoices("sha", "commit"))
    context: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    mode: Literal["check-run", "status"] = "check-run"


_clients: GitHubClients | None = None
_clients_lock = threading.Lock()


def _github_clients() -> GitHubClients:
    """Clients for the current settings; rebuilt when a mounted secret or the environment changes."""
    global _clients  # noqa: PLW0603 -- one cache per process, keyed on the settings it was built from
    settings = GitHubSettings.from_env()
    with _clients_lock:
        if _clients is None or _clients.settings != settings:
            _clients = GitHubClients(settings)
        return _clients


def report(ctx: Context[GitHubConfig]) -> Report:
    config = ctx.config
    context = config.context or default_context(ctx.run)
    step = "look up the GitHub App installation"
    clients = _github_clients()
    try:
        repo = clients.for_repo(config.owner, config.repo).get_repo(f"{config.owner}/{config.repo}")
        if config.mode == "status":
            step = "create commit status"
            return _post_status(ctx, repo, context)
        step = "update check run" if ctx.recorded("check-run-id") else "create check run"
        return _upsert_check_run(ctx, repo, context)
    except (GithubException, RequestException) as e:
        if isinstance(e, GithubException) and e.status in (401, 404):
            clients.forget_installation(config.owner, config.repo)  # uninstalled or moved: look again
        raise classify(e, f"{step} on {config.owner}/{config.repo}") from e


def _post_status(ctx: Context[GitHubConfig], repo: Repository, context: str) -> Report:
    state = commit_state(ctx.run)
    kwargs: dict[str, str] = {"description": commit_description(ctx.run), "context": context}
    if ctx.run_url:
        kwargs["target_url"] = ctx.run_url
    repo.get_commit(ctx.config.sha).create_status(state, **kwargs)
    return Report(f"commit status {context} set to {state}", {"context": context, "state": state})


def _upsert_check_run(ctx: Context[GitHubConfig], repo: Repository, context: str) -> Report:
    fields = check_run_fields(ctx.run, datetime.now(UTC)).as_kwargs()
    if ctx.run_url:
        fields["details_url"] = ctx.run_url
    recorded = ctx.recorded("check-run-id")
    if recorded:
        repo.get_check_run(int(recorded)).edit(**fields)
        check_run_id = recorded
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


def _needs_claim(ctx: Context[GitHubConfig]) -> bool:
    """Creating a check run must happen once per run: claim it first."""
    return ctx.config.mode == "check-run" and not ctx.recorded("check-run-id")


integration = Integration(
    name="github",
    config=GitHubConfig,
    report=report,
    needs_claim=_needs_claim,
    destinations=lambda ctx: [f"{ctx.config.owner}/{ctx.config.repo}"],
)
handle = serve(integration)
