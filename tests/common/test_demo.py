"""The README's main job: ``tekton-integrations demo`` works with no cluster and no account."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from common.cli import build_parser
from common.cli.demo import run


@pytest.mark.parametrize("mode", ["check-run", "status"])
def test_demo_replays_the_samples_and_prints_each_runs_record(mode: str) -> None:
    out = io.StringIO()
    assert run(build_parser().parse_args(["demo", "--mode", mode]), out) == 0
    text = out.getvalue()
    assert text.count("ignored: duplicate: this state is already reported") == 2
    assert "child of PipelineRun build-and-test-run-x7k2p" in text
    assert text.count('"name": "github.integrations.tekton.dev"') == 4
    assert text.count('"status": "True"') >= 4
    if mode == "check-run":
        assert "check run 1 'tekton/build-and-test' on 9f1c2e7: completed / success" in text
        assert "on 1b6e9c3: completed / cancelled" in text
        assert "check run 5" not in text, "replays created a second check run"
    else:
        assert "commit status 'tekton/build-and-test' on 4e8a1d0: failure" in text
        assert "check run" not in text


def test_the_demo_says_nothing_a_newcomer_must_ignore() -> None:
    """No policy file on the machine that runs the demo is no news: the demo prints no note of it."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "tekton-integrations"), "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("\n== a successful run")
    assert "policy" not in done.stderr + done.stdout.split("== IntegrationStatus", 1)[0]
