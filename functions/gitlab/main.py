"""GitLab: report a Tekton run as a commit status (pending, running, success, failed, canceled).

Annotations: ``gitlab.integrations.tekton.dev/{project,sha|commit,ref,name,url}``. One status per
run and name, moved along as the run progresses; GitLab keeps its own history of transitions.
"""

from __future__ import annotations

from typing import Annotated

from gitlab.exceptions import GitlabError
from pydantic import AliasChoices, Field, StringConstraints
from requests.exceptions import RequestException

from common import Context, Integration, IntegrationConfig, Report, serve
from functions.gitlab.client import GitLabSettings, post_status
from functions.gitlab.errors import (
    RedirectRefusedError,
    ThrottledError,
    classify,
    is_already_there,
)
from functions.gitlab.presentation import FIELD_LIMIT, commit_state, default_name, description

Project = Annotated[
    str,
    StringConstraints(
        pattern=r"^([0-9]+|[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)+)$", max_length=1000
    ),
]
Sha = Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{40}|[0-9a-f]{64})$", to_lower=True)]
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]+$", max_length=FIELD_LIMIT)]
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$", max_length=500)]


class GitLabConfig(IntegrationConfig):
    project: Project
    sha: Sha = Field(validation_alias=AliasChoices("sha", "commit"))
    ref: Text | None = None
    name: Text | None = None
    url: Url | None = None


def report(ctx: Context[GitLabConfig]) -> Report:
    config = ctx.config
    settings = GitLabSettings.from_env()
    settings.check_instance(config.url)
    name = config.name or default_name(ctx.run)
    state = commit_state(ctx.run)
    fields = {"state": state, "name": name, "description": description(ctx.run)}
    if config.ref:
        fields["ref"] = config.ref
    link = ctx.run_url
    if link and len(link) <= FIELD_LIMIT:  # GitLab refuses the whole status over a long link
        fields["target_url"] = link
    kept = {"name": name, "state": state}
    try:
        post_status(settings, config.project, config.sha, fields)
    except GitlabError as e:
        if not is_already_there(e):
            raise classify(e, f"set commit status {name} on {config.project}") from e
        return Report(f"commit status {name} is already {state} or later", kept)
    except (RequestException, ThrottledError, RedirectRefusedError) as e:
        raise classify(e, f"set commit status {name} on {config.project}") from e
    return Report(f"commit status {name} set to {state}", kept)


integration = Integration(
    name="gitlab",
    config=GitLabConfig,
    report=report,
    destinations=lambda ctx: [ctx.config.project],  # the namespace policy's gitlab.projects
)
handle = serve(integration)
