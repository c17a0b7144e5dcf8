"""What every Knative Service and Trigger of a tree must satisfy, whichever tree renders it.

Knative's own admission webhook is not available here, so the rules it would enforce on a
Service (one port named http1 or h2c, no PORT variable, read-only secret mounts, probe port =
container port) are checked explicitly, next to this project's own: THREADS =
containerConcurrency, TCP probes, requests and limits, hardening, secrets as files, a Trigger
with Tekton's event types, retries and the dead-letter sink. Used by test_kustomize.py
(``knative/``) and test_single_service.py (``knative/single-service/``).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.deploy.manifests import IMAGE_PLACEHOLDER, Obj, by_kind, container, env_of

SECRETS_ROOT = "/var/run/secrets/tekton-integrations/"
POLICY_FILE = "/etc/tekton-integrations/policy/policy.yaml"
TEMPLATES = ("tekton-integrations-templates", "/etc/tekton-integrations/templates")
"""The operator's templates: a ConfigMap they create (not generated), mounted optional."""
TEKTON_PREFIX = "dev.tekton.event."


def service_contract(rendered: list[Obj], name: str, source: str) -> None:
    """The Service ``name`` runs ``source`` and keeps Knative's and this project's rules."""
    service = by_kind(rendered, "Service")[name]
    template = service["spec"]["template"]
    spec = template["spec"]
    ctr = container(service)
    env = env_of(service)

    # the function it runs
    assert env["FUNCTION_SOURCE"]["value"] == source
    assert env["FUNCTION_TARGET"]["value"] == "handle"
    assert env["TI_POLICY_FILE"]["value"] == POLICY_FILE
    # concurrency: the queue-proxy admits no more requests than there are threads
    assert int(env["THREADS"]["value"]) == spec["containerConcurrency"] > 0
    assert env["WORKERS"]["value"] == "1"
    # scale bounds
    annotations = template["metadata"]["annotations"]
    low = int(annotations["autoscaling.knative.dev/min-scale"])
    high = int(annotations["autoscaling.knative.dev/max-scale"])
    assert 0 <= low <= high, (low, high)
    # identity
    assert spec["serviceAccountName"] == name
    assert name in by_kind(rendered, "ServiceAccount")
    # Knative's serving-container rules: one port, named http1 (or h2c), PORT is injected
    ports = ctr["ports"]
    assert len(ports) == 1
    assert ports[0]["name"] in ("http1", "h2c")
    assert "PORT" not in env, "PORT is reserved: Knative sets it"
    # probes: TCP on the serving port (functions-framework answers GET with 405)
    port = ports[0]["containerPort"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert ctr[probe]["tcpSocket"]["port"] in (port, ports[0]["name"]), probe
        assert "httpGet" not in ctr[probe]
    assert ctr["readinessProbe"].get("successThreshold", 1) >= 1
    # requests and limits
    for bound in ("requests", "limits"):
        assert set(ctr["resources"][bound]) >= {"cpu", "memory"}, bound
    # hardening
    ctx = ctr["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert env["TMPDIR"]["value"].startswith("/dev/shm"), "writable scratch on a read-only root"
    # the bare placeholder, so that one `images:` entry named after it repoints every Service
    assert ctr["image"] == IMAGE_PLACEHOLDER


def service_volumes_and_references(rendered: list[Obj], name: str) -> None:
    """Every volume is mounted read-only; secrets only as files under the root; every reference resolves."""
    service = by_kind(rendered, "Service")[name]
    spec = service["spec"]["template"]["spec"]
    ctr = container(service)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["name"]: m for m in ctr.get("volumeMounts", [])}
    assert set(volumes) == set(mounts), "Knative rejects a volume that is not mounted"
    config_maps = by_kind(rendered, "ConfigMap")
    for vol_name, volume in volumes.items():
        mount = mounts[vol_name]
        assert mount["readOnly"] is True, f"{vol_name}: Knative requires read-only mounts"
        if "secret" in volume:
            # secrets as files, under the documented root, never as environment variables
            assert mount["mountPath"].startswith(SECRETS_ROOT), mount["mountPath"]
            assert volume["secret"]["secretName"] == vol_name
        elif (volume["configMap"]["name"], mount["mountPath"]) == TEMPLATES:
            assert volume["configMap"]["optional"] is True, "a Service without templates must start"
            assert env_of(service)["TI_TEMPLATES_DIR"]["value"] == TEMPLATES[1]
        else:
            assert volume["configMap"]["name"] in config_maps, vol_name
            assert mount["mountPath"] == str(Path(POLICY_FILE).parent)
    for var in container(service).get("env", []):
        source = var.get("valueFrom", {})
        assert "secretKeyRef" not in source, f"{var['name']}: secrets are mounted as files"
        if "configMapKeyRef" in source:
            assert source["configMapKeyRef"]["name"] in config_maps, var["name"]
        elif var["name"].endswith(("_FILE", "_DIR")):  # a path the manifests set, not the operator
            assert any(var["value"].startswith(m["mountPath"]) for m in mounts.values()), (
                f"{var['name']}={var['value']} is not under a mounted volume"
            )


def trigger_contract(rendered: list[Obj], name: str) -> None:
    """The Trigger ``name`` sends Tekton's run events to the Service ``name``, retries, then dead-letters."""
    trigger = by_kind(rendered, "Trigger")[name]
    spec = trigger["spec"]
    assert spec["broker"] in by_kind(rendered, "Broker")
    # the new `filters` dialect only, and only Tekton's event types
    assert "filter" not in spec, "legacy attribute filter"
    assert spec["filters"], "filters"
    for expression in spec["filters"]:
        (dialect,) = expression
        assert dialect in ("prefix", "exact"), dialect
        (attribute, value) = next(iter(expression[dialect].items()))
        assert attribute == "type"
        assert value.startswith(TEKTON_PREFIX), value
    # delivered to this function's Service
    ref = spec["subscriber"]["ref"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("serving.knative.dev/v1", "Service", name)
    # retries with exponential backoff, then the dead-letter receiver
    delivery = spec["delivery"]
    assert delivery["retry"] >= 3
    assert delivery["backoffPolicy"] == "exponential"
    assert re.fullmatch(r"PT\d+(\.\d+)?S", delivery["backoffDelay"]), delivery["backoffDelay"]
    sink = delivery["deadLetterSink"]["ref"]
    assert (sink["apiVersion"], sink["kind"], sink["name"]) == (
        "serving.knative.dev/v1",
        "Service",
        "deadletter",
    )
