"""``tekton-integrations status``: which runs built a commit, and what each integration recorded."""

from __future__ import annotations

import io
import json

import pytest
import yaml

from common.cli import ExitCode
from common.errors import KubernetesUnavailableError, TemporaryError
from common.runclient import RunRef
from tests.cli.conftest import Cli
from tests.cli.fakes import FakeCluster
from tests.cli.records import put_record

SHA = "9f1c2e7b4a6d8e0f1a2b3c4d5e6f708192a3b4c5"
OTHER_SHA = "4e8a1d0c9b7f6e5d4c3b2a1908f7e6d5c4b3a291"


def github(sha: str = SHA, repo: str = "widget-service") -> dict[str, str | None]:
    return {
        "github.integrations.tekton.dev/sha": sha,
        "github.integrations.tekton.dev/repo": repo,
        "slack.integrations.tekton.dev/channel": None,
    }


@pytest.fixture
def commit_runs(cluster: FakeCluster) -> dict[str, RunRef]:
    """Two runs for SHA in ci (one reported, one not), one for another commit, one elsewhere, a child."""
    built = cluster.add_sample("pipelinerun-successful", run_name="build-1", annotations=github())
    put_record(cluster, built, "github", "True", "Reported", annotations={"check-run-id": "5678"})
    retried = cluster.add_sample("pipelinerun-failed", run_name="build-2", annotations=github())
    other = cluster.add_sample("pipelinerun-successful", run_name="build-3", annotations=github(OTHER_SHA))
    elsewhere = cluster.add_sample(
        "pipelinerun-successful", run_name="build-4", namespace="team-b", annotations=github()
    )
    child = cluster.add_sample("taskrun-successful", annotations=github())
    return {"built": built, "retried": retried, "other": other, "elsewhere": elsewhere, "child": child}


def run_names(text: str) -> list[str]:
    return [line.split()[0] for line in text.splitlines()[1:]]


def test_lists_exactly_the_runs_for_a_commit_with_their_conditions(
    cli: Cli, commit_runs: dict[str, RunRef]
) -> None:
    result = cli("status", "--repo", "acme/widget-service", "--sha", SHA)

    assert result.code == ExitCode.OK
    lines = result.out.splitlines()
    assert lines[0].split() == ["RUN", "STATE", "INTEGRATION", "CONDITION", "REASON", "AGE", "IDS", "MATCH"]
    assert run_names(result.out) == ["pipelinerun/build-2", "pipelinerun/build-1"], "newest first"
    built = next(line for line in lines if "build-1" in line)
    assert built.split() == [
        "pipelinerun/build-1",
        "Succeeded",
        "github",
        "True",
        "Reported",
        "8m",  # since the run was created, as kubectl shows AGE
        "check-run-id=5678",
        "annotation,",  # its sha annotation, and its revision parameter names the commit too
        "param",
        "revision",
    ]
    retried = next(line for line in lines if "build-2" in line)
    assert retried.split()[1:7] == ["Failed", "github", "-", "NoRecord", "0s", "-"]


def test_a_short_sha_and_any_case_of_the_repository_match(cli: Cli, commit_runs: dict[str, RunRef]) -> None:
    result = cli("status", "--repo", "ACME/Widget-Service", "--sha", SHA[:7].upper())
    assert sorted(run_names(result.out)) == ["pipelinerun/build-1", "pipelinerun/build-2"]


def test_all_namespaces_adds_the_namespace_column(cli: Cli, commit_runs: dict[str, RunRef]) -> None:
    result = cli("status", "-A", "--sha", SHA)
    assert result.out.splitlines()[0].split()[0] == "NAMESPACE"
    rows = {tuple(line.split()[:2]) for line in result.out.splitlines()[1:]}
    assert rows == {
        ("ci", "pipelinerun/build-1"),
        ("ci", "pipelinerun/build-2"),
        ("team-b", "pipelinerun/build-4"),
    }


def test_json_and_yaml_parse_and_carry_the_records(cli: Cli, commit_runs: dict[str, RunRef]) -> None:
    result = cli("status", "--sha", SHA, "-o", "json")
    items = json.loads(result.out)["items"]
    by_name = {item["name"]: item for item in items}
    assert set(by_name) == {"build-1", "build-2"}
    (entry,) = by_name["build-1"]["integrations"]
    assert (entry["name"], entry["condition"], entry["reason"]) == ("github", "True", "Reported")
    assert entry["ids"] == {"check-run-id": "5678"}
    assert entry["record"]["conditions"][0]["status"] == "True"
    assert by_name["build-1"]["commits"] == [
        {"integration": "github", "repo": "acme/widget-service", "sha": SHA}
    ]
    assert by_name["build-2"]["integrations"][0]["record"] is None

    assert yaml.safe_load(cli("status", "--sha", SHA, "-o", "yaml").out) == {"items": items}


def test_no_run_for_a_commit_is_an_answer_with_its_own_exit_code(
    cli: Cli, commit_runs: dict[str, RunRef]
) -> None:
    result = cli("status", "--repo", "acme/widget-service", "--sha", "0123456789abcdef")
    assert result.code == ExitCode.NO_MATCH
    assert int(ExitCode.NO_MATCH) == 3
    assert result.out == ""
    assert "No run found for commit 0123456789ab of acme/widget-service in namespace ci." in result.err
    assert "No build was started for it:" in result.err, "every namespace was looked at: none has it"
    assert "use -A" not in result.err

    as_json = cli("status", "--sha", "0123456789abcdef", "-o", "json")
    assert as_json.code == ExitCode.NO_MATCH
    assert json.loads(as_json.out) == {"items": []}


def test_a_run_that_built_the_commit_without_opting_in_is_listed_and_pointed_out(
    cli: Cli, cluster: FakeCluster
) -> None:
    ref = cluster.add_sample(
        "pipelinerun-successful",
        annotations=dict.fromkeys(github()) | {"github.integrations.tekton.dev/owner": None},
    )
    cluster.runs[ref]["spec"]["params"] = [{"name": "revision", "value": SHA}]
    result = cli("status", "--sha", SHA[:10])
    assert result.code == ExitCode.OK
    (row,) = result.out.splitlines()[1:]
    assert row.split()[:5] == [
        "pipelinerun/build-and-test-run-x7k2p",
        "Succeeded",
        "-",
        "-",
        "NoIntegrations",
    ]
    assert row.endswith("param revision")
    assert "carries no *.integrations.tekton.dev annotations, so nothing reports it" in result.err


def test_a_misspelt_prefix_run_is_found_by_its_sha_annotation_and_its_revision_param(
    cli: Cli, cluster: FakeCluster, commit_runs: dict[str, RunRef]
) -> None:
    """Issue 13: ``githib.integrations.tekton.dev/sha`` and a ``revision`` param name the commit."""
    typo = {
        "githib.integrations.tekton.dev/owner": "acme",
        "githib.integrations.tekton.dev/repo": "widget-service",
        "githib.integrations.tekton.dev/sha": SHA,
        **dict.fromkeys(github()),
        "github.integrations.tekton.dev/owner": None,
    }
    cluster.add_sample("pipelinerun-successful", run_name="typo", annotations=typo)
    result = cli("status", "--repo", "acme/widget-service", "--sha", SHA[:7])
    assert result.code == ExitCode.OK
    assert set(run_names(result.out)) == {"pipelinerun/typo", "pipelinerun/build-2", "pipelinerun/build-1"}
    row = next(line for line in result.out.splitlines() if "typo" in line)
    assert row.split()[2:5] == ["githib", "-", "UnknownIntegration"]
    assert row.endswith("annotation githib.* (unknown), param revision")
    assert (
        "warning: pipelinerun/typo in namespace ci: githib.integrations.tekton.dev/... names no installed "
        in (result.err)
    )
    assert "did you mean github.integrations.tekton.dev?" in result.err
    as_json = json.loads(cli("status", "--sha", SHA[:7], "-o", "json").out)
    typo_item = next(item for item in as_json["items"] if item["name"] == "typo")
    assert typo_item["matchedBy"] == ["annotation githib.* (unknown)", "param revision"]


def test_a_param_naming_another_commit_than_the_annotations_does_not_match(
    cli: Cli, commit_runs: dict[str, RunRef]
) -> None:
    # build-3 is annotated OTHER_SHA; its sample's revision param still says SHA: annotations win.
    assert "build-3" not in cli("status", "--sha", SHA).out
    assert run_names(cli("status", "--sha", OTHER_SHA).out) == ["pipelinerun/build-3"]


def test_without_n_matches_in_other_namespaces_are_pointed_out(
    cli: Cli, commit_runs: dict[str, RunRef]
) -> None:
    result = cli("status", "--sha", SHA)
    assert result.code == ExitCode.OK
    assert "note: 1 more run in other namespaces matches (team-b: 1): use -A to list them." in result.err

    nothing_here = cli("status", "--sha", OTHER_SHA, context_namespace="team-b")
    assert nothing_here.code == ExitCode.NO_MATCH
    assert "No run found for commit 4e8a1d0c9b7f in namespace team-b." in nothing_here.err
    assert "But 1 run in other namespaces matches (ci: 1): use -A to list them" in nothing_here.err
    assert "No build was started" not in nothing_here.err

    chosen = cli("status", "--sha", OTHER_SHA, "-n", "team-b")
    assert "other namespaces" not in chosen.err, "-n is the user's choice: no cluster-wide look"
    assert "No build was started for it here" in chosen.err
    assert "use -A to search every namespace" in chosen.err


def test_other_namespaces_are_probed_one_by_one_when_a_cluster_wide_list_is_forbidden(
    cli: Cli, cluster: FakeCluster, commit_runs: dict[str, RunRef]
) -> None:
    def only_namespaced(verb: str, ref: RunRef) -> None:
        if verb == "list" and ref.namespace == "":
            raise TemporaryError("KubernetesForbidden", "403 Forbidden: cannot list at the cluster scope")

    cluster.before_request = only_namespaced
    result = cli("status", "--sha", SHA)
    assert result.code == ExitCode.OK
    assert "(team-b: 1)" in result.err


def test_child_taskruns_show_only_with_a_record_of_their_own(
    cli: Cli, cluster: FakeCluster, commit_runs: dict[str, RunRef]
) -> None:
    assert "taskrun/" not in cli("status", "--sha", SHA).out
    put_record(cluster, commit_runs["child"], "github", "True", "Reported")
    assert "taskrun/build-and-test-run-x7k2p-fetch-source" in cli("status", "--sha", SHA).out


def test_filters_by_integration_and_kind(cli: Cli, cluster: FakeCluster) -> None:
    cluster.add_sample("pipelinerun-successful", run_name="with-slack")
    cluster.add_sample("pipelinerun-successful", run_name="github-only", annotations=github())
    result = cli("status", "--integration", "slack")
    assert run_names(result.out) == ["pipelinerun/with-slack"]
    assert [line.split()[2] for line in result.out.splitlines()[1:]] == ["slack"]
    assert cli("status", "--kind", "taskrun").code == ExitCode.NO_MATCH


def test_a_misspelt_integration_is_shown_as_unknown(cli: Cli, cluster: FakeCluster) -> None:
    cluster.add_sample(
        "pipelinerun-successful",
        annotations={**github(), "githib.integrations.tekton.dev/context": "ci"},
    )
    row = next(line for line in cli("status").out.splitlines() if " githib " in line)
    assert "UnknownIntegration" in row


def test_a_run_without_integrations_says_so(cli: Cli, cluster: FakeCluster) -> None:
    cluster.add_sample("pipelinerun-successful-no-integrations", namespace="ci")
    (row,) = cli("status").out.splitlines()[1:]
    assert row.split()[2:5] == ["-", "-", "NoIntegrations"]


def test_a_record_for_an_earlier_state_says_which(cli: Cli, cluster: FakeCluster) -> None:
    ref = cluster.add_sample("pipelinerun-running", annotations=github())
    put_record(cluster, ref, "github", "True", "Reported")
    cluster.advance(ref, "pipelinerun-successful")
    assert "Reported (for Running)" in cli("status").out


def test_wide_adds_attempts_commit_and_message(cli: Cli, commit_runs: dict[str, RunRef]) -> None:
    result = cli("status", "--sha", SHA, "-o", "wide")
    assert result.out.splitlines()[0].split()[-4:] == ["ATTEMPTS", "CHANGED", "COMMIT", "MESSAGE"]
    assert "acme/widget-service@9f1c2e7" in result.out
    assert "github Reported" in result.out


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colours_only_on_a_terminal_and_never_with_no_color(
    cluster: FakeCluster, commit_runs: dict[str, RunRef]
) -> None:
    from common.cli import main
    from common.cli.session import Connection

    def run(env: dict[str, str], out: io.StringIO) -> str:
        main(["status"], connector=lambda _: Connection(cluster, "ci"), out=out, err=io.StringIO(), env=env)
        return out.getvalue()

    assert "\x1b[32mTrue\x1b[0m" in run({}, Terminal())
    assert "\x1b[" not in run({"NO_COLOR": "1"}, Terminal())
    assert "\x1b[" not in run({}, io.StringIO())


def test_no_permission_is_exit_code_6_with_the_servers_words(cli: Cli, cluster: FakeCluster) -> None:
    def forbid(verb: str, ref: RunRef) -> None:
        raise TemporaryError(
            "KubernetesForbidden",
            "Kubernetes refused access to pipelineruns in namespace ci: 403 Forbidden: "
            'pipelineruns.tekton.dev is forbidden: User "dev" cannot list resource "pipelineruns"',
        )

    cluster.before_request = forbid
    result = cli("status")
    assert result.code == ExitCode.FORBIDDEN
    assert int(ExitCode.FORBIDDEN) == 6
    assert "error: Kubernetes refused access to pipelineruns in namespace ci: 403 Forbidden" in result.err
    assert "kubectl auth can-i list pipelineruns" in result.err


def test_an_unreachable_cluster_is_exit_code_5(cli: Cli, cluster: FakeCluster) -> None:
    def down(verb: str, ref: RunRef) -> None:
        raise KubernetesUnavailableError("Kubernetes API unreachable: MaxRetryError")

    cluster.before_request = down
    result = cli("status")
    assert result.code == ExitCode.NO_CLUSTER
    assert int(ExitCode.NO_CLUSTER) == 5
    assert "error: cannot reach Kubernetes: Kubernetes API unreachable" in result.err


def test_watch_prints_the_table_then_each_change_and_stops_by_itself(
    cluster: FakeCluster, commit_runs: dict[str, RunRef]
) -> None:
    from datetime import timedelta

    from common.cli import main
    from common.cli.session import Connection
    from tests.cli.conftest import NOW

    now = [NOW]
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        """Between polls, the function reports build-2 (what a real watch would see change)."""
        polls.append(seconds)
        now[0] += timedelta(seconds=seconds)
        if len(polls) == 2:
            put_record(cluster, commit_runs["retried"], "github", "False", "GitHubNotFound")

    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["status", "--sha", SHA, "-w", "--watch-timeout", "10s", "--watch-interval", "2"],
        connector=lambda _: Connection(cluster, "ci"),
        out=out,
        err=err,
        env={},
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert code == ExitCode.OK
    assert polls == [2.0] * 5, "polled until the timeout, then stopped"
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:2] == ["RUN", "STATE"]
    assert [line.split()[0] for line in lines[1:]] == [
        "pipelinerun/build-2",
        "pipelinerun/build-1",
        "pipelinerun/build-2",
    ], "the first table, then only the row that changed"
    assert lines[-1].split()[3:5] == ["False", "GitHubNotFound"]


def test_watch_with_name_output_prints_each_changed_run(
    cluster: FakeCluster, commit_runs: dict[str, RunRef]
) -> None:
    from datetime import timedelta

    from common.cli import main
    from common.cli.session import Connection
    from tests.cli.conftest import NOW

    now = [NOW]

    def sleep(seconds: float) -> None:
        now[0] += timedelta(seconds=seconds)
        if now[0] == NOW + timedelta(seconds=1):
            put_record(cluster, commit_runs["retried"], "github", "True", "Reported", at=now[0])

    out = io.StringIO()
    main(
        [
            "-w",
            "--watch-timeout",
            "3s",
            "--watch-interval",
            "1",
            "status",
            "--sha",
            SHA,
            "-o",
            "name",
            "--no-headers",
        ],
        connector=lambda _: Connection(cluster, "ci"),
        out=out,
        err=io.StringIO(),
        env={},
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert out.getvalue().split() == [
        "pipelinerun.tekton.dev/build-2",
        "pipelinerun.tekton.dev/build-1",
        "pipelinerun.tekton.dev/build-2",
    ]


def test_name_output_is_accepted_by_explain(cli: Cli, commit_runs: dict[str, RunRef]) -> None:
    names = cli("status", "--sha", SHA, "-o", "name").out.split()
    assert names == ["pipelinerun.tekton.dev/build-2", "pipelinerun.tekton.dev/build-1"]
    assert cli("explain", names[0]).code == ExitCode.OK


def test_no_headers_and_a_label_selector(
    cli: Cli, cluster: FakeCluster, commit_runs: dict[str, RunRef]
) -> None:
    cluster.runs[commit_runs["built"]]["metadata"].setdefault("labels", {})["team"] = "widgets"
    result = cli("status", "-l", "team=widgets", "--no-headers")
    assert [line.split()[0] for line in result.out.splitlines()] == ["pipelinerun/build-1"]
