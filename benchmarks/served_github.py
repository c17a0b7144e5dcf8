"""The GitHub function served with an in-memory run store, for the events-per-second benchmark.

Serve it like any function (the repository root must be importable, hence ``PYTHONPATH``)::

    PYTHONPATH=. BENCH_RUNS=2000 GITHUB_TOKEN=t GITHUB_API_URL=http://127.0.0.1:PORT \\
      functions-framework --source benchmarks/served_github.py --target handle --signature-type cloudevent

It installs a ``MemoryRunClient`` holding ``BENCH_RUNS`` running PipelineRuns
(``benchmarks.workload.run_event(RUNNING, i)``) and re-exports the GitHub function's ``handle``,
so every request goes through the real runtime; only the Kubernetes API is replaced. The store is
filled before gunicorn forks its worker; its resident size is printed on stderr, so the RSS
figures can be read net of it.
"""

from __future__ import annotations

import os
import sys

from benchmarks.workload import populate
from common.http import use_run_client
from common.runclient import MemoryRunClient
from functions.github.main import handle


def _rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _install_store() -> None:
    count = int(os.environ.get("BENCH_RUNS", "1000"))
    before = _rss_kb()
    store = MemoryRunClient()
    populate(store, count)
    use_run_client(store)
    print(f"served_github: store-runs={count} store-rss-kb={_rss_kb() - before}", file=sys.stderr, flush=True)


_install_store()

__all__ = ["handle"]
