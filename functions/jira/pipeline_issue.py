"""A run that names a project: one open issue per failing pipeline, commented on while the
pipeline keeps failing, and told (and resolved, if configured) when it passes again.

The pipeline is its namespace and name (``ci/build-and-test``). Its issue carries the label
``tekton-<16 hex digits of SHA-256("<namespace>/<pipeline>")>`` and the same marker in its
description; it is found with JQL (``project = P AND labels = L AND creator = currentUser() AND
statusCategory != Done``, oldest first), so only an open issue this account opened counts.
Every issue or comment written for one (run, state) carries ``tekton-ref:<ctx.key>``: before a
comment is added the issue's comments are searched for it, and an issue opened for this very
failure is recognised by its description. Nothing is read from the record, which keeps the
issue's key for people and for ``explain``.

Jira's search index follows writes within moments, not at once. The claim taken before each
call holds another delivery of the same run state off for two minutes, far longer; two
different runs of one pipeline failing within that moment can open two issues, after which
every later failure and success goes to the older one.
"""

from __future__ import annotations

import hashlib
from typing import Any

from common import Context, Report, Run, RunPhase
from common.summary import unsuccessful_tasks
from functions.jira.client import JiraClient
from functions.jira.content import failed_again, new_issue, passes_again, render, summary
from functions.jira.lookup import find_comment, plan_move, ref_marker, text_of

SEARCHED = 10
"""Open issues of one pipeline read at most: normally there is one."""
FIELDS = ["summary", "labels", "project", "status", "description"]


def pipeline_of(run: Run) -> str:
    """``ci/build-and-test``: the run's namespace and the Pipeline (or Task) it runs. A run of an
    embedded spec has no such name; its ``generateName`` stands in, so its runs still share one."""
    name = run.definition
    generated = str(run.raw.get("metadata", {}).get("generateName") or "").rstrip("-")
    if name == run.name and generated:
        name = generated
    return f"{run.namespace}/{name}"


def pipeline_label(run: Run) -> str:
    identity = pipeline_of(run) if run.kind == "PipelineRun" else f"{run.kind}:{pipeline_of(run)}"
    return "tekton-" + hashlib.sha256(identity.encode()).hexdigest()[:16]


def report_on_pipeline(ctx: Context[Any, Any], jira: JiraClient) -> Report:
    project: str = ctx.config.project
    pipeline, label, ref = pipeline_of(ctx.run), pipeline_label(ctx.run), ref_marker(ctx)
    issue = open_issue(jira, project, label)
    if ctx.run.phase == RunPhase.SUCCEEDED:
        if issue is None:
            return Report(f"pipeline {pipeline} has no open issue in {project}: nothing to tell")
        return _passes_again(ctx, jira, issue, ref)
    failed = ctx.run.condition is not None and ctx.run.condition.status == "False"
    tasks = unsuccessful_tasks(ctx.run, ctx.child_runs()) if failed else []
    if issue is None:
        description = new_issue(
            ctx.run, pipeline, tasks, ctx.run_url, markers=(label, ref), resolves=bool(ctx.config.resolve)
        )
        fields = {
            "project": {"key": project},
            "summary": summary(pipeline),
            "issuetype": {"name": ctx.config.issue_type},
            "labels": [label, *(extra for extra in ctx.config.labels if extra != label)],
            "description": render(description, jira.edition),
        }
        key = jira.create_issue(fields, project)
        return Report(f"opened {key} for failing pipeline {pipeline}", {"issue": key})
    key = str(issue["key"])
    if ref in text_of((issue.get("fields") or {}).get("description")):
        return Report(f"{key} was opened for this failure of {pipeline}", {"issue": key})
    found = find_comment(jira, key, ref)
    if found is not None:
        return Report(f"{key} already has comment {found['id']} on this failure", {"issue": key})
    body = render(failed_again(ctx.run, tasks, ctx.run_url, markers=(ref,)), jira.edition)
    comment_id = jira.add_comment(key, body)
    return Report(f"comment {comment_id} on {key}: {pipeline} failed again", {"issue": key})


def open_issue(jira: JiraClient, project: str, label: str) -> dict[str, Any] | None:
    """The oldest open issue this account opened for the pipeline in ``project``, if any."""
    jql = (
        f'project = "{project}" AND labels = "{label}" AND creator = currentUser() '
        "AND statusCategory != Done ORDER BY created ASC"
    )
    for issue in jira.search(jql, FIELDS, SEARCHED):
        fields = issue.get("fields") or {}
        category = ((fields.get("status") or {}).get("statusCategory") or {}).get("key")
        if (
            str((fields.get("project") or {}).get("key") or "").upper() == project
            and label in (fields.get("labels") or [])
            and category != "done"
            and isinstance(issue.get("key"), str)
        ):
            return issue
    return None


def _passes_again(ctx: Context[Any, Any], jira: JiraClient, issue: dict[str, Any], ref: str) -> Report:
    key, name = str(issue["key"]), ctx.config.resolve
    pipeline = pipeline_of(ctx.run)
    found = find_comment(jira, key, ref)
    if found is None:
        body = render(passes_again(ctx.run, ctx.run_url, markers=(ref,), resolving=name), jira.edition)
        comment = f"comment {jira.add_comment(key, body)} on {key}: {pipeline} passes again"
    else:
        comment = f"{key} already has comment {found['id']} on this success"
    if not name:
        return Report(comment, {"issue": key})
    status = (issue.get("fields") or {}).get("status") or {}
    move = plan_move(jira, key, name, status, tried=found is not None)
    if move.transition is not None:
        jira.transition(key, move.transition, name)
    return Report(f"{comment}; resolved {key} ({move.status})", {"issue": key})
