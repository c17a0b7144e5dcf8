"""The GitHub stand-in in a process of its own, so its CPU never counts against the function.

``python -m benchmarks.standin --latency 0.05`` prints the stand-in's URL, then serves on
127.0.0.1 until its stdin closes (so it ends with the benchmark that started it).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from types import TracebackType

from benchmarks.paths import REPO, child_env
from common.standins import github

START_TIMEOUT = 30.0


def github_standin(latency: float = 0.0) -> github.GitHubStandIn:
    """The stand-in with ``TCP_NODELAY`` on its connections.

    Its handler writes the headers and the body of an answer separately; with Nagle's algorithm
    on, the body waits for the client's delayed ACK, about 40 ms per request on keep-alive
    connections, which would swamp every latency figure (proposed as a one-line fix upstream).
    """
    github._Handler.disable_nagle_algorithm = True  # see above
    return github.GitHubStandIn(latency_seconds=latency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds every request waits")
    options = parser.parse_args()
    with github_standin(options.latency) as standin:
        print(standin.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin or exits


class StandInProcess:
    """``with StandInProcess(latency) as url:`` runs ``main`` in a child process."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> str:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.standin", "--latency", str(self.latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=child_env(),
        )
        assert self._process.stdout is not None
        url = self._process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            self._stop()
            raise RuntimeError(f"the GitHub stand-in did not start (said {url!r})")
        return url

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


if __name__ == "__main__":
    main()
