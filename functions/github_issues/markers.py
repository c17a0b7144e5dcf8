"""How an issue is known to be a pipeline's, and a comment a run state's, whatever a record says.

Pure: no I/O. Two hidden HTML comments, which GitHub keeps in the Markdown and does not render:

- ``<!-- tekton-integrations: pipeline=<namespace>/<name> -->`` in an issue's body names what the
  issue tracks (``task=`` for a standalone TaskRun's Task, ``custom-task=`` for a CustomRun's).
  Together with the stable label, it is how the open issue is found again after a restart.
- ``<!-- tekton-integrations: run=<uid> key=<key> outcome=failed|passed -->`` starts the issue's
  body and each comment: ``key`` is ``Context.key()``, one per (integration, run UID, run state),
  looked up before anything is added, so a redelivery or a crash never adds it twice.

Every text of a run's that goes into an issue is escaped (``functions.github_issues.presentation``),
so a marker can only be one this function wrote (or a person with write access to the issue).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from common import Run

Outcome = Literal["failed", "passed"]
Kind = Literal["pipeline", "task", "custom-task"]

_OPEN, _CLOSE = "<!-- tekton-integrations: ", " -->"
_MARKER = re.compile(r"<!-- tekton-integrations: ([^<>\n]{1,300}?) -->")
_KINDS: Mapping[str, Kind] = {"PipelineRun": "pipeline", "TaskRun": "task", "CustomRun": "custom-task"}


@dataclass(frozen=True)
class Subject:
    """What one issue tracks: a Pipeline (or Task) in a namespace, whichever run of it failed."""

    kind: Kind
    namespace: str
    name: str

    @classmethod
    def of(cls, run: Run) -> Subject:
        return cls(_KINDS[run.kind], run.namespace, run.definition)

    @property
    def marker(self) -> str:
        return f"{_OPEN}{self.kind}={self.namespace}/{self.name}{_CLOSE}"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def state_marker(run_uid: str, key: str, outcome: Outcome) -> str:
    """The marker of one run state's issue body or comment."""
    return f"{_OPEN}run={run_uid} key={key} outcome={outcome}{_CLOSE}"


def _fields(text: str) -> Iterator[dict[str, str]]:
    for found in _MARKER.finditer(text):
        pairs = (part.partition("=") for part in found.group(1).split())
        yield {name: value for name, sep, value in pairs if sep}


def carries_key(text: str | None, key: str) -> bool:
    """Whether ``text`` (an issue body or a comment) is the one written for run state ``key``."""
    return any(fields.get("key") == key for fields in _fields(text or ""))


def outcome_of(text: str | None) -> Outcome | None:
    """The outcome a body or comment records (``failed``/``passed``), if it carries a state marker."""
    for fields in _fields(text or ""):
        outcome = fields.get("outcome")
        if fields.get("key") and outcome in ("failed", "passed"):
            return "failed" if outcome == "failed" else "passed"
    return None
