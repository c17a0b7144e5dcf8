"""`kubectl kustomize knative/` renders, and what it renders keeps the deployment's contracts.

Each Service and Trigger keeps the contracts of ``tests/deploy/contracts.py`` (Knative's own
admission rules, checked explicitly, and this project's); besides: one ServiceAccount per
function, least-privilege RBAC, a Trigger per integration with retries and a dead-letter sink.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from tests.deploy import contracts
from tests.deploy.manifests import (
    EXTRA_ROLES,
    FUNCTIONS,
    IMAGE_PLACEHOLDER,
    INTEGRATIONS,
    KNATIVE_DIR,
    NAMESPACE,
    SECRET_TEMPLATES,
    SERVICE_FILES,
    STEP_LOGS_ROLE,
    Obj,
    by_kind,
    container,
    env_of,
    ident,
    kustomize,
    load_yaml_objects,
    needed_roles,
    source_of,
)

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
ROLE = "tekton-integrations-runs"
EXPECTED_RULES = [
    {
        "apiGroups": ["tekton.dev"],
        "resources": ["pipelineruns", "taskruns"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
]


def test_renders_the_expected_objects(rendered: list[Obj]) -> None:
    # The functions' objects exactly; other components (e.g. a resync CronJob with its own
    # ServiceAccount and role) may sit beside them.
    assert set(by_kind(rendered, "Service")) == set(FUNCTIONS)
    assert set(by_kind(rendered, "Trigger")) == set(INTEGRATIONS)
    assert set(by_kind(rendered, "ServiceAccount")) >= set(FUNCTIONS)
    assert len(by_kind(rendered, "Broker")) == 1
    assert set(by_kind(rendered, "Namespace")) == {NAMESPACE}
    assert ROLE in by_kind(rendered, "ClusterRole")
    assert {"tekton-integrations-settings", "tekton-integrations-policy"} <= {
        name.rsplit("-", 1)[0] for name in by_kind(rendered, "ConfigMap")
    }
    assert not by_kind(rendered, "Secret"), "Secrets are created by hand from knative/secrets/"


def test_namespaced_objects_are_in_the_integrations_namespace(rendered: list[Obj]) -> None:
    for obj in rendered:
        if obj["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in obj["metadata"], ident(obj)
        else:
            assert obj["metadata"]["namespace"] == NAMESPACE, ident(obj)


def test_cluster_role_is_least_privilege(rendered: list[Obj]) -> None:
    role = by_kind(rendered, "ClusterRole")[ROLE]
    assert role["rules"] == EXPECTED_RULES, "exactly these rules: no secrets, no delete, no status"
    assert "aggregationRule" not in role


@pytest.mark.parametrize("name", sorted(EXTRA_ROLES))
def test_the_step_logs_and_coordination_roles_grant_exactly_their_one_thing(
    rendered: list[Obj], name: str
) -> None:
    # pods/log get only: not pods (get, list), not pods/exec or attach; Leases only, no delete.
    role = by_kind(rendered, "ClusterRole")[name]
    assert role["rules"] == EXTRA_ROLES[name]
    assert "aggregationRule" not in role


def test_the_shipped_roles_are_the_ones_the_manifests_bind() -> None:
    from common import manifests

    assert manifests.ROLE_RULES == {ROLE: EXPECTED_RULES, **EXTRA_ROLES}


def test_each_function_is_bound_to_exactly_the_roles_its_declaration_needs(rendered: list[Obj]) -> None:
    bound: dict[str, set[str]] = {name: set() for name in FUNCTIONS}
    for binding in (o for o in rendered if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        for subject in binding["subjects"]:
            if (
                subject["kind"] == "ServiceAccount"
                and subject["namespace"] == NAMESPACE
                and subject["name"] in bound
            ):
                assert binding["kind"] == "ClusterRoleBinding", ident(binding)
                assert binding["roleRef"]["kind"] == "ClusterRole", ident(binding)
                bound[subject["name"]].add(binding["roleRef"]["name"])
    assert bound == {name: needed_roles(name) for name in FUNCTIONS}
    readers = {name for name, roles in bound.items() if STEP_LOGS_ROLE in roles}
    assert readers, "no integration shows step logs: the derivation would check nothing"
    assert readers < set(INTEGRATIONS), "some integrations read no log, and they may not"


def test_no_role_in_the_tree_reaches_secrets_or_wildcards(rendered: list[Obj]) -> None:
    for role in (o for o in rendered if o["kind"] in ("Role", "ClusterRole")):
        for rule in role["rules"]:
            assert "secrets" not in rule.get("resources", []), ident(role)
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), f"{ident(role)}: wildcard {field}"
            assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(
                rule["verbs"]
            ), ident(role)


def test_each_function_has_its_own_service_account_bound_to_the_role(
    rendered: list[Obj],
) -> None:
    subjects = []
    for binding in by_kind(rendered, "ClusterRoleBinding").values():
        if binding["roleRef"]["name"] != ROLE:
            continue
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": ROLE,
        }
        (subject,) = binding["subjects"]
        subjects.append((subject["kind"], subject["namespace"], subject["name"]))
    assert sorted(subjects) == sorted(("ServiceAccount", NAMESPACE, f) for f in FUNCTIONS)
    for binding in (o for o in rendered if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if binding["roleRef"]["name"] not in (ROLE, *EXTRA_ROLES):
            names = {s["name"] for s in binding["subjects"]}
            assert not names & set(FUNCTIONS), f"{ident(binding)}: a function gets more rights"


@pytest.mark.parametrize("name", INTEGRATIONS)
def test_templates_and_results_settings_reach_only_the_services_that_use_them(
    rendered: list[Obj], name: str
) -> None:
    from common import registry
    from common.config import ShowsStepLogs, Templated

    integration = registry.load(name).integration
    assert integration is not None
    service = by_kind(rendered, "Service")[name]
    env = env_of(service)
    mounts = {m["mountPath"] for m in container(service).get("volumeMounts", [])}
    templated = issubclass(integration.config, Templated)
    assert ("/etc/tekton-integrations/templates" in mounts) is templated
    assert ("TI_TEMPLATES_DIR" in env) is templated
    assert ("TEKTON_RESULTS_URL" in env) is issubclass(integration.config, ShowsStepLogs)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_service_contract(rendered: list[Obj], name: str) -> None:
    contracts.service_contract(rendered, name, source_of(name))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_service_volumes_and_references(rendered: list[Obj], name: str) -> None:
    contracts.service_volumes_and_references(rendered, name)


def test_every_key_of_settings_env_is_read_by_a_service() -> None:
    """settings.env is the operator's file: a key no Service reads (a typo) would do nothing."""
    written = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (KNATIVE_DIR / "config/settings.env").read_text(), re.M)
    )
    read = set()
    for path in SERVICE_FILES:
        (service,) = load_yaml_objects(path)
        for var in container(service).get("env", []):
            ref = var.get("valueFrom", {}).get("configMapKeyRef")
            if ref and ref["name"] == "tekton-integrations-settings":
                assert ref.get("optional") is True, var["name"]
                read.add(ref["key"])
    assert written, "settings.env lost its keys"
    assert written <= read, f"settings.env keys no Service reads: {sorted(written - read)}"


def test_the_integration_manifests_are_derived_from_the_registry() -> None:
    """knative/integrations/ is what `tekton-integrations manifests --write` makes of the registry."""
    from common import manifests, registry
    from common.cli.manifests import tree

    folders, problems = tree()
    assert not problems
    assert set(folders) == set(registry.names())
    root = KNATIVE_DIR / "integrations"
    committed = {p.name for p in root.iterdir() if p.is_dir()}
    assert committed == set(folders), "run: tekton-integrations manifests --write knative/integrations"
    assert (root / "kustomization.yaml").read_text() == manifests.index(list(folders))
    for name, contents in folders.items():
        on_disk = {p.name for p in (root / name).iterdir()}
        assert on_disk == set(contents), name
        for file, text in contents.items():
            assert (root / name / file).read_text() == text, (
                f"knative/integrations/{name}/{file} is stale: "
                "run tekton-integrations manifests --write knative/integrations"
            )


@pytest.mark.parametrize("name", INTEGRATIONS)
def test_trigger_contract(rendered: list[Obj], name: str) -> None:
    contracts.trigger_contract(rendered, name)


def test_the_dead_letter_receiver_has_no_trigger(rendered: list[Obj]) -> None:
    subscribers = {t["spec"]["subscriber"]["ref"]["name"] for t in by_kind(rendered, "Trigger").values()}
    assert "deadletter" not in subscribers, "it receives only what the Triggers give up on"
    assert subscribers == set(INTEGRATIONS)


def test_tekton_sink_patch_points_at_the_broker(rendered: list[Obj]) -> None:
    (patch,) = load_yaml_objects(KNATIVE_DIR / "tekton" / "config-events.yaml")
    assert (patch["kind"], patch["metadata"]["name"], patch["metadata"]["namespace"]) == (
        "ConfigMap",
        "config-events",
        "tekton-pipelines",
    )
    (broker,) = by_kind(rendered, "Broker")
    assert set(patch["data"]) == {"sink", "formats"}
    assert patch["data"]["formats"] == "tektonv1"
    # Knative's MTChannelBasedBroker address: broker-ingress/<namespace>/<broker>
    assert patch["data"]["sink"] == (
        f"http://broker-ingress.knative-eventing.svc.cluster.local/{NAMESPACE}/{broker}"
    )


def test_secret_templates_cover_every_mounted_secret(rendered: list[Obj]) -> None:
    templates = by_kind(load_yaml_objects(*SECRET_TEMPLATES), "Secret")
    mounted = {
        v["secret"]["secretName"]
        for s in by_kind(rendered, "Service").values()
        for v in s["spec"]["template"]["spec"].get("volumes", [])
        if "secret" in v
    }
    assert set(templates) == mounted
    for name, secret in templates.items():
        assert secret["metadata"]["namespace"] == NAMESPACE
        assert not secret.get("data"), f"{name}: a template holds no value"
        for key, value in secret["stringData"].items():
            assert value.startswith("REPLACE-"), f"{name}/{key} looks like a real value"


def test_an_overlay_can_rename_and_repoint_the_image(kubectl: str, tmp_path: Path) -> None:
    # What a user does: an overlay with its own image and a name prefix. Every reference
    # (subscriber, dead-letter sink, broker, service account, generated ConfigMaps) must follow.
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(KNATIVE_DIR, tmp_path)],  # must be relative
                "namePrefix": "ti-",
                "images": [
                    {
                        "name": IMAGE_PLACEHOLDER,
                        "newName": "ghcr.io/acme/tekton-integrations",
                        "digest": "sha256:" + "a" * 64,
                    }
                ],
            }
        )
    )
    objects = kustomize(kubectl, tmp_path)
    services = by_kind(objects, "Service")
    accounts = by_kind(objects, "ServiceAccount")
    config_maps = by_kind(objects, "ConfigMap")
    brokers = by_kind(objects, "Broker")
    assert set(services) == {f"ti-{f}" for f in FUNCTIONS}
    for service in services.values():
        assert container(service)["image"] == "ghcr.io/acme/tekton-integrations@sha256:" + "a" * 64
        spec = service["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] in accounts, ident(service)
        for volume in spec["volumes"]:
            if "configMap" in volume and volume["configMap"]["name"] != contracts.TEMPLATES[0]:
                # the operator's templates: created by hand, not generated, so not renamed
                assert volume["configMap"]["name"] in config_maps, ident(service)
    for trigger in by_kind(objects, "Trigger").values():
        assert trigger["spec"]["broker"] in brokers, ident(trigger)
        assert trigger["spec"]["subscriber"]["ref"]["name"] in services, ident(trigger)
        assert trigger["spec"]["delivery"]["deadLetterSink"]["ref"]["name"] == "ti-deadletter"
    for binding in by_kind(objects, "ClusterRoleBinding").values():
        assert binding["subjects"][0]["name"] in accounts, ident(binding)
        assert binding["roleRef"]["name"] in by_kind(objects, "ClusterRole")


def test_a_github_app_needs_no_patch(rendered: list[Obj]) -> None:
    """App mode is the Secret's `app-private-key` and settings.env's GITHUB_APP_ID: the Service
    names both files and the id already, and the function uses what is readable."""
    github = by_kind(rendered, "Service")["github"]
    env = env_of(github)
    key_file = env["GITHUB_APP_PRIVATE_KEY_FILE"]["value"]
    assert key_file.endswith("/app-private-key")
    assert any(key_file.startswith(m["mountPath"]) for m in container(github)["volumeMounts"])
    ref = env["GITHUB_APP_ID"]["valueFrom"]["configMapKeyRef"]
    assert ref["name"] in by_kind(rendered, "ConfigMap"), ref
    assert "GITHUB_APP_ID" in (KNATIVE_DIR / "config" / "settings.env").read_text()


def test_the_shipped_policy_and_its_example_load(rendered: list[Obj]) -> None:
    # The functions refuse to start on a policy file they cannot load, so the file this tree
    # mounts (and the example in its comments, once uncommented) must pass the real loader.
    from common import registry
    from common.policy import Destinations, Policy, parse_policy

    github = registry.load("github").integration
    assert github is not None
    assert isinstance(github.policy, Destinations)
    repositories = github.policy

    def check_every_section(policy: Policy) -> None:
        for declared in registry.declarations():
            policy.check(declared.name, declared.policy)

    text = (KNATIVE_DIR / "config" / "policy.yaml").read_text()
    config_maps = by_kind(rendered, "ConfigMap")
    (policy_map,) = [m for n, m in config_maps.items() if n.startswith("tekton-integrations-policy")]
    assert policy_map["data"] == {"policy.yaml": text}
    shipped = parse_policy(text, "knative/config/policy.yaml")
    check_every_section(shipped)
    assert not shipped.for_namespace("tenant-a").allows("github", repositories, "acme/app")
    example = "\n".join(
        line[2:] if line.startswith("# ") else ""
        for line in text.split("# Example:", 1)[1].splitlines()
        if line.startswith("#")
    )
    loaded = parse_policy(example, "example in knative/config/policy.yaml")
    check_every_section(loaded)
    assert loaded.for_namespace("tenant-a").allows("github", repositories, "acme/app-web")
    assert not loaded.for_namespace("tenant-a").allows("github", repositories, "other/repo")


@pytest.mark.parametrize("prefix", ["", "ti-"])
def test_the_dead_letter_receiver_recognises_every_subscriber(
    kubectl: str, tmp_path: Path, prefix: str
) -> None:
    # Knative puts the failing subscriber's address in `knativeerrordest`; the deadletter
    # function maps it back to the integration whose record it updates. That must hold for
    # every Trigger of this tree, also when an overlay renames the Services.
    from common.deadletter import failing_integration

    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": [os.path.relpath(KNATIVE_DIR, tmp_path)], "namePrefix": prefix})
    )
    for trigger in by_kind(kustomize(kubectl, tmp_path), "Trigger").values():
        service = trigger["spec"]["subscriber"]["ref"]["name"]
        address = f"http://{service}.{trigger['metadata']['namespace']}.svc.cluster.local"
        assert failing_integration(address) == trigger["metadata"]["name"].removeprefix(prefix)
