"""GitHub: report a Tekton run as a check run (one per run and context, edited as it progresses)
or as commit statuses.

Annotations: ``github.integrations.tekton.dev/{owner,repo,sha|commit,context,mode,log-lines,template}``.

One check run per run: it carries ``external_id`` = the run's UID. A check-run id read from the
record is used only once GitHub confirms that check run is this run's (same ``external_id``,
name and commit, in the configured repository); without a usable id, this run's check run is
looked up by ``external_id`` among the commit's check runs of that name before one is created,
so a crash, a lost answer or Tekton writing back an older record never creates a second.

What the check run shows: its summary lists a finished PipelineRun's tasks (read with one list
of its TaskRuns), or is an operator's template (``template``, ``common.templates``); its text
has the run's facts and, for a failed run with ``log-lines: N``, the last N lines of each failed
step (``common.steplogs``; no log is read without it). All of it is read before GitHub is called.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field, StringConstraints

from common import (
    Context,
    Destinations,
    Idempotency,
    Integration,
    IntegrationConfig,
    Report,
    Run,
    serve,
)
from common.children import read_children
from common.config import ShowsStepLogs, Templated
from common.errors import IntegrationError
from common.settings import PerSettings
from functions.github.client import GitHubClients, GitHubSettings
from functions.github.errors import FAULTS, classify
from functions.github.presentation import (
    check_run_fields,
    commit_description,
    commit_state,
    default_context,
    default_summary,
    details,
    task_rows,
)
from functions.github.shared import SharedReports, report_shared

if TYPE_CHECKING:  # rest (urllib3) and the templates are imported by the first report
    from common.templates import Rendered
    from functions.github.rest import Repo

log = logging.getLogger(__name__)

MAX_CHECK_RUNS_SEARCHED = 300
"""Check runs of one name on one commit looked through for this run's (re-runs add more)."""
CheckRun = dict[str, Any]
"""A check run as GitHub's JSON describes it."""

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]
Sha = Annotated[
    str,
    BeforeValidator(lambda value: value.strip().lower() if isinstance(value, str) else value),
    StringConstraints(pattern=r"^([0-9a-f]{40}|[0-9a-f]{64})$"),
]


class CommitConfig(IntegrationConfig):
    """Where the run is reported: the repository, the commit, and as what."""

    owner: Name
    repo: Name
    sha: Sha = Field(validation_alias=AliasChoices("sha", "commit"))
    context: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    mode: Literal["check-run", "status"] = "check-run"


class GitHubConfig(SharedReports, Templated, ShowsStepLogs, CommitConfig):
    """A run's ``github`` annotations; the commit's are listed first (pydantic lists a model's
    fields from its last base on: ``tekton-integrations explain`` shows them in that order)."""


_github_clients = PerSettings(GitHubClients)
"""The clients, with their cached App installations and tokens, for the current settings."""

Ctx = Context[GitHubConfig, GitHubSettings]


def report(ctx: Ctx) -> Report:
    from urllib3.exceptions import HTTPError  # noqa: PLC0415 -- urllib3 only for a run it reports

    from functions.github.rest import GitHubError  # noqa: PLC0415

    config = ctx.config
    context = config.context or default_context(ctx.run)
    output = _output(ctx) if config.mode == "check-run" else None
    step = "look up the GitHub App installation"
    clients = _github_clients(ctx.settings)
    own: Report | None = None
    try:
        repo = clients.repo(config.owner, config.repo)
        if output is None:
            step = "create commit status"
            own = _post_status(ctx, repo, context)
        else:
            step = "find this run's check run"
            check = _own_check_run(ctx, repo, context)
            step = "update check run" if check is not None else "create check run"
            own = _upsert_check_run(ctx, repo, context, check, output)
        step = "report the checks the commit's runs share"
        return replace(own, annotations={**own.annotations, **report_shared(ctx, repo)})
    except (GitHubError, HTTPError) as e:
        if isinstance(e, GitHubError) and e.status in (401, 404):
            clients.forget_installation(config.owner, config.repo)  # uninstalled or moved: look again
        raise _keeping(own, classify(e, f"{step} on {config.owner}/{config.repo}")) from e
    except IntegrationError as e:
        _keeping(own, e)
        raise


def _keeping(own: Report | None, error: IntegrationError) -> IntegrationError:
    """``error``, with the record keeping what the run's own check run or status already got."""
    if own is not None:
        error.annotations = {**own.annotations, **error.annotations}
    return error


@dataclass(frozen=True)
class Output:
    """The check run's summary (as rendered: a template's, or the default) and text."""

    summary: Rendered
    text: str


def _output(ctx: Ctx) -> Output:
    """What the check run shows; reads the run's TaskRuns and failed steps' logs as needed."""
    from common.steplogs import as_markdown, failed_step_logs  # noqa: PLC0415 -- a check run's only
    from common.templates import render  # noqa: PLC0415

    children = _children(ctx)
    if children is not None:  # what reads the children next (the failed steps' logs) reads these
        ctx = replace(ctx, load_children=lambda _: list(children))
    tasks = task_rows(ctx.run, children or [], ctx.runtime.run_url)
    logs = failed_step_logs(ctx)
    summary = render(
        ctx, "github", lambda: default_summary(ctx.run, tasks), children=children, step_logs=logs
    )
    return Output(summary, details(ctx.run, (lambda room: as_markdown(logs, room)) if logs else None))


def _children(ctx: Ctx) -> list[Run] | None:
    """A finished PipelineRun's child TaskRuns, every one the task table lists (``None``, not read,
    while it runs: every event would)."""
    run = ctx.run
    if run.kind != "PipelineRun" or not run.phase.is_done:
        return None
    return ctx.child_runs() if ctx.cluster is None else read_children(ctx.cluster, run, limit=None)


def _post_status(ctx: Ctx, repo: Repo, context: str) -> Report:
    state = commit_state(ctx.run)
    fields: dict[str, str] = {"state": state, "description": commit_description(ctx.run), "context": context}
    if ctx.run_url:
        fields["target_url"] = ctx.run_url
    repo.create_status(ctx.config.sha, fields)
    return Report(f"commit status {context} set to {state}", {"context": context, "state": state})


def _own_check_run(ctx: Ctx, repo: Repo, context: str) -> CheckRun | None:
    """This run's check run: the recorded one if GitHub confirms it, else found by ``external_id``."""
    recorded = ctx.recorded("check-run-id")
    if recorded:
        check = repo.check_run(int(recorded)) if recorded.isdigit() and len(recorded) <= 20 else None
        if check is not None and _is_this_runs(check, ctx, context):
            return check
        log.warning(
            "the record on %s/%s names check run %r, which is not this run's check run on %s: ignored",
            ctx.run.namespace,
            ctx.run.name,
            recorded[:40],
            repo.full_name,
        )
    for check in islice(repo.check_runs(ctx.config.sha, context), MAX_CHECK_RUNS_SEARCHED):
        if _is_this_runs(check, ctx, context):
            return check
    return None


def _is_this_runs(check: CheckRun, ctx: Ctx, context: str) -> bool:
    return (
        check.get("external_id") == ctx.run.uid
        and check.get("name") == context
        and check.get("head_sha") == ctx.config.sha
    )


def _upsert_check_run(ctx: Ctx, repo: Repo, context: str, check: CheckRun | None, output: Output) -> Report:
    from common.templates import with_fallback  # noqa: PLC0415 -- loaded already by _output

    shown = check_run_fields(ctx.run, datetime.now(UTC), summary=output.summary.text, text=output.text)
    fields = shown.as_json()
    if ctx.run_url:
        fields["details_url"] = ctx.run_url
    if check is not None:
        check_run_id = str(repo.update_check_run(int(check["id"]), fields)["id"])
    else:
        created = repo.create_check_run(
            {"name": context, "head_sha": ctx.config.sha, "external_id": ctx.run.uid, **fields}
        )
        check_run_id = str(created["id"])
    outcome = fields.get("conclusion") or fields["status"]
    done = Report(
        f"check run {context} ({check_run_id}) set to {outcome}",
        {"check-run-id": check_run_id, "context": context},
    )
    return with_fallback(done, output.summary)


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
    coordinates_across_runs=True,  # a rollup check run and a pull request's comment are shared
    idempotency=Idempotency(
        "check run external_id = run UID, looked up among the commit's check runs before creating",
        claim=_creates_check_run,
    ),
)
handle = serve(integration)
