"""Run the benchmarks and print the results as markdown: ``python -m benchmarks.run``.

Every figure is taken next to a functions-framework hello-world in the same run. Benchmarks:
``imports`` (import cost), ``cold-start`` (process start to the first answered event), ``cpu``
(CPU and Kubernetes API calls per event kind, with a profile), ``throughput`` (events per second
and RSS of one instance), ``installation`` (a whole installation's idle RSS, standalone against
the single Service). Choose some with ``--only`` (repeatable, or comma-separated). The whole run
is bounded: every load is capped in count and time, every process is stopped at the end. Progress
goes to stderr, the markdown to stdout. realkube (``../shared/realkube``) is used when it is built;
without it, the figures that need a real API server are left out and say so.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from benchmarks import clients, coldstart, cpu, imports, installation, realkube, report, throughput
from benchmarks.coldstart import Case
from benchmarks.paths import BENCH_TOKEN, HELLO, REPO, dummy_kubeconfig, function_source
from benchmarks.standin import StandInProcess, github_standin
from benchmarks.workload import IGNORED, RUNNING, request_of, run_event
from common import samples

BENCHMARKS = ("imports", "cold-start", "cpu", "throughput", "installation")
IGNORED_TARGET = 1.5
"""Cold start of a run the function ignores, x hello (issue 15)."""
FIRST_EVENT_TARGET = 2.0
"""Cold start of a first real event (realkube and a check run), x hello."""
FIRST_EVENT_RSS_TARGET = 1.8
"""Worker RSS after a first real event, x hello."""
SINGLE_SOURCE = REPO / "common" / "all.py"
OTHER_FUNCTIONS = ("slack", "webhook")
"""Measured beside the GitHub function (imports, cold start) when they exist and load."""


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        action="append",
        type=_benchmarks,
        metavar="|".join(BENCHMARKS),
        help="run only these benchmarks (repeatable, or comma-separated: --only imports,cold-start)",
    )
    parser.add_argument(
        "--repeat", type=int, default=10, help="fresh processes per cold-start case (default 10)"
    )
    parser.add_argument("--threads", type=int, default=8, help="gunicorn THREADS for the served instance")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and events: a smoke run")
    parser.add_argument("--no-realkube", action="store_true", help="do not use or start realkube")
    parser.add_argument(
        "--functions",
        default=",".join(OTHER_FUNCTIONS),
        help="other functions to measure in imports and cold start, if they load (default: slack,webhook)",
    )
    parser.add_argument("--logs", type=Path, help="where server logs go (default: a temporary directory)")
    return parser.parse_args(argv)


def _benchmarks(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{value!r}: choose from {', '.join(BENCHMARKS)}")
    return names


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def loadable(names: str, kubeconfig: Path) -> list[str]:
    """The other functions that exist and load, in order; the others are reported as skipped."""
    found = []
    for name in filter(None, (part.strip() for part in names.split(","))):
        source = function_source(name)
        if not source.exists():
            progress(f"skipping {name}: {source} does not exist")
            continue
        try:
            imports.probe(source, kubeconfig, importtime=False)
        except RuntimeError as e:
            progress(f"skipping {name}: it does not load ({str(e).splitlines()[-1]})")
            continue
        found.append(name)
    return found


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    selected = [name for names in options.only for name in names] if options.only else list(BENCHMARKS)
    repeat = 3 if options.quick else options.repeat
    logs = options.logs or Path(tempfile.mkdtemp(prefix="ti-benchmarks-"))
    logs.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    cluster: realkube.Cluster | None = None
    why = "--no-realkube"
    if not options.no_realkube and {"cold-start", "cpu", "throughput"} & set(selected):
        cluster, why = realkube.connect()
        progress(f"Kubernetes: {why}")
    dummy = dummy_kubeconfig(logs)
    others = loadable(options.functions, dummy) if {"imports", "cold-start"} & set(selected) else []
    summary = report.Summary()
    sections: list[list[str]] = []

    if "imports" in selected:
        names = [("hello", HELLO), ("github", function_source("github"))]
        names += [(name, function_source(name)) for name in others]
        profiles = imports.profile(names, max(3, repeat // 2), dummy)
        steps = imports.steps(HELLO, max(3, repeat // 2), dummy)
        sections.append(report.import_section(profiles, steps))
        progress("imports done")

    if "cold-start" in selected:
        sections.append(
            cold_start(cluster, why, others=others, repeat=repeat, logs=logs, dummy=dummy, summary=summary)
        )

    if "cpu" in selected:
        sections.append(cpu_benchmark(cluster, why, quick=options.quick, summary=summary))

    if "installation" in selected:
        found = installation.measure(dummy, max(3, repeat // 3), logs, progress)
        sections.append(report.installation_section(found, summary))

    if "throughput" in selected:
        sections.append(
            throughput_benchmark(
                cluster, why, options.threads, quick=options.quick, logs=logs, summary=summary
            )
        )

    command = " ".join(["python -m benchmarks.run", *(argv or sys.argv[1:])])
    print(f"## Results ({time.strftime('%Y-%m-%d')}, `{command}`)")
    print()
    print("\n".join(report.machine()))
    print(f"- Kubernetes for the figures that need it: {why}")
    print(f"- benchmark wall time: {time.perf_counter() - began:.0f} s; server logs in {logs}")
    print()
    if summary.rows:
        print("### Summary")
        print()
        print("\n".join(summary.markdown()))
        print()
    for section in sections:
        print("\n".join(section))
        print()
    return 0


def cold_start(
    cluster: realkube.Cluster | None,
    why: str,
    *,
    others: list[str],
    repeat: int,
    logs: Path,
    dummy: Path,
    summary: report.Summary,
) -> list[str]:
    ignored = request_of(run_event(IGNORED, 0))
    with ExitStack() as stack:
        url = stack.enter_context(StandInProcess(0.0))
        github_env = {"GITHUB_TOKEN": BENCH_TOKEN, "GITHUB_API_URL": url}
        cases = [
            Case("hello", HELLO, {}, lambda n: request_of(run_event(RUNNING, n)), "OK"),
            Case(
                "github, ignored run (no API call)",
                function_source("github"),
                {"KUBECONFIG": str(dummy), **github_env},
                lambda _: ignored,
                "ignored",
                target=IGNORED_TARGET,
                summarised=True,
            ),
        ]
        if cluster is not None:
            namespace = stack.enter_context(cluster.namespace())
            cases.append(
                Case(
                    "github, first event of a run (realkube + check run)",
                    function_source("github"),
                    {"KUBECONFIG": str(cluster.kubeconfig), **github_env},
                    _fresh_run(cluster, namespace),
                    "reported",
                    target=FIRST_EVENT_TARGET,
                    rss_target=FIRST_EVENT_RSS_TARGET,
                    summarised=True,
                )
            )
        cases += [
            Case(
                f"{name}, ignored run (no API call)",
                function_source(name),
                {"KUBECONFIG": str(dummy)},
                lambda _: ignored,
                "ignored",
                target=IGNORED_TARGET,
            )
            for name in others
        ]
        cases.append(
            Case(
                "single Service (every integration), ignored run",
                SINGLE_SOURCE,
                {"KUBECONFIG": str(dummy), **github_env},
                lambda _: ignored,
                "ignored",
                summarised=True,
            )
        )
        if cluster is not None:
            cases.append(
                Case(
                    "single Service (every integration), first event of a run for GitHub (realkube)",
                    SINGLE_SOURCE,
                    {"KUBECONFIG": str(cluster.kubeconfig), **github_env},
                    _fresh_run(cluster, namespace, only="github"),
                    "reported",
                    summarised=True,
                )
            )
        results = coldstart.measure(cases, repeat, logs, progress)
    lines = report.cold_start_section(results, summary)
    if cluster is None:
        lines += ["", f"The case that needs Kubernetes was skipped: {why}."]
    return lines


def _fresh_run(
    cluster: realkube.Cluster, namespace: str, *, only: str | None = None
) -> Callable[[int], tuple[dict[str, str], bytes]]:
    """A new run for each attempt (its first event); ``only``: it opts into that integration only."""
    start = 1000 if only else 0  # distinct runs for each case

    def make(index: int) -> tuple[dict[str, str], bytes]:
        event = run_event(RUNNING, start + index, namespace=namespace)
        if only is not None:
            _, run = samples.run_object(event)
            prefix = f"{only}.integrations.tekton.dev/"
            annotations = run["metadata"]["annotations"]
            run["metadata"]["annotations"] = {k: v for k, v in annotations.items() if k.startswith(prefix)}
        return request_of(samples.addressed_to(dict(event), cluster.create_run(namespace, event)))

    return make


def cpu_benchmark(
    cluster: realkube.Cluster | None, why: str, *, quick: bool, summary: report.Summary
) -> list[str]:
    with github_standin() as standin, ExitStack() as stack:
        hello = cpu.hello_cpu(50 if quick else 200)
        results = [cpu.measure(cpu.MemoryBackend(), standin, warmup=5, count=30 if quick else 100)]
        progress("cpu: in-memory store done")
        profile_backend: cpu.Backend = cpu.MemoryBackend()
        if cluster is not None:
            namespace = stack.enter_context(cluster.namespace())
            results.append(
                cpu.measure(
                    cpu.RealkubeBackend(cluster, namespace), standin, warmup=3, count=10 if quick else 30
                )
            )
            progress("cpu: realkube done")
            profile_backend = cpu.RealkubeBackend(cluster, stack.enter_context(cluster.namespace()))
        profile = cpu.profile(profile_backend, standin, warmup=3, count=10 if quick else 30)
        progress("cpu: profile done")
        costs = clients.github(standin, 30 if quick else 100)
        failure_event = None
        if cluster is not None:
            costs += clients.kubernetes(
                cluster, stack.enter_context(cluster.namespace()), 30 if quick else 100
            )
            failure_event = cpu.failure_event(
                cluster, stack.enter_context(cluster.namespace()), 3 if quick else 5
            )
        progress("cpu: client costs and the first failure's Event done")
    lines = report.cpu_section(hello, results, profile, summary)
    lines += ["", *report.clients_section(costs)]
    if failure_event is not None:
        lines += ["", *report.failure_event_section(failure_event, summary)]
    if cluster is None:
        lines += ["", f"The realkube column was skipped: {why}."]
    return lines


def throughput_benchmark(
    cluster: realkube.Cluster | None,
    why: str,
    threads: int,
    *,
    quick: bool,
    logs: Path,
    summary: report.Summary,
) -> list[str]:
    def events(latency: float | None) -> int:
        if latency is None:
            return 1000 if quick else 4000
        if latency == 0:
            return 300 if quick else 1500
        return 200 if quick else 800

    time_limit = 5.0 if quick else 15.0
    instances = throughput.measure(
        threads=threads,
        latencies=(0.0, 0.05),
        events=events,
        time_limit=time_limit,
        logs=logs,
        progress=progress,
    )
    if cluster is not None:
        instances.append(
            throughput.on_realkube(
                cluster,
                threads=threads,
                count=100 if quick else 300,
                time_limit=time_limit,
                logs=logs,
                progress=progress,
            )
        )
    lines = report.throughput_section(instances, threads, summary)
    lines += ["", *report.rss_section(instances, summary)]
    if cluster is None:
        lines += ["", f"The realkube instance was skipped: {why}."]
    return lines


if __name__ == "__main__":
    sys.exit(main())
