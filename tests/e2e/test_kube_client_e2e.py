"""The runtime's own Kubernetes client (``common.kube``, no ``kubernetes`` library) against realkube,
logged in from realkube's kubeconfig (a bearer token and a CA): the claims integrations make with
Leases, and runs found by label."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common import kube
from common.errors import ConflictError, RunNotFoundError

LEASES = ("coordination.k8s.io/v1", "leases")


@pytest.fixture
def cluster(kubeconfig: Path) -> kube.KubeRunClient:
    return kube.connect(kubeconfig=str(kubeconfig))


def lease(name: str, holder: str) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 60},
    }


def test_a_lease_is_claimed_once_and_changed_only_from_its_current_version(
    cluster: kube.KubeRunClient, namespace: str
) -> None:
    created = cluster.create_object(*LEASES, namespace, lease("rollup-abc", "run-1"))
    assert created["spec"]["holderIdentity"] == "run-1"
    with pytest.raises(ConflictError):
        cluster.create_object(*LEASES, namespace, lease("rollup-abc", "run-2"))

    version = created["metadata"]["resourceVersion"]
    moved = cluster.patch_object(
        *LEASES,
        namespace,
        "rollup-abc",
        {"metadata": {"resourceVersion": version}, "spec": {"holderIdentity": "run-3"}},
    )
    assert moved["spec"]["holderIdentity"] == "run-3"
    with pytest.raises(ConflictError):
        cluster.patch_object(
            *LEASES,
            namespace,
            "rollup-abc",
            {"metadata": {"resourceVersion": version}, "spec": {"holderIdentity": "run-4"}},
        )
    found = cluster.get_object(*LEASES, namespace, "rollup-abc")
    assert found is not None
    assert found["spec"]["holderIdentity"] == "run-3"
    with pytest.raises(RunNotFoundError):
        cluster.patch_object(*LEASES, namespace, "absent", {"spec": {"holderIdentity": "x"}})


def test_runs_are_listed_by_label_across_pages(
    cluster: kube.KubeRunClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, sha in (("web-1", "aaa"), ("web-2", "aaa"), ("web-3", "aaa"), ("api-1", "bbb")):
        cluster.create_object(
            "tekton.dev/v1",
            "pipelineruns",
            namespace,
            {
                "apiVersion": "tekton.dev/v1",
                "kind": "PipelineRun",
                "metadata": {"name": name, "labels": {"example.com/sha": sha}},
                "spec": {"pipelineRef": {"name": "build-and-test"}},
            },
        )
    monkeypatch.setattr(kube, "LIST_PAGE", 2)
    found = cluster.list_runs("PipelineRun", namespace, "example.com/sha=aaa")
    assert sorted(run["metadata"]["name"] for run in found) == ["web-1", "web-2", "web-3"]
    assert [
        run["metadata"]["name"] for run in cluster.list_runs("PipelineRun", namespace, "example.com/sha!=aaa")
    ] == ["api-1"]
    assert cluster.list_runs("TaskRun", namespace, "example.com/sha=aaa") == []
