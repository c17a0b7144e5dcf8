"""Markdown for the benchmark results: one section per benchmark and a summary against the targets."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata

from benchmarks import imports
from benchmarks.clients import ClientCost
from benchmarks.coldstart import ColdStart
from benchmarks.cpu import KINDS, CpuResult, Profile, summary
from benchmarks.throughput import Instance

COLD_START_TARGET = 1.5
CPU_TARGET_MS = 5.0
CALLS_TARGET = 2
RSS_TARGET = 1.3


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
            "PyGithub",
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
    rows = []
    for result in results:
        median = statistics.median(result.seconds)
        within = median <= COLD_START_TARGET * base
        rows.append(
            [
                result.case.name,
                spread_ms(result.seconds),
                ratio(median, base),
                "" if result is hello else ("met" if within else "**missed**"),
                ", ".join(f"{answer} x{count}" for answer, count in result.answers.items()),
                mb(statistics.median(result.rss_kb)),
            ]
        )
        if result.case.name.startswith("github"):
            summary_.add(
                f"cold start, {result.case.name}",
                ms(base),
                f"{ms(median)} ({ratio(median, base)})",
                f"≤ {COLD_START_TARGET}x",
                within,
            )
    return [
        "### Cold start",
        "",
        "Process start (`functions-framework ... --signature-type cloudevent`, gunicorn, 1 worker) to the "
        f"first event answered; median (min-max) of {len(hello.seconds)} starts, interleaved, after one "
        "discarded start each. RSS is the worker's right after that first answer.",
        "",
        *table(["case", "process start → first answer", "x hello", "≤ 1.5x", "answers", "worker RSS"], rows),
    ]


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
        "and inside the integration's `report` (PyGithub, requests); the rest is Flask, "
        "functions-framework, cloudevents and the runtime.",
        "",
        *table(header, rows),
        "",
        "### Kubernetes API calls per handled event",
        "",
    ]
    rows = []
    for kind in KINDS:
        found = main.kinds[kind]
        (calls, _), *_ = found.kube_calls.most_common(1)
        writes = sum(1 for call in calls if call != "get")
        github_calls = ", ".join(str(n) for n in sorted(found.github_calls))
        rows.append([kind, str(len(calls)), " → ".join(calls) or "none", str(writes), github_calls])
        met = len(calls) <= CALLS_TARGET and (kind != KINDS[2] or writes == 0)
        summary_.add(f"Kubernetes calls, {kind}", "0", str(len(calls)), f"≤ {CALLS_TARGET}", met)
    first = " → ".join(main.first_in_process)
    lines += table(["event kind", "calls", "requests", "writes", "GitHub calls"], rows)
    lines += [
        "",
        f"The process's first reported event also probes `status.integrations` once per kind: {first}.",
    ]
    if profile is not None:
        lines += ["", *profile_section(profile)]
    return lines


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
                "≤ 1.3x",
            ],
            rows,
        ),
    ]
