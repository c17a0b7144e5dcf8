"""A complete installation in the fake cluster, as ``kubectl apply -k knative/`` (plus the Secrets and
the config-events patch) leaves it: derived from the registry and ``common.manifests``, and from the
runtime's own files in knative/ (Broker, ClusterRole, dead-letter receiver, config-events)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from common import manifests, registry
from tests.cli.fakes import FakeCluster

KNATIVE = Path(__file__).resolve().parents[2] / "knative"
NAMESPACE = manifests.NAMESPACE
RESOURCES = {
    "Service": ("serving.knative.dev/v1", "services"),
    "Trigger": ("eventing.knative.dev/v1", "triggers"),
    "Broker": ("eventing.knative.dev/v1", "brokers"),
    "ServiceAccount": ("v1", "serviceaccounts"),
    "Secret": ("v1", "secrets"),
    "ConfigMap": ("v1", "configmaps"),
    "Namespace": ("v1", "namespaces"),
    "ClusterRole": ("rbac.authorization.k8s.io/v1", "clusterroles"),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", "clusterrolebindings"),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings"),
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


def put(cluster: FakeCluster, obj: dict[str, Any], namespace: str = NAMESPACE) -> None:
    if obj["kind"] not in CLUSTER_SCOPED:
        obj["metadata"].setdefault("namespace", namespace)
    cluster.put(*RESOURCES[obj["kind"]], obj)


def files(*paths: str) -> list[dict[str, Any]]:
    return [doc for path in paths for doc in yaml.safe_load_all((KNATIVE / path).read_text()) if doc]


def install(cluster: FakeCluster) -> None:
    put(cluster, {"kind": "Namespace", "metadata": {"name": NAMESPACE}})
    for obj in files(
        "eventing/broker.yaml",
        "rbac/clusterrole.yaml",
        "rbac/step-logs.yaml",
        "rbac/coordination.yaml",
        "deadletter/service.yaml",
        "deadletter/rbac.yaml",
    ):
        put(cluster, obj)
    for name in registry.names():
        integration = registry.load(name).integration
        assert integration is not None, name
        for obj in [manifests.service(integration, manifests.source_of(name)), manifests.trigger(name)]:
            put(cluster, obj)
        for obj in manifests.rbac(name):
            put(cluster, obj)
        secret = manifests.secret_template(integration)
        if secret is not None:
            keys = [manifests.secret_key(f) for f in manifests.secret_fields(integration.settings)] or [
                "default"
            ]
            put(cluster, {**secret, "data": {keys[0]: "c2VjcmV0"}})
    (config_events,) = files("tekton/config-events.yaml")
    put(cluster, config_events, config_events["metadata"]["namespace"])
    cluster.config_maps.append(
        {
            "metadata": {
                "namespace": NAMESPACE,
                "name": "tekton-integrations-policy-h4sh",
                "labels": {"app.kubernetes.io/name": "tekton-integrations"},
            },
            "data": {"policy.yaml": (KNATIVE / "config" / "policy.yaml").read_text()},
        }
    )
