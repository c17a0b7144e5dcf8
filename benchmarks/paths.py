"""Where things are, and the environment every process the benchmarks start runs with."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HELLO = REPO / "benchmarks" / "hello" / "main.py"
SERVED_GITHUB = REPO / "benchmarks" / "served_github.py"
BENCH_TOKEN = "bench-token"
"""The GitHub token the benchmarks use: the stand-in accepts any token."""

_DROPPED = (
    "KUBECONFIG",
    "GITHUB_TOKEN",
    "GITHUB_TOKEN_FILE",
    "GITHUB_APP_ID",
    "GITHUB_APP_PRIVATE_KEY_FILE",
    "GITHUB_API_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_BOT_TOKEN_FILE",
    "SLACK_API_URL",
    "TEKTON_DASHBOARD_URL",
    "THREADS",
    "WORKERS",
    "PYTHONDONTWRITEBYTECODE",  # the image's bytecode is compiled at install; here the warm-up writes it
)

DUMMY_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""
"""For events that need no API call: the runtime builds its client from it but never connects."""


def function_source(name: str) -> Path:
    """``functions/<name>/main.py``, or the hello-world for ``hello``."""
    return HELLO if name == "hello" else REPO / "functions" / name / "main.py"


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without credentials or cluster settings, the repository importable, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if name not in _DROPPED}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env


def dummy_kubeconfig(directory: Path) -> Path:
    path = directory / "dummy-kubeconfig"
    path.write_text(DUMMY_KUBECONFIG, encoding="utf-8")
    return path


def functions_framework_command() -> list[str]:
    """The ``functions-framework`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "functions-framework"
    if script.exists():
        return [str(script)]
    found = shutil.which("functions-framework")
    return [found] if found else [sys.executable, "-m", "functions_framework"]
