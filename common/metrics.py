"""Prometheus metrics: what a function counts, the calls that count it, and ``GET /metrics``' text.

Owns the metric names, their labels and the text exposition ``GET /metrics`` answers with
(``common.http`` serves it). The runtime reports what happened through the observer functions
below (``event``, ``service_call``, ``write_conflict``, ``claim_wait``; ``common.faults`` reports
the rate-limit headers it sees through ``rate_limit``); nothing here makes a call or decides.

Labels never carry a run's name, UID or namespace: only integration and service names, outcome
kinds, reasons (CamelCase words the code chose, checked here) and GitHub's rate-limit resource,
so the number of series stays bounded whatever the cluster runs.

An observation only updates a dictionary under a lock. ``prometheus_client`` is imported by the
first scrape, which registers one collector that turns those dictionaries into metric families
(beside the process and Python collectors ``prometheus_client`` registers itself): no event,
the first one of a cold start included, ever waits for that import.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from time import perf_counter
from typing import TYPE_CHECKING

from common.errors import PermanentError, TemporaryError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

PREFIX = "tekton_integrations"
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Seconds: from a loopback stand-in to a service's whole deadline."""
EVENT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
OTHER = "Other"
"""What a label value that is not a plain word becomes (it would be unbounded, or unreadable)."""
MAX_LABEL = 64

_lock = threading.Lock()
"""Guards every instrument's values: an update is a dictionary write, a scrape a copy."""
Labels = tuple[str, ...]


class _Instrument:
    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = list(labels)


class _Counter(_Instrument):
    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        super().__init__(name, documentation, labels)
        self._values: dict[Labels, float] = {}

    def inc(self, *labels: str) -> None:
        with _lock:
            self._values[labels] = self._values.get(labels, 0.0) + 1.0

    def family(self) -> Metric:
        from prometheus_client.metrics_core import CounterMetricFamily  # noqa: PLC0415 -- scrape only

        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        with _lock:
            values = dict(self._values)
        for labels, value in sorted(values.items()):
            family.add_metric(list(labels), value)
        return family


class _Gauge(_Instrument):
    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        super().__init__(name, documentation, labels)
        self._values: dict[Labels, float] = {}

    def set(self, value: float, *labels: str) -> None:
        with _lock:
            self._values[labels] = value

    def family(self) -> Metric:
        from prometheus_client.metrics_core import GaugeMetricFamily  # noqa: PLC0415 -- scrape only

        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        with _lock:
            values = dict(self._values)
        for labels, value in sorted(values.items()):
            family.add_metric(list(labels), value)
        return family


class _Histogram(_Instrument):
    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        super().__init__(name, documentation, labels)
        self.buckets = tuple(buckets)
        self._values: dict[Labels, tuple[list[int], list[float]]] = {}
        """Per label values: a count per bucket (the last one is +Inf), and [sum]."""

    def observe(self, value: float, *labels: str) -> None:
        with _lock:
            counts, total = self._values.setdefault(labels, ([0] * (len(self.buckets) + 1), [0.0]))
            counts[bisect_left(self.buckets, value)] += 1
            total[0] += value

    def family(self) -> Metric:
        from prometheus_client.metrics_core import HistogramMetricFamily  # noqa: PLC0415 -- scrape only

        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        with _lock:
            values = {labels: (list(counts), total[0]) for labels, (counts, total) in self._values.items()}
        bounds = [str(float(bound)) for bound in self.buckets] + ["+Inf"]  # as prometheus_client writes them
        for labels, (counts, total) in sorted(values.items()):
            cumulative, running = [], 0
            for bound, count in zip(bounds, counts, strict=True):
                running += count
                cumulative.append((bound, float(running)))
            family.add_metric(list(labels), cumulative, sum_value=total)
        return family


EVENTS = _Counter(
    f"{PREFIX}_events",
    "Tekton events handled, by integration, outcome (reported, failed, retry, ignored, malformed) "
    "and reason.",
    ["integration", "outcome", "reason"],
)
EVENT_SECONDS = _Histogram(
    f"{PREFIX}_event_duration_seconds",
    "Time from receiving an event to answering it.",
    ["integration", "outcome"],
    EVENT_BUCKETS,
)
CALL_SECONDS = _Histogram(
    f"{PREFIX}_service_call_duration_seconds",
    "Duration of an integration's call to its service (every request it makes for one event), "
    "by result: ok, permanent, temporary or error.",
    ["integration", "service", "result"],
    CALL_BUCKETS,
)
RATE_LIMIT_REMAINING = _Gauge(
    f"{PREFIX}_rate_limit_remaining",
    "Requests left in the service's rate-limit window, as it last reported "
    "(X-RateLimit-Remaining / RateLimit-Remaining).",
    ["service", "resource"],
)
RATE_LIMIT_LIMIT = _Gauge(
    f"{PREFIX}_rate_limit_limit",
    "Requests allowed in the service's rate-limit window, as it last reported "
    "(X-RateLimit-Limit / RateLimit-Limit).",
    ["service", "resource"],
)
RATE_LIMIT_RESET = _Gauge(
    f"{PREFIX}_rate_limit_reset_timestamp_seconds",
    "When the service said its rate-limit window resets (Unix time).",
    ["service", "resource"],
)
WRITE_CONFLICTS = _Counter(
    f"{PREFIX}_record_write_conflicts",
    "Conditional writes of a claim or a record refused because the run changed since it was read "
    "(each is re-read and decided again).",
    ["integration", "write"],
)
CLAIM_WAITS = _Counter(
    f"{PREFIX}_claim_waits",
    "Deliveries asked to come back (Busy) because another delivery holds the claim.",
    ["integration"],
)
INSTRUMENTS: tuple[_Counter | _Gauge | _Histogram, ...] = (
    EVENTS,
    EVENT_SECONDS,
    CALL_SECONDS,
    RATE_LIMIT_REMAINING,
    RATE_LIMIT_LIMIT,
    RATE_LIMIT_RESET,
    WRITE_CONFLICTS,
    CLAIM_WAITS,
)


def label(value: str) -> str:
    """``value`` if it is a plain word (a reason, a name), else ``Other``; empty stays empty."""
    if not value:
        return value
    plain = value.isascii() and value[0].isalpha() and len(value) <= MAX_LABEL
    if plain and all(char.isalnum() or char in "_.-" for char in value):
        return value
    return OTHER


# -- observers: what the runtime calls ---------------------------------------------------------


def event(integration: str, outcome: str, reason: str, seconds: float | None = None) -> None:
    """One event answered, whatever became of it, and how long it took, where that is known
    (a request functions-framework refused never reached a handler that could time it)."""
    EVENTS.inc(label(integration), outcome, label(reason))
    if seconds is not None:
        EVENT_SECONDS.observe(seconds, label(integration), outcome)


@contextmanager
def service_call(integration: str, service: str) -> Iterator[None]:
    """Time the block as one call to ``service``; its result is read from how the block ends."""
    began = perf_counter()
    result = "error"
    try:
        yield
        result = "ok"
    except PermanentError:
        result = "permanent"
        raise
    except TemporaryError:
        result = "temporary"
        raise
    finally:
        CALL_SECONDS.observe(perf_counter() - began, label(integration), label(service), result)


def rate_limit(service: str, headers: Mapping[str, str]) -> None:
    """Record the budget a service reported in lower-cased ``headers``, if it reported one."""
    remaining = _number(headers.get("x-ratelimit-remaining", headers.get("ratelimit-remaining")))
    limit = _number(headers.get("x-ratelimit-limit", headers.get("ratelimit-limit")))
    if remaining is None and limit is None:
        return
    labels = (label(service), label(headers.get("x-ratelimit-resource", "").strip()))
    if remaining is not None:
        RATE_LIMIT_REMAINING.set(remaining, *labels)
    if limit is not None:
        RATE_LIMIT_LIMIT.set(limit, *labels)
    reset = _number(headers.get("x-ratelimit-reset"))
    if reset is not None and reset > 10**9:  # epoch seconds; a delta is not a time
        RATE_LIMIT_RESET.set(reset, *labels)


def write_conflict(integration: str, write: str) -> None:
    """A conditional write (``claim`` or ``record``) lost to a concurrent change of the run."""
    WRITE_CONFLICTS.inc(label(integration), write)


def claim_wait(integration: str) -> None:
    """A delivery answered Busy: another one holds the claim."""
    CLAIM_WAITS.inc(label(integration))


# -- exposition --------------------------------------------------------------------------------

_registered = False
_registering = threading.Lock()


class _Collector:
    """Hands ``prometheus_client``'s registry our instruments as metric families, at each scrape."""

    def collect(self) -> Iterator[Metric]:
        for instrument in INSTRUMENTS:
            yield instrument.family()


def exposition(accept: str = "") -> tuple[bytes, str]:
    """The registry in the text format ``accept`` asks for (Prometheus' or OpenMetrics), and its
    content type. The first call imports ``prometheus_client`` and registers our collector."""
    global _registered  # noqa: PLW0603 -- one collector per process
    from prometheus_client import REGISTRY  # noqa: PLC0415 -- see the module's docstring
    from prometheus_client.exposition import choose_encoder  # noqa: PLC0415

    with _registering:
        if not _registered:
            REGISTRY.register(_Collector())
            _registered = True
    encoder, content_type = choose_encoder(accept)
    return encoder(REGISTRY), content_type


def _number(value: str | None) -> float | None:
    """The leading number of a header value (``RateLimit-Limit: 100, 100;w=60`` reads 100)."""
    if not value:
        return None
    head = value.split(",")[0].split(";")[0].strip()
    try:
        return float(head)
    except ValueError:
        return None
