"""How the jira function recognises what it wrote, whatever a record says (DESIGN.md §3).

- **Markers.** Every body the function writes ends with markers derived from ``ctx.key`` (the
  same for every delivery of a run, or of a run state): ``tekton-run:<key>`` on the one comment a
  run keeps on an issue, ``tekton-state:<key>`` for the state that comment last showed,
  ``tekton-ref:<key>`` on an issue or comment written for one (run, state).
- **Authorship.** A comment counts as the function's only if Jira says its author is the
  function's own account (``myself``) *and* it carries the marker: a person who copies a marker
  into a comment of their own cannot get that comment edited, and a record naming another run's
  comment is not used.
- **Transitions** are looked up by name among those Jira offers for the issue now.

Reads only: the modes (``functions.jira.run_comment``, ``functions.jira.pipeline_issue``) write.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common import Context, PermanentError
from functions.jira.client import Deployment, JiraClient, user_id
from functions.jira.errors import FAULTS

log = logging.getLogger(__name__)

COMMENTS_PAGE = 100
"""Jira's largest page of comments."""
MAX_COMMENTS_SEARCHED = 500
"""Comments looked through, newest first, for the function's own (its are recent)."""


def run_marker(ctx: Context[Any, Any]) -> str:
    """Marks the one comment a run keeps on the issue it names (the same in every state)."""
    return f"tekton-run:{ctx.key('comment', per_state=False)}"


def state_marker(ctx: Context[Any, Any]) -> str:
    """Marks the state that comment shows: present once this state's edit went through."""
    return f"tekton-state:{ctx.key('comment')}"


def ref_marker(ctx: Context[Any, Any]) -> str:
    """Marks the issue or comment written for this (run, state) of a failing pipeline."""
    return f"tekton-ref:{ctx.key('issue')}"


def text_of(body: object) -> str:
    """A body as text to look for markers in: wiki markup as it is, an ADF document as its JSON."""
    return body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)


def is_ours(comment: Mapping[str, Any], me: str, marker: str, edition: Deployment) -> bool:
    """Written by the function's own account and carrying ``marker``."""
    return user_id(comment.get("author"), edition) == me and marker in text_of(comment.get("body"))


def find_comment(
    jira: JiraClient, key: str, marker: str, *, recorded: str | None = None
) -> dict[str, Any] | None:
    """The function's comment on ``key`` that carries ``marker``: the recorded one if Jira confirms
    it is, else the newest such among the issue's comments; ``None`` if there is none."""
    me = jira.myself()
    if recorded:
        comment = jira.comment(key, recorded)
        if comment is not None and is_ours(comment, me, marker, jira.edition):
            return comment
        log.warning(
            "the record names comment %r on %s, which is not this run's comment: ignored, "
            "looking for the run's own comment instead",
            recorded[:40],
            key,
        )
    start = 0
    while start < MAX_COMMENTS_SEARCHED:
        page, more = jira.comments(key, start, COMMENTS_PAGE)
        for comment in page:
            if is_ours(comment, me, marker, jira.edition):
                return comment
        if not more:
            return None
        start += len(page)
    return None


@dataclass(frozen=True)
class Move:
    """What moving an issue with a named transition takes: ``transition`` (its id), or nothing."""

    transition: str | None
    """The id to POST; ``None`` when the issue is already where the transition leads."""
    status: str
    """The status it leads to (or the one the issue is in)."""


def plan_move(jira: JiraClient, key: str, name: str, status: Mapping[str, Any], *, tried: bool) -> Move:
    """How to move ``key`` with the transition called ``name`` (or leading to a status of that
    name), from ``status``, its current status.

    ``tried``: an earlier delivery of this state got as far as the move, so a transition Jira no
    longer offers was taken by it. Otherwise a transition that is not offered is an error naming
    the ones that are, unless the issue is already in a status of that name.
    """
    wanted = name.casefold()
    offered = jira.transitions(key)
    chosen = next((t for t in offered if str(t.get("name", "")).casefold() == wanted), None) or next(
        (t for t in offered if str(_target(t).get("name", "")).casefold() == wanted), None
    )
    current = str(status.get("name") or "")
    if chosen is not None:
        target = _target(chosen)
        if target.get("id") is not None and str(target.get("id")) == str(status.get("id")):
            return Move(None, current)
        return Move(str(chosen.get("id")), str(target.get("name") or name))
    if tried or current.casefold() == wanted:
        return Move(None, current)
    names = ", ".join(repr(str(t.get("name"))) for t in offered) or "none"
    raise PermanentError(
        FAULTS.reason("TransitionUnavailable"),
        f"{key} (status {current!r}) offers no transition named {name!r} to the Jira account "
        f"(offered: {names}): check the annotation against the issue's workflow, and that the "
        "account has the Transition issues permission",
    )


def _target(transition: Mapping[str, Any]) -> Mapping[str, Any]:
    target = transition.get("to")
    return target if isinstance(target, Mapping) else {}
