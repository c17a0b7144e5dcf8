"""One comment on a change (a GitHub pull request's comment, a GitLab merge request's note) that
lists every run on the change's head commit that asks for it (``<change>: <number>`` with
``comment: "true"``), edited in place.

Owns its text (a hidden marker, a heading, ``common.peers``' table of the runs with their failed
tasks) and keeping it: looked up, created once under a claim (``common.coordination``), then
written again after each write while the runs change meanwhile. Not the service's calls, nor how
the comment is found among the change's comments (only among those the function's own identity
wrote): the integrations pass ``find``, ``create`` and ``update``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from common.coordination import claim_shared, find_or_create, lease_seconds, new_holder
from common.errors import clip
from common.peers import is_true, list_peers, markdown_table

if TYPE_CHECKING:
    from common.integration import Context
    from common.runclient import ClusterAccess

Comment = dict[str, Any]

MAX_ROUNDS = 3
"""Writes of one delivery at most, when the runs keep changing while it writes."""
FOOTER = "\n<sub>Edited in place as the runs progress.</sub>\n"
FOOTER_ROOM = 200
"""Characters kept free of the table for the footer, below the service's longest body."""


def asks_for_comment(settings: Mapping[str, str], change: str, number: int) -> bool:
    """Whether a run's annotations (untrusted) ask to be listed in the comment of change
    ``number``: ``comment: "true"`` and ``<change>: <number>`` (``pull-request``, ``merge-request``)."""
    return is_true(settings.get("comment")) and settings.get(change, "").strip() == str(number)


def body(
    ctx: Context[Any, Any],
    cluster: ClusterAccess,
    *,
    marker: str,
    title: str,
    limit: int,
    belongs: Callable[[Mapping[str, str]], bool],
) -> str:
    """The comment's text for the runs as they are now: ``marker`` (hidden), ``title``, the table
    of the runs whose annotations ``belongs``, all within ``limit`` characters."""
    peers = list_peers(cluster, ctx.run, ctx.integration, belongs, failed_tasks=True)
    table = markdown_table(peers, ctx.runtime.run_url, failed_tasks=True)
    return clip(f"{marker}\n### {title}\n\n{table}\n", limit - FOOTER_ROOM) + FOOTER


def keep(
    ctx: Context[Any, Any],
    cluster: ClusterAccess,
    *,
    key: str,
    text: Callable[[], str],
    find: Callable[[], Comment | None],
    create: Callable[[str], Comment],
    update: Callable[[Comment, str], Comment],
    what: str,
) -> Comment:
    """The comment, brought up to date with ``text()``: found, else created once under the claim
    ``key`` (``find`` looks again before this delivery creates it), then written while it differs
    from ``text()`` as the runs are after the write (another delivery's may be older)."""
    wanted = text()
    comment = find()
    if comment is None:  # not there yet, or being created: claim its creation
        claim = claim_shared(
            cluster,
            ctx.run.namespace,
            key,
            new_holder(ctx.run),
            integration=ctx.integration,
            owner=ctx.run,
            duration=lease_seconds(ctx.settings.timeout_seconds),
            at=datetime.now(UTC),
        )
        comment = find_or_create(
            claim,
            find=lambda _: find(),
            create=lambda: create(wanted),
            id_of=lambda found: str(found["id"]),
            what=what,
        )[0]
    for _ in range(MAX_ROUNDS):
        if comment.get("body") != wanted:
            comment = update(comment, wanted)
        fresh = text()
        if fresh == wanted:
            break
        wanted = fresh
    return comment
