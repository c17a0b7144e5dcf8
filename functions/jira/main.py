"""Jira: report Tekton runs on Jira Cloud (REST v3) or Data Center (REST v2) issues.

Annotations ``jira.integrations.tekton.dev/{issue,transition,on}`` or
``jira.integrations.tekton.dev/{project,on,resolve,issue-type,labels}`` (docs/jira.md):

- ``issue``: the run keeps one comment on that issue, edited as it progresses, and moves the
  issue with ``transition`` when it succeeds (``functions.jira.run_comment``).
- ``project``: a failing pipeline gets one open issue there, commented on at each further
  failure; when the pipeline passes again a comment says so, and ``resolve`` moves the issue
  (``functions.jira.pipeline_issue``).

Either way, the destination the namespace policy checks is a project: the issue key's project
(checked against the project Jira has the issue in before anything is written) or ``project``.

In the project mode ``on`` names the failure states that open or comment on an issue, and a
success is always looked at, since that is what closes the loop: so ``on`` is not the runtime's
list of reported states there, and this configuration keeps it under another attribute name
(``states``) and decides in ``wants``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints, ValidationInfo, field_validator

from common import (
    CommaList,
    Context,
    Destinations,
    Idempotency,
    Integration,
    IntegrationConfig,
    Report,
    RunPhase,
    RunStates,
    serve,
)
from common.config import STATE_NAMES
from functions.jira.client import ISSUE_KEY, PROJECT_KEY, JiraSettings, client
from functions.jira.errors import FAULTS, JiraAnswerError, classify
from functions.jira.pipeline_issue import report_on_pipeline
from functions.jira.run_comment import report_on_issue


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


IssueKey = Annotated[str, BeforeValidator(_upper), StringConstraints(pattern=ISSUE_KEY.pattern)]
ProjectKey = Annotated[str, BeforeValidator(_upper), StringConstraints(pattern=PROJECT_KEY.pattern)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]

ISSUE_STATES = STATE_NAMES["started"] | STATE_NAMES["finished"]
"""A run's comment appears when it starts and shows how it ended."""
FAILURE_STATES = STATE_NAMES["failed"]
"""Failed, cancelled and timed out: the states that may open or comment on a pipeline's issue."""


class JiraConfig(IntegrationConfig):
    issue: IssueKey | None = None
    """``issue``: the issue a run comments on (``WID-42``)."""
    project: ProjectKey | None = Field(None, validate_default=True)
    """``project``: the project (key) a failing pipeline's issue is opened in."""
    states: RunStates | None = Field(None, alias="on")
    """``on``: with ``issue``, the states the comment shows; with ``project``, the failure states
    that open or comment on the issue (a success is always looked at)."""
    transition: Name | None = None
    """``transition``: with ``issue``, the transition that moves the issue when the run succeeds."""
    resolve: Name | None = None
    """``resolve``: with ``project``, the transition that resolves the issue when the pipeline passes."""
    issue_type: Name = Field("Bug", alias="issue-type")
    labels: CommaList = Field(default_factory=list)
    """``labels``: more labels for a pipeline's issue."""

    @field_validator("project")
    @classmethod
    def _one_mode(cls, project: str | None, info: ValidationInfo) -> str | None:
        issue = info.data.get("issue")
        if project and issue:
            raise ValueError(
                "name either an issue (a comment on it per run) or a project (an issue per failing "
                "pipeline), not both"
            )
        if not project and not issue and "issue" in info.data:
            raise ValueError("name an issue to comment on (issue: WID-42) or a project to open issues in")
        return project

    @field_validator("states")
    @classmethod
    def _failure_states(cls, states: frozenset[RunPhase] | None, info: ValidationInfo) -> Any:
        if states and info.data.get("project") and not states <= FAILURE_STATES:
            raise ValueError("with a project, name failure states only (failed, cancelled, timed-out)")
        return states

    @field_validator("transition")
    @classmethod
    def _issue_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and info.data.get("project"):
            raise ValueError("only with an issue; with a project, resolve names the transition")
        return value

    @field_validator("resolve", "issue_type", "labels")
    @classmethod
    def _project_only(cls, value: Any, info: ValidationInfo) -> Any:
        if (
            info.data.get("issue")
            and value
            and value != cls.model_fields[str(info.field_name)].get_default(call_default_factory=True)
        ):
            raise ValueError("only with a project; with an issue, transition names the transition")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: list[str]) -> list[str]:
        for label in labels:
            if len(label) > 255 or any(character.isspace() for character in label):
                raise ValueError(f"{label[:40]!r} is not a Jira label (no spaces, at most 255 characters)")
        return labels


Ctx = Context[JiraConfig, JiraSettings]


def report(ctx: Ctx) -> Report:
    jira = client(ctx.settings)
    try:
        if ctx.config.issue:
            return report_on_issue(ctx, jira)
        return report_on_pipeline(ctx, jira)
    except JiraAnswerError as e:
        raise classify(e) from e


def _destinations(ctx: Ctx) -> list[str]:
    """The project, as the policy names it: the issue key's, or the ``project`` annotation."""
    return [ctx.config.issue.rsplit("-", 1)[0] if ctx.config.issue else str(ctx.config.project)]


def _wants(ctx: Ctx) -> bool:
    phase, asked = ctx.run.phase, ctx.config.states
    if ctx.config.issue:
        return phase in (asked or ISSUE_STATES)
    return phase in (asked or FAILURE_STATES) or phase == RunPhase.SUCCEEDED


def _may_create(ctx: Ctx) -> bool:
    """Whether this call may create a comment or an issue: claim it first (the fast path)."""
    return bool(ctx.config.project) or not ctx.recorded("comment-id")


integration = Integration(
    declared_in=__file__,
    config=JiraConfig,
    settings=JiraSettings,
    report=report,
    policy=Destinations("projects", "project"),
    destinations=_destinations,
    wants=_wants,
    faults=FAULTS,
    idempotency=Idempotency(
        "markers from ctx.key in every body: a run's one comment carries tekton-run:<key> and is "
        "looked up among the issue's comments by that marker and by this account's authorship "
        "before one is posted (a recorded comment id is used only once Jira confirms both); a "
        "failing pipeline's issue carries the label tekton-<hash of namespace/pipeline> and is "
        "found by JQL before one is opened; each issue or comment written for a (run, state) "
        "carries tekton-ref:<key>, looked for before writing",
        claim=_may_create,
    ),
)
handle = serve(integration)
