"""Run Stoplight Prism against GitHub's OpenAPI description, for the conformance tier.

Owns: finding the Prism CLI and the spec that ``scripts/install-test-tools`` puts in
``tests/conformance/node_modules``, starting Prism on a free loopback port, waiting until it
answers, reading the violations it logs, and stopping it. Does not install anything.

Prism runs as ``prism proxy --errors <spec> <upstream>`` in front of the loopback GitHub stand-in
(``common.standins.github``), so a request is checked against GitHub's description and then
answered by a recording fake. What Prism does with what it finds:

- an invalid request (wrong enum value, missing required property, wrong type) is refused with
  422 ``application/problem+json`` whose ``validation`` lists the problems; it never reaches
  the stand-in;
- a path the description does not have is refused with 404 (``NO_PATH_MATCHED_ERROR``);
- an upstream answer whose body breaks the response schema becomes 500 (``VIOLATIONS``);
- an upstream status the description does not list (the stand-in's scripted 503s, 429s...)
  passes through with a warning in the ``sl-violations`` response header.

Each of these is also logged; :meth:`Prism.violations` reads them back from the log.

Why this spec file: ``@octokit/openapi`` ships JSON only. ``api.github.com.json`` (13 MB, with
``$ref``s) starts in about 8-10 s and peaks near 300-350 MiB on a 2-core machine; the 73 MB
``.deref`` variant is no faster and needs about 500 MiB. Set ``TI_PRISM_GITHUB_SPEC=ghes-3.19``
(or another ``ghes-*``) to check against an Enterprise Server description instead; the ``ghec``
files point at a YAML file the package does not ship, so Prism cannot load them.

Prism matches paths literally and ignores the description's ``servers``, so an Enterprise
``/api/v3`` prefix is never stripped, even with the ``ghes-*`` files: talk to Prism without the
prefix (the stand-in's own tests cover the prefix). GitHub's description declares no
``security``, so Prism checks no Authorization header: the stand-in does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

from common.standins.github import GitHubStandIn, JsonObject, RecordedCall

CONFORMANCE_DIR: Final = Path(__file__).resolve().parent
NODE_MODULES: Final = CONFORMANCE_DIR / "node_modules"
PRISM_PACKAGE: Final = NODE_MODULES / "@stoplight" / "prism-cli"
PRISM_ENTRY: Final = PRISM_PACKAGE / "dist" / "index.js"
SPEC_PACKAGE: Final = NODE_MODULES / "@octokit" / "openapi"
DEFAULT_SPEC: Final = "api.github.com"
MIN_NODE: Final = (18, 20, 1)  # @stoplight/prism-cli 5.14.2's "engines"; 5.15+ wants Node 24
SYNC_PATH: Final = "/__prism_log_sync"
INSTALL_HINT: Final = "run scripts/install-test-tools (it runs `npm ci --prefix tests/conformance`)"

_REQUEST_LINE: Final = re.compile(
    r"\[HTTP SERVER\] (?P<method>[a-z]+) (?P<path>\S+) .*?"
    r"(?:(?P<received>Request received)|Request terminated with error: (?P<error>.*))$"
)
_VIOLATION_LINE: Final = re.compile(
    r"\[VALIDATOR\]\s+\S+\s+(?P<severity>error|warning|info)\s+Violation: (?P<message>.*)$"
)
_PROBLEM_CODE: Final = re.compile(r"https://stoplight\.io/prism/errors#(?P<code>[A-Z_]+): (?P<title>.*)")


@dataclass(frozen=True)
class Violation:
    """One problem Prism logged, attributed to the request it was handling."""

    method: str
    path: str
    severity: str
    """``"error"`` (refused or turned into an error answer) or ``"warning"`` (passed through)."""
    code: str
    """Prism's problem code (``UNPROCESSABLE_ENTITY``, ``NO_PATH_MATCHED_ERROR``,
    ``VIOLATIONS``) or ``VIOLATION`` for a single logged schema finding."""
    message: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}: [{self.severity} {self.code}] {self.message}"


def pinned_versions() -> dict[str, str]:
    """The exact versions ``tests/conformance/package.json`` pins, by package name."""
    manifest = json.loads((CONFORMANCE_DIR / "package.json").read_text())
    return dict(manifest["dependencies"])


def spec_path(name: str | None = None) -> Path:
    """The description file for ``name`` (default ``TI_PRISM_GITHUB_SPEC`` or api.github.com)."""
    chosen = name or os.environ.get("TI_PRISM_GITHUB_SPEC") or DEFAULT_SPEC
    return SPEC_PACKAGE / "generated" / f"{chosen}.json"


def _installed_version(package: Path) -> str | None:
    try:
        version = json.loads((package / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return str(version)


def missing_tools(spec: Path | None = None) -> str | None:
    """Why Prism cannot run here (a sentence that says how to fix it), or None when it can."""
    node = shutil.which("node")
    if node is None:
        return f"node is not installed (Node.js >= 18.20.1 is needed); then {INSTALL_HINT}"
    done = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    found = tuple(int(part) for part in re.findall(r"\d+", done.stdout)[:3])
    if done.returncode != 0 or found < MIN_NODE:
        return f"node {done.stdout.strip() or '?'} is too old for Prism (>= 18.20.1 is needed)"
    pins = pinned_versions()
    for name, package in (("@stoplight/prism-cli", PRISM_PACKAGE), ("@octokit/openapi", SPEC_PACKAGE)):
        installed = _installed_version(package)
        if installed is None:
            return f"{name} is not installed in tests/conformance/node_modules: {INSTALL_HINT}"
        if installed != pins[name]:
            return f"{name} {installed} is installed but {pins[name]} is pinned: {INSTALL_HINT}"
    chosen = spec or spec_path()
    if not chosen.is_file():
        return f"no OpenAPI description at {chosen} (check TI_PRISM_GITHUB_SPEC)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrismError(RuntimeError):
    """Prism did not start, or stopped answering."""


class _LogPump:
    """Copies Prism's output to its log file as it comes, and lets a caller wait for a line.

    Waiting is on a condition the reader thread signals after each line, so nothing polls.
    """

    def __init__(self, stream: IO[bytes], path: Path) -> None:
        self.closed = False
        self._text: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._copy, args=(stream, path), daemon=True)
        self._thread.start()

    def _copy(self, stream: IO[bytes], path: Path) -> None:
        with stream, path.open("ab") as log:
            for line in stream:
                log.write(line)
                log.flush()
                with self._changed:
                    self._text.append(line.decode("utf-8", errors="replace"))
                    self._changed.notify_all()
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def wait_for(self, seen: Callable[[str], bool], timeout: float) -> bool:
        """Whether a line for which ``seen`` holds arrived (False if the output ended first)."""
        with self._changed:
            lines_seen = 0

            def ready() -> bool:
                nonlocal lines_seen
                found = any(seen(line) for line in self._text[lines_seen:])
                lines_seen = len(self._text)
                return found or self.closed

            self._changed.wait_for(ready, timeout)
            return any(seen(line) for line in self._text)

    def join(self) -> None:
        self._thread.join(timeout=10)


class Prism:
    """``prism proxy --errors`` (or ``prism mock --errors`` without ``upstream``) on loopback.

    Logs go to a file at the default ``info`` level, which never prints headers (``debug``
    would print Authorization values).
    """

    def __init__(
        self,
        spec: Path,
        *,
        upstream: str | None = None,
        startup_timeout: float = 180.0,
        log_dir: Path | None = None,
    ) -> None:
        self.spec = spec
        self.upstream = upstream
        self.startup_timeout = startup_timeout
        self.port = 0
        self.startup_seconds = 0.0
        self._log_dir = log_dir
        self._own_log_dir: tempfile.TemporaryDirectory[str] | None = None
        self.log_path = Path()
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._syncs = 0
        self._pump: _LogPump | None = None

    @property
    def url(self) -> str:
        if not self.port:
            raise PrismError("Prism is not running")
        return f"http://127.0.0.1:{self.port}"

    def command(self, port: int) -> list[str]:
        node = shutil.which("node")
        if node is None:
            raise PrismError("node is not installed")
        mode = "proxy" if self.upstream else "mock"
        targets = [str(self.spec), *([self.upstream] if self.upstream else [])]
        options = ["--host", "127.0.0.1", "--port", str(port), "--errors"]
        return [node, str(PRISM_ENTRY), mode, *options, *targets]

    def start(self) -> Self:
        if self._process is not None:
            raise PrismError("Prism is already running")
        if self._log_dir is None:
            self._own_log_dir = tempfile.TemporaryDirectory(prefix="prism-")
            log_dir = Path(self._own_log_dir.name)
        else:
            log_dir = self._log_dir
        self.log_path = log_dir / "prism.log"
        began = time.monotonic()
        for _attempt in range(3):  # a port taken between free_port() and Prism's bind: retry
            port = free_port()
            self._process = subprocess.Popen(
                self.command(port),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"},
            )
            assert self._process.stdout is not None
            self._pump = _LogPump(self._process.stdout, self.log_path)
            if self._wait_until_listening(port, began):
                break
            if "EADDRINUSE" not in self.log_text():
                tail = self.log_tail()
                self.stop()
                raise PrismError(f"Prism exited while starting:\n{tail}")
            self._process = None
        else:
            tail = self.log_tail()
            self.stop()
            raise PrismError(f"Prism could not bind a port:\n{tail}")
        self.port = port
        self.startup_seconds = time.monotonic() - began
        self._log_offset = self.log_path.stat().st_size
        return self

    def _wait_until_listening(self, port: int, began: float) -> bool:
        """Wait for Prism's "listening" line (True) or its exit (False); raise on timeout.

        Prism binds its port only after it has read and indexed the whole description, and says
        so in its log, which is read as it is written: no polling.
        """
        pump = self._pump
        assert pump is not None
        remaining = self.startup_timeout - (time.monotonic() - began)
        if not pump.wait_for(lambda text: f":{port}" in text and "listening" in text.lower(), remaining):
            if pump.closed:
                return False
            tail = self.log_tail()
            self.stop()
            raise PrismError(f"Prism did not listen within {self.startup_timeout:.0f}s:\n{tail}")
        return True

    def stop(self) -> None:
        process, self._process = self._process, None
        self.port = 0
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._pump is not None:
            self._pump.join()
            self._pump = None
        if self._own_log_dir is not None:
            self._own_log_dir.cleanup()
            self._own_log_dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def peak_memory_kib(self) -> int | None:
        """Prism's peak resident memory (Linux ``VmHWM``), or None where that is unknown."""
        if self._process is None:
            return None
        try:
            status = Path(f"/proc/{self._process.pid}/status").read_text()
        except OSError:
            return None
        found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        return int(found.group(1)) if found else None

    # -- the log -------------------------------------------------------------------------------

    def log_text(self, *, since_mark: bool = False) -> str:
        try:
            with self.log_path.open("rb") as log:
                if since_mark:
                    log.seek(self._log_offset)
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def mark(self) -> None:
        """Make :meth:`violations` report only what Prism logs from now on."""
        if self.port:
            self.sync()
        self._log_offset = self.log_path.stat().st_size if self.log_path.is_file() else 0

    def sync(self, timeout: float = 10.0) -> None:
        """Wait until Prism has logged everything about the requests already answered.

        Prism writes a request's log lines just after it answers, so a test that reads the log
        right after its response could miss them. This sends a probe for a path no description
        has and waits for the probe's own log line: one log stream keeps its order.
        """
        self._syncs += 1
        probe = f"{SYNC_PATH}/{self._syncs}"
        try:
            with urllib.request.urlopen(self.url + probe, timeout=timeout):
                pass
        except urllib.error.HTTPError as answer:
            answer.close()  # 404 NO_PATH_MATCHED_ERROR, as intended
        assert self._pump is not None
        if not self._pump.wait_for(lambda text: f" {probe} " in text, timeout):
            raise PrismError(f"Prism did not log the probe {probe} within {timeout}s")

    def violations(self) -> list[Violation]:
        """Problems Prism logged since the last :meth:`mark` (or since it became ready).

        Prism logs each request's method and path before its findings, so findings are
        attributed to the request logged just before them: exact while requests are sequential.
        """
        self.sync()
        found: list[Violation] = []
        method = path = "?"
        for line in self.log_text(since_mark=True).splitlines():
            request = _REQUEST_LINE.search(line)
            if request is not None:
                method, path = request["method"].upper(), request["path"]
                if path.startswith(SYNC_PATH + "/"):
                    continue
                if request["error"] is not None:
                    problem = _PROBLEM_CODE.search(request["error"])
                    code, title = (
                        (problem["code"], problem["title"]) if problem else ("ERROR", request["error"])
                    )
                    found.append(Violation(method, path, "error", code, title))
                continue
            violation = _VIOLATION_LINE.search(line)
            if violation is not None:
                found.append(
                    Violation(method, path, violation["severity"], "VIOLATION", violation["message"])
                )
        return found


class PrismGitHub:
    """Prism in front of the GitHub stand-in: what the ``prism_github`` fixture yields.

    Point PyGithub at :attr:`url` (``Github(base_url=prism_github.url, ...)``). Requests that
    pass validation reach :attr:`standin`, whose recorded calls and state are exposed here too.
    """

    def __init__(self, prism: Prism, standin: GitHubStandIn) -> None:
        self.prism = prism
        self.standin = standin

    @property
    def url(self) -> str:
        """Prism's base URL: GitHub.com style, no ``/api/v3``."""
        return self.prism.url

    @property
    def calls(self) -> list[RecordedCall]:
        """Requests that passed Prism and reached the stand-in (a copy)."""
        return self.standin.calls_to()

    @property
    def check_runs(self) -> dict[int, JsonObject]:
        return self.standin.check_runs

    @property
    def statuses(self) -> list[JsonObject]:
        return self.standin.statuses

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        headers: dict[str, str] | None = None,
        body: JsonObject | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Script a fault in the stand-in; Prism passes it through with a warning."""
        self.standin.fail_next(status, count=count, headers=headers, body=body, method=method, path=path)

    def violations(self) -> list[Violation]:
        """Everything Prism logged since the last :meth:`reset` or :meth:`take_violations`."""
        return self.prism.violations()

    def errors(self) -> list[Violation]:
        """Only the violations that Prism turned into an error answer."""
        return [found for found in self.violations() if found.severity == "error"]

    def take_violations(self) -> list[Violation]:
        """Return the violations so far and start afresh (for tests that provoke them)."""
        found = self.violations()
        self.prism.mark()
        return found

    def reset(self) -> None:
        """Forget the stand-in's calls, state and faults, and the violations so far."""
        self.standin.reset()
        self.prism.mark()
