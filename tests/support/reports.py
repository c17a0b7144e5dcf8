"""What the tests of reports share: an operator's templates, mounted as the kubelet mounts the
ConfigMap ``tekton-integrations-templates``, and a log for the failed step of the failed sample
run (``pipelinerun-failed``, whose ``unit-tests`` TaskRun is ``taskrun-failed``).

Each test module keeps its own templates, and the log lines its cases need."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from common.runclient import MemoryRunClient, RunRef
from common.templates import TEMPLATES_DIR_ENV

FAILED_STEP = ("ci", "build-and-test-run-q4m9z-unit-tests-pod", "step-run-tests")
"""Namespace, pod and container of the failed sample run's failed step."""
LOG_TOKEN = "ghp_0123456789abcdefghijABCDEFGHIJ"
"""A GitHub token's shape, planted in a log: masked wherever the log is shown."""
FAILING_TEST = (
    "=== RUN TestWidget",
    f"    widget_test.go:42: <pushing> with {LOG_TOKEN}",
    "--- FAIL: TestWidget (0.01s)",
)
"""A failed Go test's output, for ``log_failed_step``: its second line holds markup and the token."""


def mount_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: Mapping[str, str]) -> Path:
    """The ConfigMap's keys as files in ``tmp_path/templates``, named by ``TI_TEMPLATES_DIR``."""
    mount = tmp_path / "templates"
    mount.mkdir()
    for key, text in files.items():
        (mount / key).write_text(text, encoding="utf-8")
    monkeypatch.setenv(TEMPLATES_DIR_ENV, str(mount))
    return mount


def log_failed_step(kube: MemoryRunClient, *lines: str) -> None:
    """The failed step's log, as the kubelet keeps it: ``lines``, each ended by a newline."""
    kube.pod_logs[FAILED_STEP] = "".join(f"{line}\n" for line in lines)


def pod_log_reads(kube: MemoryRunClient) -> list[RunRef]:
    """The ``pods/log`` requests made so far, each naming its pod."""
    return [ref for verb, ref in kube.calls if verb == "pod_log"]
