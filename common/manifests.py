"""Knative manifests derived from an integration's declaration: nothing about them is written by hand.

Owns turning a declaration into its Service, Trigger, ServiceAccount, ClusterRoleBinding and
Secret template. No I/O except ``write``. What each comes from:

- the name: every object's name, the component label, the Trigger's subscriber;
- the settings model: each ``SecretStr`` field is a key of the Secret ``<name>-credentials``,
  mounted at ``/var/run/secrets/tekton-integrations/<name>/`` and named by ``<VARIABLE>_FILE``; a
  ``SecretDirectory`` field is that mount itself; every other field is an optional key of the
  ConfigMap ``tekton-integrations-settings`` (absent: the field's default);
- ``Integration.min_scale``: whether a replica is kept warm;
- the declaring module's docstring: the comment that heads the files.

``tekton-integrations manifests --write knative/integrations`` writes one folder per installed
integration plus the index kustomization; a deploy test fails when the committed tree differs.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from common import registry
from common.integration import Integration
from common.settings import SECRET_DIRECTORY, RuntimeSettings, ServiceSettings

Obj = dict[str, Any]
NAMESPACE = "tekton-integrations"
PART_OF = "tekton-integrations"
SECRETS_ROOT = "/var/run/secrets/tekton-integrations"
POLICY_DIR = "/etc/tekton-integrations/policy"
SETTINGS_MAP = "tekton-integrations-settings"
POLICY_MAP = "tekton-integrations-policy"
IMAGE = "tekton-integrations"
"""Placeholder image: one kustomize ``images:`` entry points every Service at a build."""
THREADS = 8
CLUSTER_ROLE = "tekton-integrations-runs"
DEAD_LETTER_SERVICE = "deadletter"
GENERIC_TARGET = "common/target.py"
FILES = ("kustomization.yaml", "service.yaml", "trigger.yaml", "rbac.yaml", "secret.example.yaml")


def labels(name: str) -> Obj:
    return {"app.kubernetes.io/name": PART_OF, "app.kubernetes.io/component": name}


def secret_name(name: str) -> str:
    return f"{name}-credentials"


def secret_key(field: str) -> str:
    """The Secret key (and file name) of a settings field: ``app_private_key`` is ``app-private-key``."""
    return field.replace("_", "-")


def secret_fields(settings: type[ServiceSettings]) -> list[str]:
    return [name for name, info in settings.model_fields.items() if _is_secret(info.annotation)]


def directory_fields(settings: type[ServiceSettings]) -> list[str]:
    return [name for name, info in settings.model_fields.items() if SECRET_DIRECTORY in info.metadata]


def source_of(name: str) -> str:
    """``FUNCTION_SOURCE``: the folder's ``main.py``, or the generic target for an installed package."""
    root = registry.functions_root()
    folder = registry.folder_of(name)
    if root is not None and (root / folder / "main.py").is_file():
        return f"functions/{folder}/main.py"
    return GENERIC_TARGET


def service(integration: Integration[Any, Any], source: str) -> Obj:
    """The Knative Service running ``source`` (``functions/<name>/main.py``) for ``integration``."""
    name = integration.name
    settings = integration.settings
    mount = f"{SECRETS_ROOT}/{name}"
    env: list[Obj] = [
        {"name": "FUNCTION_SOURCE", "value": source},
        {"name": "FUNCTION_TARGET", "value": "handle"},
        {"name": "THREADS", "value": str(THREADS)},
        {"name": "WORKERS", "value": "1"},
        {"name": "TMPDIR", "value": "/dev/shm"},  # noqa: S108 -- the container's own tmpfs: gunicorn's heartbeat on a read-only root
        {"name": "TI_POLICY_FILE", "value": f"{POLICY_DIR}/policy.yaml"},
        _from_settings(RuntimeSettings.variable("dashboard_url")),
    ]
    if source == GENERIC_TARGET:
        env.append({"name": registry.TARGET_ENV, "value": name})
    secrets = secret_fields(settings)
    directories = directory_fields(settings)
    for field in settings.model_fields:
        variable = settings.variable(field)
        if field in secrets:
            env.append({"name": f"{variable}_FILE", "value": f"{mount}/{secret_key(field)}"})
        elif field in directories:
            env.append({"name": variable, "value": mount})
        else:
            env.append(_from_settings(variable))
    container: Obj = {**copy.deepcopy(_CONTAINER), "env": env}
    volumes: list[Obj] = [{"name": "policy", "configMap": {"name": POLICY_MAP, "optional": True}}]
    mounts: list[Obj] = [{"name": "policy", "mountPath": POLICY_DIR, "readOnly": True}]
    if secrets or directories:
        volumes.append(
            {
                "name": secret_name(name),
                # defaultMode 0444: readable by the non-root user; Knative allows fsGroup only behind a flag
                "secret": {"secretName": secret_name(name), "defaultMode": 0o444, "optional": True},
            }
        )
        mounts.append({"name": secret_name(name), "mountPath": mount, "readOnly": True})
    container["volumeMounts"] = mounts
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "labels": {**labels(name), "networking.knative.dev/visibility": "cluster-local"},
        },
        "spec": {
            "template": {
                "metadata": {
                    "labels": labels(name),
                    "annotations": {
                        "autoscaling.knative.dev/min-scale": str(integration.min_scale),
                        "autoscaling.knative.dev/max-scale": "5",
                    },
                },
                "spec": {
                    "serviceAccountName": name,
                    "containerConcurrency": THREADS,
                    "timeoutSeconds": 60,
                    "containers": [container],
                    "volumes": volumes,
                },
            }
        },
    }


def trigger(name: str) -> Obj:
    """Every Tekton run event to the integration; after the retries, the dead-letter receiver."""
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": {"name": name, "labels": labels(name)},
        "spec": {
            "broker": "default",
            "filters": [{"prefix": {"type": "dev.tekton.event."}}],
            "subscriber": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": name}},
            "delivery": {
                "retry": 8,
                "backoffPolicy": "exponential",
                "backoffDelay": "PT1S",
                "deadLetterSink": {
                    "ref": {
                        "apiVersion": "serving.knative.dev/v1",
                        "kind": "Service",
                        "name": DEAD_LETTER_SERVICE,
                    }
                },
            },
        },
    }


def rbac(name: str) -> list[Obj]:
    """Its own ServiceAccount, bound to the shared least-privilege ClusterRole."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "labels": labels(name)}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{PART_OF}-{name}", "labels": labels(name)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
        },
    ]


def secret_template(integration: Integration[Any, Any]) -> Obj | None:
    """The Secret the function reads its credentials from, with placeholders; ``None`` if it has none."""
    settings = integration.settings
    secrets = secret_fields(settings)
    directories = directory_fields(settings)
    if not secrets and not directories:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(integration.name),
            "namespace": NAMESPACE,
            "labels": labels(integration.name),
        },
        "type": "Opaque",
    }


def files(integration: Integration[Any, Any], source: str) -> dict[str, str]:
    """The folder ``knative/integrations/<name>/``: file name -> YAML text."""
    name = integration.name
    head = _header(integration, source)
    out = {
        "kustomization.yaml": head
        + _dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": ["service.yaml", "trigger.yaml", "rbac.yaml"],
            }
        ),
        "service.yaml": head + _dump(service(integration, source)),
        "trigger.yaml": head + _dump(trigger(name)),
        "rbac.yaml": head + "---\n".join(_dump(obj) for obj in rbac(name)),
    }
    template = secret_template(integration)
    if template is not None:
        out["secret.example.yaml"] = (
            head
            + "# TEMPLATE: not applied by `kubectl apply -k knative/`. Fill it in outside the repository\n"
            + "# and apply it yourself, or:\n"
            + f"#   kubectl -n {NAMESPACE} create secret generic {secret_name(name)} --from-file=KEY=./FILE\n"
            + _dump(template)
            + "stringData:\n"
            + _secret_keys(integration)
        )
    return out


def index(names: list[str]) -> str:
    """``knative/integrations/kustomization.yaml``: one folder per installed integration."""
    return (
        "# Generated from the registry by `tekton-integrations manifests --write knative/integrations`.\n"
        + _dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": sorted(names),
            }
        )
    )


def write(directory: Path, tree: dict[str, dict[str, str]]) -> list[Path]:
    """Write ``tree`` (folder -> file -> text) and the index under ``directory``; the paths written.

    Folders of integrations that are no longer installed are left for the operator to remove.
    """
    written = []
    directory.mkdir(parents=True, exist_ok=True)
    for name, contents in tree.items():
        folder = directory / name
        folder.mkdir(exist_ok=True)
        for file, text in contents.items():
            (folder / file).write_text(text, encoding="utf-8")
            written.append(folder / file)
    (directory / "kustomization.yaml").write_text(index(list(tree)), encoding="utf-8")
    written.append(directory / "kustomization.yaml")
    return written


def _from_settings(variable: str) -> Obj:
    return {
        "name": variable,
        "valueFrom": {"configMapKeyRef": {"name": SETTINGS_MAP, "key": variable, "optional": True}},
    }


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


def _header(integration: Integration[Any, Any], source: str) -> str:
    summary = _summary(integration.declared_in) or f"the {integration.name} integration"
    return (
        f"# {integration.name}: {summary}\n"
        f"# Generated from {source} by `tekton-integrations manifests --write knative/integrations`:\n"
        "# change the declaration and regenerate, or patch it in an overlay.\n"
    )


def _summary(path: str) -> str:
    try:
        docstring = ast.get_docstring(ast.parse(Path(path).read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError):
        return ""
    return docstring.split("\n\n", 1)[0].replace("\n", " ").strip()


def _secret_keys(integration: Integration[Any, Any]) -> str:
    """The first credential as a placeholder to replace, the others commented out: a key present
    with a placeholder would be read as a credential, so uncomment only those the function uses."""
    settings = integration.settings
    entries = [
        (
            " ".join((settings.model_fields[field].description or settings.variable(field)).split()),
            secret_key(field),
        )
        for field in secret_fields(settings)
    ]
    if directory_fields(settings):
        entries.append(("one key per namespace, named after it, and `default` for the others", "default"))
    lines = []
    for index, (what, key) in enumerate(entries):
        lines.append(f"  # {what}")
        lines.append(f"  {key}: REPLACE-ME" if index == 0 else f"  # {key}: ...")
    return "\n".join(lines) + "\n"


def _dump(obj: Obj) -> str:
    return yaml.safe_dump(obj, sort_keys=False, width=120)


_CONTAINER: Obj = {
    "name": "function",
    "image": IMAGE,
    "ports": [{"name": "http1", "containerPort": 8080}],
    "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
    # functions-framework answers only POST for a CloudEvent function (GET / is 405): TCP probes.
    "readinessProbe": {"tcpSocket": {"port": 8080}, "successThreshold": 1},
    "livenessProbe": {
        "tcpSocket": {"port": 8080},
        "periodSeconds": 10,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    },
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}
