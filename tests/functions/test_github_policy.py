"""Tenancy: a namespace may only report to the repositories its policy allows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common import samples
from common.policy import PolicyError
from common.runclient import MemoryRunClient
from common.standins.github import GitHubStandIn
from tests.conftest import Deliver, add_run, body, function_client

POLICY = """
namespaces:
  ci:
    github: {repositories: ["acme/widget-*"]}
  sandbox:
    github: {repositories: []}
"""


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    monkeypatch.setenv("TI_POLICY_FILE", str(path))
    return path


@pytest.mark.parametrize(
    ("namespace", "repo", "allowed"),
    [
        ("ci", "widget-service", True),
        ("ci", "gadget", False),
        ("sandbox", "widget-service", False),
        ("elsewhere", "widget-service", False),  # no entry and no default: nothing is allowed
    ],
)
def test_the_policy_decides_which_repositories_a_namespace_may_report_to(  # noqa: PLR0917
    kube: MemoryRunClient,
    github: GitHubStandIn,
    deliver: Deliver,
    policy: Path,
    namespace: str,
    repo: str,
    allowed: bool,
) -> None:
    event = samples.load("pipelinerun-running")
    metadata = event["data"]["pipelineRun"]["metadata"]
    metadata["namespace"] = namespace
    metadata["annotations"]["github.integrations.tekton.dev/repo"] = repo
    ref = add_run(kube, event)
    answer = deliver(function_client("github"), event)
    assert answer.status_code == 200
    record = json.loads(kube.runs[ref]["metadata"]["annotations"]["github.integrations.tekton.dev/status"])
    condition = record["conditions"][0]
    if allowed:
        assert condition["status"] == "True"
        assert len(github.check_runs) == 1
    else:
        assert (condition["status"], condition["reason"]) == ("False", "TargetNotAllowed")
        assert f"acme/{repo}" in condition["message"]
        assert str(policy) in condition["message"]
        assert not github.calls, "nothing is sent to a refused repository"
        assert body(answer)["reason"] == "TargetNotAllowed"


def test_a_policy_broken_while_serving_answers_503_and_sends_nothing(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, policy: Path
) -> None:
    client = function_client("github")
    policy.write_text("namespaces: [not, a, mapping]\n")  # a ConfigMap update, seen without restart
    event = samples.load("pipelinerun-running")
    add_run(kube, event)
    answer = deliver(client, event)
    assert answer.status_code == 503
    assert "policy" in body(answer)["detail"]
    assert not github.calls


def test_a_malformed_policy_stops_the_function_at_startup(policy: Path) -> None:
    policy.write_text("namespaces: [not, a, mapping]\n")
    with pytest.raises(PolicyError, match=str(policy)):
        function_client("github")
