"""Compare the GitHub function's cold start and worker RSS across source trees, in one run.

For checking a proposed change before it lands: copy the checkout, apply the change, and run
``python -m benchmarks.compare /tmp/copy-with-change [...]``. Each tree (the current one first) is
served with ``PYTHONPATH`` pointing at it, interleaved with the hello-world, for an ignored run and
(with realkube) the first event of a run; the markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from benchmarks import coldstart, realkube, report
from benchmarks.coldstart import Case
from benchmarks.paths import BENCH_TOKEN, HELLO, REPO, dummy_kubeconfig
from benchmarks.run import progress
from benchmarks.standin import StandInProcess
from benchmarks.workload import IGNORED, RUNNING, Request, request_of, run_event
from common import samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("trees", nargs="+", type=Path, help="source trees with common/ and functions/")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--no-realkube", action="store_true")
    options = parser.parse_args(argv)
    logs = Path(tempfile.mkdtemp(prefix="ti-compare-"))
    dummy = dummy_kubeconfig(logs)
    cluster, why = (None, "--no-realkube") if options.no_realkube else realkube.connect()
    ignored = request_of(run_event(IGNORED, 0))
    trees = [("current", REPO), *((tree.name, tree.resolve()) for tree in options.trees)]
    with ExitStack() as stack:
        url = stack.enter_context(StandInProcess(0.0))
        cases = [Case("hello", HELLO, {}, lambda n: request_of(run_event(RUNNING, n)), "OK")]
        fresh = None
        if cluster is not None:
            namespace = stack.enter_context(cluster.namespace())
            numbers = itertools.count()

            def fresh(_: int) -> Request:
                event = run_event(RUNNING, next(numbers), namespace=namespace)
                return request_of(samples.addressed_to(dict(event), cluster.create_run(namespace, event)))

        for label, root in trees:
            env = {"PYTHONPATH": str(root), "GITHUB_TOKEN": BENCH_TOKEN, "GITHUB_API_URL": url}
            source = root / "functions" / "github" / "main.py"
            cases.append(
                Case(
                    f"{label}: ignored run",
                    source,
                    {**env, "KUBECONFIG": str(dummy)},
                    lambda _: ignored,
                    "ignored",
                )
            )
            if cluster is not None and fresh is not None:
                kube_env = {**env, "KUBECONFIG": str(cluster.kubeconfig)}
                cases.append(Case(f"{label}: first event of a run", source, kube_env, fresh, "reported"))
        results = coldstart.measure(cases, options.repeat, logs, progress)
    base = statistics.median(results[0].seconds)
    rows = [
        [
            result.case.name,
            report.spread_ms(result.seconds),
            report.ratio(statistics.median(result.seconds), base),
            report.mb(statistics.median(result.rss_kb)),
        ]
        for result in results
    ]
    print("\n".join(report.table(["case", "start → first answer", "x hello", "worker RSS"], rows)))
    if cluster is None:
        print(f"\nThe first-event cases were skipped: {why}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
