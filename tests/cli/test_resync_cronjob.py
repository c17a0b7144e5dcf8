"""knative/resync/resync-cronjob.yaml runs a command this CLI accepts, for every integration,
with list-only RBAC."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from common.cli import build_parser
from common.cli.integrations import available

MANIFEST = Path(__file__).resolve().parents[2] / "knative" / "resync" / "resync-cronjob.yaml"


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc}


def test_the_command_parses_as_a_resync_of_every_namespace(objects: dict[str, dict[str, Any]]) -> None:
    pod = objects["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["command"]
    assert command[0] == "tekton-integrations"
    args = build_parser().parse_args(command[1:])
    assert args.command == "resync"
    assert args.all_namespaces
    assert not args.dry_run
    assert args.since.total_seconds() == 24 * 3600
    assert not args.url, "no per-integration list to keep up to date"
    for name in available():  # every installed integration gets its events again, at its Service
        url = args.url_template.format(name=name)
        assert urlsplit(url).hostname == f"{name}.tekton-integrations.svc.cluster.local"
    assert pod["serviceAccountName"] == objects["ServiceAccount"]["metadata"]["name"]
    assert pod["restartPolicy"] == "Never"
    assert objects["CronJob"]["spec"]["concurrencyPolicy"] == "Forbid"


def test_its_service_account_may_only_list_runs(objects: dict[str, dict[str, Any]]) -> None:
    assert objects["ClusterRole"]["rules"] == [
        {"apiGroups": ["tekton.dev"], "resources": ["pipelineruns", "taskruns"], "verbs": ["list"]}
    ]
    binding = objects["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == objects["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "resync", "namespace": "tekton-integrations"}
    ]


def test_it_runs_as_the_functions_do(objects: dict[str, dict[str, Any]]) -> None:
    pod = objects["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "tekton-integrations", "the placeholder the kustomize images entry rewrites"
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["limits"]
