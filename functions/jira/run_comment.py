"""A run that names an issue: one comment on it, edited as the run progresses, and an optional
transition when the run succeeds.

Before any write the issue is read, and the project Jira says it is in must be the one its key
names (the project the namespace policy allowed): an issue moved to another project keeps
answering to its old key, and is not written to. The comment is found from the record only if
Jira confirms it is this run's (``functions.jira.lookup``), else looked up by its marker; it is
posted only when there is none. The record keeps ``issue`` and ``comment-id``.
"""

from __future__ import annotations

from typing import Any

from common import Context, Report, RunPhase, TargetNotAllowedError
from common.config import annotation_key
from common.errors import IntegrationError
from common.summary import unsuccessful_tasks
from functions.jira.client import JiraClient
from functions.jira.content import render, run_comment, status_of
from functions.jira.errors import JiraAnswerError, classify
from functions.jira.lookup import find_comment, plan_move, run_marker, state_marker, text_of


def report_on_issue(ctx: Context[Any, Any], jira: JiraClient) -> Report:
    key: str = ctx.config.issue
    issue = jira.issue(key, "project,status")
    fields = issue.get("fields") or {}
    project = str((fields.get("project") or {}).get("key") or "")
    named = key.rsplit("-", 1)[0]
    if project.upper() != named:
        raise TargetNotAllowedError(
            f"{annotation_key(ctx.integration, 'issue')} names {key}, but Jira has that issue in "
            f"project {project or '?'} (as {issue.get('key', '?')}): it was moved; name it by its "
            "current key"
        )
    marker, state = run_marker(ctx), state_marker(ctx)
    found = find_comment(jira, key, marker, recorded=ctx.recorded("comment-id"))
    shown = found is not None and state in text_of(found.get("body"))
    failed = ctx.run.condition is not None and ctx.run.condition.status == "False"
    tasks = unsuccessful_tasks(ctx.run, ctx.child_runs()) if failed else []
    body = render(run_comment(ctx.run, tasks, ctx.run_url, markers=(marker, state)), jira.edition)
    if found is None:
        comment_id = jira.add_comment(key, body)
    else:
        comment_id = str(found["id"])
        if not shown:  # an earlier delivery of this state edited it already
            jira.edit_comment(key, comment_id, body)
    did = f"comment {comment_id} on {key} shows {status_of(ctx.run).text}"
    kept = {"issue": key, "comment-id": comment_id}
    name = ctx.config.transition
    if ctx.run.phase != RunPhase.SUCCEEDED or not name:
        return Report(did, kept)
    try:
        move = plan_move(jira, key, name, fields.get("status") or {}, tried=shown)
        if move.transition is not None:
            jira.transition(key, move.transition, name)
            return Report(f"{did}; moved {key} to {move.status} ({name})", kept)
        return Report(f"{did}; {key} is already {move.status}", kept)
    except JiraAnswerError as e:
        raise _keeping(classify(e), kept) from e
    except IntegrationError as e:
        raise _keeping(e, kept) from None


def _keeping(error: IntegrationError, kept: dict[str, str]) -> IntegrationError:
    """``error``, recording where the comment is: the retry edits it, and never posts another."""
    error.annotations = {**kept, **error.annotations}
    return error
