"""``tekton-integrations doctor`` on realkube with Tekton's and Knative's CRDs, as a subprocess.

Issue 13's "Must show": on a fully applied ``knative/`` tree (``kubectl apply -k knative/``, the
Secrets created from their templates, Tekton's ``config-events`` patched as docs/deploy.md says)
it reports OK; with a Secret removed and the RBAC widened, it names both.

realkube runs no controllers, so the Services, Triggers and Broker have no status (doctor says so
and does not count it against them). Everything is created idempotently: realkube is shared.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from common import manifests, registry
from common.cli import ExitCode
from tests.deploy.manifests import KNATIVE_DIR, find_tool, run
from tests.e2e.test_cli_e2e import shell
from tests.support.realkube import realkube_up

NAMESPACE = manifests.NAMESPACE


@pytest.fixture(scope="module")
def knative_kubeconfig() -> Path:
    return realkube_up(knative=True)


@pytest.fixture(scope="module")
def admin(knative_kubeconfig: Path) -> Iterator[Any]:
    api = config.new_client_from_config(config_file=str(knative_kubeconfig))
    yield api
    api.close()


def ignoring(status: int, call: Any, *args: Any, **kwargs: Any) -> None:
    try:
        call(*args, **kwargs)
    except ApiException as e:
        if e.status != status:
            raise


def secret_body(name: str) -> dict[str, Any]:
    """The Secret an operator makes from the integration's template, with a key the function reads."""
    integration = registry.load(name).integration
    assert integration is not None
    keys = [manifests.secret_key(f) for f in manifests.secret_fields(integration.settings)] or ["default"]
    return {
        "metadata": {"name": manifests.secret_name(name)},
        "stringData": {keys[0]: "not-a-real-credential"},
    }


def needing_secrets() -> list[str]:
    found = []
    for name in registry.names():
        integration = registry.load(name).integration
        if integration is not None and manifests.secret_template(integration) is not None:
            found.append(name)
    return found


@pytest.fixture(scope="module")
def installed(knative_kubeconfig: Path, admin: Any) -> Path:
    """knative/ applied, every Secret created, config-events patched."""
    kubectl = [find_tool("kubectl"), "--kubeconfig", str(knative_kubeconfig)]
    done = run([*kubectl, "apply", "-k", str(KNATIVE_DIR)], timeout=180)
    assert done.returncode == 0, done.stderr
    core: Any = client.CoreV1Api(admin)
    for name in needing_secrets():
        ignoring(409, core.create_namespaced_secret, NAMESPACE, secret_body(name))
    ignoring(409, core.create_namespace, {"metadata": {"name": "tekton-pipelines"}})
    ignoring(
        409,
        core.create_namespaced_config_map,
        "tekton-pipelines",
        {"metadata": {"name": "config-events"}, "data": {"formats": "tektonv1", "sink": ""}},
    )
    done = run(
        [
            *kubectl,
            "patch",
            "configmap",
            "config-events",
            "-n",
            "tekton-pipelines",
            "--type",
            "merge",
            "--patch-file",
            str(KNATIVE_DIR / "tekton" / "config-events.yaml"),
        ]
    )
    assert done.returncode == 0, done.stderr
    return knative_kubeconfig


def test_a_fully_applied_tree_is_ok_and_a_missing_secret_and_wider_rbac_are_named(
    installed: Path, admin: Any
) -> None:
    done = shell(installed, "doctor")
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    assert done.stdout.rstrip().splitlines()[-1].startswith("OK")
    report = json.loads(shell(installed, "doctor", "-o", "json").stdout)
    assert report["ok"] is True
    subjects = {check["subject"] for check in report["checks"]}
    assert {f"Service {name}" for name in registry.names()} <= subjects

    core: Any = client.CoreV1Api(admin)
    rbac: Any = client.RbacAuthorizationV1Api(admin)
    scratch = f"doctor-{secrets.token_hex(4)}"  # a namespace of its own: the deploy tests use tenant-a
    core.create_namespace({"metadata": {"name": scratch}})
    core.delete_namespaced_secret("github-credentials", NAMESPACE)
    rbac.create_namespaced_role_binding(
        scratch,
        {
            "metadata": {"name": "github-is-admin"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "github", "namespace": NAMESPACE}],
        },
    )
    try:
        done = shell(installed, "doctor")
        assert done.returncode == ExitCode.ERROR, done.stdout
        assert "✗ Secret github-credentials: does not exist" in done.stdout
        assert "fix: kubectl -n tekton-integrations create secret generic github-credentials" in done.stdout
        assert (
            f"✗ RBAC of ServiceAccount github: RoleBinding github-is-admin in namespace {scratch} "
            "also grants ClusterRole admin: more than the function needs" in done.stdout
        )
        assert f"kubectl delete rolebinding github-is-admin -n {scratch}" in done.stdout
        failed = {
            c["subject"]
            for c in json.loads(shell(installed, "doctor", "-o", "json").stdout)["checks"]
            if c["status"] == "failed"
        }
        assert failed == {"Secret github-credentials", "RBAC of ServiceAccount github"}
    finally:
        ignoring(404, rbac.delete_namespaced_role_binding, "github-is-admin", scratch)
        ignoring(409, core.create_namespaced_secret, NAMESPACE, secret_body("github"))
    assert shell(installed, "doctor").returncode == ExitCode.OK


def test_without_permission_the_checks_are_unchecked(installed: Path) -> None:
    done = shell(installed, "doctor", "--as", "system:serviceaccount:tekton-integrations:github")
    assert done.returncode == ExitCode.FORBIDDEN, done.stdout + done.stderr
    assert "cannot check: " in done.stdout
