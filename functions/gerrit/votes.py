"""Votes: the label a run votes on, the value for its outcome, and what the operator allows. Pure.

- A run chooses its label with ``gerrit.integrations.tekton.dev/label``: ``Verified`` (votes +1 on
  success, -1 on failure), ``Verified=+1/-1`` (the success and failure values spelled out), or
  ``none`` (messages only). Only a finished run votes: succeeded votes the success value;
  failed, cancelled and timed-out runs (the ``failed`` of the ``on`` annotation) the failure value.
- The operator bounds every vote with ``GERRIT_ALLOWED_VOTES``: ``Verified=-1..+1,Code-Review=0..0``
  (a label absent from the list may not be voted on at all). Labels compare case-insensitively,
  as Gerrit's do. A vote outside the bounds is refused before anything is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from common import RunPhase

LABEL_NAME = r"[A-Za-z0-9][A-Za-z0-9-]{0,99}"
VALUE = r"[+-]?[0-9]"
NO_VOTE = "none"
DEFAULT_ALLOWED = "Verified=-1..+1"
_CHOICE = re.compile(rf"(?P<name>{LABEL_NAME})(?:=(?P<success>{VALUE})/(?P<failure>{VALUE}))?")
_RANGE = re.compile(rf"(?P<name>{LABEL_NAME})=(?P<low>{VALUE})(?:\.\.(?P<high>{VALUE}))?")

AllowedVotes = tuple[tuple[str, int, int], ...]
"""(label, lowest, highest) per label the operator allows votes on."""


@dataclass(frozen=True)
class LabelChoice:
    """The label a run votes on, and the values for success and for failure."""

    name: str
    success: int = 1
    failure: int = -1


@dataclass(frozen=True)
class Vote:
    label: str
    value: int

    def __str__(self) -> str:
        """``Verified+1``, ``Verified-1``, ``Verified 0``: Gerrit's own spelling, where it has one."""
        return f"{self.label}{self.value:+d}" if self.value else f"{self.label} 0"


DEFAULT_CHOICE = LabelChoice("Verified")


def parse_label(value: object) -> object:
    """The ``label`` annotation: ``Name``, ``Name=<success>/<failure>`` or ``none``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() == NO_VOTE:
        return None
    match = _CHOICE.fullmatch(text)
    if match is None:
        raise ValueError("write Verified, Verified=+1/-1 (success/failure) or none")
    if match["success"] is None:
        return LabelChoice(match["name"])
    return LabelChoice(match["name"], int(match["success"]), int(match["failure"]))


def vote_for(phase: RunPhase, choice: LabelChoice | None) -> Vote | None:
    """The vote a run in ``phase`` casts: none before it is finished, or without a label."""
    if choice is None or not phase.is_done:
        return None
    return Vote(choice.name, choice.success if phase is RunPhase.SUCCEEDED else choice.failure)


def parse_allowed(value: object) -> object:
    """``GERRIT_ALLOWED_VOTES``: ``Label=low..high`` (or ``Label=value``), comma-separated; ``none``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() == NO_VOTE:
        return ()
    allowed: list[tuple[str, int, int]] = []
    for entry in (part.strip() for part in text.split(",")):
        match = _RANGE.fullmatch(entry)
        if match is None:
            raise ValueError(
                f"{entry!r} is not a label range: write Verified=-1..+1,Code-Review=0..0, or none"
            )
        low = int(match["low"])
        high = int(match["high"]) if match["high"] is not None else low
        if low > high:
            raise ValueError(f"{entry!r}: the lowest value comes first")
        if any(name.lower() == match["name"].lower() for name, _, _ in allowed):
            raise ValueError(f"{match['name']!r} is listed twice")
        allowed.append((match["name"], low, high))
    return tuple(allowed)


def describe_allowed(allowed: AllowedVotes) -> str:
    """``Verified=-1..+1, Code-Review=0..0``, or ``none``."""
    return ", ".join(f"{name}={low:+d}..{high:+d}" for name, low, high in allowed) or NO_VOTE


def allows(allowed: AllowedVotes, vote: Vote) -> bool:
    return any(
        name.lower() == vote.label.lower() and low <= vote.value <= high for name, low, high in allowed
    )
