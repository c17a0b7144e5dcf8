"""What a run looks like in Jira: comment and issue bodies, as Atlassian Document Format (Cloud,
REST v3) or wiki markup (Data Center, REST v2). Pure: no I/O.

A body is written once as a few neutral blocks (paragraphs of text runs, a bullet list) and
rendered for the site's edition. Every body ends with a marker line (``tekton-run:…``,
``tekton-ref:…``) that the function looks for when it has no trusted record of what it wrote;
the markers are made of ``[a-z0-9:-]`` only, so they read the same in ADF's JSON and in wiki text.

Jira refuses a comment or description over 32,767 characters; bodies are kept under
``MAX_BODY`` (measured on the JSON for ADF, which is longer than its text) by listing at most
``MAX_TASKS`` failed tasks, each message cut to ``MAX_TASK_MESSAGE``, and by dropping tasks
from the end while the body is still too long.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from common import Run, RunPhase
from common.errors import clip
from common.summary import TaskOutcome, format_duration, headline

MAX_BODY = 30_000
"""Below Jira's 32,767-character limit on comments and descriptions, with room to spare."""
MAX_SUMMARY = 255
"""Jira's limit on an issue's summary."""
MAX_TASKS = 20
MAX_TASK_MESSAGE = 500

Edition = Literal["cloud", "datacenter"]
Colour = Literal["neutral", "blue", "green", "red", "yellow", "purple"]


@dataclass(frozen=True)
class Text:
    """A run of text: plain, bold, monospace, or a link."""

    text: str
    bold: bool = False
    code: bool = False
    href: str | None = None


@dataclass(frozen=True)
class Lozenge:
    """A status lozenge (ADF ``status``; in wiki markup a coloured bold word)."""

    text: str
    colour: Colour


Inline = Text | Lozenge


@dataclass(frozen=True)
class Paragraph:
    parts: tuple[Inline, ...]


@dataclass(frozen=True)
class Bullets:
    items: tuple[tuple[Inline, ...], ...]


Block = Paragraph | Bullets

_COLOURS: dict[RunPhase, Colour] = {
    RunPhase.QUEUED: "neutral",
    RunPhase.RUNNING: "blue",
    RunPhase.SUCCEEDED: "green",
    RunPhase.FAILED: "red",
    RunPhase.CANCELLED: "yellow",
    RunPhase.TIMED_OUT: "red",
}


# -- what is said -----------------------------------------------------------------------------------


def run_comment(
    run: Run,
    tasks: Sequence[TaskOutcome],
    link: str | None,
    *,
    markers: Sequence[str],
) -> list[Block]:
    """The one comment a run keeps on the issue it names, as the run is now."""
    head = Paragraph((status_of(run), Text(" "), *run_line(run, link)))
    return [head, *failure_blocks(run, tasks), marker_line(markers)]


def new_issue(
    run: Run,
    pipeline: str,
    tasks: Sequence[TaskOutcome],
    link: str | None,
    *,
    markers: Sequence[str],
    resolves: bool,
) -> list[Block]:
    """The description of the issue opened for a failing pipeline."""
    follow = (
        "Later failures of this pipeline are added here as comments; the issue is resolved when "
        "the pipeline passes again."
        if resolves
        else "Later failures of this pipeline are added here as comments, and so is the next success."
    )
    head = Paragraph(
        (
            status_of(run),
            Text(" The pipeline "),
            Text(pipeline, bold=True),
            Text(" failed: "),
            *run_line(run, link),
        )
    )
    return [head, *failure_blocks(run, tasks), Paragraph((Text(follow),)), marker_line(markers)]


def failed_again(
    run: Run, tasks: Sequence[TaskOutcome], link: str | None, *, markers: Sequence[str]
) -> list[Block]:
    head = Paragraph((status_of(run), Text(" Failed again: "), *run_line(run, link)))
    return [head, *failure_blocks(run, tasks), marker_line(markers)]


def passes_again(run: Run, link: str | None, *, markers: Sequence[str], resolving: str | None) -> list[Block]:
    blocks: list[Block] = [
        Paragraph((status_of(run), Text(" The pipeline passes again: "), *run_line(run, link)))
    ]
    if resolving:
        blocks.append(Paragraph((Text("Resolving this issue ("), Text(resolving, bold=True), Text(")."))))
    return [*blocks, marker_line(markers)]


def summary(pipeline: str) -> str:
    """The issue's summary: stable per pipeline, so people (and filters) recognise it."""
    return clip(f"Pipeline {pipeline} is failing", MAX_SUMMARY)


def status_of(run: Run) -> Lozenge:
    return Lozenge(headline(run).split(":", 1)[0].upper(), _COLOURS[run.phase])


def run_line(run: Run, link: str | None) -> tuple[Inline, ...]:
    """``PipelineRun ci/build-1 (pipeline build), took 2m 3s. View the run.``"""
    parts: list[Inline] = [Text(f"{run.kind} "), Text(f"{run.namespace}/{run.name}", code=True)]
    if run.definition != run.name:
        noun = {"PipelineRun": "pipeline", "TaskRun": "task"}.get(run.kind, "definition")
        parts.append(Text(f" ({noun} {run.definition})"))
    took = format_duration(run.duration_seconds)
    parts.append(Text(f", took {took}." if took else "."))
    if link:
        parts += [Text(" "), Text("View the run", href=link), Text(".")]
    return tuple(parts)


def failure_blocks(run: Run, tasks: Sequence[TaskOutcome]) -> list[Block]:
    """The run's condition message and its failed and skipped tasks, when it did not succeed."""
    if run.condition is None or run.condition.status != "False":
        return []
    blocks: list[Block] = []
    text = " ".join(run.condition.message.split())
    if text or headline(run) != "Failed":
        blocks.append(Paragraph((Text(clip(f"{headline(run)}: {text}".rstrip(": "), MAX_TASK_MESSAGE)),)))
    shown = tasks[:MAX_TASKS]
    if shown:
        blocks.append(Paragraph((Text("Tasks that did not succeed:", bold=True),)))
        blocks.append(Bullets(tuple(_task(task) for task in shown)))
    if len(tasks) > len(shown):
        blocks.append(Paragraph((Text(f"… and {len(tasks) - len(shown)} more."),)))
    return blocks


def _task(task: TaskOutcome) -> tuple[Inline, ...]:
    message = clip(" ".join(task.message.split()), MAX_TASK_MESSAGE)
    parts: list[Inline] = [Text(task.task, bold=True), Text(f" ({task.reason})" if task.reason else "")]
    if message:
        parts.append(Text(f": {message}"))
    return tuple(part for part in parts if not isinstance(part, Text) or part.text)


def marker_line(markers: Sequence[str]) -> Paragraph:
    """``Reported by tekton-integrations`` and the markers, monospace."""
    return Paragraph((Text("Reported by tekton-integrations · "), Text(" ".join(markers), code=True)))


# -- how it is written ------------------------------------------------------------------------------


def render(blocks: Sequence[Block], edition: Edition) -> object:
    """The body Jira takes: an ADF document (Cloud) or a wiki-markup string (Data Center), kept
    under ``MAX_BODY`` by dropping list items (failed tasks) from the end: a safety net, since
    ``MAX_TASKS`` and the cuts above keep a body well under it."""
    blocks = list(blocks)
    while True:
        body: object = _adf(blocks) if edition == "cloud" else _wiki(blocks)
        size = len(body) if isinstance(body, str) else len(json.dumps(body, ensure_ascii=False))
        if size <= MAX_BODY or not _shorten(blocks):
            return body


def _shorten(blocks: list[Block]) -> bool:
    for index in range(len(blocks) - 1, -1, -1):
        block = blocks[index]
        if isinstance(block, Bullets) and len(block.items) > 1:
            blocks[index] = Bullets(block.items[:-1])
            return True
        if isinstance(block, Bullets):
            del blocks[index]
            return True
    return False


def _adf(blocks: Sequence[Block]) -> dict[str, object]:
    content: list[dict[str, object]] = []
    for block in blocks:
        if isinstance(block, Paragraph):
            content.append(_adf_paragraph(block.parts))
        else:
            items = [{"type": "listItem", "content": [_adf_paragraph(item)]} for item in block.items]
            content.append({"type": "bulletList", "content": items})
    return {"type": "doc", "version": 1, "content": content}


def _adf_paragraph(parts: Sequence[Inline]) -> dict[str, object]:
    nodes: list[dict[str, object]] = []
    for part in parts:
        if isinstance(part, Lozenge):
            nodes.append({"type": "status", "attrs": {"text": part.text, "color": part.colour}})
            continue
        if not part.text:
            continue  # ADF refuses empty text nodes
        marks: list[dict[str, object]] = []
        if part.bold:
            marks.append({"type": "strong"})
        if part.code:
            marks.append({"type": "code"})
        if part.href:
            marks.append({"type": "link", "attrs": {"href": part.href}})
        node: dict[str, object] = {"type": "text", "text": part.text}
        if marks:
            node["marks"] = marks
        nodes.append(node)
    return {"type": "paragraph", "content": nodes}


_WIKI_COLOURS: dict[Colour, str] = {
    "neutral": "#42526e",
    "blue": "#0052cc",
    "green": "#00875a",
    "red": "#de350b",
    "yellow": "#ff8b00",
    "purple": "#5243aa",
}
_WIKI_SPECIAL = re.compile(r"([\\*_+^~|!\[\]{}#?]|(?<!\S)-|-(?!\S))")
"""Characters wiki markup reads as markup; a hyphen only where it could open or close a
strikethrough (``-text-``) or start a list, so ``build-and-test`` stays as it is."""


def _wiki(blocks: Sequence[Block]) -> str:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Paragraph):
            lines.append(_wiki_line(block.parts))
        else:
            lines.extend(f"* {_wiki_line(item)}" for item in block.items)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _wiki_line(parts: Sequence[Inline]) -> str:
    out: list[str] = []
    for part in parts:
        if isinstance(part, Lozenge):
            out.append(f"{{color:{_WIKI_COLOURS[part.colour]}}}*{escape_wiki(part.text)}*{{color}}")
        elif part.href:
            out.append(f"[{escape_wiki(part.text)}|{_wiki_url(part.href)}]")
        elif part.code:
            out.append(f"{{{{{escape_wiki(part.text)}}}}}")
        elif part.bold:
            out.append(f"*{escape_wiki(part.text)}*")
        else:
            out.append(escape_wiki(part.text))
    return "".join(out)


def escape_wiki(text: str) -> str:
    """``text`` on one line, with every character wiki markup would read as markup escaped."""
    return _WIKI_SPECIAL.sub(r"\\\1", re.sub(r"\s+", " ", text))


def _wiki_url(url: str) -> str:
    """A link target: ``|``, ``]`` and whitespace would end it, so they are percent-encoded."""
    return url.replace("|", "%7C").replace("]", "%5D").replace("[", "%5B").replace(" ", "%20")
