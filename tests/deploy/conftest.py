"""Fixtures for the deployment tests: tools, the rendered knative/ tree, and realkube."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.manifests import KNATIVE_DIR, SINGLE_SERVICE_DIR, Obj, find_tool, kustomize, run
from tests.support.realkube import realkube_up


@pytest.fixture(scope="session")
def kubectl() -> str:
    return find_tool("kubectl")


@pytest.fixture(scope="session")
def hadolint() -> str:
    return find_tool("hadolint")


@pytest.fixture(scope="session")
def rendered(kubectl: str) -> list[Obj]:
    """Every object `kubectl apply -k knative/` would send, as kustomize renders it."""
    objects = kustomize(kubectl, KNATIVE_DIR)
    assert objects, "knative/ rendered no objects"
    return objects


@pytest.fixture(scope="session")
def single_rendered(kubectl: str) -> list[Obj]:
    """Every object `kubectl apply -k knative/single-service/` would send."""
    objects = kustomize(kubectl, SINGLE_SERVICE_DIR)
    assert objects, "knative/single-service/ rendered no objects"
    return objects


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    """A real kube-apiserver with Tekton's and Knative's CRDs installed (skips when unavailable)."""
    return realkube_up(knative=True)


@pytest.fixture(scope="session")
def admin_kubectl(kubectl: str, kubeconfig: Path) -> list[str]:
    """kubectl as realkube's admin (group system:masters)."""
    return [kubectl, "--kubeconfig", str(kubeconfig)]


@pytest.fixture(scope="session")
def openapi_v2(admin_kubectl: list[str]) -> Any:
    """realkube's own /openapi/v2: the schemas of the built-in kinds of a real API server."""
    done = run([*admin_kubectl, "get", "--raw", "/openapi/v2"], timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
