"""GitLab: report a Tekton run as a commit status (pending, running, success, failed, canceled).

Annotations: ``gitlab.integrations.tekton.dev/{project,sha|commit,ref,name,url,log-lines}``, and
those of the reports runs share (``rollup``, ``merge-request`` and ``comment``: see
``functions.gitlab.shared``). One status per (commit, name, ref), moved along as the run
progresses; GitLab keeps its own history of transitions. A repeat is harmless: GitLab refuses a
repeated ``pending`` or ``running`` (``Cannot transition status``, counted as done), and a
repeated finished state adds a job of the same name and state that supersedes the previous one,
so the commit's status does not change.

GitLab's description (255 characters) is too small for a log: with ``log-lines`` above 0, a failed
PipelineRun's status links to its failed TaskRun on the Tekton Dashboard, which shows the step's log.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, StringConstraints

from common import (
    Context,
    Destinations,
    Idempotency,
    Integration,
    IntegrationConfig,
    Report,
    RunPhase,
    TargetNotAllowedError,
    serve,
)
from common.config import MAX_LOG_LINES, annotation_key
from common.errors import IntegrationError
from functions.gitlab.client import GitLabSettings, normalize_url, post_status
from functions.gitlab.errors import FAULTS, GitLabAnswerError, classify, is_already_there
from functions.gitlab.presentation import FIELD_LIMIT, commit_state, default_name, description
from functions.gitlab.shared import SharedReports, report_shared

Project = Annotated[
    str,
    StringConstraints(
        pattern=r"^([0-9]+|[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)+)$", max_length=1000
    ),
]
Sha = Annotated[
    str,
    BeforeValidator(lambda value: value.strip().lower() if isinstance(value, str) else value),
    StringConstraints(pattern=r"^([0-9a-f]{40}|[0-9a-f]{64})$"),
]
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]+$", max_length=FIELD_LIMIT)]
Url = Annotated[
    str,
    StringConstraints(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$", max_length=500),
    AfterValidator(normalize_url),
]


class GitLabConfig(SharedReports, IntegrationConfig):
    project: Project
    sha: Sha = Field(validation_alias=AliasChoices("sha", "commit"))
    ref: Text | None = None
    name: Text | None = None
    url: Url | None = None
    """The instance, normalised; it must be ``GITLAB_URL``'s."""
    log_lines: int = Field(0, ge=0, le=MAX_LOG_LINES, alias="log-lines")
    """``log-lines``: above 0, a failed run's status links to its failed TaskRun's log on the
    Dashboard (GitLab shows no log itself, so none is read and the number is not used)."""


Ctx = Context[GitLabConfig, GitLabSettings]


def report(ctx: Ctx) -> Report:
    from gitlab.exceptions import GitlabError  # noqa: PLC0415 -- python-gitlab only for a run it reports
    from requests.exceptions import RequestException  # noqa: PLC0415

    config, settings = ctx.config, ctx.settings
    if config.url is not None and config.url != settings.url:
        raise TargetNotAllowedError(
            f"{annotation_key(ctx.integration, 'url')} {config.url} is not the GitLab instance this "
            f"function serves ({settings.url}); its token is only sent there"
        )
    name = config.name or default_name(ctx.run)
    state = commit_state(ctx.run)
    fields = {"state": state, "name": name, "description": description(ctx.run)}
    if config.ref:
        fields["ref"] = config.ref
    link = _failed_task_run_url(ctx) or ctx.run_url
    if link and len(link) <= FIELD_LIMIT:  # GitLab refuses the whole status over a long link
        fields["target_url"] = link
    kept = {"name": name, "state": state}
    said = f"commit status {name} set to {state}"
    what = f"set commit status {name} on {config.project}"
    try:
        try:
            post_status(settings, config.project, config.sha, fields)
        except GitLabAnswerError as e:
            if not is_already_there(e):
                raise
            said = f"commit status {name} is already {state} or later"
        what = f"update the reports shared with other runs on {config.project}"
        kept |= report_shared(ctx)
    except (GitLabAnswerError, GitlabError, RequestException) as e:
        raise classify(e, what) from e
    except IntegrationError as e:
        e.annotations = {**kept, **e.annotations}  # the run's own status is set: keep what it shows
        raise
    return Report(said, kept)


def _failed_task_run_url(ctx: Ctx) -> str | None:
    """Where a failed PipelineRun's failed step's log is shown: its first failed TaskRun on the
    Dashboard, when the run asks for logs (``log-lines``) and ``TEKTON_DASHBOARD_URL`` is set."""
    run = ctx.run
    if not ctx.config.log_lines or not ctx.runtime.dashboard_url or run.kind != "PipelineRun":
        return None
    if not run.phase.is_done or run.phase is RunPhase.SUCCEEDED:
        return None
    failed = (child for child in ctx.child_runs() if child.condition and child.condition.status == "False")
    return next((ctx.runtime.run_url(child) for child in failed), None)


integration = Integration(
    declared_in=__file__,
    config=GitLabConfig,
    settings=GitLabSettings,
    report=report,
    policy=Destinations("projects", "project"),
    destinations=lambda ctx: [ctx.config.project],
    faults=FAULTS,
    coordinates_across_runs=True,  # the rollup's and the note's Leases
    idempotency=Idempotency(
        "commit status per (sha, name, ref): GitLab refuses a repeated pending or running "
        "(Cannot transition status); a repeated finished state adds a job of the same name and "
        "state that supersedes the previous one (shown as retried), so the commit's status stays; "
        "finished states are claimed first, so concurrent deliveries add no such job",
        claim=lambda ctx: ctx.run.phase.is_done,
    ),
)
handle = serve(integration)
