"""Every object knative/ renders (plus the Secret templates and Tekton's config-events patch)
validates against its schema, with unknown fields rejected:

- Knative kinds against the CRDs' openAPIV3Schema in ../shared/knative/crds (offline);
- built-in kinds, and every object's metadata, against the OpenAPI v2 document served by a real
  kube-apiserver (realkube's /openapi/v2), the schemas the API server itself validates with.

Each validator is first shown to reject a broken object, so a pass means something.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft7Validator

from tests.deploy.manifests import (
    KNATIVE_DIR,
    SECRET_TEMPLATES,
    Obj,
    by_kind,
    crd_schema,
    gvk_index,
    ident,
    knative_crds,
    load_yaml_objects,
    schema_errors,
    split_api_version,
    swagger_definitions,
)

KNATIVE_GROUPS = {"serving.knative.dev", "eventing.knative.dev"}
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def extra_objects() -> list[Obj]:
    """What is applied by hand: Secret templates and the patch to Tekton's config-events."""
    return load_yaml_objects(
        *SECRET_TEMPLATES,
        KNATIVE_DIR / "tekton" / "config-events.yaml",
    )


@pytest.fixture(scope="module")
def crd_validators() -> dict[tuple[str, str, str], Draft7Validator]:
    validators = {}
    for (group, kind), crd in knative_crds().items():
        for version in crd["spec"]["versions"]:
            schema = crd_schema(crd, version["name"])
            Draft7Validator.check_schema(schema)
            validators[(group, version["name"], kind)] = Draft7Validator(schema)
    return validators


def knative_validator(validators: dict[tuple[str, str, str], Draft7Validator], obj: Obj) -> Draft7Validator:
    group, version = split_api_version(obj["apiVersion"])
    key = (group, version, obj["kind"])
    assert key in validators, f"{ident(obj)}: no CRD in ../shared/knative/crds serves {key}"
    return validators[key]


def test_knative_objects_match_their_crds(
    rendered: list[Obj], crd_validators: dict[tuple[str, str, str], Draft7Validator]
) -> None:
    knative = [o for o in rendered if split_api_version(o["apiVersion"])[0] in KNATIVE_GROUPS]
    assert {o["kind"] for o in knative} == {"Service", "Trigger", "Broker"}
    errors = [e for o in knative for e in schema_errors(knative_validator(crd_validators, o), o)]
    assert not errors, "\n".join(errors)


def test_crd_validation_rejects_unknown_and_mistyped_fields(
    rendered: list[Obj], crd_validators: dict[tuple[str, str, str], Draft7Validator]
) -> None:
    service = copy.deepcopy(by_kind(rendered, "Service")["github"])
    spec = service["spec"]["template"]["spec"]
    spec["containerConcurency"] = spec.pop("containerConcurrency")  # typo: pruned by a server
    spec["containers"][0]["readinessProbe"]["tcpSocket"]["prot"] = 8080
    errors = list(schema_errors(knative_validator(crd_validators, service), service))
    assert any("containerConcurency" in e for e in errors), errors
    assert any("prot" in e for e in errors), errors

    broker = copy.deepcopy(by_kind(rendered, "Broker")["default"])
    broker["spec"]["delivery"]["retry"] = "8"
    broker["spec"]["delivery"]["deadLetterSink"]["reff"] = {}
    errors = list(schema_errors(knative_validator(crd_validators, broker), broker))
    assert any("'8' is not of type 'integer'" in e for e in errors), errors
    assert any("reff" in e for e in errors), errors


@pytest.fixture(scope="module")
def builtin_definitions(openapi_v2: Any) -> Obj:
    return swagger_definitions(openapi_v2)


def builtin_validator(definitions: Obj, definition: str) -> Draft7Validator:
    return Draft7Validator({"$ref": f"#/definitions/{definition}", "definitions": definitions})


def test_builtin_objects_and_all_metadata_match_the_api_servers_schemas(
    rendered: list[Obj], builtin_definitions: Obj
) -> None:
    index = gvk_index(builtin_definitions)
    meta = builtin_validator(builtin_definitions, OBJECT_META)
    errors: list[str] = []
    checked = set()
    for obj in [*rendered, *extra_objects()]:
        errors += [f"{ident(obj)}: metadata: {e.message}" for e in meta.iter_errors(obj["metadata"])]
        group, version = split_api_version(obj["apiVersion"])
        if group in KNATIVE_GROUPS:
            continue
        definition = index.get((group, version, obj["kind"]))
        assert definition, f"{ident(obj)}: the API server has no schema for it"
        errors += schema_errors(builtin_validator(builtin_definitions, definition), obj)
        checked.add(obj["kind"])
    assert not errors, "\n".join(errors)
    assert checked >= {
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Secret",
    }


def test_builtin_validation_rejects_unknown_and_mistyped_fields(
    rendered: list[Obj], builtin_definitions: Obj
) -> None:
    index = gvk_index(builtin_definitions)
    role = copy.deepcopy(by_kind(rendered, "ClusterRole")["tekton-integrations-runs"])
    role["rules"][0]["verb"] = ["get"]  # typo: `verbs`
    role["rules"][1]["resources"] = "events"  # not a list
    definition = index[("rbac.authorization.k8s.io", "v1", "ClusterRole")]
    errors = list(schema_errors(builtin_validator(builtin_definitions, definition), role))
    assert any("'verb'" in e for e in errors), errors
    assert any("'events' is not of type 'array'" in e for e in errors), errors
    meta = builtin_validator(builtin_definitions, OBJECT_META)
    assert list(meta.iter_errors({"name": "x", "label": {}})), "unknown metadata field accepted"
