"""A bounded loopback load generator: a fixed list of events, a few threads, a time limit.

Each thread keeps one keep-alive connection (``http.client``, lighter than ``requests``) and takes
the next event from the shared list until the list or the time runs out. Nothing is retried: an
error is counted and the connection is opened again.
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchmarks.workload import Request

REQUEST_TIMEOUT = 30.0


@dataclass
class LoadResult:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    """Seconds per answered request."""
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0

    @property
    def answered(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(p) - 1]


def drive(port: int, requests: Sequence[Request], *, concurrency: int, time_limit: float) -> LoadResult:
    """Send ``requests`` to 127.0.0.1:``port`` from ``concurrency`` threads, for ``time_limit`` s at most."""
    result = LoadResult()
    lock = threading.Lock()
    position = iter(range(len(requests)))
    began = time.perf_counter()
    deadline = began + time_limit

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        try:
            while time.perf_counter() < deadline:
                with lock:
                    index = next(position, None)
                if index is None:
                    return
                headers, body = requests[index]
                sent = time.perf_counter()
                try:
                    connection.request("POST", "/", body=body, headers=headers)
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
                    with lock:
                        result.errors += 1
                    continue
                elapsed = time.perf_counter() - sent
                with lock:
                    result.latencies.append(elapsed)
                    result.statuses[response.status] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, name=f"load-{n}", daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=time_limit + REQUEST_TIMEOUT)
    result.seconds = time.perf_counter() - began
    return result
