"""``tekton-integrations explain RUN``: settings, validation errors with fixes, policy, history, next step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.cli import ExitCode
from common.runclient import RunRef
from tests.cli.conftest import NOW, SLACK_OFF, Cli
from tests.cli.fakes import FakeCluster
from tests.cli.records import put_record

PREFIX = "github.integrations.tekton.dev/"
BAD = {
    PREFIX + "sha": "main",
    PREFIX + "mode": "checkrun",
    PREFIX + "contxt": "ci/build",
    **SLACK_OFF,
}
POLICY = "namespaces:\n  ci:\n    github: {repositories: ['acme/other-*']}\n"


def policy_config_map(text: str = POLICY) -> dict[str, object]:
    return {
        "metadata": {
            "namespace": "tekton-integrations",
            "name": "tekton-integrations-policy-5f8h2",
            "labels": {"app.kubernetes.io/name": "tekton-integrations"},
        },
        "data": {"policy.yaml": text},
    }


def test_bad_annotations_are_named_each_with_its_fix(cli: Cli, cluster: FakeCluster) -> None:
    ref = cluster.add_sample("pipelinerun-failed", annotations=BAD)
    put_record(
        cluster,
        ref,
        "github",
        "False",
        "InvalidConfiguration",
        message="github.integrations.tekton.dev/sha: ...",
    )

    result = cli("explain", "build-and-test-run-q4m9z")

    assert result.code == ExitCode.OK
    out = result.out
    assert "configuration: INVALID" in out
    assert "✗ github.integrations.tekton.dev/sha = 'main': does not have the expected form" in out
    assert "fix: use the full commit SHA: 40 (or 64) lower-case hex digits, not a branch or short SHA" in out
    assert "✗ github.integrations.tekton.dev/mode = 'checkrun': is not one of the allowed values" in out
    assert "fix: use one of 'check-run' or 'status'" in out
    assert "✗ github.integrations.tekton.dev/contxt = 'ci/build': unknown key" in out
    assert "fix: rename it to github.integrations.tekton.dev/context" in out
    assert "record:  False InvalidConfiguration" in out
    assert "next step: Fix the annotations above" in out
    assert f"kubectl annotate pipelinerun/build-and-test-run-q4m9z -n ci {PREFIX}status-" in out


def test_a_missing_required_key_says_which_to_add(cli: Cli, cluster: FakeCluster) -> None:
    cluster.add_sample("pipelinerun-running", annotations={PREFIX + "owner": None, **SLACK_OFF})
    out = cli("explain", "build-and-test-run-x7k2p").out
    assert "✗ github.integrations.tekton.dev/owner: required annotation is missing" in out
    assert "fix: add github.integrations.tekton.dev/owner" in out


def test_json_output_has_the_problems_by_key(cli: Cli, cluster: FakeCluster) -> None:
    cluster.add_sample("pipelinerun-failed", annotations=BAD)
    report = json.loads(cli("explain", "pipelinerun/build-and-test-run-q4m9z", "-o", "json").out)
    (github,) = report["integrations"]
    assert {p["key"] for p in github["problems"]} == {PREFIX + "sha", PREFIX + "mode", PREFIX + "contxt"}
    assert github["configuration"] is None
    assert report["run"]["state"] == "Failed"


def test_valid_settings_are_shown_parsed_with_defaults_marked(cli: Cli, cluster: FakeCluster) -> None:
    cluster.add_sample("pipelinerun-successful", annotations=SLACK_OFF)
    out = cli("explain", "build-and-test-run-x7k2p").out
    assert "    owner           acme\n" in out
    assert "    mode            check-run  (default)" in out


def test_policy_refusal_comes_from_the_deployed_config_map(cli: Cli, cluster: FakeCluster) -> None:
    cluster.config_maps.append(policy_config_map())
    cluster.add_sample("pipelinerun-successful", annotations=SLACK_OFF)
    out = cli("explain", "build-and-test-run-x7k2p").out
    assert "policy:  refused: namespace \"ci\" may not target github repository 'acme/widget-service'" in out
    assert "tekton-integrations/tekton-integrations-policy" in out
    assert "next step: The policy refuses 'acme/widget-service' (repositories) for namespace ci" in out
    assert "then run `tekton-integrations resync -n ci --integration github`." in out
    assert "Then then" not in out
    assert "then then" not in out


def test_a_true_record_under_a_refusing_policy_is_a_disagreement_never_a_contradiction(
    cli: Cli, cluster: FakeCluster
) -> None:
    """Issue 13: the record says it was reported; the cluster's policy, read now, refuses it."""
    cluster.config_maps.append(policy_config_map())
    ref = cluster.add_sample("pipelinerun-successful", annotations=SLACK_OFF)
    put_record(cluster, ref, "github", "True", "Reported", annotations={"check-run-id": "5678"})
    out = cli("explain", "build-and-test-run-x7k2p").out
    assert "record:  True Reported" in out
    assert 'policy:  refused now: namespace "ci" may not target github repository' in out
    assert (
        "disagreement: the record says github reported the run, but the policy read now refuses "
        "'acme/widget-service'" in out
    )
    assert "The record stands" in out
    assert "next step: Nothing to do: github reported the run's current state (Succeeded)" in out
    assert "ask the cluster administrator" not in out

    report = json.loads(cli("explain", "build-and-test-run-x7k2p", "-o", "json").out)
    (github,) = report["integrations"]
    assert github["policyDisagreement"].startswith("the record says github reported the run")


def test_a_service_failure_is_explained_by_its_record_not_by_the_policy(
    cli: Cli, cluster: FakeCluster
) -> None:
    """Issue 13: a GitHubNotFound record got past the policy; the next step is about GitHubNotFound."""
    cluster.config_maps.append(policy_config_map())
    ref = cluster.add_sample("pipelinerun-failed", annotations=SLACK_OFF)
    put_record(cluster, ref, "github", "False", "GitHubNotFound", message="create check run: 404 Not Found")
    out = cli("explain", "build-and-test-run-q4m9z").out
    assert "next step: github gave up: create check run: 404 Not Found Fix the cause" in out
    assert "disagreement: the record says github got past the policy (GitHubNotFound)" in out
    assert "ask the cluster administrator" not in out


def test_a_target_not_allowed_record_is_explained_by_the_policy(cli: Cli, cluster: FakeCluster) -> None:
    cluster.config_maps.append(policy_config_map())
    ref = cluster.add_sample("pipelinerun-failed", annotations=SLACK_OFF)
    put_record(cluster, ref, "github", "False", "TargetNotAllowed", message='namespace "ci" may not target')
    out = cli("explain", "build-and-test-run-q4m9z").out
    assert "disagreement" not in out
    assert "next step: The policy refuses 'acme/widget-service' (repositories) for namespace ci" in out
    assert "then remove its record with `kubectl annotate pipelinerun/build-and-test-run-q4m9z" in out


def test_policy_file_wins_and_can_allow(cli: Cli, cluster: FakeCluster, tmp_path: Path) -> None:
    cluster.config_maps.append(policy_config_map())
    policy = tmp_path / "policy.yaml"
    policy.write_text("default:\n  github: {repositories: ['acme/*']}\n")
    cluster.add_sample("pipelinerun-successful", annotations=SLACK_OFF)
    out = cli("explain", "build-and-test-run-x7k2p", "--policy", str(policy)).out
    assert (
        f"policy:  allowed: repositories 'acme/widget-service' by default of the policy file {policy}" in out
    )


def test_without_a_policy_it_says_what_the_functions_do(cli: Cli, cluster: FakeCluster) -> None:
    cluster.add_sample("pipelinerun-successful", annotations=SLACK_OFF)
    out = cli("explain", "build-and-test-run-x7k2p").out
    assert (
        "no policy ConfigMap in namespace tekton-integrations: the functions then allow every destination"
        in out
    )


def test_history_last_error_and_the_integrations_events(cli: Cli, cluster: FakeCluster) -> None:
    ref = cluster.add_sample("pipelinerun-failed", annotations=SLACK_OFF)
    put_record(
        cluster,
        ref,
        "github",
        "False",
        "GitHubNotFound",
        message="create check run on acme/widget-service: 404",
    )
    cluster.record_event(ref, cluster.uid(ref), "IntegrationFailed", "github: GitHubNotFound: 404 not found")
    cluster.other_events.append(
        (ref, {"reason": "CloudEventFailed", "message": "Failed to send cloudevent: 503", "count": 3})
    )
    out = cli("explain", "build-and-test-run-q4m9z").out
    assert "record:  False GitHubNotFound, since 5m ago, 1 attempt(s), for the run's Failed state" in out
    assert "last error: create check run on acme/widget-service: 404" in out
    assert "IntegrationFailed: github: GitHubNotFound: 404 not found" in out
    assert "Tekton's CloudEvent deliveries" in out
    assert "CloudEventFailed (x3): Failed to send cloudevent: 503" in out
    assert "next step: github gave up: create check run on acme/widget-service: 404 Fix the cause" in out


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("none-finished", "No event for this run reached the github function."),
        ("none-running", "No event for this run reached the github function yet."),
        ("earlier-state", "github reported an earlier state (Running) but not Succeeded"),
        ("current", "Nothing to do: github reported the run's current state (Succeeded)"),
        ("unknown", "github is waiting to retry (GitHubUnavailable)"),
        ("claimed", "A delivery is reporting Succeeded right now"),
    ],
)
def test_the_next_step_fits_the_record(cli: Cli, cluster: FakeCluster, setup: str, expected: str) -> None:
    start = "pipelinerun-running" if setup in ("none-running", "earlier-state") else "pipelinerun-successful"
    ref = cluster.add_sample(start, annotations=SLACK_OFF)
    if setup == "earlier-state":
        put_record(cluster, ref, "github", "True", "Reported")
        cluster.advance(ref, "pipelinerun-successful")
    elif setup == "current":
        put_record(cluster, ref, "github", "True", "Reported")
    elif setup == "unknown":
        put_record(cluster, ref, "github", "Unknown", "GitHubUnavailable")
    elif setup == "claimed":
        put_record(cluster, ref, "github", "Unknown", "Reporting", claim=True, at=NOW)
    assert expected in cli("explain", "build-and-test-run-x7k2p").out


def test_a_misspelt_prefix_suggests_the_integration(cli: Cli, cluster: FakeCluster) -> None:
    cluster.add_sample("pipelinerun-successful", annotations={"githib.integrations.tekton.dev/repo": "x"})
    out = cli("explain", "build-and-test-run-x7k2p").out
    assert "no integration named 'githib' in this installation" in out
    assert "Did you mean github.integrations.tekton.dev/...?" in out


def test_a_run_without_integrations_gets_a_next_step(cli: Cli, cluster: FakeCluster) -> None:
    cluster.add_sample("pipelinerun-successful-no-integrations", namespace="ci")
    out = cli("explain", "nightly-report-8wzqf").out
    assert "next step: The run carries no *.integrations.tekton.dev annotations" in out


def test_a_child_taskrun_points_at_its_pipelinerun(cli: Cli, cluster: FakeCluster) -> None:
    cluster.add_sample("taskrun-successful", annotations=SLACK_OFF)
    out = cli("explain", "taskrun/build-and-test-run-x7k2p-fetch-source").out
    assert "part of: pipelinerun/build-and-test-run-x7k2p" in out
    assert "explain pipelinerun/build-and-test-run-x7k2p -n ci" in out


def test_a_copied_record_is_explained_as_ignored(cli: Cli, cluster: FakeCluster) -> None:
    ref = cluster.add_sample("pipelinerun-successful", annotations=SLACK_OFF)
    put_record(cluster, ref, "github", "True", "Reported")
    cluster.runs[ref]["metadata"]["uid"] = "a-new-run-with-the-same-annotations"
    out = cli("explain", "build-and-test-run-x7k2p").out
    assert "record:  none (the record was copied from another run" in out


def test_run_not_found_is_exit_code_4(cli: Cli, cluster: FakeCluster) -> None:
    result = cli("explain", "nope", "-n", "team-b")
    assert result.code == ExitCode.RUN_NOT_FOUND
    assert int(ExitCode.RUN_NOT_FOUND) == 4
    assert "error: no pipelinerun or taskrun named 'nope' in namespace team-b" in result.err
    result = cli("explain", "taskrun/nope")
    assert "error: taskrun/nope not found in namespace ci" in result.err


def test_a_bad_run_argument_is_a_usage_error(cli: Cli) -> None:
    result = cli("explain", "deployment/x")
    assert result.code == ExitCode.USAGE
    assert "use NAME, pipelinerun/NAME or taskrun/NAME" in result.err


def test_unreadable_events_do_not_stop_the_explanation(cli: Cli, cluster: FakeCluster) -> None:
    from common.errors import TemporaryError

    cluster.add_sample("pipelinerun-successful", annotations=SLACK_OFF)

    def forbid_events(verb: str, ref: RunRef) -> None:
        if verb == "list_events":
            raise TemporaryError("KubernetesForbidden", "403 Forbidden: events is forbidden")

    cluster.before_request = forbid_events
    result = cli("explain", "build-and-test-run-x7k2p")
    assert result.code == ExitCode.OK
    assert "cannot list the run's Events: 403 Forbidden: events is forbidden" in result.out
