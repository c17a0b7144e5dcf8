"""knative/ applied to a real kube-apiserver (realkube, with Tekton's and Knative's CRDs), and
each function's ServiceAccount held to least privilege by impersonating it.

realkube runs no controllers: namespaces are never deleted here (nothing would finalize them),
and every object is created idempotently so the suite can run again against the same server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.deploy.manifests import (
    COORDINATION_ROLE,
    FUNCTIONS,
    KNATIVE_DIR,
    NAMESPACE,
    SECRET_TEMPLATES,
    STEP_LOGS_ROLE,
    Obj,
    ident,
    needed_roles,
    run,
)
from tests.support.access_reviews import EVERY_USER, Grant, granted, may

TENANT = "tenant-a"
RUN_NAME = "deploy-rbac-check"  # distinct from what other tiers create on the shared realkube
GROUP, VERSION = "tekton.dev", "v1"

# What every function's ServiceAccount may do in a tenant namespace ...
ALLOWED = [
    ("get", GROUP, "pipelineruns", ""),
    ("list", GROUP, "pipelineruns", ""),
    ("watch", GROUP, "pipelineruns", ""),
    ("patch", GROUP, "pipelineruns", ""),
    ("get", GROUP, "taskruns", ""),
    ("list", GROUP, "taskruns", ""),
    ("watch", GROUP, "taskruns", ""),
    ("patch", GROUP, "taskruns", ""),
    ("create", "", "events", ""),
    ("patch", "", "events", ""),
    ("create", "events.k8s.io", "events", ""),
    ("patch", "events.k8s.io", "events", ""),
]
# ... and a sample of what it may not.
DENIED = [
    ("get", "", "secrets", ""),
    ("list", "", "secrets", ""),
    ("watch", "", "secrets", ""),
    ("delete", GROUP, "pipelineruns", ""),
    ("delete", GROUP, "taskruns", ""),
    ("create", GROUP, "pipelineruns", ""),
    ("update", GROUP, "pipelineruns", ""),
    ("deletecollection", GROUP, "pipelineruns", ""),
    ("patch", GROUP, "pipelineruns", "status"),
    ("update", GROUP, "pipelineruns", "status"),
    ("patch", "", "configmaps", ""),
    ("get", "", "configmaps", ""),
    ("patch", "", "pods", ""),
    ("create", "", "pods", ""),
    ("get", "", "pods", ""),
    ("list", "", "pods", ""),
    ("create", "", "pods", "exec"),
    ("get", "", "pods", "attach"),
    ("delete", "coordination.k8s.io", "leases", ""),
    ("list", "coordination.k8s.io", "leases", ""),
    ("patch", "", "serviceaccounts", ""),
    ("create", "", "serviceaccounts", "token"),
    ("patch", "serving.knative.dev", "services", ""),
    ("patch", "eventing.knative.dev", "triggers", ""),
    ("delete", "", "events", ""),
    ("patch", "rbac.authorization.k8s.io", "clusterroles", ""),
    ("escalate", "rbac.authorization.k8s.io", "clusterroles", ""),
    ("impersonate", "", "serviceaccounts", ""),
]


# ... and what the functions whose declaration needs it may do besides.
EXTRA = {
    STEP_LOGS_ROLE: [("get", "", "pods", "log")],
    COORDINATION_ROLE: [
        (verb, "coordination.k8s.io", "leases", "") for verb in ("get", "create", "update", "patch")
    ],
}


def allowed(name: str) -> list[Grant]:
    """What function ``name``'s ServiceAccount may do in a tenant namespace: the runs' role, and
    each other role its declaration needs."""
    return [*ALLOWED, *(grant for role in sorted(needed_roles(name) & set(EXTRA)) for grant in EXTRA[role])]


def denied(name: str) -> list[Grant]:
    """A sample of what it may not: ``DENIED``, and what the other functions' roles grant."""
    return [*DENIED, *(grant for role in sorted(set(EXTRA) - needed_roles(name)) for grant in EXTRA[role])]


def ignoring(status: int, call: Any, *args: Any) -> None:
    """``call(*args)``, tolerating one HTTP status (409: exists already, 404: not there)."""
    try:
        call(*args)
    except ApiException as e:
        if e.status != status:
            raise


def pruned(sent: Any, stored: Any, path: str = "") -> list[str]:
    """Paths of what was sent but is not stored as sent (the server may add defaults)."""
    if isinstance(sent, dict) and isinstance(stored, dict):
        return [p for k, v in sent.items() for p in pruned(v, stored.get(k), f"{path}/{k}")]
    if isinstance(sent, list) and isinstance(stored, list) and len(sent) == len(stored):
        return [
            p for i, (a, b) in enumerate(zip(sent, stored, strict=True)) for p in pruned(a, b, f"{path}[{i}]")
        ]
    return [] if sent == stored else [path]


# The generated client is typed for its model classes; these tests send plain dicts (which it
# accepts) and read plain fields, so its APIs are used untyped.
def core_api(api: Any) -> Any:
    return client.CoreV1Api(api)


def custom_api(api: Any) -> Any:
    return client.CustomObjectsApi(api)


def account(name: str) -> str:
    return f"system:serviceaccount:{NAMESPACE}:{name}"


@pytest.fixture(scope="module")
def applied(admin_kubectl: list[str], rendered: list[Obj]) -> list[Obj]:
    """`kubectl apply -k knative/` on realkube: every object accepted."""
    done = run([*admin_kubectl, "apply", "-k", str(KNATIVE_DIR)], timeout=180)
    assert done.returncode == 0, f"kubectl apply -k knative/ was refused:\n{done.stderr}"
    return rendered


@pytest.fixture(scope="module")
def admin(kubeconfig: Path) -> Iterator[Any]:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    yield api
    api.close()


@pytest.fixture(scope="module")
def tenant_run(admin: Any, applied: list[Obj]) -> Obj:
    """Namespace tenant-a with a minimal v1 PipelineRun, a Secret and a ConfigMap, as admin."""
    core = core_api(admin)
    ignoring(409, core.create_namespace, {"metadata": {"name": TENANT}})
    for create, body in (
        (
            core.create_namespaced_secret,
            {"metadata": {"name": "deploy-rbac-secret"}, "stringData": {"token": "s3cr3t"}},
        ),
        (core.create_namespaced_config_map, {"metadata": {"name": "deploy-rbac-config"}}),
    ):
        ignoring(409, create, TENANT, body)
    custom = custom_api(admin)
    pipeline_run = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PipelineRun",
        "metadata": {"name": RUN_NAME},
        "spec": {"pipelineRef": {"name": "build"}},
    }
    ignoring(
        409, custom.create_namespaced_custom_object, GROUP, VERSION, TENANT, "pipelineruns", pipeline_run
    )
    result: Obj = custom.get_namespaced_custom_object(GROUP, VERSION, TENANT, "pipelineruns", RUN_NAME)
    return result


@pytest.fixture(scope="module")
def impersonating(kubeconfig: Path) -> Iterator[dict[str, Any]]:
    """One API client per function, each acting as that function's ServiceAccount."""
    clients = {}
    for name in FUNCTIONS:
        api = config.new_client_from_config(config_file=str(kubeconfig))
        api.set_default_header("Impersonate-User", account(name))
        clients[name] = api
    yield clients
    for api in clients.values():
        api.close()


def test_every_rendered_object_is_accepted_and_stored(admin_kubectl: list[str], applied: list[Obj]) -> None:
    for obj in applied:
        args = [*admin_kubectl, "get", obj["kind"].lower(), obj["metadata"]["name"], "-o", "json"]
        if obj["kind"] in ("Service", "Trigger", "Broker"):
            group = obj["apiVersion"].split("/")[0]
            args[len(admin_kubectl) + 1] = f"{obj['kind'].lower()}s.{group}"
        if "namespace" in obj["metadata"]:
            args += ["-n", obj["metadata"]["namespace"]]
        done = run(args)
        assert done.returncode == 0, f"{ident(obj)} is not on the server: {done.stderr}"
        stored = json.loads(done.stdout)
        # Nothing pruned or rewritten: all that was sent is stored as sent (defaults may be added).
        lost = pruned({k: v for k, v in obj.items() if k != "metadata"}, stored)
        assert not lost, f"{ident(obj)}: the server did not keep {lost}"


def test_secret_templates_are_accepted(admin_kubectl: list[str], applied: list[Obj]) -> None:
    files = [arg for path in SECRET_TEMPLATES for arg in ("-f", str(path))]
    done = run([*admin_kubectl, "apply", "--dry-run=server", *files])
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("(server dry run)") == len(SECRET_TEMPLATES)


def test_config_events_patch_sets_the_sink_and_keeps_tektons_keys(
    admin: Any, admin_kubectl: list[str]
) -> None:
    core = core_api(admin)
    ignoring(409, core.create_namespace, {"metadata": {"name": "tekton-pipelines"}})
    # config-events as Tekton's release ships it (config/config-events.yaml): empty sink.
    shipped: Obj = {
        "metadata": {"name": "config-events", "labels": {"app.kubernetes.io/part-of": "tekton-pipelines"}},
        "data": {"_example": "# sink: https://example.com/events\n", "formats": "tektonv1", "sink": ""},
    }
    ignoring(404, core.delete_namespaced_config_map, "config-events", "tekton-pipelines")
    core.create_namespaced_config_map("tekton-pipelines", shipped)
    done = run(
        [
            *admin_kubectl,
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
    patched = core.read_namespaced_config_map("config-events", "tekton-pipelines")
    assert patched.data["sink"] == (
        f"http://broker-ingress.knative-eventing.svc.cluster.local/{NAMESPACE}/default"
    )
    assert patched.data["formats"] == "tektonv1"
    assert patched.data["_example"] == shipped["data"]["_example"], "Tekton's other keys survive"
    assert patched.metadata.labels == shipped["metadata"]["labels"]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_access_reviews(
    impersonating: dict[str, Any], applied: list[Obj], tenant_run: Obj, name: str
) -> None:
    # SelfSubjectAccessReview sent AS the ServiceAccount (Impersonate-User), in a tenant namespace.
    api = impersonating[name]
    wrongly_denied = [a for a in allowed(name) if not may(api, TENANT, a)]
    wrongly_allowed = [a for a in denied(name) if may(api, TENANT, a)]
    assert not wrongly_denied, f"{name} cannot {wrongly_denied}"
    assert not wrongly_allowed, f"{name} can {wrongly_allowed}"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_rules_review_grants_nothing_else(
    impersonating: dict[str, Any], applied: list[Obj], tenant_run: Obj, name: str
) -> None:
    # SelfSubjectRulesReview: everything the ServiceAccount may do in the tenant namespace.
    # Beyond our ClusterRole, only what Kubernetes grants every authenticated user
    # (system:basic-user: self-subject reviews) may appear.
    rules = granted(impersonating[name], TENANT)
    expected = {
        (verb, group, f"{resource}/{sub}" if sub else resource)
        for verb, group, resource, sub in allowed(name)
    }
    assert expected <= rules, expected - rules
    assert rules - expected <= EVERY_USER, rules - expected - EVERY_USER


@pytest.mark.parametrize("name", FUNCTIONS)
def test_real_requests_as_the_service_account(
    impersonating: dict[str, Any], tenant_run: Obj, name: str
) -> None:
    api = impersonating[name]
    runs = custom_api(api)
    core = core_api(api)
    key = f"{name}.integrations.tekton.dev/status"

    # Allowed: read the run, write its record with a merge patch guarded by resourceVersion.
    live = runs.get_namespaced_custom_object(GROUP, VERSION, TENANT, "pipelineruns", RUN_NAME)
    record = json.dumps({"name": f"{name}.integrations.tekton.dev", "observedGeneration": 1})
    patched = runs.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        TENANT,
        "pipelineruns",
        RUN_NAME,
        {
            "metadata": {
                "resourceVersion": live["metadata"]["resourceVersion"],
                "annotations": {key: record},
            }
        },
    )
    assert patched["metadata"]["annotations"][key] == record
    assert isinstance(runs.list_namespaced_custom_object(GROUP, VERSION, TENANT, "taskruns")["items"], list)
    # Allowed: a Kubernetes Event on the run.
    core.create_namespaced_event(
        TENANT,
        {
            "metadata": {"generateName": f"{RUN_NAME}."},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "PipelineRun",
                "namespace": TENANT,
                "name": RUN_NAME,
                "uid": live["metadata"]["uid"],
            },
            "reason": "IntegrationFailed",
            "message": "test event",
            "type": "Warning",
        },
    )

    # Denied, each with 403 Forbidden (not 404: authorization comes first).
    denied = {
        "read a secret": lambda: core.read_namespaced_secret("deploy-rbac-secret", TENANT),
        "list secrets": lambda: core.list_namespaced_secret(TENANT),
        "delete the run": lambda: runs.delete_namespaced_custom_object(
            GROUP, VERSION, TENANT, "pipelineruns", RUN_NAME
        ),
        "replace the run": lambda: runs.replace_namespaced_custom_object(
            GROUP, VERSION, TENANT, "pipelineruns", RUN_NAME, live
        ),
        "patch run status": lambda: runs.patch_namespaced_custom_object_status(
            GROUP, VERSION, TENANT, "pipelineruns", RUN_NAME, {"status": {}}
        ),
        "patch a configmap": lambda: core.patch_namespaced_config_map(
            "deploy-rbac-config", TENANT, {"data": {"x": "y"}}
        ),
        "patch a pod": lambda: core.patch_namespaced_pod(
            "any-pod", TENANT, {"metadata": {"labels": {"x": "y"}}}
        ),
        "read its own namespace's secrets": lambda: core.list_namespaced_secret(NAMESPACE),
    }
    for what, attempt in denied.items():
        with pytest.raises(ApiException) as raised:
            attempt()
        assert raised.value.status == 403, f"{name} could {what}: HTTP {raised.value.status}"


def test_kubectl_auth_can_i_agrees(admin_kubectl: list[str], applied: list[Obj]) -> None:
    # The check an operator would run by hand (docs/deploy.md).
    as_github = [*admin_kubectl, "auth", "can-i", f"--as={account('github')}", "-n", TENANT]
    assert run([*as_github, "patch", "pipelineruns.tekton.dev"]).stdout.strip() == "yes"
    assert run([*as_github, "get", "secrets"]).stdout.strip() == "no"
    assert run([*as_github, "delete", "pipelineruns.tekton.dev"]).stdout.strip() == "no"
