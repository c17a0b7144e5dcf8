"""What a run looks like in Teams: one Adaptive Card, in the body a Workflows webhook takes.

Pure: no I/O. Owns the card and keeping it within Teams' size limit; not how it is sent.

- The body is what the Workflows template "Post to a channel when a webhook request is received"
  reads: ``{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "content": <AdaptiveCard>}]}``; the flow posts each
  attachment's ``content`` as a card.
- The card (Adaptive Cards 1.4, which Teams renders on desktop, web and mobile) has a coloured
  title, facts (the run, its status, its duration or start, the notification id), the run's
  condition message, the tasks that did not succeed with their messages, and a button to the run.
- Everything taken from the run that may hold arbitrary text (messages, reasons) goes into
  ``RichTextBlock`` text runs, which Teams shows literally: no Markdown, so no link or mention
  can be smuggled in through a task's output. Names go into facts, with Markdown escaped.
- An operator's template (``common.templates``) replaces the facts, the condition message and
  the tasks: its text is one ``TextBlock`` (Teams' Markdown subset; the template's values are
  escaped for it), under the title.
- A failed run's failed steps' last lines (``log-lines``) are a monospace block after the tasks
  (``common.steplogs.as_plain``).
- Teams refuses a posted message above about 28 KB ("Request Entity Too Large", after the flow
  has already answered 202). ``message`` keeps the whole encoded body under ``BODY_LIMIT``:
  messages are cut, tasks that do not fit are counted in an "and N more" line instead, then the
  logs lose their oldest lines, then a template's text is cut.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common import Run, RunPhase
from common.errors import clip
from common.summary import TaskOutcome, format_duration, headline, one_line

if TYPE_CHECKING:  # step logs load with the first message that shows them
    from common.steplogs import StepLog

TEAMS_MESSAGE_LIMIT = 28 * 1024
"""Teams' documented limit for one posted message, card included ("about 28 KB")."""
BODY_LIMIT = 27 * 1024
"""What this function allows the whole request body: a margin for what the flow adds around it."""
CARD_VERSION = "1.4"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_TASKS_SHOWN = 20
"""Tasks listed at most, however small; the others are counted."""
TASK_MESSAGE_LIMIT = 1500
"""Characters of one task's message shown."""
CONDITION_MESSAGE_LIMIT = 2000
NAME_LIMIT = 253
"""A Kubernetes name's longest; longer values (labels, reasons) are cut to it."""
NOTIFICATION_ELEMENT = "tekton-notification"
"""The ``id`` of the card's last element, the fact set holding the notification id."""
LOG_LIMIT = 8000
"""Characters of the failed steps' logs shown at most (fewer when the card would be too large)."""


@dataclass(frozen=True)
class Look:
    emoji: str
    style: str
    """The title container's style: Teams colours ``good`` green, ``attention`` red, ``warning`` amber."""
    verb: str


LOOKS = {
    RunPhase.QUEUED: Look("⏳", "emphasis", "is queued"),
    RunPhase.RUNNING: Look("🔄", "accent", "is running"),
    RunPhase.SUCCEEDED: Look("✅", "good", "succeeded"),
    RunPhase.FAILED: Look("❌", "attention", "failed"),
    RunPhase.CANCELLED: Look("🚫", "warning", "was cancelled"),
    RunPhase.TIMED_OUT: Look("⏰", "warning", "timed out"),
}


def message(
    run: Run,
    tasks: Sequence[TaskOutcome],
    url: str | None,
    notification: str,
    *,
    text: str | None = None,
    logs: Sequence[StepLog] = (),
) -> bytes:
    """The request body for ``run``'s current state: UTF-8 JSON, at most ``BODY_LIMIT`` bytes.

    ``tasks``: what did not succeed (empty unless the run failed); ``url``: the run on the
    Dashboard, for the card's button; ``notification``: the id that is the same for every
    delivery of this run's phase, shown on the card so that a repeat can be recognised;
    ``text``: an operator's template's output, instead of the facts and tasks; ``logs``: the
    failed steps' last lines.

    Without tasks, logs or a template the card always fits: every other text is cut (names to
    ``NAME_LIMIT``, the condition message to ``CONDITION_MESSAGE_LIMIT``), so that even escaped
    to six bytes a character it stays far below the limit.
    """
    head = _head(run, notification)
    if text is not None:
        head = [head[0], *_text(text), head[-1]]
    section = [_task(task) for task in tasks[:MAX_TASKS_SHOWN]] if text is None else []
    shown = len(tasks) if text is None else 0
    from common.steplogs import as_plain  # noqa: PLC0415 -- loaded with the first message

    log_text = as_plain(logs, LOG_LIMIT)

    def encoded() -> bytes:
        return encode(_envelope(_card(run, head, section, shown, url, log_text=log_text)))

    body = encoded()
    while len(body) > BODY_LIMIT and section:
        excess = len(body) - BODY_LIMIT  # drop as many tasks as the excess needs, then measure again
        while section and excess > 0:
            excess -= len(encode(section.pop())) + 1
        body = encoded()
    while len(body) > BODY_LIMIT and log_text:  # each character is at least one byte
        log_text = as_plain(logs, len(log_text) - (len(body) - BODY_LIMIT))
        body = encoded()
    while len(body) > BODY_LIMIT and text is not None and len(text) > 1:
        text = clip(text, max(1, len(text) - (len(body) - BODY_LIMIT) - 3))  # "…" is three bytes
        head = [head[0], *_text(text), head[-1]]
        body = encoded()
    return body


def encode(value: Any) -> bytes:
    """Compact UTF-8 JSON: the bytes sent, and what the limit counts."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def fallback_text(run: Run) -> str:
    """``❌ PipelineRun ci/build-and-test-run-q4m9z (build-and-test): Failed after 1m 0s``."""
    return clip(one_line(run, LOOKS[run.phase].emoji), 600)


def _envelope(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [{"contentType": CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def _card(
    run: Run,
    head: list[dict[str, Any]],
    section: list[dict[str, Any]],
    total: int,
    url: str | None,
    *,
    log_text: str,
) -> dict[str, Any]:
    body = list(head[:-1])
    if total:
        noun = "task" if total == 1 else "tasks"
        body.append(_rich([_run(f"{total} {noun} did not succeed", weight="Bolder")], separator=True))
        body.extend(section)
        if total > len(section):
            body.append(_rich([_run(f"and {total - len(section)} more, not shown", subtle=True)]))
    if log_text:
        body.append(_rich([_run("The failed steps' last lines", weight="Bolder")], separator=True))
        body.append(_rich([_run(log_text, monospace=True)]))
    body.append(head[-1])  # the notification id comes last, where a flow finds it
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "fallbackText": fallback_text(run),
        "body": body,
    }
    if url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in the Tekton Dashboard", "url": url}]
    return card


def _text(text: str) -> list[dict[str, Any]]:
    """A template's text: Teams' Markdown subset, wrapped (its values are escaped already)."""
    return [{"type": "TextBlock", "text": text, "wrap": True}] if text else []


def _head(run: Run, notification: str) -> list[dict[str, Any]]:
    """Title, facts and condition message; its last element is the notification id's fact set."""
    look = LOOKS[run.phase]
    title = _rich(
        [_run(f"{look.emoji} {clip(run.definition, NAME_LIMIT)} {look.verb}", weight="Bolder", size="Large")]
    )
    elements: list[dict[str, Any]] = [
        {"type": "Container", "style": look.style, "bleed": True, "items": [title]},
        {"type": "FactSet", "facts": [_fact(title, value) for title, value in _facts(run)]},
    ]
    condition = run.condition.message.strip() if run.condition else ""
    if condition:
        elements.append(_rich([_run(clip(condition, CONDITION_MESSAGE_LIMIT))]))
    elements.append(
        {
            "type": "FactSet",
            "id": NOTIFICATION_ELEMENT,
            "separator": True,
            "facts": [_fact("Notification id", notification)],
        }
    )
    return elements


def _facts(run: Run) -> list[tuple[str, str]]:
    facts = [
        (run.kind, f"{run.namespace}/{clip(run.name, NAME_LIMIT)}"),
        ("Status", clip(headline(run), NAME_LIMIT)),
    ]
    if run.phase.is_done:
        duration = format_duration(run.duration_seconds)
        if duration:
            facts.append(("Duration", duration))
    elif run.start_time is not None:
        facts.append(("Started", run.start_time.strftime("%Y-%m-%d %H:%M UTC")))
    return facts


def _task(task: TaskOutcome) -> dict[str, Any]:
    """One task that did not succeed: its name and reason, then its message in monospace."""
    heading = [
        _run(clip(task.task, NAME_LIMIT), weight="Bolder"),
        _run(f" ({clip(task.reason, NAME_LIMIT)})"),
    ]
    if task.run_name:
        heading.append(_run(f" · {clip(task.run_name, NAME_LIMIT)}", subtle=True))
    items = [_rich(heading)]
    if task.message.strip():
        items.append(_rich([_run(clip(task.message.strip(), TASK_MESSAGE_LIMIT), monospace=True)]))
    return {"type": "Container", "separator": True, "spacing": "Medium", "items": items}


def _fact(title: str, value: str) -> dict[str, str]:
    return {"title": title, "value": _escaped(value)}


_MARKDOWN = str.maketrans({char: f"\\{char}" for char in "\\*_[]`~<>#"})


def _escaped(text: str) -> str:
    """``text`` shown literally where Teams reads Markdown (fact values)."""
    return text.translate(_MARKDOWN)


def _rich(inlines: list[dict[str, Any]], *, separator: bool = False) -> dict[str, Any]:
    """A ``RichTextBlock``: its text runs are shown literally (Teams reads no Markdown in them)."""
    block: dict[str, Any] = {"type": "RichTextBlock", "inlines": inlines}
    if separator:
        block["separator"] = True
    return block


def _run(
    text: str,
    *,
    weight: str | None = None,
    size: str | None = None,
    subtle: bool = False,
    monospace: bool = False,
) -> dict[str, Any]:
    """A ``TextRun``: shown as it is, without Markdown."""
    inline: dict[str, Any] = {"type": "TextRun", "text": text}
    if weight:
        inline["weight"] = weight
    if size:
        inline["size"] = size
    if subtle:
        inline["isSubtle"] = True
    if monospace:
        inline["fontType"] = "Monospace"
    return inline
