"""What several runs on one commit report together on GitLab: a rollup commit status, and one
merge-request note. The GitLab function's ``report`` calls ``report_shared`` after the run's own
commit status.

Annotations (``gitlab.integrations.tekton.dev/...``):

- ``rollup: <status name>``: every run on the same commit (same project, same namespace) that names
  the same rollup contributes to one commit status of that name (``functions.gitlab.rollup``).
- ``rollup-skipped: success``: this run counts as a success in its rollup when it was skipped
  (cancelled before any task ran, or every task skipped by its when expressions;
  ``common.peers.was_skipped``).
- ``merge-request: <iid>`` with ``comment: "true"``: one note on the merge request, edited in
  place, lists every such run on its head commit (``functions.gitlab.merge_request_note``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from common import Context, IntegrationConfig
from functions.gitlab.client import GitLabSettings
from functions.gitlab.presentation import FIELD_LIMIT

StatusName = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]+$", max_length=FIELD_LIMIT)]


class SharedReports(IntegrationConfig):
    """Mixin for ``GitLabConfig``: the reports a run shares with the other runs on its commit."""

    rollup: StatusName | None = None
    """``rollup``: the name of a commit status that sums up every run on the commit naming it."""
    rollup_skipped: Literal["success"] | None = Field(None, alias="rollup-skipped")
    """``rollup-skipped: success``: a skipped run counts as a success in its rollup."""
    merge_request: int | None = Field(None, ge=1, le=2**31 - 1, alias="merge-request")
    """``merge-request``: the merge request's iid (its number in the project)."""
    comment: bool = False
    """``comment: "true"``: list the run in the merge request's one note of Tekton runs."""

    @field_validator("comment")
    @classmethod
    def _needs_merge_request(cls, comment: bool, info: ValidationInfo) -> bool:
        if comment and info.data.get("merge_request") is None:
            raise ValueError(
                'comment: "true" needs the iid of the merge request in '
                "gitlab.integrations.tekton.dev/merge-request"
            )
        return comment


@dataclass(frozen=True)
class Commit:
    """The commit a run reports on: the project (as written in the annotations) and the SHA."""

    project: str
    sha: str

    def names(self, settings: Mapping[str, str]) -> bool:
        """Whether another run's ``gitlab`` annotations name this commit."""
        sha = (settings.get("sha") or settings.get("commit") or "").strip().lower()
        return settings.get("project", "").strip() == self.project and sha == self.sha


def report_shared(ctx: Context[Any, GitLabSettings]) -> dict[str, str]:
    """Update the run's rollup status and merge-request note, where it asks for them, and return
    what the record keeps of them (``rollup-state``, ``note-id``)."""
    config: SharedReports = ctx.config
    if not config.rollup and not config.comment:
        return {}
    from common.peers import cluster_for  # noqa: PLC0415 -- only for a run that shares a report

    cluster = cluster_for(ctx, "a rollup or merge-request note")
    commit = Commit(str(ctx.config.project), str(ctx.config.sha))
    kept: dict[str, str] = {}
    if config.rollup:
        from functions.gitlab.rollup import report_rollup  # noqa: PLC0415 -- only for a run in a rollup

        kept |= report_rollup(ctx, cluster, commit, config.rollup)
    if config.comment and config.merge_request is not None:
        from functions.gitlab.merge_request_note import report_note  # noqa: PLC0415

        kept |= report_note(ctx, cluster, commit, config.merge_request)
    return kept
