"""Helpers for the deployment tests: find the tools, render knative/, and build strict validators.

Tools are looked up beside the test interpreter first (``scripts/install-test-tools`` pip-installs
kubectl and hadolint into the project's virtualenv), then on PATH; ``KUBECTL``/``HADOLINT`` name
a binary explicitly. A missing tool makes the calling test skip (or fail in CI) through
``tests.support.tiers.unavailable``.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from common import registry
from common.config import ShowsStepLogs
from tests.support.tiers import REPO_ROOT, require_shared, unavailable

KNATIVE_DIR = REPO_ROOT / "knative"
SINGLE_SERVICE_DIR = KNATIVE_DIR / "single-service"
"""The single-Service option: one Service for every integration, on top of knative/common."""
SINGLE_SERVICE = "tekton-integrations"
NAMESPACE = "tekton-integrations"
INTEGRATIONS = tuple(registry.names())
"""Every installed integration: each has a Service, a Trigger and a ServiceAccount (from the registry)."""
assert INTEGRATIONS, "the registry found no integration: the manifest checks would check nothing"
DEADLETTER = "deadletter"
"""The runtime's dead-letter receiver: a Service, no Trigger."""
FUNCTIONS = (*INTEGRATIONS, DEADLETTER)


def service_file(name: str) -> Path:
    """Where the Knative Service of a function is: generated per integration, or the runtime's."""
    if name == DEADLETTER:
        return KNATIVE_DIR / "deadletter" / "service.yaml"
    return KNATIVE_DIR / "integrations" / name / "service.yaml"


SERVICE_FILES = tuple(service_file(name) for name in FUNCTIONS)
SECRET_TEMPLATES = tuple(sorted((KNATIVE_DIR / "integrations").glob("*/secret.example.yaml")))
"""Applied by hand, filled in, never by ``kubectl apply -k knative/``."""


def source_of(name: str) -> str:
    """The ``FUNCTION_SOURCE`` of a function, relative to the repository (and site-packages)."""
    return "common/deadletter.py" if name == DEADLETTER else f"functions/{registry.folder_of(name)}/main.py"


RUNS_ROLE = "tekton-integrations-runs"
STEP_LOGS_ROLE = "tekton-integrations-step-logs"
COORDINATION_ROLE = "tekton-integrations-coordination"
EXTRA_ROLES = {
    STEP_LOGS_ROLE: [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}],
    COORDINATION_ROLE: [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update", "patch"],
        }
    ],
}
"""The ClusterRoles besides the runs role, each bound only to the functions whose declaration needs it."""


def needed_roles(name: str) -> set[str]:
    """What a function's declaration says it needs, read here from the declaration itself."""
    if name == DEADLETTER:
        return {RUNS_ROLE}
    integration = registry.load(name).integration
    assert integration is not None, name
    needed = {RUNS_ROLE}
    if issubclass(integration.config, ShowsStepLogs):
        needed.add(STEP_LOGS_ROLE)
    if integration.coordinates_across_runs:
        needed.add(COORDINATION_ROLE)
    return needed


IMAGE_PLACEHOLDER = "tekton-integrations"
INSTALL_HINT = "run scripts/install-test-tools"

Obj = dict[str, Any]


def find_tool(name: str) -> str:
    """The path of ``name`` (kubectl, hadolint), or skip/fail the calling test."""
    explicit = os.environ.get(name.upper())
    if explicit:
        if not os.access(explicit, os.X_OK):
            unavailable(f"{name.upper()}={explicit} is not an executable: {INSTALL_HINT}")
        return explicit
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed: {INSTALL_HINT}")
    return found


def run(
    args: list[str], *, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output; never raises on a non-zero exit."""
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )


def kustomize(kubectl: str, path: Path) -> list[Obj]:
    """``kubectl kustomize path``, parsed; fails the test with kubectl's message on error."""
    done = run([kubectl, "kustomize", str(path)])
    assert done.returncode == 0, f"kubectl kustomize {path} failed:\n{done.stderr}"
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def load_yaml_objects(*paths: Path) -> list[Obj]:
    return [d for p in paths for d in yaml.safe_load_all(p.read_text()) if d]


def by_kind(objects: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def ident(obj: Obj) -> str:
    """``Kind/namespace/name`` (namespace omitted for cluster-scoped objects), for messages."""
    meta = obj["metadata"]
    ns = meta.get("namespace")
    return f"{obj['kind']}/{ns}/{meta['name']}" if ns else f"{obj['kind']}/{meta['name']}"


def container(service: Obj) -> Obj:
    containers = service["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{ident(service)}: expected one container"
    result: Obj = containers[0]
    return result


def env_of(service: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container(service).get("env", [])}


# --- strict JSON-schema validation ------------------------------------------------------------
#
# Kubernetes prunes (drops silently) a field its schema does not know, so a schema check that
# allows unknown fields would let a typo such as `containerConcurency` through, applied and
# ignored. These validators reject unknown fields, except where a schema says
# `x-kubernetes-preserve-unknown-fields`, as the API server's Strict field validation does.

_INT_OR_STRING: Obj = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
_QUANTITY: Obj = {"anyOf": [{"type": "integer"}, {"type": "number"}, {"type": "string"}]}


def strict(schema: Obj) -> Obj:
    """A copy of an OpenAPI (v2 or CRD v3) schema with unknown fields forbidden."""
    out = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        if node.get("nullable") is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for value in node.values():
            walk(value)

    walk(out)
    return out


def crd_schema(crd: Obj, version: str) -> Obj:
    """The strict schema of one served version of a CRD, with the implicit root fields added."""
    for v in crd["spec"]["versions"]:
        if v["name"] == version and v.get("served", False):
            schema: Obj = copy.deepcopy(v["schema"]["openAPIV3Schema"])
            props = schema.setdefault("properties", {})
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            props.setdefault("metadata", {"type": "object"})
            return strict(schema)
    raise AssertionError(f"{crd['metadata']['name']} does not serve {version}")


def knative_crds() -> dict[tuple[str, str], Obj]:
    """(group, kind) -> CRD, from ../shared/knative/crds."""
    crd_dir = require_shared() / "knative" / "crds"
    crds = load_yaml_objects(*sorted(crd_dir.glob("*.yaml")))
    assert crds, f"no CRDs in {crd_dir}"
    return {(c["spec"]["group"], c["spec"]["names"]["kind"]): c for c in crds}


def swagger_definitions(openapi_v2: Obj) -> Obj:
    """The API server's /openapi/v2 definitions, made strict, with its string-typed
    IntOrString and Quantity widened to the numbers YAML manifests legitimately use."""
    defs: Obj = strict(openapi_v2["definitions"])
    defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = _INT_OR_STRING
    defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = _QUANTITY
    return defs


def gvk_index(definitions: Obj) -> dict[tuple[str, str, str], str]:
    """(group, version, kind) -> definition name, from x-kubernetes-group-version-kind."""
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            index[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return index


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def schema_errors(validator: Any, obj: Obj) -> Iterator[str]:
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        path = "/".join(str(p) for p in error.absolute_path) or "<root>"
        yield f"{ident(obj)}: {path}: {error.message}"
