"""CPU per handled event (Python side) and Kubernetes API calls per event, in-process.

The GitHub function is loaded as functions-framework loads it (``create_app(...).test_client()``),
with the GitHub stand-in on loopback and either the in-memory run store or realkube behind a
``MeteredClient``. Only the handling thread's CPU is counted (``time.thread_time``): the stand-in
and the API server answer from other threads or processes. With the in-memory store, the CPU the
store itself spends (deep copies standing in for an API server) is left out, so both backends
measure the function's own work; with realkube, the Kubernetes client's (de)serialisation is the
function's work and counts. The hello-world goes through the same test client for comparison.

Event kinds: the first event of a run (creates the check run), the same event delivered again (its
claim is refused: no write, no call), a later state (edits it), a duplicate of that (already
recorded: no call), and an ignored run (no annotations: no API call). Each event is the run as
stored when it was sent, ``resourceVersion`` included, as Tekton's events controller sends it.

Requests are counted on the client (``MeteredClient``: ``patch 409`` is a conditional write the
server refused) and, on realkube, by the API server itself: ``apiserver_request_total`` from its
``/metrics``, read before and after each event of ``SERVER_COUNTED`` more runs of every kind.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from unittest.mock import patch

import functions_framework
from flask.testing import FlaskClient

from benchmarks import workload
from benchmarks.paths import BENCH_TOKEN, HELLO, REPO, child_env, function_source
from benchmarks.realkube import Cluster
from benchmarks.workload import Request
from common import samples
from common.errors import ConflictError
from common.events import RunKind
from common.http import use_run_client
from common.runclient import ClusterAccess, MemoryRunClient, RunClient, RunRef
from common.standins.github import GitHubStandIn

FIRST = "first event of a run (creates the check run)"
FIRST_AGAIN = "duplicate of a first event (its claim is refused)"
LATER = "later state (edits the check run)"
DUPLICATE = "duplicate of a later state (already recorded)"
IGNORED = "ignored run (no annotations)"
KINDS = (FIRST, FIRST_AGAIN, LATER, DUPLICATE, IGNORED)
SERVER_COUNTED = 10
"""Measured events per kind whose requests the API server's ``/metrics`` counts (two scrapes each)."""


class MeteredClient:
    """A ``RunClient`` that counts requests and the calling thread's CPU spent inside ``inner``."""

    def __init__(self, inner: RunClient) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.cpu = 0.0

    def _metered(self, verb: str, call: Callable[[], Any]) -> Any:
        self.calls.append(verb)
        began = time.thread_time()
        try:
            return call()
        finally:
            self.cpu += time.thread_time() - began

    def get(self, ref: RunRef) -> dict[str, Any]:
        result: dict[str, Any] = self._metered("get", lambda: self.inner.get(ref))
        return result

    def patch(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self._metered("patch", lambda: self.inner.patch(ref, patch))
        except ConflictError:
            self.calls[-1] = "patch 409"  # refused: the run is not at the version the patch names
            raise
        return result

    def patch_status(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._metered("patch_status", lambda: self.inner.patch_status(ref, patch))
        return result

    def record_event(self, ref: RunRef, uid: str, reason: str, message: str) -> None:
        self._metered("record_event", lambda: self.inner.record_event(ref, uid, reason, message))

    def list_runs(
        self, kind: RunKind, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        cluster = self._cluster()
        listed: list[dict[str, Any]] = self._metered(
            f"list {kind.lower()}s", lambda: cluster.list_runs(kind, namespace, label_selector)
        )
        return listed

    def pod_log(self, namespace: str, pod: str, container: str, *, tail_lines: int, limit_bytes: int) -> str:
        cluster = self._cluster()
        text: str = self._metered(
            "pod_log",
            lambda: cluster.pod_log(
                namespace, pod, container, tail_lines=tail_lines, limit_bytes=limit_bytes
            ),
        )
        return text

    def get_object(
        self, api_version: str, resource: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        cluster = self._cluster()
        found: dict[str, Any] | None = self._metered(
            f"get {resource}", lambda: cluster.get_object(api_version, resource, namespace, name)
        )
        return found

    def create_object(
        self, api_version: str, resource: str, namespace: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        cluster = self._cluster()
        created: dict[str, Any] = self._metered(
            f"create {resource}", lambda: cluster.create_object(api_version, resource, namespace, body)
        )
        return created

    def patch_object(
        self, api_version: str, resource: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        cluster = self._cluster()
        patched: dict[str, Any] = self._metered(
            f"patch {resource}", lambda: cluster.patch_object(api_version, resource, namespace, name, patch)
        )
        return patched

    def _cluster(self) -> ClusterAccess:
        assert isinstance(self.inner, ClusterAccess), "the metered client offers what the inner one does"
        return self.inner


class ReportMeter:
    """Wraps an integration's ``report`` to add up the calling thread's CPU spent inside it."""

    def __init__(self) -> None:
        self.cpu = 0.0

    def wrap(self, report: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def timed(ctx: Any) -> Any:
            began = time.thread_time()
            try:
                return report(ctx)
            finally:
                self.cpu += time.thread_time() - began

        return timed


class Backend(Protocol):
    """Where the runs live: creates run ``i`` and moves it on, and hands out its events."""

    name: str
    counts_client_cpu: bool
    """Whether the client's CPU is the function's (a real Kubernetes client) or a test double's."""

    @property
    def cluster(self) -> Cluster | None:
        """The real API server, whose own ``/metrics`` count the requests, if there is one."""
        ...

    @property
    def client(self) -> RunClient: ...

    def create(self, index: int) -> Request: ...

    def advance(self, index: int) -> Request: ...


class MemoryBackend:
    name = "in-memory store"
    counts_client_cpu = False
    cluster: Cluster | None = None

    def __init__(self) -> None:
        self.store = MemoryRunClient()
        self._refs: dict[int, RunRef] = {}

    @property
    def client(self) -> RunClient:
        return self.store

    def create(self, index: int) -> Request:
        event = workload.run_event(workload.RUNNING, index)
        kind, obj = samples.run_object(event)
        self._refs[index] = self.store.add(kind, obj)
        return workload.request_of(samples.addressed_to(dict(event), self.store.runs[self._refs[index]]))

    def advance(self, index: int) -> Request:
        workload.advance(self.store, self._refs[index], workload.SUCCESSFUL, index)
        event = workload.run_event(workload.SUCCESSFUL, index)
        return workload.request_of(samples.addressed_to(dict(event), self.store.runs[self._refs[index]]))


class RealkubeBackend:
    name = "realkube"
    counts_client_cpu = True

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        from common import kube  # noqa: PLC0415 -- only this backend needs the Kubernetes client

        self.cluster = cluster
        self.namespace = namespace
        with patch.dict(os.environ, {"KUBECONFIG": str(cluster.kubeconfig)}):
            self._client = kube.connect()

    @property
    def client(self) -> RunClient:
        return self._client

    def create(self, index: int) -> Request:
        event = workload.run_event(workload.RUNNING, index, namespace=self.namespace)
        return workload.request_of(
            samples.addressed_to(dict(event), self.cluster.create_run(self.namespace, event))
        )

    def advance(self, index: int) -> Request:
        event = workload.run_event(workload.SUCCESSFUL, index, namespace=self.namespace)
        return workload.request_of(
            samples.addressed_to(dict(event), self.cluster.advance(self.namespace, event))
        )


@dataclass
class KindResult:
    cpu_ms: list[float] = field(default_factory=list)
    """The handling thread's CPU per event, without a test double's."""
    kube_ms: list[float] = field(default_factory=list)
    """Of which inside the Kubernetes client (0 for the in-memory store, whose CPU is left out)."""
    report_ms: list[float] = field(default_factory=list)
    """Of which inside the integration's ``report`` (PyGithub, requests, presentation)."""
    kube_calls: Counter[tuple[str, ...]] = field(default_factory=Counter)
    server_calls: Counter[tuple[str, ...]] = field(default_factory=Counter)
    """Requests the API server counted for one event (sorted), on realkube: ``SERVER_COUNTED`` events."""
    github_calls: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass
class CpuResult:
    backend: str
    kinds: dict[str, KindResult]
    first_in_process: tuple[str, ...]
    """Kubernetes calls of the process's very first reported event (no probe of ``status.integrations``
    any more: ``TI_STATUS_INTEGRATIONS=auto``)."""


def hello_cpu(count: int) -> list[float]:
    """CPU per event of the hello-world through the same test client."""
    client = _function_client(str(HELLO))
    request = workload.request_of(workload.run_event(workload.RUNNING, 0))
    samples = []
    with _quiet():
        for index in range(count + 5):
            began = time.thread_time()
            response = _post(client, request)
            spent = time.thread_time() - began
            if response != "OK":
                raise RuntimeError(f"hello-world answered {response!r}")
            if index >= 5:
                samples.append(spent * 1000)
    return samples


def measure(backend: Backend, standin: GitHubStandIn, *, warmup: int, count: int) -> CpuResult:
    """Each event kind ``count`` times, on runs ``warmup..warmup+count``; runs below ``warmup`` warm up.

    With a real API server, ``SERVER_COUNTED`` more runs then go through every kind with the server's
    ``/metrics`` read around each event; they are not timed (a 2 MB scrape would leave garbage that
    the next timed event collects).
    """
    metered = MeteredClient(backend.client)
    kinds = {kind: KindResult() for kind in KINDS}
    meter = ReportMeter()
    with _serving(metered, standin, meter) as client, _quiet():

        def deliver_all(runs: range, *, timed: range, counted: bool = False) -> tuple[str, ...]:
            def deliver(request: Request, kind: str, index: int) -> tuple[str, ...]:
                return _deliver(
                    client,
                    request,
                    meter=meter,
                    metered=metered,
                    standin=standin,
                    backend=backend,
                    result=kinds[kind],
                    measured=index in timed,
                    counted=counted,
                )

            firsts = [backend.create(index) for index in runs]
            first = deliver(firsts[0], FIRST, runs[0])
            for index in runs[1:]:
                deliver(firsts[index - runs[0]], FIRST, index)
            for index in runs:
                deliver(firsts[index - runs[0]], FIRST_AGAIN, index)
            laters = [backend.advance(index) for index in runs]
            for index in runs:
                deliver(laters[index - runs[0]], LATER, index)
            for index in runs:
                deliver(laters[index - runs[0]], DUPLICATE, index)
            ignored = workload.request_of(workload.run_event(workload.IGNORED, 0))
            for index in runs:
                deliver(ignored, IGNORED, index)
            return first

        first_in_process = deliver_all(range(warmup + count), timed=range(warmup, warmup + count))
        if backend.cluster is not None:
            start = warmup + count
            deliver_all(range(start, start + SERVER_COUNTED), timed=range(0), counted=True)
    return CpuResult(backend.name, kinds, first_in_process)


@dataclass
class Profile:
    """cProfile's self time per package for each event kind (seconds, socket waits left out)."""

    backend: str
    package_s: dict[str, Counter[str]]
    waits_s: dict[str, float]
    """Self time inside blocking socket calls (waiting for the stand-in or the API server), per kind."""
    top: list[tuple[str, float, float]]
    """(function, self seconds, cumulative seconds) over all kinds, by self time."""
    events: int


def profile(backend: Backend, standin: GitHubStandIn, *, warmup: int, count: int) -> Profile:
    """Where the handling thread's time goes, per event kind.

    cProfile's default (wall) clock is used: a CPU clock costs a system call per function call
    and distorts the picture more. Time blocked in socket calls is left out, so what remains is
    CPU; cProfile's own overhead still inflates code that makes many small calls.
    """
    metered = MeteredClient(backend.client)
    profilers = {kind: cProfile.Profile() for kind in KINDS}
    firsts: dict[int, Request] = {}
    laters: dict[int, Request] = {}
    ignored = workload.request_of(workload.run_event(workload.IGNORED, 0))

    def create(index: int) -> Request:
        firsts[index] = backend.create(index)
        return firsts[index]

    def advance(index: int) -> Request:
        laters[index] = backend.advance(index)
        return laters[index]

    batches: list[tuple[str, Callable[[int], Request]]] = [
        (FIRST, create),
        (FIRST_AGAIN, firsts.__getitem__),
        (LATER, advance),
        (DUPLICATE, laters.__getitem__),
        (IGNORED, lambda _: ignored),
    ]
    with _serving(metered, standin) as client, _quiet():
        for kind, make in batches:
            for index in range(warmup + count):
                request = make(index)
                if index < warmup:
                    _post(client, request)
                    continue
                profilers[kind].enable()
                _post(client, request)
                profilers[kind].disable()
    package_s: dict[str, Counter[str]] = {}
    waits_s: dict[str, float] = {}
    total = pstats.Stats(profilers[FIRST], stream=io.StringIO())
    for kind, profiler in profilers.items():
        stats = pstats.Stats(profiler, stream=io.StringIO())
        package_s[kind] = _packages(stats)
        waits_s[kind] = package_s[kind].pop(WAITS, 0.0)
        if kind != FIRST:
            total.add(stats)
    return Profile(backend.name, package_s, waits_s, _top(total, 12), count)


WAITS = "(blocked in socket calls)"
_BLOCKING = (
    "recv_into",
    "sendall",
    "connect",
    "poll",
    "select",
    "getaddrinfo",
    "_ssl._SSLSocket",
    "do_handshake",
)


def _packages(stats: pstats.Stats) -> Counter[str]:
    spent: Counter[str] = Counter()
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, self_time, _, _) in raw.items():
        spent[_package_of(filename, function)] += self_time
    return spent


def _package_of(filename: str, function: str) -> str:
    if filename == "~":
        if any(word in function for word in _BLOCKING):
            return WAITS
        return "C builtins (json, str, dict...)"
    if "/site-packages/" in filename:
        return filename.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if filename.startswith(str(REPO)):
        relative = filename[len(str(REPO)) + 1 :]
        if relative.startswith("common/runclient.py"):
            return "common.runclient (in-memory store, a test double)"
        return relative.split("/", 1)[0] + " (project)"
    if filename.startswith("<frozen "):
        return "stdlib " + filename.removeprefix("<frozen ").removesuffix(">").lstrip("_")
    module = filename.rsplit("/python3.", 1)[-1].split("/", 1)[-1].removesuffix(".py")
    return "stdlib " + module.split("/")[0]


def _top(stats: pstats.Stats, count: int) -> list[tuple[str, float, float]]:
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, function), (_, _, self_time, cumulative, _) in raw.items():
        if _package_of(filename, function) == WAITS:
            continue
        where = filename.split("/site-packages/")[-1].replace(str(REPO) + "/", "")
        where = where.rsplit("/python3.11/", 1)[-1]
        rows.append((f"{where}:{line}({function})", self_time, cumulative))
    rows.sort(key=lambda row: row[1], reverse=True)
    return rows[:count]


def _deliver(
    client: FlaskClient,
    request: Request,
    *,
    meter: ReportMeter,
    metered: MeteredClient,
    standin: GitHubStandIn,
    backend: Backend,
    result: KindResult,
    measured: bool,
    counted: bool = False,
) -> tuple[str, ...]:
    server_before = backend.cluster.run_requests() if counted and backend.cluster else None
    calls_before, store_cpu_before, github_before = len(metered.calls), metered.cpu, len(standin.calls)
    report_before = meter.cpu
    began = time.thread_time()
    outcome = _post(client, request)
    spent = time.thread_time() - began
    calls = tuple(metered.calls[calls_before:])
    if server_before is not None and backend.cluster is not None:
        time.sleep(0.02)  # the server counts a request as its handler returns, about when it answers
        on_server = backend.cluster.run_requests() - server_before
        result.server_calls[tuple(sorted(on_server.elements()))] += 1
    if measured:
        client_cpu = metered.cpu - store_cpu_before
        excluded = 0.0 if backend.counts_client_cpu else client_cpu
        result.cpu_ms.append((spent - excluded) * 1000)
        result.kube_ms.append((client_cpu - excluded) * 1000)
        result.report_ms.append((meter.cpu - report_before) * 1000)
        result.kube_calls[calls] += 1
        result.github_calls[len(standin.calls) - github_before] += 1
        result.outcomes[outcome] += 1
    return calls


def _post(client: FlaskClient, request: Request) -> str:
    headers, body = request
    response = client.post("/", headers=headers, data=body)
    if response.status_code != 200:
        raise RuntimeError(f"the function answered {response.status_code}: {response.get_data(as_text=True)}")
    if response.is_json:
        answer: Mapping[str, Any] = response.get_json()
        return str(answer.get("outcome"))
    return response.get_data(as_text=True)


def _function_client(source: str) -> FlaskClient:
    app = functions_framework.create_app(target="handle", source=source, signature_type="cloudevent")
    return app.test_client()


@contextlib.contextmanager
def _serving(
    metered: MeteredClient, standin: GitHubStandIn, meter: ReportMeter | None = None
) -> Iterator[FlaskClient]:
    """The GitHub function as functions-framework loads it (as module ``main``), using ``metered``
    and ``standin``; with ``meter``, its ``report`` is wrapped to be timed."""
    with patch.dict(os.environ, {"GITHUB_TOKEN": BENCH_TOKEN, "GITHUB_API_URL": standin.url}):
        use_run_client(metered)
        try:
            client = _function_client(str(function_source("github")))
            if meter is not None:
                integration = sys.modules["main"].integration
                object.__setattr__(integration, "report", meter.wrap(integration.report))  # frozen dataclass
            yield client
        finally:
            use_run_client(None)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Send the per-event log lines (and the hello-world's print) to /dev/null, still formatted."""
    with (
        open(os.devnull, "w", encoding="utf-8") as sink,
        contextlib.redirect_stderr(sink),
        contextlib.redirect_stdout(sink),
    ):
        yield


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, p10, p90)."""
    ordered = sorted(values)
    if not ordered:
        return (float("nan"),) * 3

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]

    return at(0.5), at(0.1), at(0.9)


FAILURE_EVENT_PROBE = r"""
import json, sys, time
from datetime import UTC, datetime

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

from common import kube
from common.runclient import RunRef

mode, namespace, name = sys.argv[1:4]
client = kube.connect()
ref = RunRef("PipelineRun", namespace, name)
uid = client.get(ref)["metadata"]["uid"]  # what a first event has built and used already
if mode == "generated":  # before, a first event had loaded the kubernetes client already
    from kubernetes import client as generated, config as generated_config
    configuration = generated.Configuration()
    generated_config.load_kube_config(client_configuration=configuration)
    api = generated.ApiClient(configuration)
before, began = rss(), time.perf_counter()
if mode == "generated":  # how record_event posted before: the generated CoreV1Api, built on first use
    now = datetime.now(UTC).isoformat()
    body = {"apiVersion": "v1", "kind": "Event", "type": "Warning", "reason": "IntegrationFailed",
            "message": "benchmark", "metadata": {"generateName": name + ".", "namespace": namespace},
            "involvedObject": {"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "name": name,
                               "namespace": namespace, "uid": uid},
            "source": {"component": "tekton-integrations"}, "firstTimestamp": now, "lastTimestamp": now,
            "count": 1}
    generated.CoreV1Api(api).create_namespaced_event(namespace, body, _request_timeout=(3, 10))
else:
    client.record_event(ref, uid, "IntegrationFailed", "benchmark")
print(json.dumps([time.perf_counter() - began, rss() - before]))
"""

FAILURE_EVENT_MODES = {
    "plain": "`record_event` now: a plain dict POSTed by `common.kube`'s own client",
    "generated": "before: `CoreV1Api` built on first use, then `create_namespaced_event`",
}


@dataclass
class FailureEvent:
    """The first Kubernetes Event a process posts (a first failure), wall time and RSS it adds."""

    seconds: dict[str, list[float]] = field(default_factory=dict)
    rss_kb: dict[str, list[int]] = field(default_factory=dict)


def failure_event(cluster: Cluster, namespace: str, repeat: int) -> FailureEvent:
    """Each way of posting the first Event, ``repeat`` fresh interpreters each, interleaved."""
    live = cluster.create_run(namespace, workload.run_event(workload.RUNNING, 0, namespace=namespace))
    found = FailureEvent()
    for _ in range(repeat):
        for mode in FAILURE_EVENT_MODES:
            done = subprocess.run(
                [sys.executable, "-c", FAILURE_EVENT_PROBE, mode, namespace, live["metadata"]["name"]],
                capture_output=True,
                text=True,
                cwd=REPO,
                env=child_env({"KUBECONFIG": str(cluster.kubeconfig)}),
                timeout=120,
                check=True,
            )
            seconds, kb = json.loads(done.stdout.strip().splitlines()[-1])
            found.seconds.setdefault(mode, []).append(seconds)
            found.rss_kb.setdefault(mode, []).append(kb)
    return found
