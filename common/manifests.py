"""Knative manifests derived from an integration's declaration: nothing about them is written by hand.

Owns turning a declaration into its Service, Trigger, ServiceAccount, ClusterRoleBinding and
Secret template, and every declaration together into the single-Service option's Service,
Trigger and ServiceAccount. No I/O except ``write``. What each comes from:

- the name: every object's name, the component label, the Trigger's subscriber;
- the settings model: each ``SecretStr`` field is a key of the Secret ``<name>-credentials``,
  mounted at ``/var/run/secrets/tekton-integrations/<name>/`` and named by ``<VARIABLE>_FILE``; a
  ``SecretDirectory`` field is that mount itself; every other field is an optional key of the
  ConfigMap ``tekton-integrations-settings`` (absent: the field's default);
- ``Integration.min_scale``: whether a replica is kept warm;
- the configuration model: ``ShowsStepLogs`` binds its ServiceAccount to the ClusterRole
  ``tekton-integrations-step-logs`` (``pods/log`` get, nothing more) and gives its Service the
  optional ``TEKTON_RESULTS_*`` settings; ``Templated`` mounts the optional ConfigMap
  ``tekton-integrations-templates`` at ``TI_TEMPLATES_DIR``;
- ``Integration.coordinates_across_runs``: binds it to ``tekton-integrations-coordination``
  (Leases: get, create, update, patch);
- the declaring module's docstring: the comment that heads the files.

The ClusterRoles themselves are the runtime's, in ``knative/rbac/`` (``ROLE_RULES`` says what each
grants; a deploy test keeps the two equal): only the bindings are derived. The single Service's
ServiceAccount is bound to the union of what its integrations need.

``tekton-integrations manifests --write knative/integrations`` writes one folder per installed
integration plus the index kustomization; ``tekton-integrations manifests --single-service
--write knative/single-service`` writes the single-Service tree: one Service
``tekton-integrations`` running ``common/all.py`` with every integration's settings and Secret
mounts, one Trigger, one ServiceAccount, on top of ``knative/common``. Deploy tests fail when a
committed tree differs.
"""

from __future__ import annotations

import ast
import copy
import inspect
import itertools
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from common import registry
from common.config import ShowsStepLogs, Templated
from common.integration import Integration
from common.settings import SECRET_DIRECTORY, RuntimeSettings, ServiceSettings
from common.steplogs import ResultsSettings

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
STEP_LOGS_ROLE = "tekton-integrations-step-logs"
COORDINATION_ROLE = "tekton-integrations-coordination"
ROLE_RULES: dict[str, list[Obj]] = {
    CLUSTER_ROLE: [
        {
            "apiGroups": ["tekton.dev"],
            "resources": ["pipelineruns", "taskruns"],
            "verbs": ["get", "list", "watch", "patch"],
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    ],
    STEP_LOGS_ROLE: [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}],
    COORDINATION_ROLE: [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update", "patch"],
        }
    ],
}
"""Each ClusterRole of ``knative/rbac/`` and exactly what it grants."""
TEMPLATES_MAP = "tekton-integrations-templates"
TEMPLATES_DIR = "/etc/tekton-integrations/templates"
TEMPLATES_ENV = "TI_TEMPLATES_DIR"
DEAD_LETTER_SERVICE = "deadletter"
GENERIC_TARGET = "common/target.py"
FILES = ("kustomization.yaml", "service.yaml", "trigger.yaml", "rbac.yaml", "secret.example.yaml")
SINGLE_SERVICE = "tekton-integrations"
"""The single-Service option's Service, Trigger and ServiceAccount (``common.single.SERVICE``)."""
SINGLE_SOURCE = "common/all.py"
SINGLE_TIMEOUT_SECONDS = 300
"""The single Service handles an event's integrations in turn, each within its own deadline
(``<PREFIX>_TIMEOUT_SECONDS``, at most 30 s): its requests may last longer than one function's."""
SELECTION_ENV = "TI_INTEGRATIONS"
"""Which integrations the single Service serves (``common.single.SELECTION_ENV``)."""


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


def description(settings: type[ServiceSettings], field: str) -> str | None:
    """What a settings field is: its ``Field(description=...)``, else the docstring under it in
    the class that declares it. The docstrings are read here, from the source, because collecting
    them when each model is built would cost every function's cold start."""
    info = settings.model_fields[field]
    if info.description:
        return info.description
    for cls in settings.__mro__:
        if field in vars(cls).get("__annotations__", {}):
            return _attribute_docstrings(cls).get(field)
    return None


@cache
def _attribute_docstrings(cls: type) -> dict[str, str]:
    """``{field: docstring}`` for the string literals that follow annotated fields in ``cls``'s body."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    found: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for statement, following in itertools.pairwise(body):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[statement.target.id] = inspect.cleandoc(following.value.value)
    return found


def source_of(name: str) -> str:
    """``FUNCTION_SOURCE``: the folder's ``main.py``, or the generic target for an installed package."""
    root = registry.functions_root()
    folder = registry.folder_of(name)
    if root is not None and (root / folder / "main.py").is_file():
        return f"functions/{folder}/main.py"
    return GENERIC_TARGET


def roles(integration: Integration[Any, Any]) -> list[str]:
    """The ClusterRoles its ServiceAccount is bound to: the shared one, and what it declares it needs."""
    needed = [CLUSTER_ROLE]
    if shows_step_logs(integration):
        needed.append(STEP_LOGS_ROLE)
    if integration.coordinates_across_runs:
        needed.append(COORDINATION_ROLE)
    return needed


def shows_step_logs(integration: Integration[Any, Any]) -> bool:
    """Whether its messages can show failed steps' logs (``common.steplogs``), which it reads."""
    return issubclass(integration.config, ShowsStepLogs)


def templated(integration: Integration[Any, Any]) -> bool:
    """Whether an operator's template may render its message (``common.templates``)."""
    return issubclass(integration.config, Templated)


def service(integration: Integration[Any, Any], source: str) -> Obj:
    """The Knative Service running ``source`` (``functions/<name>/main.py``) for ``integration``."""
    name = integration.name
    env = _runtime_env(source)
    if source == GENERIC_TARGET:
        env.append({"name": registry.TARGET_ENV, "value": name})
    settings_env, mounted = _settings_env(integration, set())
    env += settings_env
    env += _presentation_env([integration], {entry["name"] for entry in env})
    return _service(
        name,
        env,
        [name] if mounted else [],
        integration.min_scale,
        timeout=60,
        templates=templated(integration),
    )


def single_service(integrations: list[Integration[Any, Any]]) -> Obj:
    """The single-Service option: one Service running ``common/all.py`` for ``integrations``.

    It carries every integration's settings variables and mounts each one's Secret at the path
    its own Service would. A variable two integrations read (github-issues uses the GitHub
    function's ``GITHUB_*`` settings) is the first one's, by name: they share its Secret.
    """
    env = _runtime_env(SINGLE_SOURCE)
    env.append({"name": SELECTION_ENV, "value": ",".join(i.name for i in integrations)})
    taken = {entry["name"] for entry in env}
    secrets = []
    for integration in sorted(integrations, key=lambda i: i.name):
        settings_env, mounted = _settings_env(integration, taken)
        env += settings_env
        taken |= {entry["name"] for entry in settings_env}
        if mounted:
            secrets.append(integration.name)
    env += _presentation_env(integrations, taken)
    scale = max((i.min_scale for i in integrations), default=0)
    templates = any(templated(i) for i in integrations)
    return _service(SINGLE_SERVICE, env, secrets, scale, timeout=SINGLE_TIMEOUT_SECONDS, templates=templates)


def _runtime_env(source: str) -> list[Obj]:
    return [
        {"name": "FUNCTION_SOURCE", "value": source},
        {"name": "FUNCTION_TARGET", "value": "handle"},
        {"name": "THREADS", "value": str(THREADS)},
        {"name": "WORKERS", "value": "1"},
        {"name": "TMPDIR", "value": "/dev/shm"},  # noqa: S108 -- the container's own tmpfs: gunicorn's heartbeat on a read-only root
        {"name": "TI_POLICY_FILE", "value": f"{POLICY_DIR}/policy.yaml"},
        _from_settings(RuntimeSettings.variable("dashboard_url")),
    ]


def _presentation_env(integrations: list[Integration[Any, Any]], taken: set[str]) -> list[Obj]:
    """Where step logs come from, for a Service one of whose integrations shows them: the
    optional Tekton Results settings (a token file too: the function's ServiceAccount token is
    used without one), and the templates' folder for one whose integrations are ``Templated``."""
    env: list[Obj] = []
    if any(shows_step_logs(i) for i in integrations):
        for field in ResultsSettings.model_fields:
            variable = ResultsSettings.variable(field)
            secret = _is_secret(ResultsSettings.model_fields[field].annotation)
            env.append(_from_settings(f"{variable}_FILE" if secret else variable))
    if any(templated(i) for i in integrations):
        env.append({"name": TEMPLATES_ENV, "value": TEMPLATES_DIR})
    return [entry for entry in env if entry["name"] not in taken]


def _settings_env(integration: Integration[Any, Any], taken: set[str]) -> tuple[list[Obj], bool]:
    """The variables of ``integration``'s settings not in ``taken``, and whether one of them names
    a file of its Secret (mounted at ``SECRETS_ROOT/<name>``)."""
    settings = integration.settings
    mount = f"{SECRETS_ROOT}/{integration.name}"
    secrets = secret_fields(settings)
    directories = directory_fields(settings)
    env: list[Obj] = []
    mounted = False
    for field in settings.model_fields:
        variable = settings.variable(field)
        if field in secrets:
            entry = {"name": f"{variable}_FILE", "value": f"{mount}/{secret_key(field)}"}
        elif field in directories:
            entry = {"name": variable, "value": mount}
        else:
            entry = _from_settings(variable)
        if entry["name"] in taken:
            continue
        env.append(entry)
        mounted = mounted or field in secrets or field in directories
    return env, mounted


def _service(
    name: str, env: list[Obj], secrets: list[str], min_scale: int, *, timeout: int, templates: bool
) -> Obj:
    """The Knative Service ``name``: the container, the policy mount, the templates mount when
    ``templates``, and one Secret mount per name in ``secrets`` (at ``SECRETS_ROOT/<integration>``)."""
    container: Obj = {**copy.deepcopy(_CONTAINER), "env": env}
    volumes: list[Obj] = [{"name": "policy", "configMap": {"name": POLICY_MAP, "optional": True}}]
    mounts: list[Obj] = [{"name": "policy", "mountPath": POLICY_DIR, "readOnly": True}]
    if templates:  # the operator's own ConfigMap, when there is one (docs/templates.md)
        volumes.append({"name": "templates", "configMap": {"name": TEMPLATES_MAP, "optional": True}})
        mounts.append({"name": "templates", "mountPath": TEMPLATES_DIR, "readOnly": True})
    for integration in secrets:
        volumes.append(
            {
                "name": secret_name(integration),
                # defaultMode 0444: readable by the non-root user; Knative allows fsGroup only behind a flag
                "secret": {"secretName": secret_name(integration), "defaultMode": 0o444, "optional": True},
            }
        )
        mounts.append(
            {"name": secret_name(integration), "mountPath": f"{SECRETS_ROOT}/{integration}", "readOnly": True}
        )
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
                        "autoscaling.knative.dev/min-scale": str(min_scale),
                        "autoscaling.knative.dev/max-scale": "5",
                    },
                },
                "spec": {
                    "serviceAccountName": name,
                    "containerConcurrency": THREADS,
                    "timeoutSeconds": timeout,
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


def rbac(name: str, integrations: list[Integration[Any, Any]] | None = None) -> list[Obj]:
    """The ServiceAccount ``name``, bound to the shared least-privilege ClusterRole and to each other
    ClusterRole the ``integrations`` it serves need (``roles``). By default those are what the name
    is: an installed integration, every one for the single Service, none for the dead-letter
    receiver. The shared role's binding is ``tekton-integrations-<name>`` (the single Service's
    ``tekton-integrations``); another role's adds the role's own suffix (``-step-logs``)."""
    if integrations is None:
        integrations = _served_by(name)
    needed = [
        CLUSTER_ROLE,
        *(r for r in ROLE_RULES if r != CLUSTER_ROLE and any(r in roles(i) for i in integrations)),
    ]
    base = PART_OF if name == SINGLE_SERVICE else f"{PART_OF}-{name}"
    account: Obj = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "labels": labels(name)},
    }
    return [account, *(_binding(name, base, role) for role in needed)]


def _served_by(name: str) -> list[Integration[Any, Any]]:
    if name == SINGLE_SERVICE:
        return registry.declarations()
    if name == DEAD_LETTER_SERVICE or not registry.installed(name):
        return []
    loaded = registry.load(name).integration
    return [loaded] if loaded is not None else []


def _binding(name: str, base: str, role: str) -> Obj:
    binding = base if role == CLUSTER_ROLE else f"{base}-{role.removeprefix(PART_OF + '-')}"
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": binding, "labels": labels(name)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
    }


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
        "rbac.yaml": head + "---\n".join(_dump(obj) for obj in rbac(name, [integration])),
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


def single_service_files(integrations: list[Integration[Any, Any]]) -> dict[str, str]:
    """The folder ``knative/single-service/``: file name -> YAML text. Its kustomization includes
    ``../common`` (the namespace, ClusterRole, Broker, dead-letter receiver and ConfigMaps)."""
    names = ", ".join(sorted(i.name for i in integrations))
    head = (
        f"# {SINGLE_SERVICE}: every installed integration in one Service, running {SINGLE_SOURCE}:\n"
        f"# {names}.\n"
        "# Generated from the registry by `tekton-integrations manifests --single-service --write "
        "knative/single-service`:\n# regenerate it, or patch it in an overlay.\n"
    )
    kustomization = (
        head
        + "# The single-Service deployment: `kubectl apply -k knative/single-service/` instead of\n"
        + "# `kubectl apply -k knative/`, never both (docs/deploy.md says when to choose which). The\n"
        + "# Secrets are the standalone Services' (knative/integrations/<name>/secret.example.yaml).\n"
        + "# The image placeholder is set the same way as in knative/kustomization.yaml.\n"
        + _dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": NAMESPACE,
                "resources": ["../common", "service.yaml", "trigger.yaml", "rbac.yaml"],
            }
        )
    )
    return {
        "kustomization.yaml": kustomization,
        "service.yaml": head + _dump(single_service(integrations)),
        "trigger.yaml": head + _dump(trigger(SINGLE_SERVICE)),
        "rbac.yaml": head + "---\n".join(_dump(obj) for obj in rbac(SINGLE_SERVICE, integrations)),
    }


def write_folder(directory: Path, contents: dict[str, str]) -> list[Path]:
    """Write one folder's files (``single_service_files``) under ``directory``; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file, text in contents.items():
        (directory / file).write_text(text, encoding="utf-8")
        written.append(directory / file)
    return written


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
            " ".join((description(settings, field) or settings.variable(field)).split()),
            secret_key(field),
        )
        for field in secret_fields(settings)
    ]
    for field in directory_fields(settings):
        info = settings.model_fields[field]
        example = str((info.examples or ["default"])[0])  # the field's own example of a key
        entries.append((" ".join((description(settings, field) or "one file per key").split()), example))
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
