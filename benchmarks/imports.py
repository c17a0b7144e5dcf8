"""Import cost of each function: what ``functions-framework`` imports before it can serve it.

A fresh interpreter does what the CLI does before gunicorn starts (``create_app`` with the
function's source), then what the first event adds, since the runtime builds its Kubernetes client
lazily: ``common.kube.connect()`` (from a kubeconfig that is never contacted). Each run is done
twice: once plain, for wall time and resident memory, and once under ``python -X importtime``,
whose self times are summed per *family*: a third-party package and everything it pulls in first
(``jwt`` and ``cryptography`` count under PyGithub; the stdlib modules ``werkzeug`` imports count
under Flask).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.paths import REPO, child_env

PHASE_MARK = "import time: @phase "

PROBE = r"""
import json, sys, time

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

marks = {"interpreter": rss()}
sys.stderr.write("import time: @phase load\n")
began = time.perf_counter()
import functions_framework
app = functions_framework.create_app(target="handle", source=sys.argv[1], signature_type="cloudevent")
loaded = time.perf_counter()
marks["loaded"] = rss()
sys.stderr.write("import time: @phase first-event\n")
import common.kube
common.kube.connect()
done = time.perf_counter()
marks["kube"] = rss()
print(json.dumps({"load_s": loaded - began, "kube_s": done - loaded, "rss_kb": marks}))
"""

FAMILIES: dict[str, str] = {
    "functions_framework": "functions-framework",
    "flask": "Flask (+werkzeug, jinja2, click)",
    "werkzeug": "Flask (+werkzeug, jinja2, click)",
    "jinja2": "Flask (+werkzeug, jinja2, click)",
    "markupsafe": "Flask (+werkzeug, jinja2, click)",
    "itsdangerous": "Flask (+werkzeug, jinja2, click)",
    "blinker": "Flask (+werkzeug, jinja2, click)",
    "click": "Flask (+werkzeug, jinja2, click)",
    "cloudevents": "cloudevents",
    "deprecation": "cloudevents",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "annotated_types": "pydantic",
    "typing_inspection": "pydantic",
    "github": "PyGithub (+jwt, cryptography, nacl)",
    "jwt": "PyGithub (+jwt, cryptography, nacl)",
    "cryptography": "PyGithub (+jwt, cryptography, nacl)",
    "nacl": "PyGithub (+jwt, cryptography, nacl)",
    "cffi": "PyGithub (+jwt, cryptography, nacl)",
    "_cffi_backend": "PyGithub (+jwt, cryptography, nacl)",
    "deprecated": "PyGithub (+jwt, cryptography, nacl)",
    "wrapt": "PyGithub (+jwt, cryptography, nacl)",
    "requests": "requests (+urllib3, charset_normalizer)",
    "urllib3": "requests (+urllib3, charset_normalizer)",
    "charset_normalizer": "requests (+urllib3, charset_normalizer)",
    "idna": "requests (+urllib3, charset_normalizer)",
    "certifi": "requests (+urllib3, charset_normalizer)",
    "kubernetes": "kubernetes",
    "slack_sdk": "slack_sdk",
    "gitlab": "python-gitlab",
    "yaml": "PyYAML",
    "prometheus_client": "prometheus_client",
    "opentelemetry": "OpenTelemetry (+protobuf)",
    "common": "project code (common, functions)",
    "functions": "project code (common, functions)",
    "benchmarks": "project code (common, functions)",
}
"""Top-level package -> family. Anything else (stdlib, small deps) counts for its importer."""
PYTHON = "python (startup, stdlib imported at top level)"


@dataclass(frozen=True)
class ImportLine:
    phase: str
    self_us: int
    module: str
    depth: int


@dataclass
class ImportRun:
    """One probe run: wall times, resident memory, and import self time per phase, family and package."""

    load_s: float
    kube_s: float
    rss_kb: dict[str, int]
    family_us: dict[str, Counter[str]] = field(default_factory=dict)
    """phase -> family -> microseconds"""
    package_us: dict[str, Counter[str]] = field(default_factory=dict)
    """phase -> top-level package -> microseconds"""
    modules: dict[str, set[str]] = field(default_factory=dict)
    """phase -> every module imported in it"""


def parse_importtime(stderr: str) -> list[ImportLine]:
    """``-X importtime`` lines (children before parents), tagged with the probe's phase."""
    lines = []
    phase = "startup"
    for raw in stderr.splitlines():
        if raw.startswith(PHASE_MARK):
            phase = raw[len(PHASE_MARK) :].strip()
            continue
        if not raw.startswith("import time:") or "self [us]" in raw:
            continue
        self_us, _, name = raw[len("import time:") :].split("|", 2)
        stripped = name.lstrip(" ")
        depth = (len(name) - len(stripped) - 1) // 2
        lines.append(ImportLine(phase, int(self_us), stripped.strip(), depth))
    return lines


def families(lines: Sequence[ImportLine]) -> list[tuple[ImportLine, str]]:
    """Each import with its family: its own package's, else its nearest importer's."""
    resolved: list[tuple[ImportLine, str]] = []
    stack: list[str] = []
    for line in reversed(lines):  # reversed post-order is pre-order: importers come first
        del stack[line.depth :]
        inherited = stack[-1] if stack else PYTHON
        family = FAMILIES.get(line.module.split(".")[0], inherited)
        stack.append(family)
        resolved.append((line, family))
    return resolved


def probe(source: Path, kubeconfig: Path, *, importtime: bool) -> ImportRun:
    flags = ["-X", "importtime"] if importtime else []
    done = subprocess.run(
        [sys.executable, *flags, "-c", PROBE, str(source)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=child_env({"KUBECONFIG": str(kubeconfig)}),
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {source} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    run = ImportRun(result["load_s"], result["kube_s"], result["rss_kb"])
    if importtime:
        family_us: dict[str, Counter[str]] = defaultdict(Counter)
        package_us: dict[str, Counter[str]] = defaultdict(Counter)
        modules: dict[str, set[str]] = defaultdict(set)
        for line, family in families(parse_importtime(done.stderr)):
            family_us[line.phase][family] += line.self_us
            package_us[line.phase][line.module.split(".")[0]] += line.self_us
            modules[line.phase].add(line.module)
        run.family_us, run.package_us, run.modules = dict(family_us), dict(package_us), dict(modules)
    return run


@dataclass
class ImportProfile:
    """Every probe run of one function."""

    name: str
    plain: list[ImportRun] = field(default_factory=list)
    timed: list[ImportRun] = field(default_factory=list)

    def family_ms(self, phase: str) -> dict[str, float]:
        """Median self time per family in ``phase``, in milliseconds."""
        names = {family for run in self.timed for family in run.family_us.get(phase, {})}
        return {
            name: _median(run.family_us.get(phase, Counter())[name] / 1000 for run in self.timed)
            for name in names
        }

    def package_ms(self, phase: str) -> dict[str, float]:
        names = {package for run in self.timed for package in run.package_us.get(phase, {})}
        return {
            name: _median(run.package_us.get(phase, Counter())[name] / 1000 for run in self.timed)
            for name in names
        }

    def modules(self, phase: str) -> set[str]:
        return set().union(*(run.modules.get(phase, set()) for run in self.timed))


def profile(names: Sequence[tuple[str, Path]], repeats: int, kubeconfig: Path) -> list[ImportProfile]:
    """Probe each function ``repeats`` times both ways, interleaved so drift hits all alike."""
    profiles = [ImportProfile(name) for name, _ in names]
    sources = [source for _, source in names]
    for _ in range(repeats):
        for result, source in zip(profiles, sources, strict=True):
            result.plain.append(probe(source, kubeconfig, importtime=False))
            result.timed.append(probe(source, kubeconfig, importtime=True))
    return profiles


STEPS: tuple[tuple[str, str], ...] = (
    (
        "functions-framework + hello-world",
        "import functions_framework; functions_framework.create_app("
        "target='handle', source=HELLO, signature_type='cloudevent')",
    ),
    ("pydantic (BaseModel and the field types)", "from pydantic import BaseModel, Field, SecretStr"),
    ("runtime (common, common.http): its models declared, not built", "import common, common.http"),
    (
        "functions/github/main.py itself, without its REST client (an ignored run needs nothing more)",
        "import functions.github.main",
    ),
    (
        "first event: the first validations (pydantic builds validators, looks for its plugins)",
        "from common.settings import RuntimeSettings; RuntimeSettings.from_env(); "
        "functions.github.main.GitHubConfig.model_validate("
        "{'owner': 'acme', 'repo': 'app', 'sha': '0' * 40})",
    ),
    (
        "first event, Kubernetes: import common.kube (its own urllib3 client; no kubernetes, no requests)",
        "import common.kube",
    ),
    (
        "first event, Kubernetes: connect() reads the kubeconfig (PyYAML; a pod's service account does not)",
        "common.kube.connect()",
    ),
    (
        "first report: the GitHub REST client (urllib3; no PyGithub, no requests), step logs and templates "
        "(Jinja2 only for a run that names a template)",
        "import functions.github.rest, common.steplogs, common.templates",
    ),
    ("an App's first token: jwt + cryptography (never with a token)", "import jwt; jwt.encode"),
    (
        "kubernetes' loader (only a kubeconfig user with an exec plugin, auth-provider or password)",
        "from kubernetes import client, config",
    ),
    (
        "metrics: the first event counts (no import)",
        "import common.metrics; common.metrics.event('github', 'ignored', '', 0.001)",
    ),
    ("metrics: the first GET /metrics imports prometheus_client", "common.metrics.exposition()"),
    (
        "tracing off: the first event finds no OTLP endpoint",
        "import os, common.tracing; "
        "[os.environ.pop(name, None) for name in common.tracing.ENDPOINT_VARIABLES]; "
        "common.tracing.use_provider(None); common.tracing.enabled()",
    ),
    (
        "tracing on: OpenTelemetry SDK + OTLP http exporter (first event)",
        "import os; os.environ['OTEL_EXPORTER_OTLP_ENDPOINT'] = 'http://127.0.0.1:9'; "
        "common.tracing.use_provider(None); common.tracing.enabled()",
    ),
)
"""The GitHub function's import path, one step at a time in one interpreter: each step's cost
is what it adds on top of the steps before it. The first four are what an ignored run costs; the
next four what a first real event adds (in the order it adds them); then what is left out of both
(an App's signing, the ``kubernetes`` library); the last four are what observability
adds: to the first event (counting, and tracing where ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: the
exporter is built, nothing is sent) and to the first scrape."""

STEPS_PROBE = r"""
import json, sys, time

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

HELLO = sys.argv[1]
steps = json.loads(sys.argv[2])
results = []
for code in steps:
    before, began = rss(), time.perf_counter()
    exec(code)
    results.append((time.perf_counter() - began, rss() - before))
print(json.dumps(results))
"""


@dataclass(frozen=True)
class Step:
    name: str
    seconds: list[float]
    rss_kb: list[int]


def steps(hello: Path, repeats: int, kubeconfig: Path) -> list[Step]:
    """Time and resident memory each step of ``STEPS`` adds, ``repeats`` fresh interpreters."""
    seconds: list[list[float]] = [[] for _ in STEPS]
    rss: list[list[int]] = [[] for _ in STEPS]
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-c", STEPS_PROBE, str(hello), json.dumps([code for _, code in STEPS])],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=child_env({"KUBECONFIG": str(kubeconfig)}),
            timeout=120,
            check=True,
        )
        for index, (step_seconds, step_kb) in enumerate(json.loads(done.stdout.strip().splitlines()[-1])):
            seconds[index].append(step_seconds)
            rss[index].append(step_kb)
    return [Step(name, seconds[i], rss[i]) for i, (name, _) in enumerate(STEPS)]


def _median(values: Iterable[float]) -> float:
    return statistics.median(values)
