"""The RBAC derived for failed-step logs, on a real API server: an integration that shows step logs
may get ``pods/log`` and nothing more of pods; one that does not may not even that.

realkube has no kubelet, so no log is ever read here: access reviews answer what the
ServiceAccount may do, and a real ``pods/log`` request for a pod no node runs shows that the
authorizer lets it through (the API server then has no log to give: 204, not 403).
Reading a log itself is covered with ``MemoryRunClient.pod_logs`` (tests/common/test_steplogs.py).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from common import manifests, registry
from common.config import ShowsStepLogs
from tests.support.access_reviews import EVERY_USER, granted, may

KNATIVE = Path(__file__).resolve().parents[2] / "knative"
READER = next((i.name for i in registry.declarations() if issubclass(i.config, ShowsStepLogs)), None)
NON_READER = next(
    (
        i.name
        for i in registry.declarations()
        if not issubclass(i.config, ShowsStepLogs) and not i.coordinates_across_runs
    ),
    None,
)
assert READER, "no integration shows step logs: this tier would check nothing"
assert NON_READER, "every integration shows step logs or coordinates: this tier would check nothing"
POD = "step-logs-check-pod"

DENIED_TO_READER = [
    ("get", "", "pods", ""),
    ("list", "", "pods", ""),
    ("watch", "", "pods", ""),
    ("get", "", "secrets", ""),
    ("create", "", "pods", "exec"),
    ("get", "", "pods", "exec"),
    ("create", "", "pods", "attach"),
    ("create", "", "pods", "portforward"),
    ("delete", "", "pods", ""),
    ("create", "", "pods", "log"),
    ("update", "", "pods", "log"),
]


# The generated client is typed for its model classes; these tests send plain dicts (which it
# accepts), so its APIs are used untyped.
def core(api: client.ApiClient) -> Any:
    return client.CoreV1Api(api)


def rbac(api: client.ApiClient) -> Any:
    return client.RbacAuthorizationV1Api(api)


def apply(api: client.ApiClient, obj: dict[str, Any]) -> None:
    """Create a ServiceAccount, or create a ClusterRole or ClusterRoleBinding (replacing one of
    that name: the shipped ClusterRoles are the same whoever applies them)."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    if kind == "ServiceAccount":
        core(api).create_namespaced_service_account(obj["metadata"]["namespace"], obj)
        return
    suffix = {"ClusterRole": "cluster_role", "ClusterRoleBinding": "cluster_role_binding"}[kind]
    try:
        getattr(rbac(api), f"create_{suffix}")(obj)
    except ApiException as e:
        if e.status != 409:
            raise
        getattr(rbac(api), f"replace_{suffix}")(name, obj)


def derived(name: str, namespace: str) -> list[dict[str, Any]]:
    """The generated ``rbac.yaml`` of integration ``name``, its ServiceAccount in ``namespace``
    (bindings named after it, so that this test's never replace the installation's)."""
    integration = registry.load(name).integration
    assert integration is not None
    objects = copy.deepcopy(manifests.rbac(name, [integration]))
    for obj in objects:
        if obj["kind"] == "ServiceAccount":
            obj["metadata"]["namespace"] = namespace
        else:
            obj["metadata"]["name"] += f"-{namespace}"
            for subject in obj["subjects"]:
                subject["namespace"] = namespace
    return objects


@pytest.fixture
def accounts(api: client.ApiClient, namespace: str) -> Iterator[dict[str, client.ApiClient]]:
    """The shipped ClusterRoles and the generated RBAC of a log-reading and of another integration
    applied; a client acting as each of their ServiceAccounts (impersonation), by name."""
    for path in sorted((KNATIVE / "rbac").glob("*.yaml")):
        for obj in yaml.safe_load_all(path.read_text()):
            if obj and obj.get("kind") == "ClusterRole":
                apply(api, obj)
    bindings = []
    for name in (READER, NON_READER):
        assert name is not None
        for obj in derived(name, namespace):
            apply(api, obj)
            if obj["kind"] == "ClusterRoleBinding":
                bindings.append(obj["metadata"]["name"])
    clients = {}
    for name in (READER, NON_READER):
        assert name is not None
        acting = client.ApiClient(copy.copy(api.configuration))
        acting.set_default_header("Impersonate-User", f"system:serviceaccount:{namespace}:{name}")
        clients[name] = acting
    yield clients
    for acting in clients.values():
        acting.close()
    for binding in bindings:
        rbac(api).delete_cluster_role_binding(binding)


def test_a_log_reading_integration_may_get_pod_logs_and_nothing_more_of_pods(
    accounts: dict[str, client.ApiClient], namespace: str
) -> None:
    assert READER is not None
    reader = accounts[READER]
    assert may(reader, namespace, ("get", "", "pods", "log"))
    assert [grant for grant in DENIED_TO_READER if may(reader, namespace, grant)] == []


def test_an_integration_that_shows_no_logs_may_not_get_them(
    accounts: dict[str, client.ApiClient], namespace: str
) -> None:
    assert NON_READER is not None
    assert not may(accounts[NON_READER], namespace, ("get", "", "pods", "log"))
    assert may(accounts[NON_READER], namespace, ("patch", "tekton.dev", "pipelineruns", "")), "its role holds"


def test_its_rules_in_a_tenant_namespace_are_exactly_the_derived_ones(
    accounts: dict[str, client.ApiClient], namespace: str
) -> None:
    assert READER is not None
    rules = granted(accounts[READER], namespace)
    integration = registry.load(READER).integration
    assert integration is not None
    expected = {
        (verb, group, resource)
        for role in manifests.roles(integration)
        for rule in manifests.ROLE_RULES[role]
        for verb in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert ("get", "", "pods/log") in expected
    assert expected <= rules
    assert rules - expected <= EVERY_USER, rules - expected - EVERY_USER


def test_a_real_log_request_is_authorized_for_the_reader_only(
    api: client.ApiClient, accounts: dict[str, client.ApiClient], namespace: str
) -> None:
    # A pod no node runs (realkube has no scheduler or kubelet): once the request is authorized,
    # the API server has no log to give, and answers 204 No Content.
    assert READER is not None
    assert NON_READER is not None
    core(api).create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": POD},
            "spec": {
                "serviceAccountName": READER,
                "automountServiceAccountToken": False,
                "containers": [{"name": "step-build", "image": "busybox"}],
            },
        },
    )
    answer = core(accounts[READER]).read_namespaced_pod_log(
        POD, namespace, container="step-build", _preload_content=False
    )
    assert (answer.status, answer.data) == (204, b""), "authorized, and no log to give"
    for denied in (
        lambda: core(accounts[NON_READER]).read_namespaced_pod_log(POD, namespace, container="step-build"),
        lambda: core(accounts[READER]).read_namespaced_pod(
            POD, namespace
        ),  # the pod itself stays out of reach
    ):
        with pytest.raises(ApiException) as refused:
            denied()
        assert refused.value.status == 403
