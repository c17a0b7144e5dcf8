"""Markdown for the benchmark results: one section per benchmark and a summary against the targets."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata

from benchmarks import imports
from benchmarks.clients import ClientCost
from benchmarks.coldstart import ColdStart
from benchmarks.cpu import FAILURE_EVENT_MODES, KINDS, CpuResult, FailureEvent, Profile, summary
from benchmarks.installation import Installation
from benchmarks.throughput import Instance

CPU_TARGET_MS = 5.0
CALLS_TARGET = 2
RSS_TARGET = 1.8
"""Worker RSS, x hello (issue 15: after a first real event)."""


@dataclass
class Summary:
    """Rows of the summary table: metric, hello-world, function, target, verdict."""

    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)

    def add(self, metric: str, hello: str, function: str, target: str, met: bool | None) -> None:
        verdict = "" if met is None else ("met" if met else "**missed**")
        self.rows.append((metric, hello, function, target, verdict))

    def markdown(self) -> list[str]:
        return table(["figure", "hello-world", "GitHub function", "target", ""], self.rows)


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def spread_ms(seconds: Sequence[float]) -> str:
    """median (min-max) in milliseconds."""
    return f"{ms(statistics.median(seconds))} ({min(seconds) * 1000:.0f}-{max(seconds) * 1000:.0f})"


def mb(kb: float) -> str:
    return f"{kb / 1024:.1f} MB"


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def machine() -> list[str]:
    cpu = "unknown CPU"
    memory = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                memory = mb(int(line.split()[1]))
                break
    packages = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in (
            "functions-framework",
            "gunicorn",
            "Flask",
            "cloudevents",
            "pydantic",
            "urllib3",
            "kubernetes",
        )
    )
    kernel = platform.release()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return [
        f"- machine: {os.cpu_count()} CPUs ({cpu}), {memory} RAM, Linux {kernel}",
        f"- load average (1, 5, 15 min) at the end: {load}",
        f"- Python {platform.python_version()} ({sys.executable})",
        f"- {packages}",
        f"- commit {commit or 'unknown'} (with the working tree as it was)",
    ]


def import_section(profiles: Sequence[imports.ImportProfile], steps: Sequence[imports.Step]) -> list[str]:
    lines = [
        "### Import cost",
        "",
        "What `functions-framework` imports before it serves the function (`create_app`), median of "
        f"{len(profiles[0].plain)} fresh interpreters. Wall time and RSS from plain runs; the family split "
        "from `python -X importtime` self times (which inflate the total by roughly a third).",
        "",
    ]
    header = ["", *(profile.name for profile in profiles)]
    rows = [
        ["create_app wall time", *(spread_ms([run.load_s for run in p.plain]) for p in profiles)],
        [
            "+ first event builds the Kubernetes client",
            "",
            *(spread_ms([run.kube_s for run in p.plain]) for p in profiles[1:]),
        ],
        [
            "RSS after create_app",
            *(mb(statistics.median(run.rss_kb["loaded"] for run in p.plain)) for p in profiles),
        ],
        [
            "RSS after the Kubernetes client",
            "",
            *(mb(statistics.median(run.rss_kb["kube"] for run in p.plain)) for p in profiles[1:]),
        ],
    ]
    lines += table(header, rows)
    families: dict[str, list[float]] = {}
    per_profile = [profile.family_ms("load") for profile in profiles]
    for index, found in enumerate(per_profile):
        for family, value in found.items():
            families.setdefault(family, [0.0] * len(profiles))[index] = value
    ordered = sorted(families.items(), key=lambda item: max(item[1]), reverse=True)
    lines += [
        "",
        "Import self time by family (`-X importtime`, median ms; a family includes what it imports first):",
        "",
    ]
    rows = [
        [family, *(f"{value:.0f}" if value >= 0.5 else "" for value in values)] for family, values in ordered
    ]
    rows.append(["**total**", *(f"**{sum(found.values()):.0f}**" for found in per_profile)])
    lines += table(["family", *(profile.name for profile in profiles)], rows)
    github = next((profile for profile in profiles if profile.name == "github"), None)
    hello = profiles[0]
    if github is not None:
        baseline = {module.split(".")[0] for module in hello.modules("load")}
        packages = github.package_ms("load")
        extra = sorted(
            ((packages[name], name) for name in {m.split(".")[0] for m in github.modules("load")} - baseline),
            reverse=True,
        )
        listed = ", ".join(f"{name} {value:.0f}" for value, name in extra if value >= 1)
        lines += [
            "",
            f"Top-level packages the GitHub function imports beyond the hello-world (self ms): {listed}.",
        ]
    if steps:
        lines += [
            "",
            "The GitHub function's import path one step at a time (each step adds to the ones above it; "
            f"median (min-max) of {len(steps[0].seconds)} fresh interpreters):",
            "",
        ]
        rows = [[step.name, spread_ms(step.seconds), mb(statistics.median(step.rss_kb))] for step in steps]
        lines += table(["step", "wall time", "RSS added"], rows)
    return lines


def cold_start_section(results: Sequence[ColdStart], summary_: Summary) -> list[str]:
    hello = results[0]
    base = statistics.median(hello.seconds)
    base_rss = statistics.median(hello.rss_kb)
    rows = []
    for result in results:
        median = statistics.median(result.seconds)
        rss = statistics.median(result.rss_kb)
        target = result.case.target
        within = None if target is None else median <= target * base
        rss_within = None if result.case.rss_target is None else rss <= result.case.rss_target * base_rss
        rows.append(
            [
                result.case.name,
                spread_ms(result.seconds),
                ratio(median, base),
                "" if within is None else f"≤ {target}x: " + _verdict(within),
                ", ".join(f"{answer} x{count}" for answer, count in result.answers.items()),
                f"{mb(rss)} ({ratio(rss, base_rss)})"
                + ("" if rss_within is None else f", ≤ {result.case.rss_target}x: " + _verdict(rss_within)),
            ]
        )
        if result.case.summarised:
            summary_.add(
                f"cold start, {result.case.name}",
                ms(base),
                f"{ms(median)} ({ratio(median, base)})",
                "(no target)" if target is None else f"≤ {target}x",
                within,
            )
            if result.case.rss_target is not None or result.case.target is None:
                summary_.add(
                    f"worker RSS after the first answer, {result.case.name}",
                    mb(base_rss),
                    f"{mb(rss)} ({ratio(rss, base_rss)})",
                    "(no target)" if rss_within is None else f"≤ {result.case.rss_target}x",
                    rss_within,
                )
    return [
        "### Cold start",
        "",
        "Process start (`functions-framework ... --signature-type cloudevent`, gunicorn, 1 worker) to the "
        f"first event answered; median (min-max) of {len(hello.seconds)} starts, interleaved, after one "
        "discarded start each. RSS is the worker's right after that first answer.",
        "",
        *table(["case", "process start → first answer", "x hello", "target", "answers", "worker RSS"], rows),
    ]


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def cpu_section(
    hello_ms: Sequence[float], results: Sequence[CpuResult], profile: Profile | None, summary_: Summary
) -> list[str]:
    hello_median, _, _ = summary(hello_ms)
    header = ["event kind", *(f"GitHub, {result.backend}" for result in results), "target"]
    rows = [["hello-world (same test client)", *(f"{hello_median:.2f}" for _ in results), ""]]
    for kind in KINDS:
        cells = []
        for result in results:
            found = result.kinds[kind]
            median, low, high = summary(found.cpu_ms)
            parts = f"kube {summary(found.kube_ms)[0]:.2f} + report {summary(found.report_ms)[0]:.2f}"
            cells.append(f"**{median:.2f}** ({low:.2f}-{high:.2f}; {parts})")
        rows.append([kind, *cells, f"≤ {CPU_TARGET_MS:.0f} ms"])
    main = results[-1]
    for kind in KINDS:
        median, _, _ = summary(main.kinds[kind].cpu_ms)
        summary_.add(
            f"CPU per event, {kind} ({main.backend})",
            f"{hello_median:.2f} ms",
            f"{median:.2f} ms",
            f"≤ {CPU_TARGET_MS:.0f} ms",
            median <= CPU_TARGET_MS,
        )
    counts = len(main.kinds[KINDS[0]].cpu_ms)
    lines = [
        "### CPU per handled event (Python side)",
        "",
        "In-process: the function loaded by `functions_framework.create_app(...).test_client()`, the GitHub "
        "stand-in on loopback; only the handling thread's CPU (`time.thread_time()`), in ms, median "
        f"(p10-p90) of {counts} events per kind after a warm-up. With the in-memory store its own CPU "
        "(deep copies standing in for the API server) is subtracted; with realkube the Kubernetes "
        "client's work counts. In brackets: p10-p90, and the medians spent inside the Kubernetes client "
        "and inside the integration's `report` (the GitHub REST client, the check run's content); the "
        "rest is Flask, "
        "functions-framework, cloudevents and the runtime.",
        "",
        *table(header, rows),
        "",
        "### Kubernetes API requests per handled event",
        "",
    ]
    rows = []
    for kind in KINDS:
        found = main.kinds[kind]
        (calls, _), *_ = found.kube_calls.most_common(1)
        writes = sum(1 for call in calls if call in ("patch", "patch_status"))  # "patch 409": refused
        # Deciding and recording is what the target is about; reading a PipelineRun's TaskRuns is
        # what its report shows (the task table, failed tasks), counted apart.
        content = sum(1 for call in calls if call == "list taskruns")
        requests, counted_by = len(calls) - content, "client"
        if found.server_calls:  # what the API server itself counted (realkube's /metrics): the figure
            (counted, _), *_ = found.server_calls.most_common(1)
            content = sum(1 for call in counted if call.endswith(" taskruns"))
            requests, counted_by = len(counted) - content, "API server"
            writes = sum(1 for call in counted if call in ("PATCH", "PATCH status"))
        server = _server_cell(found.server_calls)
        github_calls = ", ".join(str(n) for n in sorted(found.github_calls))
        rows.append([kind, str(len(calls)), " → ".join(calls) or "none", server, str(writes), github_calls])
        met = requests <= CALLS_TARGET and ("duplicate" not in kind or writes == 0)
        tasks = f" + {content} list of its TaskRuns (the task table)" if content else ""
        summary_.add(
            f"Kubernetes API requests, {kind} (counted by the {counted_by})",
            "0",
            f"{requests} ({writes} {'write' if writes == 1 else 'writes'}){tasks}",
            f"≤ {CALLS_TARGET}" + (", no write" if "duplicate" in kind else ""),
            met,
        )
    first = " → ".join(main.first_in_process)
    lines += table(
        [
            "event kind",
            "requests",
            "as the function made them",
            "as the API server counted them",
            "writes",
            "GitHub calls",
        ],
        rows,
    )
    lines += [
        "",
        "`patch 409`: a conditional write the server refused (the event's resourceVersion is not the run's "
        "any more): nothing is written. The API server's counts are `apiserver_request_total` from its "
        "`/metrics`, read before and after each event (the commonest of up to "
        f"{max((f.server_calls.total() for f in main.kinds.values()), default=0)} events per kind; "
        "Kubernetes 1.20 files a GET of one custom resource under `LIST`, shown here as `GET`).",
        "",
        f"The process's very first reported event: {first} (`status.integrations` is not probed: "
        "`TI_STATUS_INTEGRATIONS=auto` mirrors records there only on runs the server stores with it). "
        "A finished PipelineRun's later state also lists its TaskRuns once, for the task table and its "
        "failed tasks: counted apart from the requests that decide and record (`taskruns` above).",
    ]
    if profile is not None:
        lines += ["", *profile_section(profile)]
    return lines


def failure_event_section(found: FailureEvent, summary_: Summary) -> list[str]:
    """What a process's first Kubernetes Event (its first failure) costs, now and as it was."""
    rows = []
    for mode, description in FAILURE_EVENT_MODES.items():
        seconds, kb = found.seconds[mode], found.rss_kb[mode]
        rows.append([description, spread_ms(seconds), mb(statistics.median(kb))])
    plain, generated = found.seconds["plain"], found.seconds["generated"]
    summary_.add(
        "first failure: the process's first Kubernetes Event (wall time, RSS added)",
        "",
        f"{ms(statistics.median(plain))}, {mb(statistics.median(found.rss_kb['plain']))} "
        f"(with CoreV1Api: {ms(statistics.median(generated))}, "
        f"{mb(statistics.median(found.rss_kb['generated']))})",
        "(no target)",
        None,
    )
    return [
        "### A first failure's Kubernetes Event",
        "",
        "A fresh interpreter connects to realkube and reads a run (what a first event has done), then posts "
        f"its first `IntegrationFailed` Event; median (min-max) of {len(plain)} interpreters per way, "
        "interleaved, and the RSS that Event added.",
        "",
        *table(["how the Event is posted", "wall time", "RSS added"], rows),
    ]


def _server_cell(counted: Counter[tuple[str, ...]]) -> str:
    """The commonest set of requests the API server counted for one event, and how often."""
    if not counted:
        return "(no real API server)"
    (requests, times), *_ = counted.most_common(1)
    return f"{', '.join(requests) or 'none'} ({times} of {counted.total()})"


def profile_section(profile: Profile) -> list[str]:
    totals: dict[str, float] = {}
    for spent in profile.package_s.values():
        for package, seconds in spent.items():
            totals[package] = totals.get(package, 0.0) + seconds
    top = [package for package, _ in sorted(totals.items(), key=lambda item: item[1], reverse=True)[:14]]
    rows = []
    for package in top:
        rows.append(
            [package, *(f"{profile.package_s[kind][package] / profile.events * 1000:.2f}" for kind in KINDS)]
        )
    rows.append(
        [
            "**total (profiled)**",
            *(f"**{sum(profile.package_s[kind].values()) / profile.events * 1000:.2f}**" for kind in KINDS),
        ]
    )
    return [
        f"Where the time goes (cProfile, {profile.backend}, self time in ms per event, socket waits left "
        "out; cProfile's overhead roughly doubles the totals and favours code with many small calls):",
        "",
        *table(["package", *KINDS], rows),
        "",
        "Top functions by self time, all kinds together:",
        "",
        *table(
            ["function", "self ms/event"],
            [
                [f"`{name}`", f"{self_s / profile.events / len(KINDS) * 1000:.3f}"]
                for name, self_s, _ in profile.top
            ],
        ),
    ]


def clients_section(costs: Sequence[ClientCost]) -> list[str]:
    return [
        "CPU per HTTP request of the client libraries, next to plainer clients (same requests, same "
        "servers, calling thread's CPU including the kernel's socket/TLS work, 100 requests after 5):",
        "",
        *table(["request", "CPU ms per request"], [[cost.what, f"{cost.ms:.2f}"] for cost in costs]),
    ]


def throughput_section(instances: Sequence[Instance], threads: int, summary_: Summary) -> list[str]:
    hello = instances[0]
    hello_rate = hello.phases[0].result.rate
    rows = []
    for instance in instances:
        for phase in instance.phases:
            result = phase.result
            statuses = ", ".join(f"{status} x{count}" for status, count in sorted(result.statuses.items()))
            if result.errors:
                statuses += f", errors x{result.errors}"
            rows.append(
                [
                    instance.name,
                    phase.name,
                    str(result.answered),
                    f"{result.seconds:.1f} s",
                    f"{result.rate:.0f}",
                    ratio(result.rate, hello_rate),
                    ms(result.percentile(50)),
                    ms(result.percentile(95)),
                    statuses,
                ]
            )
            if instance.name.startswith("github") and phase.name.startswith("first"):
                summary_.add(
                    f"events/s, {instance.name}, first event of each run",
                    f"{hello_rate:.0f}",
                    f"{result.rate:.0f} (p50 {ms(result.percentile(50))}, p95 {ms(result.percentile(95))})",
                    "(no target)",
                    None,
                )
    return [
        "### Events per second, one instance",
        "",
        f"One gunicorn worker with THREADS={threads}, driven by {threads} loopback client threads with "
        "keep-alive connections (bounded by count and time). The GitHub stand-in runs in its own process. "
        "Latency is per request as the client saw it.",
        "",
        *table(["instance", "load", "events", "time", "events/s", "x hello", "p50", "p95", "answers"], rows),
    ]


def rss_section(instances: Sequence[Instance], summary_: Summary) -> list[str]:
    hello = instances[0]
    rows = []
    for instance in instances:
        net_warm = instance.rss_warm_kb - instance.store_kb
        net_loaded = instance.rss_loaded_kb - instance.store_kb
        within = max(net_warm, net_loaded) <= RSS_TARGET * max(hello.rss_warm_kb, hello.rss_loaded_kb)
        rows.append(
            [
                instance.name,
                mb(instance.rss_warm_kb),
                mb(instance.rss_loaded_kb),
                mb(instance.store_kb) if instance.store_kb else "",
                f"{mb(net_warm)} / {mb(net_loaded)}",
                f"{ratio(net_warm, hello.rss_warm_kb)} / {ratio(net_loaded, hello.rss_loaded_kb)}",
                "" if instance is hello else ("met" if within else "**missed**"),
            ]
        )
        if instance.name.startswith("github") and instance.name.endswith(("0ms", "realkube")):
            summary_.add(
                f"worker RSS after warm-up / load, {instance.name}",
                f"{mb(hello.rss_warm_kb)} / {mb(hello.rss_loaded_kb)}",
                f"{mb(net_warm)} / {mb(net_loaded)}",
                f"≤ {RSS_TARGET}x",
                within,
            )
    return [
        "### Resident memory per instance",
        "",
        "VmRSS of the gunicorn worker (`/proc/<pid>/status`) after the warm-up and after the load above. "
        "The served harness fills its in-memory run store before gunicorn forks, so its size (measured by "
        "the harness) is subtracted; `github-realkube` is the function itself with the Kubernetes client.",
        "",
        *table(
            [
                "instance",
                "after warm-up",
                "after load",
                "run store",
                "net warm / loaded",
                "x hello",
                f"≤ {RSS_TARGET}x",
            ],
            rows,
        ),
    ]


def installation_section(found: Installation, summary_: Summary) -> list[str]:
    """The whole installation's idle RSS, standalone against single-Service."""
    rows = [
        ["hello-world (one Service: the floor)", "1", mb(found.hello.worker), mb(found.hello.pod), "1.00x"]
    ]
    totals: dict[str, tuple[float, float]] = {}
    for label, measured in (("standalone", found.standalone), ("single Service", found.single)):
        worker, pod = Installation.total(measured)
        totals[label] = (worker, pod)
        names = ", ".join(m.process.name for m in measured)
        rows.append(
            [
                f"{label}: {names}",
                str(len(measured)),
                f"**{mb(worker)}**",
                f"**{mb(pod)}**",
                ratio(pod, found.hello.pod),
            ]
        )
    per_service = [
        [m.process.name, mb(m.worker), ratio(m.worker, found.hello.worker), mb(m.pod)]
        for m in [*found.standalone, *found.single[:1]]
    ]
    (apart_worker, apart_pod), (single_worker, single_pod) = totals["standalone"], totals["single Service"]
    summary_.add(
        "installation idle RSS, every integration: workers (pods)",
        f"{mb(found.hello.worker)} ({mb(found.hello.pod)}) for one Service",
        f"standalone {mb(apart_worker)} ({mb(apart_pod)}), "
        f"single Service {mb(single_worker)} ({mb(single_pod)})",
        "(no target)",
        None,
    )
    return [
        "### A whole installation at rest",
        "",
        "Every installed integration, deployed standalone (a Service each) or as the single Service "
        "(`common/all.py`), each with the dead-letter receiver. Each Service's process pair (gunicorn "
        "master and its one worker) is started and answers one ignored event (a dead letter about such a "
        f"run for the receiver); median of {len(found.hello.worker_kb)} starts. Workers: the sum of their "
        "VmRSS. Pods: each master's VmRSS plus its worker's private memory (what the pod holds; the "
        "worker shares the master's untouched pages). Knative adds a queue-proxy container per pod, "
        "not counted here.",
        "",
        *table(["deployment", "Services", "workers (sum of RSS)", "pods", "pods x one hello-world"], rows),
        "",
        f"The single Service holds {ratio(single_worker, apart_worker)} of standalone's worker memory "
        f"({mb(apart_worker - single_worker)} less) and {ratio(single_pod, apart_pod)} of its pod memory "
        f"({mb(apart_pod - single_pod)} less). Per Service:",
        "",
        *table(["Service", "worker RSS", "x hello", "pod"], per_service),
    ]
