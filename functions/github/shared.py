"""What several runs on one commit report together on GitHub: a rollup check run, and one
pull-request comment. The GitHub function's ``report`` calls ``report_shared`` after the run's own
check run or status.

Annotations (``github.integrations.tekton.dev/...``):

- ``rollup: <check name>``: every run on the same commit (same owner/repo, same namespace) that
  names the same rollup contributes to one check run of that name (``functions.github.rollup``).
- ``rollup-skipped: success``: this run counts as a success in its rollup when it was skipped
  (cancelled before any task ran, or every task skipped by its when expressions;
  ``common.peers.was_skipped``), so a pipeline that had nothing to do never blocks a required
  check (Pipelines-as-Code#1746).
- ``pull-request: <number>`` with ``comment: "true"``: one comment on the pull request, edited in
  place, lists every such run on the pull request's head commit (``functions.github.pull_request_comment``).

Both are created once whatever the concurrency (``common.coordination``) and always recomputed
from the live runs (``common.peers``). The ids they return for the record are hints only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from common import Context, IntegrationConfig
from functions.github.client import GitHubSettings

if TYPE_CHECKING:
    from functions.github.rest import Repo

CheckName = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]+$", max_length=100)]


class SharedReports(IntegrationConfig):
    """Mixin for ``GitHubConfig``: the reports a run shares with the other runs on its commit."""

    rollup: CheckName | None = None
    """``rollup``: the name of a check run that sums up every run on the commit that names it."""
    rollup_skipped: Literal["success"] | None = Field(None, alias="rollup-skipped")
    """``rollup-skipped: success``: a skipped run counts as a success in its rollup."""
    pull_request: int | None = Field(None, ge=1, le=2**31 - 1, alias="pull-request")
    """``pull-request``: the number of the pull request the run tests."""
    comment: bool = False
    """``comment: "true"``: list the run in the pull request's one comment of Tekton runs."""

    @field_validator("comment")
    @classmethod
    def _needs_pull_request(cls, comment: bool, info: ValidationInfo) -> bool:
        if comment and info.data.get("pull_request") is None:
            raise ValueError(
                'comment: "true" needs the number of the pull request in '
                "github.integrations.tekton.dev/pull-request"
            )
        return comment


@dataclass(frozen=True)
class Commit:
    """The commit a run reports on: the repository (as written in the annotations) and the SHA."""

    owner: str
    repo: str
    sha: str

    def names(self, settings: Mapping[str, str]) -> bool:
        """Whether another run's ``github`` annotations name this commit."""
        sha = (settings.get("sha") or settings.get("commit") or "").strip().lower()
        return (
            settings.get("owner", "").strip().lower() == self.owner.lower()
            and settings.get("repo", "").strip().lower() == self.repo.lower()
            and sha == self.sha
        )


def report_shared(ctx: Context[Any, GitHubSettings], repo: Repo) -> dict[str, str]:
    """Update the run's rollup check run and pull-request comment, where it asks for them, and
    return what the record keeps of them (``rollup-check-run-id``, ``comment-id``)."""
    config: SharedReports = ctx.config
    if not config.rollup and not config.comment:
        return {}
    from common.peers import cluster_for  # noqa: PLC0415 -- only for a run that shares a report

    cluster = cluster_for(ctx, "a rollup or pull-request comment")
    commit = Commit(str(ctx.config.owner), str(ctx.config.repo), str(ctx.config.sha))
    kept: dict[str, str] = {}
    if config.rollup:
        from functions.github.rollup import report_rollup  # noqa: PLC0415 -- only for a run in a rollup

        kept |= report_rollup(ctx, cluster, repo, commit, config.rollup)
    if config.comment and config.pull_request is not None:
        from functions.github.pull_request_comment import report_comment  # noqa: PLC0415

        kept |= report_comment(ctx, cluster, repo, commit, config.pull_request)
    return kept
