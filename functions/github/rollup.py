"""The rollup check run: one check run per (commit, name) that every run naming it contributes to.

Its state is always recomputed from the live runs (``common.peers``): ``in_progress`` while any is
queued or running, then ``failure`` if any failed or timed out, ``cancelled`` if any was cancelled
(and does not count a skip as a success), else ``success``. Its summary is a table of the runs.

- Found again by ``external_id`` = ``tekton-rollup:<key>:<n>``, where the key is a UUID of
  (namespace, owner, repo, SHA, name): the newest ``n`` is the rollup. GitHub never moves a
  completed check run back to ``in_progress``, so a run that joins a finished rollup (a re-run
  on the same commit) opens the next ``n``; required checks follow the newest check run of a name.
- Each ``n`` is created once: claimed with a Lease (``common.coordination``), looked up by its
  ``external_id`` before it is created.
- Concurrent finishes converge: the check run is read before the runs are listed (so a finished
  rollup is reopened only for a run that joined later), and after each write the runs are listed
  again and the check run written again if what it shows changed meanwhile (a bounded number of
  times: any later change is another run's event, whose delivery writes after this one).

With ``mode: status`` (GitHub lets only Apps create check runs) the rollup is the commit status of
that context instead: GitHub shows the newest status per context, so nothing is claimed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from common import Context, RunPhase
from common.coordination import claim_shared, find_or_create, lease_seconds, new_holder
from common.errors import clip
from common.peers import Aggregate, Peer, list_peers, markdown_table
from functions.github.client import GitHubSettings
from functions.github.presentation import (
    COMMIT_STATE,
    CONCLUSION,
    DESCRIPTION_LIMIT,
    OUTPUT_LIMIT,
    TITLE_LIMIT,
    timestamp,
)
from functions.github.shared import Commit

if TYPE_CHECKING:
    from common.runclient import ClusterAccess
    from functions.github.rest import Repo

CheckRun = dict[str, Any]
Ctx = Context[Any, GitHubSettings]

PREFIX = "tekton-rollup"
MAX_ROUNDS = 3
"""Writes of one delivery at most, when the runs keep changing while it writes."""
MAX_CHECK_RUNS_SEARCHED = 300
_KEYS = uuid.UUID("0b6f2b8e-5a34-4a7e-8d0c-3f1e6c2a9b57")


def rollup_key(namespace: str, commit: Commit, name: str) -> str:
    """The rollup's deterministic key: the same for every run and delivery that shares it."""
    joined = "/".join(("rollup", namespace, commit.owner.lower(), commit.repo.lower(), commit.sha, name))
    return str(uuid.uuid5(_KEYS, joined))


def external_id(key: str, generation: int) -> str:
    return f"{PREFIX}:{key}:{generation}"


def generation_of(check: Mapping[str, Any], key: str) -> int | None:
    """``n`` of a check run whose ``external_id`` is this rollup's, else ``None``."""
    head, _, number = str(check.get("external_id") or "").rpartition(":")
    if head != f"{PREFIX}:{key}" or not number.isdigit():
        return None
    return int(number)


def report_rollup(ctx: Ctx, cluster: ClusterAccess, repo: Repo, commit: Commit, name: str) -> dict[str, str]:
    """Bring the rollup check run ``name`` on ``commit`` up to date; the record keeps its id.
    With ``mode: status`` (a token, which GitHub does not let create check runs) the rollup is
    the commit status ``name`` instead."""
    rollup = _Rollup(ctx, cluster, repo, commit, name)
    if ctx.config.mode == "status":
        return rollup.report_status()
    for _ in range(MAX_ROUNDS):
        current = rollup.current()  # before the runs are listed: see the module's docstring
        fields = rollup.fields(rollup.peers())
        check = rollup.write(current, fields)
        if rollup.fields(rollup.peers()) == fields:
            break
    return {"rollup-check-run-id": str(check["id"])}


class _Rollup:
    def __init__(self, ctx: Ctx, cluster: ClusterAccess, repo: Repo, commit: Commit, name: str) -> None:
        self.ctx = ctx
        self.cluster = cluster
        self.repo = repo
        self.commit = commit
        self.name = name
        self.key = rollup_key(ctx.run.namespace, commit, name)
        self.holder = new_holder(ctx.run)

    def report_status(self) -> dict[str, str]:
        """Post the rollup as a commit status: GitHub keeps the newest per context, so nothing is
        claimed, and posting again after a change is all convergence takes."""
        wanted = self.status_fields(self.peers())
        for _ in range(MAX_ROUNDS):
            self.repo.create_status(self.commit.sha, wanted)
            fresh = self.status_fields(self.peers())
            if fresh == wanted:
                break
            wanted = fresh
        return {"rollup-state": wanted["state"]}

    def status_fields(self, peers: list[Peer]) -> dict[str, str]:
        aggregate = Aggregate.of(peers)
        fields = {
            "state": COMMIT_STATE[aggregate.phase],
            "context": self.name,
            "description": clip(aggregate.title, DESCRIPTION_LIMIT),
        }
        unsuccessful = [peer for peer in peers if peer.counted_as in (RunPhase.FAILED, RunPhase.CANCELLED)]
        link = self.ctx.runtime.run_url(unsuccessful[0].run) if unsuccessful else None
        if link:
            fields["target_url"] = link
        return fields

    def peers(self) -> list[Peer]:
        return list_peers(self.cluster, self.ctx.run, self.ctx.integration, self._belongs)

    def _belongs(self, settings: Mapping[str, str]) -> bool:
        return self.commit.names(settings) and settings.get("rollup", "").strip() == self.name

    def current(self) -> tuple[int, CheckRun] | None:
        """The newest generation of the rollup check run, if there is one."""
        found = [
            (generation, check)
            for check in self._ours()
            if (generation := generation_of(check, self.key)) is not None
        ]
        return max(found, key=lambda item: (item[0], int(item[1].get("id") or 0)), default=None)

    def _ours(self) -> Iterator[CheckRun]:
        return islice(self.repo.check_runs(self.commit.sha, self.name), MAX_CHECK_RUNS_SEARCHED)

    def fields(self, peers: list[Peer]) -> dict[str, Any]:
        """The check run's status, conclusion, times and output for ``peers``: deterministic, so
        two deliveries that see the same runs write the same."""
        aggregate = Aggregate.of(peers)
        fields: dict[str, Any] = {
            "status": "queued" if aggregate.phase is RunPhase.QUEUED else "in_progress",
            "output": {
                "title": clip(aggregate.title, TITLE_LIMIT),
                "summary": clip(self._summary(peers), OUTPUT_LIMIT),
            },
        }
        starts = [peer.run.start_time for peer in peers if peer.run.start_time]
        if starts:
            fields["started_at"] = timestamp(min(starts))
        if aggregate.done:
            fields["status"] = "completed"
            fields["conclusion"] = CONCLUSION[aggregate.phase]
            ends = [peer.run.completion_time for peer in peers if peer.run.completion_time]
            if ends:
                fields["completed_at"] = timestamp(max(ends))
        return fields

    def _summary(self, peers: list[Peer]) -> str:
        table = markdown_table(peers, self.ctx.runtime.run_url)
        return (
            f"Every Tekton run in namespace `{self.ctx.run.namespace}` on this commit that names the "
            f"rollup **{self.name}**.\n\n{table}"
        )

    def write(self, current: tuple[int, CheckRun] | None, fields: dict[str, Any]) -> CheckRun:
        if current is not None:
            generation, check = current
            if not (check.get("status") == "completed" and fields["status"] != "completed"):
                return self._update(check, fields)
            generation += 1  # a run joined a finished rollup: GitHub cannot reopen it
        else:
            generation = 1
        wanted = external_id(self.key, generation)
        claim = claim_shared(
            self.cluster,
            self.ctx.run.namespace,
            f"rollup/{self.key}/{generation}",
            self.holder,
            integration=self.ctx.integration,
            owner=self.ctx.run,
            duration=lease_seconds(self.ctx.settings.timeout_seconds),
            at=_now(),
        )
        check, created = find_or_create(
            claim,
            find=lambda hint: self._find(wanted, hint),
            create=lambda: self.repo.create_check_run(
                {"name": self.name, "head_sha": self.commit.sha, "external_id": wanted, **fields}
            ),
            id_of=lambda found: str(found["id"]),
            what=f"the rollup check run {self.name!r}",
            clock=_now,
        )
        return check if created else self._update(check, fields)

    def _find(self, wanted: str, hint: str | None) -> CheckRun | None:
        """The check run with ``external_id`` ``wanted``: the recorded one if GitHub confirms it."""
        if hint and hint.isdigit() and len(hint) <= 20:
            recorded = self.repo.check_run(int(hint))
            if recorded is not None and self._is(recorded, wanted):
                return recorded
        return next((check for check in self._ours() if self._is(check, wanted)), None)

    def _is(self, check: CheckRun, wanted: str) -> bool:
        return (
            check.get("external_id") == wanted
            and check.get("name") == self.name
            and check.get("head_sha") == self.commit.sha
        )

    def _update(self, check: CheckRun, fields: Mapping[str, Any]) -> CheckRun:
        shown = check.get("output") or {}
        if (
            check.get("status") == fields["status"]
            and check.get("conclusion") == fields.get("conclusion")
            and shown.get("title") == fields["output"]["title"]
            and shown.get("summary") == fields["output"]["summary"]
        ):
            return check  # what another delivery wrote already
        return self.repo.update_check_run(int(check["id"]), fields)


def _now() -> datetime:
    return datetime.now(UTC)
