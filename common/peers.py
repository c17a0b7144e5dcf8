"""The runs that share a report: the live runs of a namespace whose annotations for an integration
name the same thing (a commit and a rollup, a pull request), their joint state, and a table of them.

Owns finding them and what their joint state is; not where it is shown (the integrations). The set
is always recomputed from what the API server holds when asked, never kept or updated
incrementally: deliveries of runs that finish at the same time each see every finish stored before
they looked, so the last one to look sees them all, and a deleted run simply drops out.
One look is two lists through ``ClusterAccess``: the namespace's PipelineRuns, and its TaskRuns
(standalone ones only, unless failed tasks are wanted: a PipelineRun's children carry them).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common import deadline
from common.config import settings_from_annotations
from common.errors import MalformedEventError, PermanentError, clip
from common.events import PARENT_PIPELINERUN_LABEL, Run, RunKind, RunPhase, parse_run
from common.integration import Context
from common.runclient import ClusterAccess
from common.summary import SYMBOLS, child_references, format_duration, headline

log = logging.getLogger(__name__)

SKIPPED_KEY = "rollup-skipped"
"""``<name>.integrations.tekton.dev/rollup-skipped: success``: the run counts as a success in its
rollup when it was skipped (``was_skipped``)."""
MAX_ROWS = 100
"""Runs listed in a table at most; the rest are counted in a last line."""
TRUE_WORDS = frozenset({"true", "1", "yes", "on", "t", "y"})
"""What pydantic reads as true in an annotation: the same words decide whether a peer opted in."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOTHING = "\N{EN DASH}"
"""What an empty cell shows."""


@dataclass(frozen=True)
class Peer:
    """One run taking part in a shared report, with its integration's configuration annotations
    (untrusted strings, keyed without the prefix) and its failed pipeline tasks."""

    run: Run
    settings: Mapping[str, str]
    failed_tasks: tuple[str, ...] = ()

    @property
    def skipped(self) -> bool:
        return was_skipped(self.run)

    @property
    def counted_as(self) -> RunPhase:
        """The run's phase as its rollup counts it: a skipped run that asks to count as a success
        does; a timeout counts as a failure."""
        if self.settings.get(SKIPPED_KEY) == "success" and self.skipped:
            return RunPhase.SUCCEEDED
        return RunPhase.FAILED if self.run.phase is RunPhase.TIMED_OUT else self.run.phase


def is_true(value: str | None) -> bool:
    """Whether a peer's annotation (an untrusted string) says true, as its own configuration reads it."""
    return (value or "").strip().lower() in TRUE_WORDS


def was_skipped(run: Run) -> bool:
    """Whether nothing of the run was carried out, though it finished: it was cancelled before any
    of its tasks started (a PipelineRun with no child TaskRun, a TaskRun without a pod), or it is a
    PipelineRun whose every task was skipped (its when expressions were false: no child ran)."""
    if not run.phase.is_done:
        return False
    status = run.raw.get("status") or {}
    started = bool(status.get("podName")) if run.kind == "TaskRun" else bool(child_references(run))
    if run.phase is RunPhase.CANCELLED:
        return not started
    return run.kind == "PipelineRun" and not started and bool(status.get("skippedTasks"))


def cluster_for(ctx: Context[Any, Any], what: str) -> ClusterAccess:
    """The access to the namespace's runs that ``what`` (``a rollup or pull-request comment``)
    needs: a ``PermanentError`` (``SharedReportUnavailable``) where the function has none."""
    if ctx.cluster is None:
        raise PermanentError(
            "SharedReportUnavailable",
            f"{what} needs the other runs on the commit, which this function cannot list here",
        )
    return ctx.cluster


def list_peers(
    cluster: ClusterAccess,
    run: Run,
    integration: str,
    belongs: Callable[[Mapping[str, str]], bool],
    *,
    failed_tasks: bool = False,
) -> list[Peer]:
    """The runs of ``run``'s namespace (PipelineRuns and standalone TaskRuns) whose configuration
    for ``integration`` ``belongs``, oldest first; ``run`` itself is among them as listed."""
    with deadline.suspended():  # the Kubernetes client's pool is shared: it keeps its own timeouts
        pipelineruns = cluster.list_runs("PipelineRun", run.namespace)
        taskruns = cluster.list_runs(
            "TaskRun", run.namespace, None if failed_tasks else f"!{PARENT_PIPELINERUN_LABEL}"
        )
    failed_by_parent: dict[str, list[str]] = {}
    found: dict[str, Peer] = {}
    listed: tuple[tuple[RunKind, list[dict[str, Any]]], ...] = (
        ("PipelineRun", pipelineruns),
        ("TaskRun", taskruns),
    )
    for kind, objects in listed:
        for parsed in _parsed(kind, objects):
            parent = parsed.parent_pipelinerun
            if parent is not None:
                if parsed.phase.is_done and parsed.phase is not RunPhase.SUCCEEDED:
                    task = parsed.labels.get("tekton.dev/pipelineTask", parsed.name)
                    failed_by_parent.setdefault(parent, []).append(task)
                continue
            settings = settings_from_annotations(integration, parsed.annotations)
            if settings and belongs(settings):
                found[parsed.uid] = Peer(parsed, settings)
    if run.uid not in found:  # just created, or not yet visible to a list: it counts all the same
        found[run.uid] = Peer(run, settings_from_annotations(integration, run.annotations))
    peers = [
        Peer(peer.run, peer.settings, tuple(sorted(failed_by_parent.get(peer.run.name, ()))))
        if peer.run.kind == "PipelineRun"
        else Peer(peer.run, peer.settings, (peer.run.name,) if _unsuccessful(peer.run) else ())
        for peer in found.values()
    ]
    return sorted(peers, key=lambda peer: (_created(peer.run), peer.run.name))


def _parsed(kind: RunKind, objects: Iterable[Mapping[str, Any]]) -> Iterable[Run]:
    for obj in objects:
        try:
            yield parse_run(kind, obj)
        except MalformedEventError as e:
            log.debug("skipped an unreadable %s: %s", kind, e)


def _unsuccessful(run: Run) -> bool:
    return run.phase.is_done and run.phase is not RunPhase.SUCCEEDED


def _created(run: Run) -> datetime:
    stamp = (run.raw.get("metadata") or {}).get("creationTimestamp")
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) if stamp else _EPOCH
    except ValueError:
        return _EPOCH


@dataclass(frozen=True)
class Aggregate:
    """The joint state of a rollup's runs, always computed from all of them.

    ``phase``: ``QUEUED`` while every run waits, ``RUNNING`` while any is queued or running; once
    all are done, ``FAILED`` if any failed or timed out, else ``CANCELLED`` if any was cancelled
    (and does not count as a success), else ``SUCCEEDED``.
    """

    phase: RunPhase
    counts: tuple[tuple[RunPhase, int], ...]

    @classmethod
    def of(cls, peers: Sequence[Peer]) -> Aggregate:
        tally = Counter(peer.counted_as for peer in peers)
        waiting = tally[RunPhase.QUEUED] + tally[RunPhase.RUNNING]
        if waiting:
            phase = RunPhase.QUEUED if waiting == tally[RunPhase.QUEUED] == len(peers) else RunPhase.RUNNING
        elif tally[RunPhase.FAILED]:
            phase = RunPhase.FAILED
        elif tally[RunPhase.CANCELLED]:
            phase = RunPhase.CANCELLED
        else:
            phase = RunPhase.SUCCEEDED
        return cls(phase, tuple((each, tally[each]) for each in RunPhase if tally[each]))

    @property
    def done(self) -> bool:
        return self.phase.is_done

    @property
    def title(self) -> str:
        """``3 runs: 2 succeeded, 1 running``."""
        total = sum(count for _, count in self.counts)
        parts = ", ".join(f"{count} {phase.value}" for phase, count in self.counts)
        return f"{total} run{'s' if total != 1 else ''}: {parts}"


def status_label(peer: Peer) -> str:
    """``✅ Succeeded``, ``❌ Failed: StepFailed``, ``✅ Skipped (counts as success)``."""
    run = peer.run
    if peer.skipped:
        counts = " (counts as success)" if peer.counted_as is RunPhase.SUCCEEDED else ""
        return f"{SYMBOLS[peer.counted_as]} Skipped{counts}"
    return f"{SYMBOLS[run.phase]} {headline(run)}"


def markdown_table(
    peers: Sequence[Peer], link: Callable[[Run], str | None], *, failed_tasks: bool = False
) -> str:
    """A Markdown table of the runs: run (linked where ``link`` gives a URL), pipeline or task,
    status, duration and, with ``failed_tasks``, the tasks that did not succeed."""
    header = ["Run", "Pipeline / Task", "Status", "Duration"] + (["Failed tasks"] if failed_tasks else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for peer in peers[:MAX_ROWS]:
        run = peer.run
        url = link(run)
        name = f"[`{run.name}`]({url})" if url else f"`{run.name}`"
        cells = [
            name,
            f"`{run.definition}`",
            status_label(peer),
            format_duration(run.duration_seconds) or NOTHING,
        ]
        if failed_tasks:
            cells.append(", ".join(f"`{task}`" for task in peer.failed_tasks) or NOTHING)
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    if len(peers) > MAX_ROWS:
        lines.append(f"\n…and {len(peers) - MAX_ROWS} more runs.")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return clip(text.replace("|", "\\|").replace("\n", " "), 300)
