"""A whole installation's idle memory: standalone (one Service per integration) against the single
Service (``common/all.py``), with every installed integration.

Each deployment's processes are started as a Knative Service's container starts them
(``functions-framework``, gunicorn, 1 worker), with a kubeconfig that is never contacted, and
sent one event about a run that opts into nothing (so each has answered a request, as an idle pod
has answered its probes and perhaps an event, and no integration has built a client). Then the
resident memory of its gunicorn worker is read (VmRSS), and what the pod holds: the master's RSS
plus the worker's private memory (the worker shares the master's pages it has not written to,
which the pod holds once). Standalone is the sum over one Service per integration, single-Service
one; both have the dead-letter receiver. The hello-world's pod is the floor of one Service.
Knative adds a queue-proxy container to every pod (not measured here), so the per-Service
overhead weighs more in a cluster than below.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import serving
from benchmarks.paths import HELLO, REPO
from benchmarks.workload import IGNORED, RUNNING, request_of, run_event
from common import registry

DEADLETTER = REPO / "common" / "deadletter.py"
SINGLE = REPO / "common" / "all.py"


@dataclass(frozen=True)
class Process:
    """One deployment's Service: its source and environment."""

    name: str
    source: Path
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Measured:
    process: Process
    worker_kb: list[int] = field(default_factory=list)
    """The worker's VmRSS."""
    pod_kb: list[int] = field(default_factory=list)
    """The master's VmRSS plus the worker's private memory."""

    @property
    def worker(self) -> float:
        return statistics.median(self.worker_kb)

    @property
    def pod(self) -> float:
        return statistics.median(self.pod_kb)


@dataclass
class Installation:
    hello: Measured
    standalone: list[Measured]
    single: list[Measured]

    @staticmethod
    def total(measured: Sequence[Measured]) -> tuple[float, float]:
        """Summed worker RSS and pod memory (kB)."""
        return sum(m.worker for m in measured), sum(m.pod for m in measured)


def processes(dummy_kubeconfig: Path) -> tuple[Process, list[Process], list[Process]]:
    """The hello-world, the standalone installation and the single-Service one."""
    env = {"KUBECONFIG": str(dummy_kubeconfig)}
    standalone = [
        Process(name, REPO / "functions" / registry.folder_of(name) / "main.py", env)
        for name in registry.names()
    ]
    deadletter = Process("deadletter", DEADLETTER, env)
    single = Process("tekton-integrations (all)", SINGLE, env)
    return Process("hello", HELLO, {}), [*standalone, deadletter], [single, deadletter]


def measure(
    dummy_kubeconfig: Path, repeats: int, logs: Path, progress: Callable[[str], None]
) -> Installation:
    hello, standalone, single = processes(dummy_kubeconfig)
    results = {p.name: Measured(p) for p in [hello, *standalone, *single]}
    ignored = request_of(run_event(IGNORED, 0))
    dead_letter = request_of(_dead_letter(run_event(IGNORED, 0)))
    for attempt in range(repeats):
        for process in results.values():
            if process.process is hello:
                request = request_of(run_event(RUNNING, 0))
            else:
                request = dead_letter if process.process.source == DEADLETTER else ignored
            served = serving.start(
                process.process.source, logs / f"installation-{process.process.name}.log", process.process.env
            )
            try:
                answer = serving.first_answer(served, request)
                if answer.status != 200:
                    raise RuntimeError(
                        f"{process.process.name}: answered {answer.status}: {answer.body[:200]!r}"
                    )
                process.worker_kb.append(serving.worker_rss_kb(served))
                master = serving.rss_kb(served.process.pid)
                process.pod_kb.append(master + serving.worker_private_kb(served))
            finally:
                serving.stop(served)
        progress(f"installation: attempt {attempt + 1}/{repeats} done")
    return Installation(
        results[hello.name],
        [results[p.name] for p in standalone],
        [results[p.name] for p in single],
    )


def _dead_letter(event: dict[str, Any]) -> dict[str, Any]:
    """What Knative sends the dead-letter receiver after a Trigger's retries (about a run that
    opts into nothing, so it is ignored without an API call)."""
    event["headers"]["ce-knativeerrordest"] = "http://github.tekton-integrations.svc.cluster.local"
    event["headers"]["ce-knativeerrorcode"] = "503"
    return event
