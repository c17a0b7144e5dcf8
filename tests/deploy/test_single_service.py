"""`kubectl kustomize knative/single-service/` renders the single-Service option: one Service
`tekton-integrations` running `common/all.py` with every integration's settings and Secrets, one
Trigger, one ServiceAccount, on top of the same `knative/common` as the standalone tree.

The Service and Trigger keep the contracts every Service and Trigger keeps
(``tests/deploy/contracts.py``); the tree is what ``tekton-integrations manifests
--single-service`` derives from the registry; its objects validate against the real schemas; on
realkube it is accepted, and its ServiceAccount holds the same least privilege as a function's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from common import registry
from tests.deploy import contracts
from tests.deploy.manifests import (
    DEADLETTER,
    INTEGRATIONS,
    KNATIVE_DIR,
    NAMESPACE,
    SECRET_TEMPLATES,
    SINGLE_SERVICE,
    SINGLE_SERVICE_DIR,
    Obj,
    by_kind,
    container,
    crd_schema,
    env_of,
    gvk_index,
    ident,
    knative_crds,
    kustomize,
    load_yaml_objects,
    needed_roles,
    run,
    schema_errors,
    split_api_version,
    swagger_definitions,
)

SOURCE = "common/all.py"
SHARED_KINDS = ("Namespace", "ClusterRole", "Broker", "ConfigMap")


def test_renders_one_service_one_trigger_and_the_shared_objects(
    single_rendered: list[Obj], rendered: list[Obj]
) -> None:
    assert set(by_kind(single_rendered, "Service")) == {SINGLE_SERVICE, DEADLETTER}
    assert set(by_kind(single_rendered, "Trigger")) == {SINGLE_SERVICE}
    assert set(by_kind(single_rendered, "ServiceAccount")) == {SINGLE_SERVICE, DEADLETTER}
    assert not by_kind(single_rendered, "Secret"), "Secrets are created by hand"
    for obj in single_rendered:
        if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == NAMESPACE, ident(obj)
    # knative/common is the same in both trees: the same namespace, ClusterRole, Broker, dead-letter
    # receiver and ConfigMaps (same content, same hashed names).
    for kind in SHARED_KINDS:
        assert by_kind(single_rendered, kind) == by_kind(rendered, kind), kind
    assert by_kind(single_rendered, "Service")[DEADLETTER] == by_kind(rendered, "Service")[DEADLETTER]


def test_the_tree_is_derived_from_the_registry() -> None:
    """knative/single-service/ is what `tekton-integrations manifests --single-service --write` makes."""
    from common.cli.manifests import single_service

    contents, problems = single_service()
    assert not problems
    on_disk = {path.name for path in SINGLE_SERVICE_DIR.iterdir()}
    assert on_disk == set(contents)
    for file, text in contents.items():
        assert (SINGLE_SERVICE_DIR / file).read_text() == text, (
            f"knative/single-service/{file} is stale: run "
            "tekton-integrations manifests --single-service --write knative/single-service"
        )


def test_the_service_keeps_every_services_contract(single_rendered: list[Obj]) -> None:
    contracts.service_contract(single_rendered, SINGLE_SERVICE, SOURCE)
    contracts.service_volumes_and_references(single_rendered, SINGLE_SERVICE)
    contracts.trigger_contract(single_rendered, SINGLE_SERVICE)


def test_the_service_serves_every_integration_with_its_settings_and_secrets(
    single_rendered: list[Obj],
) -> None:
    service = by_kind(single_rendered, "Service")[SINGLE_SERVICE]
    env = env_of(service)
    names = [entry["name"] for entry in container(service)["env"]]
    assert len(names) == len(set(names)), "each variable once"
    assert env["TI_INTEGRATIONS"]["value"].split(",") == list(INTEGRATIONS)
    mounted = {m["mountPath"] for m in container(service)["volumeMounts"]}
    for name in INTEGRATIONS:
        integration = registry.load(name).integration
        assert integration is not None
        settings = integration.settings
        for field in settings.model_fields:
            variable = settings.variable(field)
            assert variable in env or f"{variable}_FILE" in env, f"{name}: {variable} is not set"
    for var in container(service)["env"]:
        if "value" in var and var["name"].endswith(("_FILE", "_DIR")):
            assert any(var["value"].startswith(path) for path in mounted), var
    templates = {secret["metadata"]["name"] for secret in load_yaml_objects(*SECRET_TEMPLATES)}
    volumes = service["spec"]["template"]["spec"]["volumes"]
    secrets = {volume["secret"]["secretName"] for volume in volumes if "secret" in volume}
    assert secrets <= templates, "every mounted Secret has its template"
    assert secrets, "the integrations' Secrets are mounted"
    # github-issues uses the GitHub function's GITHUB_* settings: the first one's Secret serves both.
    assert env["GITHUB_TOKEN_FILE"]["value"].startswith("/var/run/secrets/tekton-integrations/github/")
    annotations = service["spec"]["template"]["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "1", "as warm as the warmest function"


def test_every_key_of_settings_env_is_read_by_the_service(single_rendered: list[Obj]) -> None:
    written = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (KNATIVE_DIR / "config/settings.env").read_text(), re.M)
    )
    service = by_kind(single_rendered, "Service")[SINGLE_SERVICE]
    read = {
        var["valueFrom"]["configMapKeyRef"]["key"]
        for var in container(service)["env"]
        if "configMapKeyRef" in var.get("valueFrom", {})
    }
    assert written <= read, sorted(written - read)


def test_its_service_account_is_bound_to_what_its_integrations_need_together(
    single_rendered: list[Obj],
) -> None:
    subjects = sorted(
        subject["name"]
        for binding in by_kind(single_rendered, "ClusterRoleBinding").values()
        for subject in binding["subjects"]
        if binding["roleRef"]["name"] == "tekton-integrations-runs"
    )
    assert subjects == sorted([SINGLE_SERVICE, DEADLETTER])
    assert not by_kind(single_rendered, "RoleBinding")
    bound = {
        binding["roleRef"]["name"]
        for binding in by_kind(single_rendered, "ClusterRoleBinding").values()
        if any(subject["name"] == SINGLE_SERVICE for subject in binding["subjects"])
    }
    assert bound == set().union(*(needed_roles(name) for name in INTEGRATIONS))
    assert "tekton-integrations-step-logs" in bound


@pytest.mark.parametrize("prefix", ["", "ti-"])
def test_an_overlay_can_rename_it_and_the_dead_letter_receiver_still_knows_it(
    kubectl: str, tmp_path: Path, prefix: str
) -> None:
    from common.deadletter import failing_integration, from_the_single_service

    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(SINGLE_SERVICE_DIR, tmp_path)],
                "namePrefix": prefix,
                "images": [{"name": "tekton-integrations", "newName": "ghcr.io/acme/ti", "newTag": "1"}],
            }
        )
    )
    objects = kustomize(kubectl, tmp_path)
    services = by_kind(objects, "Service")
    (trigger,) = by_kind(objects, "Trigger").values()
    subscriber = trigger["spec"]["subscriber"]["ref"]["name"]
    assert subscriber == f"{prefix}{SINGLE_SERVICE}"
    assert subscriber in services
    assert trigger["spec"]["delivery"]["deadLetterSink"]["ref"]["name"] == f"{prefix}{DEADLETTER}"
    assert services[subscriber]["spec"]["template"]["spec"]["serviceAccountName"] in by_kind(
        objects, "ServiceAccount"
    )
    for service in services.values():
        assert container(service)["image"] == "ghcr.io/acme/ti:1"
    address = f"http://{subscriber}.{NAMESPACE}.svc.cluster.local"
    assert from_the_single_service(address)
    assert failing_integration(address) is None, "no integration is named after it"


# -- schemas ---------------------------------------------------------------------------------


def test_its_knative_objects_match_their_crds(single_rendered: list[Obj]) -> None:
    validators = {}
    for (group, kind), crd in knative_crds().items():
        for version in crd["spec"]["versions"]:
            validators[(group, version["name"], kind)] = Draft7Validator(crd_schema(crd, version["name"]))
    errors: list[str] = []
    for obj in single_rendered:
        group, version = split_api_version(obj["apiVersion"])
        if group in ("serving.knative.dev", "eventing.knative.dev"):
            errors += schema_errors(validators[(group, version, obj["kind"])], obj)
    assert not errors, "\n".join(errors)


def test_its_builtin_objects_match_the_api_servers_schemas(
    single_rendered: list[Obj], openapi_v2: Any
) -> None:
    definitions = swagger_definitions(openapi_v2)
    index = gvk_index(definitions)
    errors: list[str] = []
    for obj in single_rendered:
        group, version = split_api_version(obj["apiVersion"])
        if group in ("serving.knative.dev", "eventing.knative.dev"):
            continue
        definition = index[(group, version, obj["kind"])]
        validator = Draft7Validator({"$ref": f"#/definitions/{definition}", "definitions": definitions})
        errors += schema_errors(validator, obj)
    assert not errors, "\n".join(errors)


# -- on a real API server ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def applied_single(admin_kubectl: list[str], single_rendered: list[Obj]) -> Iterator[list[Obj]]:
    """`kubectl apply -k knative/single-service/` on realkube; what only this tree adds is deleted
    afterwards (the shared realkube also holds the standalone tree, which other tiers check)."""
    done = run([*admin_kubectl, "apply", "-k", str(SINGLE_SERVICE_DIR)], timeout=180)
    assert done.returncode == 0, f"kubectl apply -k knative/single-service/ was refused:\n{done.stderr}"
    yield single_rendered
    own = [
        arg
        for file in ("service.yaml", "trigger.yaml", "rbac.yaml")
        for arg in ("-f", str(SINGLE_SERVICE_DIR / file))
    ]
    run([*admin_kubectl, "delete", "-n", NAMESPACE, "--ignore-not-found", "--wait=false", *own], timeout=120)


def test_it_is_accepted_by_a_real_api_server(admin_kubectl: list[str], applied_single: list[Obj]) -> None:
    done = run(
        [*admin_kubectl, "get", "services.serving.knative.dev", SINGLE_SERVICE, "-n", NAMESPACE, "-o", "json"]
    )
    assert done.returncode == 0, done.stderr
    done = run([*admin_kubectl, "get", "triggers.eventing.knative.dev", SINGLE_SERVICE, "-n", NAMESPACE])
    assert done.returncode == 0, done.stderr


def test_its_service_account_has_a_functions_least_privilege(
    admin_kubectl: list[str], applied_single: list[Obj]
) -> None:
    account = f"system:serviceaccount:{NAMESPACE}:{SINGLE_SERVICE}"
    can_i = [*admin_kubectl, "auth", "can-i", f"--as={account}", "-n", "tenant-a"]
    assert run([*can_i, "patch", "pipelineruns.tekton.dev"]).stdout.strip() == "yes"
    assert run([*can_i, "get", "taskruns.tekton.dev"]).stdout.strip() == "yes"
    assert run([*can_i, "create", "events"]).stdout.strip() == "yes"
    for denied in (["get", "secrets"], ["delete", "pipelineruns.tekton.dev"], ["patch", "configmaps"]):
        assert run([*can_i, *denied]).stdout.strip() == "no", denied
