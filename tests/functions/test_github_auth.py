"""GitHub credentials: App installations looked up per repository, tokens cached until expiry."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from common import samples
from common.runclient import MemoryRunClient
from common.standins.github import GitHubStandIn
from tests.conftest import Deliver, add_run, body, function_client
from tests.support.github_app import sign_in_as_app


def run_in(repo: str, name: str) -> dict[str, object]:
    sample = samples.load("pipelinerun-running")
    metadata = sample["data"]["pipelineRun"]["metadata"]
    metadata["annotations"]["github.integrations.tekton.dev/repo"] = repo
    metadata["name"] = name
    metadata["uid"] = f"uid-{name}"
    return sample


@pytest.mark.parametrize("lifetime", [timedelta(hours=1), timedelta(minutes=2)], ids=["cached", "expiring"])
def test_app_installation_is_looked_up_once_per_repo_and_its_token_reused_until_expiry(
    kube: MemoryRunClient,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    lifetime: timedelta,
) -> None:
    with GitHubStandIn(token_lifetime=lifetime) as github:
        monkeypatch.setenv("GITHUB_API_URL", github.enterprise_url)
        sign_in_as_app(monkeypatch, 1, tmp_path)
        client = function_client("github")
        events = [run_in("widget-service", "a"), run_in("widget-service", "b"), run_in("gadget", "c")]
        for event in events:
            add_run(kube, event)
            assert deliver(client, event).status_code == 200

        lookups = github.calls_to("GET", "/repos/*/installation")
        tokens = github.calls_to("POST", "/app/installations/*/access_tokens")
        creates = github.calls_to("POST", "/repos/*/check-runs")
    assert [c.path for c in lookups] == [
        "/repos/acme/widget-service/installation",
        "/repos/acme/gadget/installation",
    ]
    assert all(c.credential == "jwt" and c.enterprise_prefix for c in lookups + tokens)
    for call in lookups + tokens:  # the App JWT: the App's id, valid at most GitHub's ten minutes
        claims = call.jwt_claims or {}
        assert claims["iss"] == "1"
        assert 0 < claims["exp"] - claims["iat"] <= 600
    assert len(tokens) == (1 if lifetime > timedelta(minutes=5) else 3)
    assert len(creates) == 3
    assert all(c.credential == "installation-token" for c in creates)


def test_no_credentials_is_recorded_as_a_configuration_problem(
    kube: MemoryRunClient, deliver: Deliver
) -> None:
    event = samples.load("pipelinerun-running")
    add_run(kube, event)
    answer = deliver(function_client("github"), event)
    assert answer.status_code == 200
    assert body(answer)["reason"] == "GitHubNotConfigured"


def test_a_missing_secret_file_is_recorded_once_as_not_configured(
    kube: MemoryRunClient, deliver: Deliver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN_FILE", str(tmp_path / "not-mounted"))
    event = samples.load("pipelinerun-running")
    add_run(kube, event)
    client = function_client("github")
    answer = deliver(client, event)
    assert (answer.status_code, body(answer)["reason"]) == (200, "GitHubNotConfigured")
    assert (
        f"GITHUB_TOKEN_FILE names {tmp_path / 'not-mounted'}, which does not exist" in body(answer)["detail"]
    )
    assert body(deliver(client, event))["outcome"] == "ignored"


@pytest.mark.parametrize("value", ["0", "-1", "30.5", "3600", "soon"])
def test_a_bad_timeout_setting_is_recorded_as_not_configured(
    kube: MemoryRunClient,
    github: GitHubStandIn,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
) -> None:
    monkeypatch.setenv("GITHUB_TIMEOUT_SECONDS", value)
    event = samples.load("pipelinerun-running")
    add_run(kube, event)
    answer = deliver(function_client("github"), event)
    assert (answer.status_code, body(answer)["reason"]) == (200, "GitHubNotConfigured")
    assert "GITHUB_TIMEOUT_SECONDS" in body(answer)["detail"]
    assert not github.calls


@pytest.mark.parametrize("value", ["0.5", "30"])
def test_a_timeout_above_zero_and_at_most_30_seconds_is_accepted(
    kube: MemoryRunClient,
    github: GitHubStandIn,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
) -> None:
    monkeypatch.setenv("GITHUB_TIMEOUT_SECONDS", value)
    event = samples.load("pipelinerun-running")
    add_run(kube, event)
    answer = deliver(function_client("github"), event)
    assert (answer.status_code, body(answer)["outcome"]) == (200, "reported")
    assert len(github.check_runs) == 1


def test_a_token_file_that_is_a_directory_is_recorded_as_not_configured(
    kube: MemoryRunClient,
    github: GitHubStandIn,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A Secret mounted at the file's path (a directory) is a configuration problem, said once:
    not an internal error answered 503 forever."""
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.setenv("GITHUB_TOKEN_FILE", str(tmp_path))
    event = samples.load("pipelinerun-running")
    ref = add_run(kube, event)
    client = function_client("github")
    answer = deliver(client, event)
    assert (answer.status_code, body(answer)["outcome"], body(answer)["reason"]) == (
        200,
        "failed",
        "GitHubNotConfigured",
    )
    record = json.loads(kube.runs[ref]["metadata"]["annotations"]["github.integrations.tekton.dev/status"])
    condition = record["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("False", "GitHubNotConfigured")
    assert f"GITHUB_TOKEN_FILE names {tmp_path}, which is a directory" in condition["message"]
    assert body(deliver(client, event))["outcome"] == "ignored"
    assert not github.calls


def test_an_uninstalled_app_is_looked_up_again(
    kube: MemoryRunClient, deliver: Deliver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with GitHubStandIn() as github:
        monkeypatch.setenv("GITHUB_API_URL", github.url)
        sign_in_as_app(monkeypatch, 1, tmp_path)
        client = function_client("github")
        first, second, third = (run_in("widget-service", name) for name in ("a", "b", "c"))
        for event in (first, second, third):
            add_run(kube, event)
        deliver(client, first)
        github.fail_next(404, path="/repos/*/check-runs")  # the App was removed from the repository
        assert body(deliver(client, second))["reason"] == "GitHubNotFound"
        deliver(client, third)
        lookups = github.calls_to("GET", "/repos/*/installation")
    assert len(lookups) == 2, "the installation is looked up again after a 404"
