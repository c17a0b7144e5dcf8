"""Events per second and resident memory of one instance (one gunicorn worker, ``THREADS`` threads).

The GitHub function is served through ``benchmarks/served_github.py`` (the real runtime with an
in-memory run store holding the runs the load is about) against the GitHub stand-in in another
process, at a given latency. Each served instance first handles a warm-up batch, then the load:
every event the first one of its run (the costliest kind: claim, create the check run, record),
then, at 0 ms, the same events again (duplicates: one read, no write, no GitHub call). The
hello-world gets the same treatment. Worker RSS is read after the warm-up and after the load.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import load, serving
from benchmarks.paths import BENCH_TOKEN, HELLO, SERVED_GITHUB, function_source
from benchmarks.realkube import Cluster
from benchmarks.standin import StandInProcess
from benchmarks.workload import IGNORED, RUNNING, Request, request_of, run_event
from common import samples

WARMUP = 50
STORE_LINE = re.compile(r"store-rss-kb=(\d+)")


@dataclass
class Phase:
    name: str
    result: load.LoadResult


@dataclass
class Instance:
    name: str
    phases: list[Phase] = field(default_factory=list)
    rss_warm_kb: int = 0
    rss_loaded_kb: int = 0
    store_kb: int = 0
    """Resident size of the in-memory run store filled before the fork (0 for the hello-world)."""


def requests_for(indexes: range) -> list[Request]:
    """The first (running) event of each benchmark run in ``indexes``."""
    return [request_of(run_event(RUNNING, index)) for index in indexes]


def _serve(
    name: str,
    source: Path,
    env: Mapping[str, str],
    warmup: Sequence[Request],
    fresh: Sequence[Request],
    *,
    phase: str = "first event of each run",
    duplicates: bool,
    threads: int,
    time_limit: float,
    logs: Path,
) -> Instance:
    """Serve ``source``; warm up; send ``fresh`` (then again as duplicates); read RSS around it."""
    instance = Instance(name)
    env = {"THREADS": str(threads), "WORKERS": "1", **env}
    served = serving.start(source, logs / f"throughput-{name}.log", env)
    try:
        serving.first_answer(served, request_of(run_event(IGNORED, 0)))
        load.drive(served.port, warmup, concurrency=threads, time_limit=time_limit)
        instance.rss_warm_kb = serving.worker_rss_kb(served)
        first = load.drive(served.port, fresh, concurrency=threads, time_limit=time_limit)
        instance.phases.append(Phase(phase, first))
        if duplicates:
            again = fresh[: first.answered + first.errors]
            instance.phases.append(
                Phase(
                    "duplicates", load.drive(served.port, again, concurrency=threads, time_limit=time_limit)
                )
            )
        instance.rss_loaded_kb = serving.worker_rss_kb(served)
    finally:
        serving.stop(served)
    found = STORE_LINE.search(served.log_text())
    instance.store_kb = int(found.group(1)) if found else 0
    return instance


def measure(
    *,
    threads: int,
    latencies: Sequence[float],
    events: Callable[[float | None], int],
    time_limit: float,
    logs: Path,
    progress: Callable[[str], None],
) -> list[Instance]:
    """The hello-world, then the GitHub function at each stand-in latency (``events(latency)`` each)."""
    warmup = requests_for(range(WARMUP))
    hello_load = requests_for(range(WARMUP, WARMUP + events(None)))
    hello = _serve(
        "hello",
        HELLO,
        {},
        warmup,
        hello_load,
        phase="the same events",
        duplicates=False,
        threads=threads,
        time_limit=time_limit,
        logs=logs,
    )
    instances = [hello]
    progress("throughput: hello-world done")
    for latency in latencies:
        count = events(latency)
        fresh = requests_for(range(WARMUP, WARMUP + count))
        name = f"github-{round(latency * 1000)}ms"
        with StandInProcess(latency) as url:
            env = {"BENCH_RUNS": str(WARMUP + count), "GITHUB_TOKEN": BENCH_TOKEN, "GITHUB_API_URL": url}
            instance = _serve(
                name,
                SERVED_GITHUB,
                env,
                warmup,
                fresh,
                duplicates=latency == 0,
                threads=threads,
                time_limit=time_limit,
                logs=logs,
            )
        instances.append(instance)
        progress(f"throughput: {name} done")
    return instances


def on_realkube(
    cluster: Cluster,
    *,
    threads: int,
    count: int,
    time_limit: float,
    logs: Path,
    progress: Callable[[str], None],
) -> Instance:
    """The GitHub function itself (``functions/github/main.py``) against realkube, stand-in at 0 ms."""
    with cluster.namespace() as namespace:
        events = [run_event(RUNNING, index, namespace=namespace) for index in range(WARMUP + count)]
        requests = [
            request_of(samples.addressed_to(dict(event), cluster.create_run(namespace, event)))
            for event in events
        ]
        progress(f"throughput: {len(requests)} runs created on realkube")
        with StandInProcess(0.0) as url:
            env = {"KUBECONFIG": str(cluster.kubeconfig), "GITHUB_TOKEN": BENCH_TOKEN, "GITHUB_API_URL": url}
            instance = _serve(
                "github-realkube",
                function_source("github"),
                env,
                requests[:WARMUP],
                requests[WARMUP:],
                duplicates=True,
                threads=threads,
                time_limit=time_limit,
                logs=logs,
            )
    progress("throughput: github on realkube done")
    return instance
