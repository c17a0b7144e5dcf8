"""Start (or reuse) the real kube-apiserver from ../shared/realkube for the end-to-end tiers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.tiers import require_shared, unavailable


def realkube_home() -> Path:
    return Path(os.environ.get("REALKUBE_HOME", Path.home() / ".cache" / "realkube"))


def realkube_up(*, knative: bool = False) -> Path:
    """Bring realkube up with Tekton's CRDs (and Knative's when asked); return the kubeconfig path.

    Skips with a reason when ../shared is absent or kube-apiserver has not been built yet
    (building takes 5-10 minutes: ``../shared/realkube/realkube build``).
    """
    script = require_shared() / "realkube" / "realkube"
    if not (realkube_home() / "bin" / "kube-apiserver").exists():
        unavailable(f"realkube is not built: run `{script} build` once (5-10 min)")
    flags = ["--tekton"] + (["--knative"] if knative else [])
    done = subprocess.run(
        [str(script), "up", *flags], capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        unavailable(f"realkube did not start: {done.stderr.strip()[-400:]}")
    return Path(done.stdout.strip().splitlines()[-1])
