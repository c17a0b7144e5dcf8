"""What users read on GitHub: the issue's title and body, and the comments. Pure: no I/O.

A run's own words (condition messages, task messages) are escaped before they go in: no
Markdown, HTML, @-mentions or markers can be smuggled in through a failing step's message.
Everything is kept within GitHub's limits (a title of 256 characters, a body of 65536).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from common import Run
from common.errors import clip
from common.summary import TaskOutcome, format_duration, headline
from functions.github_issues.markers import Subject, state_marker

LABEL = "tekton-pipeline-failure"
"""The stable label every issue this function opens carries: lookups list open issues by it."""
MAX_TITLE = 256
MAX_BODY = 65536
MAX_TASKS = 30
"""Rows in the failed-tasks table; more are counted, not listed."""
MAX_MESSAGE = 300
MAX_RUN_MESSAGE = 1000

_SPECIAL = re.compile(r"[\\`*_\[\]<>#|@&~]")


def escape(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit``, with every character Markdown or HTML could act on
    written as an entity (GitHub shows ``&#64;`` as ``@`` but never notifies anyone for it)."""
    plain = clip(" ".join(text.split()), limit)
    return _SPECIAL.sub(lambda found: f"&#{ord(found.group(0))};", plain)


def code(name: str) -> str:
    """A Kubernetes name as inline code (names hold no backticks; any are dropped)."""
    return f"`{name.replace('`', '')}`"


def title(subject: Subject) -> str:
    """Stable for the subject: ``tekton: ci/build-and-test is failing``."""
    what = str(subject) if subject.kind == "pipeline" else f"{subject} ({_noun(subject)})"
    return clip(f"tekton: {what} is failing", MAX_TITLE)


def opening_body(
    subject: Subject, run: Run, tasks: Sequence[TaskOutcome], link: str | None, key: str, *, closes: bool
) -> str:
    """The new issue's body: what it tracks, the failed run, its failed tasks, and the promise."""
    later = (
        "its next successful run closes this issue"
        if closes
        else "its next successful run says so here (the issue stays open)"
    )
    parts = [
        subject.marker,
        state_marker(run.uid, key, "failed"),
        f"The Tekton {_noun(subject).lower()} {code(subject.name)} in namespace "
        f"{code(subject.namespace)} is failing.",
        _run_line(run, link, "Failed"),
        *_failure_details(run, tasks),
        f"<sub>Opened by tekton-integrations. Later failures of this {_noun(subject).lower()} are "
        f"added here as comments and {later}. Keep the `{LABEL}` label: it is how this issue is "
        "found again.</sub>",
    ]
    return _join(parts)


def failure_comment(run: Run, tasks: Sequence[TaskOutcome], link: str | None, key: str) -> str:
    return _join(
        [
            state_marker(run.uid, key, "failed"),
            _run_line(run, link, "Failed again"),
            *_failure_details(run, tasks),
        ]
    )


def success_comment(run: Run, link: str | None, key: str, *, closes: bool) -> str:
    then = " Closing this issue." if closes else ""
    return _join([state_marker(run.uid, key, "passed"), _run_line(run, link, "Passed") + then])


def duplicate_body(body: str, canonical: int) -> str:
    """The body of an issue closed as a duplicate (two runs opened one at the same moment)."""
    return clip(f"Duplicate of #{canonical}.\n\n{body}", MAX_BODY)


def _noun(subject: Subject) -> str:
    return {"pipeline": "Pipeline", "task": "Task", "custom-task": "Custom task"}[subject.kind]


def _run_line(run: Run, link: str | None, what: str) -> str:
    """``**Failed:** run `name` (Failed: StepFailed), after 1m 0s.``"""
    name = f"[{code(run.name)}]({link})" if link else code(run.name)
    took = format_duration(run.duration_seconds)
    return f"**{what}:** run {name} ({escape(headline(run), 200)})" + (f", after {took}." if took else ".")


def _failure_details(run: Run, tasks: Sequence[TaskOutcome]) -> list[str]:
    details = []
    message = run.condition.message if run.condition else ""
    if message:
        details.append("> " + escape(message, MAX_RUN_MESSAGE))
    if tasks:
        rows = ["| Task | Reason | Message |", "| --- | --- | --- |"]
        rows += [
            f"| {code(task.task)} | {escape(task.reason, 100)} | {escape(task.message, MAX_MESSAGE)} |"
            for task in tasks[:MAX_TASKS]
        ]
        if len(tasks) > MAX_TASKS:
            rows.append(f"| … | | {len(tasks) - MAX_TASKS} more |")
        details.append("\n".join(rows))
    return details


def _join(parts: Sequence[str]) -> str:
    return clip("\n\n".join(part for part in parts if part), MAX_BODY)
