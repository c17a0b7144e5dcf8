"""Exercise an integration that was added without touching the runtime, as a user would see it.

Run as ``python -m tests.support.added_integration NAME SOURCE KEY VALUE REFUSED [SAMPLE]`` with
``PYTHONPATH`` putting the tree under test first, so that ``common`` and ``functions`` (and any
installed entry points) come from there, while ``tests`` comes from the checkout. It prints one
JSON object saying what happened; ``tests/common/test_registry.py`` asserts on it.

- the registry lists NAME and loads it;
- a policy file with a NAME section is valid for every installed function;
- SOURCE (its ``main.py``, or ``common/target.py``) serves a run (the SAMPLE event, default
  ``pipelinerun-running``) that opts in with ``NAME.integrations.tekton.dev/KEY: VALUE`` and
  records under NAME's key;
- NAME's own policy section refuses a destination it does not list (REFUSED);
- the dead-letter receiver records DeliveryFailed under NAME's key;
- ``tekton-integrations status`` and ``explain`` list NAME.
"""

from __future__ import annotations

import copy
import io
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import functions_framework
import yaml

from common import deadletter, registry, samples
from common.cli import main as cli_main
from common.cli.session import Connection
from common.http import use_run_client
from tests.cli.fakes import FakeCluster

NAMESPACE = "ci"
NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def _client(source: Path) -> Any:
    app = functions_framework.create_app(target="handle", source=str(source), signature_type="cloudevent")
    return app.test_client()


def _post(client: Any, sample: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = client.post("/", headers=dict(sample["headers"]), data=json.dumps(sample["data"]).encode())
    return answer.status_code, json.loads(answer.data)


def _record(cluster: FakeCluster, name: str) -> dict[str, Any] | None:
    for run in cluster.runs.values():
        value = run["metadata"].get("annotations", {}).get(f"{name}.integrations.tekton.dev/status")
        if value:
            parsed: dict[str, Any] = json.loads(value)
            return parsed
    return None


def _sample_for(name: str, key: str, value: str, run_name: str, sample_name: str) -> dict[str, Any]:
    sample = copy.deepcopy(samples.load(sample_name))
    _, obj = samples.run_object(sample)
    obj["metadata"]["name"] = run_name
    obj["metadata"]["uid"] = f"uid-{run_name}"
    obj["metadata"]["annotations"] = {f"{name}.integrations.tekton.dev/{key}": value}
    return sample


def main(argv: list[str]) -> dict[str, Any]:
    """The checks of the module docstring; ``argv`` is NAME SOURCE KEY VALUE REFUSED [SAMPLE]."""
    name, source, key, value, refused_value = argv[:5]
    sample = argv[5] if len(argv) > 5 else "pipelinerun-running"
    result: dict[str, Any] = {"names": registry.names()}
    loaded = registry.load(name)
    result["loaded"] = loaded.integration.name if loaded.integration else loaded.problem
    section = yaml.safe_load(sys.stdin.read())
    policy = Path(tempfile.mkdtemp()) / "policy.yaml"
    policy.write_text(yaml.safe_dump({"default": {name: section}}), encoding="utf-8")
    os.environ["TI_POLICY_FILE"] = str(policy)
    started = {}
    for other in registry.names():
        other_source = (registry.functions_root() or Path(source)) / other / "main.py"
        try:
            _client(other_source if other_source.exists() else Path(source))
            started[other] = "started"
        except Exception as e:
            started[other] = f"{type(e).__name__}: {e}"
    result["started"] = started

    cluster = FakeCluster()
    use_run_client(cluster)
    served = _client(Path(source))
    accepted = _sample_for(name, key, value, "accepted-run", sample)
    cluster.add(*samples.run_object(accepted))
    result["accepted"] = _post(served, accepted)
    result["accepted_record"] = _record(cluster, name)

    refused = _sample_for(name, key, refused_value, "refused-run", sample)
    refused_ref = cluster.add(*samples.run_object(refused))
    result["refused"] = _post(served, refused)
    stored = cluster.runs[refused_ref]["metadata"]["annotations"].get(
        f"{name}.integrations.tekton.dev/status"
    )
    result["refused_record"] = json.loads(stored) if stored else None

    dead = _sample_for(name, key, value, "dead-run", sample)
    dead["headers"]["ce-knativeerrordest"] = f"http://{name}.tekton-integrations.svc.cluster.local/"
    dead["headers"]["ce-knativeerrorcode"] = "503"
    dead_ref = cluster.add(*samples.run_object(dead))
    result["dead_letter"] = _post(_client(Path(deadletter.__file__)), dead)
    stored = cluster.runs[dead_ref]["metadata"]["annotations"].get(f"{name}.integrations.tekton.dev/status")
    result["dead_letter_record"] = json.loads(stored) if stored else None

    for command in (["status", "-n", NAMESPACE, "-o", "json"], ["explain", "accepted-run", "-n", NAMESPACE]):
        out, err = io.StringIO(), io.StringIO()
        code = cli_main(
            command,
            connector=lambda _context: Connection(cluster, NAMESPACE),
            out=out,
            err=err,
            env={},
            clock=lambda: NOW,
        )
        result[command[0]] = {"code": code, "out": out.getvalue(), "err": err.getvalue()}
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), default=str))
