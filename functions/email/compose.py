"""The mail about one run state: headers, a text body and an HTML alternative.

Pure. Every header value is built with ``email.message.EmailMessage`` under the ``SMTP`` policy,
from validated addresses and from run facts with control characters removed, so nothing taken
from a run can add a header. The caller gives the Message-ID, a deterministic key per run state,
so a mail re-sent after a crash carries the same id and mail systems that dedupe by id show it once.

The body (``body``) is the run's facts, or an operator's template's text (``common.templates``;
plain text, shown as it is in the HTML alternative, escaped), then a failed run's failed steps'
last lines (``log-lines``, ``common.steplogs.as_plain``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from typing import TYPE_CHECKING

from common import Run
from common.errors import clip
from common.summary import TaskOutcome, format_duration, headline

if TYPE_CHECKING:  # step logs load with the first message that shows them
    from common.steplogs import StepLog

POLICY = SMTP.clone(max_line_length=998)
"""RFC 5322's hard line limit: CPython folds a long ``[Tekton] ...`` subject right after the
colon at the advisory 78, which some readers show with a leading space."""
MAX_TASKS = 20
"""Tasks listed at most; the rest are counted."""
LOG_LIMIT = 20_000
"""Characters of the failed steps' logs in a mail at most."""
PRE = '<pre style="white-space: pre-wrap">'
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line: control characters (CR, LF, tabs) become single spaces."""
    return clip(_CONTROL.sub(" ", text).strip(), limit)


def subject(run: Run) -> str:
    """``[Tekton] Failed: PipelineRun ci/build-and-test-run-q4m9z (build-and-test)``."""
    return one_line(f"[Tekton] {headline(run)}: {run.kind} {run.namespace}/{run.name} ({run.definition})")


@dataclass(frozen=True)
class Body:
    """A mail's text body and its HTML alternative."""

    text: str
    html: str


def body(
    run: Run,
    *,
    link: str | None,
    tasks: Sequence[TaskOutcome],
    text: str | None = None,
    logs: Sequence[StepLog] = (),
) -> Body:
    """The body for ``run``'s current state: its facts, or ``text`` (an operator's template's
    output), then ``logs``."""
    from common.steplogs import as_plain  # noqa: PLC0415 -- loaded with the first message

    log_text = as_plain(logs, LOG_LIMIT)
    lines = _facts(run, tasks, link) if text is None else [text]
    parts = [_html(run, tasks, link)] if text is None else [f"{PRE}{html.escape(text)}</pre>"]
    if log_text:
        lines += ["", "The failed steps' last lines:", "", log_text]
        parts.append(f"<p>The failed steps' last lines:</p>{PRE}{html.escape(log_text)}</pre>")
    document = "<!DOCTYPE html><html><body>" + "".join(parts) + "</body></html>\n"
    return Body("\n".join(lines) + "\n", document)


def compose(
    run: Run,
    *,
    sender: str,
    message_id: str,
    to: Sequence[str],
    cc: Sequence[str],
    content: Body,
) -> EmailMessage:
    """The message for ``run``'s current state; addresses must already be validated."""
    message = EmailMessage(policy=POLICY)
    message["Subject"] = subject(run)
    message["From"] = sender
    message["To"] = [Address(addr_spec=address) for address in to]
    if cc:
        message["Cc"] = [Address(addr_spec=address) for address in cc]
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    message["X-Tekton-Run"] = one_line(f"{run.kind} {run.namespace}/{run.name}")
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    return message


def _title(run: Run) -> str:
    duration = format_duration(run.duration_seconds)
    return f"{run.kind} {run.namespace}/{run.name} ({run.definition}): {headline(run)}" + (
        f" after {duration}" if duration else ""
    )


def _task_line(task: TaskOutcome) -> str:
    where = f" (TaskRun {task.run_name})" if task.run_name else ""
    why = f" - {one_line(task.message, 300)}" if task.message else ""
    return f"{task.task}: {task.reason or 'Failed'}{why}{where}"


def _facts(run: Run, tasks: Sequence[TaskOutcome], link: str | None) -> list[str]:
    lines = [one_line(_title(run), 500)]
    if run.condition and run.condition.message:
        lines += ["", clip(run.condition.message, 2000)]
    if tasks:
        lines += ["", "Tasks that did not succeed:"]
        lines += [f"  - {_task_line(task)}" for task in tasks[:MAX_TASKS]]
        if len(tasks) > MAX_TASKS:
            lines.append(f"  ... and {len(tasks) - MAX_TASKS} more")
    lines.append("")
    lines.append(
        f"View the run: {link}"
        if link
        else f"kubectl -n {run.namespace} describe {run.kind.lower()} {run.name}"
    )
    return lines


def _html(run: Run, tasks: Sequence[TaskOutcome], link: str | None) -> str:
    esc = html.escape
    parts = [f"<p><strong>{esc(one_line(_title(run), 500))}</strong></p>"]
    if run.condition and run.condition.message:
        parts.append(f"<p>{esc(clip(run.condition.message, 2000))}</p>")
    if tasks:
        items = "".join(f"<li>{esc(_task_line(task))}</li>" for task in tasks[:MAX_TASKS])
        more = f"<li>... and {len(tasks) - MAX_TASKS} more</li>" if len(tasks) > MAX_TASKS else ""
        parts.append(f"<p>Tasks that did not succeed:</p><ul>{items}{more}</ul>")
    if link:
        parts.append(f'<p><a href="{esc(link)}">View the run on the Tekton Dashboard</a></p>')
    else:
        command = f"kubectl -n {run.namespace} describe {run.kind.lower()} {run.name}"
        parts.append(f"<p><code>{esc(command)}</code></p>")
    return "".join(parts)
