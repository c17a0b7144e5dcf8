"""The rollup commit status: one status name on a commit that every run naming it contributes to.

Its state is always recomputed from the live runs (``common.peers``): ``pending`` while every run
waits, ``running`` while any is queued or running, then ``failed`` if any failed or timed out,
``canceled`` if any was cancelled (and does not count a skip as a success), else ``success``. Its
description counts the runs by state; its link is the first unsuccessful run's, on the Dashboard.

GitLab keeps one status per (commit, name, ref) and moves it along: a state it already has is
refused (``Cannot transition status``, counted as done), and a finished status that must run again
(a run joined the rollup later) becomes a new job of the same name. What GitLab shows already is
not posted again, and a finished state, which GitLab would add as one more job each time it is
posted, is claimed with a Lease (``common.coordination``) so concurrent deliveries post it once.
After posting, the runs are listed again and the status posted again if it changed meanwhile (a
bounded number of times: any later change is another run's event, whose delivery posts after this
one), so concurrent finishes converge.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from common import Context, RunPhase
from common.coordination import claim_shared, find_or_create, lease_seconds, new_holder
from common.errors import clip
from common.peers import Aggregate, Peer, list_peers
from functions.gitlab.client import GitLabSettings, latest_status, post_status
from functions.gitlab.errors import GitLabAnswerError, is_already_there
from functions.gitlab.presentation import FIELD_LIMIT, STATE
from functions.gitlab.shared import Commit

if TYPE_CHECKING:
    from common.runclient import ClusterAccess

Ctx = Context[Any, GitLabSettings]

MAX_ROUNDS = 3
FINISHED = frozenset(STATE[phase] for phase in RunPhase if phase.is_done)
"""``success``, ``failed``, ``canceled``: states GitLab adds as one more job each time they are posted."""


def report_rollup(ctx: Ctx, cluster: ClusterAccess, commit: Commit, name: str) -> dict[str, str]:
    """Bring the rollup status ``name`` on ``commit`` up to date; the record keeps its state."""

    def fields() -> dict[str, str]:
        peers = list_peers(
            cluster,
            ctx.run,
            ctx.integration,
            lambda settings: commit.names(settings) and settings.get("rollup", "").strip() == name,
        )
        return _fields(ctx, peers, name)

    rollup = _Rollup(ctx, cluster, commit)
    wanted = fields()
    for _ in range(MAX_ROUNDS):
        rollup.post(wanted)
        fresh = fields()  # the runs as they are after the post: another delivery's may be older
        if fresh == wanted:
            break
        wanted = fresh
    return {"rollup-state": wanted["state"]}


def _fields(ctx: Ctx, peers: list[Peer], name: str) -> dict[str, str]:
    aggregate = Aggregate.of(peers)
    fields = {
        "state": STATE[aggregate.phase],
        "name": name,
        "description": clip(aggregate.title, FIELD_LIMIT),
    }
    if ctx.config.ref:
        fields["ref"] = str(ctx.config.ref)
    unsuccessful = [peer for peer in peers if peer.counted_as in (RunPhase.FAILED, RunPhase.CANCELLED)]
    link = ctx.runtime.run_url(unsuccessful[0].run) if unsuccessful else None
    if link and len(link) <= FIELD_LIMIT:  # GitLab refuses the whole status over a long link
        fields["target_url"] = link
    return fields


class _Rollup:
    def __init__(self, ctx: Ctx, cluster: ClusterAccess, commit: Commit) -> None:
        self.ctx = ctx
        self.cluster = cluster
        self.commit = commit
        self.holder = new_holder(ctx.run)

    def post(self, fields: dict[str, str]) -> None:
        """Post ``fields`` unless GitLab shows them already. A finished state posted twice would
        be two jobs (the second marks the first retried): its post is claimed (``common.coordination``)."""
        if self._shown(fields) is not None:
            return
        if fields["state"] not in FINISHED:
            self._send(fields)  # GitLab refuses a repeated pending or running itself
            return
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
        key = f"rollup/{self.commit.project}/{self.commit.sha}/{fields['name']}/{digest}"
        claim = claim_shared(
            self.cluster,
            self.ctx.run.namespace,
            key,
            self.holder,
            integration=self.ctx.integration,
            owner=self.ctx.run,
            duration=lease_seconds(self.ctx.settings.timeout_seconds),
            at=datetime.now(UTC),
        )
        find_or_create(
            claim,
            find=lambda _: self._shown(fields),
            create=lambda: self._send(fields),
            id_of=lambda status: str(status.get("id") or ""),
            what=f"the rollup status {fields['name']!r}",
        )

    def _shown(self, fields: dict[str, str]) -> dict[str, Any] | None:
        """GitLab's newest status of the name, if it shows ``fields`` already."""
        shown = latest_status(
            self.ctx.settings, self.commit.project, self.commit.sha, fields["name"], fields.get("ref")
        )
        if shown is None or shown.get("status") != fields["state"]:
            return None
        return (
            shown if all(shown.get(key) == fields.get(key) for key in ("description", "target_url")) else None
        )

    def _send(self, fields: dict[str, str]) -> dict[str, Any]:
        try:
            return post_status(self.ctx.settings, self.commit.project, self.commit.sha, fields)
        except GitLabAnswerError as e:
            if not is_already_there(e):
                raise
            return {}
