"""``tekton-integrations health``: counts, last success and last failure per integration and
destination, from the records on runs in every namespace."""

from __future__ import annotations

import json
from datetime import timedelta

from common import registry
from common.cli import ExitCode
from common.runclient import RunRef
from common.status import ConditionStatus
from tests.cli.conftest import NOW, SLACK_OFF, Cli
from tests.cli.fakes import FakeCluster
from tests.cli.records import put_record

GITHUB = "github.integrations.tekton.dev/"


def finished(  # noqa: PLR0917 -- reads as a table of runs
    cluster: FakeCluster,
    name: str,
    repo: str,
    status: ConditionStatus,
    reason: str,
    minutes_ago: int,
    namespace: str = "ci",
    message: str = "",
) -> RunRef:
    """A run of ``acme/<repo>`` that finished ``minutes_ago``, with its github record."""
    sample = "pipelinerun-successful" if status == "True" else "pipelinerun-failed"
    ref = cluster.add_sample(
        sample, run_name=name, namespace=namespace, annotations={**SLACK_OFF, GITHUB + "repo": repo}
    )
    when = NOW - timedelta(minutes=minutes_ago)
    cluster.runs[ref]["status"]["completionTime"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    put_record(cluster, ref, "github", status, reason, message=message, at=when - timedelta(seconds=30))
    return ref


def rows(text: str) -> dict[tuple[str, str], list[str]]:
    return {tuple(line.split()[:2]): line.split()[2:] for line in text.splitlines()[1:]}  # type: ignore[misc]


def test_last_failure_per_destination_and_counts_across_namespaces(cli: Cli, cluster: FakeCluster) -> None:
    finished(cluster, "w-1", "widget", "True", "Reported", 300)
    finished(cluster, "w-2", "widget", "True", "Reported", 30, namespace="team-b")
    finished(cluster, "g-1", "gadget", "False", "GitHubUnauthorized", 200, message="401 Bad credentials")
    finished(
        cluster,
        "g-2",
        "gadget",
        "False",
        "GitHubNotFound",
        90,
        namespace="team-b",
        message="404: App removed",
    )
    finished(cluster, "g-3", "gadget", "True", "Reported", 120)
    finished(cluster, "old", "gadget", "False", "GitHubServerError", 60 * 30)  # outside the 24h window
    retrying = cluster.add_sample(
        "pipelinerun-running", run_name="r-1", annotations={**SLACK_OFF, GITHUB + "repo": "widget"}
    )
    put_record(cluster, retrying, "github", "Unknown", "GitHubUnavailable", at=NOW - timedelta(minutes=1))

    result = cli("health")
    assert result.code == ExitCode.OK
    table = rows(result.out)
    assert result.out.splitlines()[0].split()[:4] == ["INTEGRATION", "DESTINATION", "LATEST", "SUCCEEDED"]
    # LATEST, SUCCEEDED, FAILED, RETRYING, LAST SUCCESS, LAST FAILURE, REASON
    assert table[("github", "(all)")] == ["retrying", "3", "2", "1", "30m", "90m", "GitHubNotFound"]
    assert table[("github", "acme/gadget")] == ["failed", "1", "2", "0", "2h", "90m", "GitHubNotFound"]
    assert table[("github", "acme/widget")] == ["retrying", "2", "0", "1", "30m", "-", "-"]
    for name in registry.names():  # every integration has its row, records or not
        assert (name, "(all)") in table
    assert table[("slack", "(all)")] == ["-", "0", "0", "0", "-", "-", "-"]
    assert "Records of the last 24h in every namespace you can read." in result.err

    report = json.loads(cli("health", "-o", "json").out)
    github = next(i for i in report["integrations"] if i["name"] == "github")
    gadget = next(d for d in github["destinations"] if d["destination"] == "acme/gadget")
    assert gadget["lastFailure"]["reason"] == "GitHubNotFound"
    assert gadget["lastFailure"]["message"] == "404: App removed"
    assert gadget["lastFailure"]["run"] == "pipelinerun/team-b/g-2"
    assert gadget["lastSuccess"]["run"] == "pipelinerun/ci/g-3"


def test_the_window_and_the_namespace_narrow_it(cli: Cli, cluster: FakeCluster) -> None:
    finished(cluster, "w-1", "widget", "True", "Reported", 300)
    finished(cluster, "g-2", "gadget", "False", "GitHubNotFound", 90, namespace="team-b")
    assert rows(cli("health", "--since", "2h").out)[("github", "(all)")][:3] == ["failed", "0", "1"]
    assert rows(cli("health", "-n", "ci").out)[("github", "(all)")][:3] == ["succeeded", "1", "0"]
    bare = cli("health", "--integration", "github", "--no-headers").out.splitlines()
    assert [line.split()[:2] for line in bare] == [
        ["github", "(all)"],
        ["github", "acme/gadget"],
        ["github", "acme/widget"],
    ]


def test_wide_shows_the_failed_run_and_its_message(cli: Cli, cluster: FakeCluster) -> None:
    finished(
        cluster,
        "g-2",
        "gadget",
        "False",
        "GitHubNotFound",
        90,
        namespace="team-b",
        message="404: App removed",
    )
    out = cli("health", "-o", "wide", "--integration", "github").out
    assert out.splitlines()[0].split()[-4:] == ["REASON", "FAILED", "RUN", "MESSAGE"]
    assert "pipelinerun/team-b/g-2   404: App removed" in out
