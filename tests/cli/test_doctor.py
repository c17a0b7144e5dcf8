"""``tekton-integrations doctor``: every check derived from the registry and ``common.manifests``,
each problem named with its fix, and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from common import manifests, registry
from common.cli import ExitCode
from common.cli.doctor import RUN_RULES, _rules
from common.errors import TemporaryError
from common.runclient import RunRef
from tests.cli.conftest import Cli
from tests.cli.fakes import FakeCluster
from tests.cli.installation import KNATIVE, NAMESPACE, install, put

RBAC = "rbac.authorization.k8s.io/v1"


@pytest.fixture
def installed(cluster: FakeCluster) -> FakeCluster:
    install(cluster)
    return cluster


def checks(cli: Cli, *argv: str) -> tuple[int, list[dict[str, str]]]:
    result = cli("doctor", "-o", "json", *argv)
    return result.code, json.loads(result.out)["checks"]


def failed(found: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {c["subject"]: c for c in found if c["status"] == "failed"}


def test_a_complete_installation_is_ok(cli: Cli, installed: FakeCluster) -> None:
    result = cli("doctor")
    assert result.code == ExitCode.OK, result.out
    assert result.out.rstrip().endswith("OK")
    code, found = checks(cli)
    assert code == ExitCode.OK
    subjects = {c["subject"] for c in found}
    for name in registry.names():  # derived from the registry: nothing listed by hand
        assert {f"Service {name}", f"Trigger {name}", f"ServiceAccount {name}"} <= subjects
    assert "Service deadletter" in subjects
    assert "ServiceAccount deadletter" in subjects
    assert "Broker default" in subjects
    assert "ConfigMap tekton-pipelines/config-events" in subjects
    assert f"ClusterRole {manifests.CLUSTER_ROLE}" in subjects
    secrets = {
        f"Secret {manifests.secret_name(name)}"
        for name in registry.names()
        if manifests.secret_template(registry.load(name).integration) is not None  # type: ignore[arg-type]
    }
    assert secrets
    assert secrets <= subjects


def test_a_missing_secret_and_a_wider_binding_are_both_named_with_fixes(
    cli: Cli, installed: FakeCluster
) -> None:
    installed.remove("v1", "secrets", NAMESPACE, "github-credentials")
    put(
        installed,
        {
            "kind": "RoleBinding",
            "metadata": {"name": "github-can-do-anything", "namespace": "tenant-a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "github", "namespace": NAMESPACE}],
        },
    )
    result = cli("doctor")
    assert result.code == ExitCode.ERROR
    assert "✗ Secret github-credentials: does not exist" in result.out
    assert (
        "fix: kubectl -n tekton-integrations create secret generic github-credentials --from-file="
        in result.out
    )
    assert (
        "✗ RBAC of ServiceAccount github: RoleBinding github-can-do-anything in namespace tenant-a "
        "also grants ClusterRole admin: more than the function needs" in result.out
    )
    assert "kubectl delete rolebinding github-can-do-anything -n tenant-a" in result.out
    assert "2 problem(s): " in result.out
    _code, found = checks(cli)
    assert set(failed(found)) == {"Secret github-credentials", "RBAC of ServiceAccount github"}


def test_a_binding_to_a_group_every_service_account_is_in_counts(cli: Cli, installed: FakeCluster) -> None:
    put(
        installed,
        {
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "all-service-accounts-are-admins"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [
                {"kind": "Group", "name": "system:serviceaccounts", "apiGroup": "rbac.authorization.k8s.io"}
            ],
        },
    )
    code, found = checks(cli)
    assert code == ExitCode.ERROR
    assert {f"RBAC of ServiceAccount {name}" for name in [*registry.names(), "deadletter"]} == set(
        failed(found)
    )


def test_a_wider_cluster_role_is_named(cli: Cli, installed: FakeCluster) -> None:
    role = installed.get_object(RBAC, "clusterroles", None, manifests.CLUSTER_ROLE)
    assert role is not None
    role["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
    put(installed, role)
    code, found = checks(cli)
    assert code == ExitCode.ERROR
    assert failed(found)[f"ClusterRole {manifests.CLUSTER_ROLE}"]["message"] == (
        "grants more than the functions need: get secrets"
    )


def test_the_expected_rules_are_those_of_the_shipped_cluster_role() -> None:
    shipped = yaml.safe_load((KNATIVE / "rbac" / "clusterrole.yaml").read_text())
    assert _rules(shipped["rules"]) == RUN_RULES


@pytest.mark.parametrize(
    ("change", "subject", "words"),
    [
        (
            lambda c: c.remove("eventing.knative.dev/v1", "brokers", NAMESPACE, "default"),
            "Broker default",
            "does not exist",
        ),
        (
            lambda c: c.remove("serving.knative.dev/v1", "services", NAMESPACE, "slack"),
            "Service slack",
            "does not exist",
        ),
        (
            lambda c: c.remove("eventing.knative.dev/v1", "triggers", NAMESPACE, "github"),
            "Trigger github",
            "does not exist",
        ),
        (
            lambda c: c.remove("v1", "serviceaccounts", NAMESPACE, "deadletter"),
            "ServiceAccount deadletter",
            "does not exist",
        ),
        (
            lambda c: c.remove(RBAC, "clusterrolebindings", None, "tekton-integrations-gitlab"),
            "RBAC of ServiceAccount gitlab",
            "ClusterRoleBinding tekton-integrations-gitlab to ClusterRole tekton-integrations-runs "
            "is missing",
        ),
    ],
)
def test_each_missing_object_is_named(
    cli: Cli, installed: FakeCluster, change: object, subject: str, words: str
) -> None:
    change(installed)  # type: ignore[operator]
    code, found = checks(cli)
    assert code == ExitCode.ERROR
    assert words in failed(found)[subject]["message"]
    assert failed(found)[subject]["fix"]


def test_config_events_must_point_at_the_broker(cli: Cli, installed: FakeCluster) -> None:
    events = installed.get_object("v1", "configmaps", "tekton-pipelines", "config-events")
    assert events is not None
    events["data"]["sink"] = "http://somewhere.else/"
    put(installed, events, "tekton-pipelines")
    _code, found = checks(cli)
    problem = failed(found)["ConfigMap tekton-pipelines/config-events"]
    assert "sink is http://somewhere.else/, not the Broker (" in problem["message"]
    assert problem["fix"].startswith("kubectl patch configmap config-events -n tekton-pipelines --type merge")


def test_the_broker_address_from_its_status_is_the_expected_sink(cli: Cli, installed: FakeCluster) -> None:
    broker = installed.get_object("eventing.knative.dev/v1", "brokers", NAMESPACE, "default")
    assert broker is not None
    broker["status"] = {"address": {"url": "http://kafka-broker-ingress.knative-eventing.svc/ti/default"}}
    put(installed, broker)
    _code, found = checks(cli)
    assert (
        "not the Broker (http://kafka-broker-ingress"
        in failed(found)["ConfigMap tekton-pipelines/config-events"]["message"]
    )


def test_an_invalid_policy_section_is_named(cli: Cli, installed: FakeCluster, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("default:\n  github: {channels: ['#x']}\n")
    code, found = checks(cli, "--policy", str(policy))
    assert code == ExitCode.ERROR
    (problem,) = [c for c in found if c["section"] == "policy"]
    assert problem["status"] == "failed"
    assert "default.github.channels" in problem["message"]


def test_secret_values_never_leave_the_cluster_client(cli: Cli, installed: FakeCluster) -> None:
    out = cli("doctor", "-o", "yaml").out
    assert "c2VjcmV0" not in out
    assert "exists with 1 key(s)" in out


def test_a_check_the_user_may_not_make_is_unchecked_and_exit_code_6(cli: Cli, installed: FakeCluster) -> None:
    def no_rbac(verb: str, ref: RunRef) -> None:
        if ref.name in ("objects/clusterrolebindings", "objects/clusterroles"):
            raise TemporaryError("KubernetesForbidden", "403 Forbidden: cannot list clusterrolebindings")

    installed.before_request = no_rbac
    result = cli("doctor")
    assert result.code == ExitCode.FORBIDDEN
    assert "? ClusterRole tekton-integrations-runs: cannot check: 403 Forbidden" in result.out
