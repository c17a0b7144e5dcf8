"""What a function imports, and when: an event that needs no service loads no service client.

Each case runs in a fresh interpreter (imports are per process): the function is loaded as
functions-framework loads it, then sent events through its test client, and the modules present
after each step are compared with what that step needs (BENCHMARKS.md measures what each costs).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common import registry

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, sys
import functions_framework
from common import samples
from common.http import use_run_client
from common.runclient import MemoryRunClient
from common.standins.github import GitHubStandIn

REAL = (
    "github", "requests", "urllib3", "jwt", "cryptography", "nacl.public", "kubernetes", "yaml",
    "slack_sdk", "gitlab", "jinja2.sandbox", "common.steplogs", "common.templates",
)

def loaded():
    return sorted(name for name in REAL if name in sys.modules)

steps = {}
kube = MemoryRunClient()
use_run_client(kube)
app = functions_framework.create_app(target="handle", source=sys.argv[1], signature_type="cloudevent")
client = app.test_client()
steps["loaded"] = loaded()

def post(sample):
    answer = client.post("/", headers=sample["headers"], data=json.dumps(sample["data"]).encode())
    return json.loads(answer.data)["outcome"]

steps["ignored outcome"] = post(samples.load("pipelinerun-successful-no-integrations"))
steps["ignored"] = loaded()
if len(sys.argv) > 2:  # only the ignored run
    print(json.dumps(steps))
    sys.exit()
with GitHubStandIn() as github:
    import os
    os.environ.update(GITHUB_API_URL=github.url, GITHUB_TOKEN="ghp_lazy-imports-test")
    event = samples.load("pipelinerun-running")
    kind, run = samples.run_object(event)
    kube.add(kind, run)
    steps["reported outcome"] = post(event)
steps["reported"] = loaded()
print(json.dumps(steps))
"""


def probe(source: Path, *, ignored_only: bool = False) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(source), *(["ignored-only"] if ignored_only else [])],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "TI_POLICY_FILE": "/nonexistent"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_the_github_function_loads_urllib3_for_its_first_report_and_never_app_signing() -> None:
    steps = probe(REPO / "functions" / "github" / "main.py")
    assert steps["loaded"] == [], "no service client library, no Kubernetes client, no YAML at import"
    assert steps["ignored outcome"] == "ignored"
    assert steps["ignored"] == [], "an ignored run loads nothing more"
    assert steps["reported outcome"] == "reported"
    assert steps["reported"] == ["common.steplogs", "common.templates", "urllib3"], (
        "no PyGithub or requests; a token signs nothing; no template engine for a run naming none"
    )


SOURCES = [
    *(REPO / "functions" / registry.folder_of(name) / "main.py" for name in registry.names()),
    REPO / "common" / "all.py",
]
assert len(SOURCES) > 1


@pytest.mark.parametrize("source", SOURCES, ids=lambda source: source.parent.name)
def test_no_function_loads_a_service_client_or_kubernetes_for_an_ignored_run(source: Path) -> None:
    steps = probe(source, ignored_only=True)
    assert steps["ignored outcome"] == "ignored"
    assert steps["loaded"] == steps["ignored"] == []
