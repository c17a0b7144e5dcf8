"""``tekton-integrations resync``: find the runs whose records lag behind, and deliver their events again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from common.cli import ExitCode
from common.cli.integrations import Loaded
from common.cli.records import IntegrationView, need_of
from common.events import parse_run
from common.integration import Idempotency, Integration, Report
from common.policy import TargetsNothing
from common.runclient import RunRef
from common.settings import RuntimeSettings
from common.standins.github import GitHubStandIn
from functions.github.main import GitHubConfig
from tests.cli.conftest import NOW, SLACK_OFF, Cli
from tests.cli.fakes import FakeCluster
from tests.cli.records import put_record
from tests.conftest import event_request, function_client
from tests.support.receiver import Receiver, free_port


@pytest.fixture
def lagging(cluster: FakeCluster) -> dict[str, RunRef]:
    """Runs in every situation; the first three need a resync, the others do not."""
    runs: dict[str, RunRef] = {}

    def add(name: str, sample: str, **kwargs: Any) -> RunRef:
        runs[name] = cluster.add_sample(sample, run_name=name, annotations=SLACK_OFF, **kwargs)
        return runs[name]

    add("lost-all-events", "pipelinerun-successful")
    put_record(cluster, add("lost-final-event", "pipelinerun-running"), "github", "True", "Reported")
    cluster.advance(runs["lost-final-event"], "pipelinerun-successful")
    put_record(cluster, add("retry-pending", "pipelinerun-running"), "github", "Unknown", "GitHubUnavailable")

    put_record(cluster, add("reported", "pipelinerun-successful"), "github", "True", "Reported")
    put_record(cluster, add("gave-up", "pipelinerun-failed"), "github", "False", "InvalidConfiguration")
    add("still-running", "pipelinerun-running")
    put_record(
        cluster,
        add("in-flight", "pipelinerun-successful"),
        "github",
        "Unknown",
        "Reporting",
        claim=True,
        at=NOW,
    )
    cluster.add_sample("taskrun-successful", annotations=SLACK_OFF)  # a child: reported via its PipelineRun
    cluster.add_sample("pipelinerun-successful-no-integrations", namespace="ci")
    return runs


NEEDING = {"lost-all-events": "NoRecord", "lost-final-event": "NotFinal", "retry-pending": "Unknown"}


def listed(text: str) -> dict[str, str]:
    return {line.split()[0].split("/")[1]: line.split()[2] for line in text.splitlines()[1:]}


def test_dry_run_lists_exactly_the_runs_that_need_it(cli: Cli, lagging: dict[str, RunRef]) -> None:
    result = cli("resync", "--dry-run")
    assert result.code == ExitCode.OK
    assert result.out.splitlines()[0].split() == ["RUN", "INTEGRATION", "WHY", "DETAIL"]
    assert listed(result.out) == NEEDING
    assert "the record reports Running; the run is Succeeded" in result.out
    assert "GitHubUnavailable" in result.out

    items = json.loads(cli("resync", "--dry-run", "-o", "json").out)["items"]
    assert {item["name"]: item["why"] for item in items} == NEEDING
    assert all("result" not in item for item in items)


def test_delivers_in_process_and_a_second_run_makes_no_external_call(
    cli: Cli, cluster: FakeCluster, lagging: dict[str, RunRef], github: GitHubStandIn
) -> None:
    first = cli("resync")
    assert first.code == ExitCode.OK, first.out
    assert first.out.splitlines()[0].split()[-1] == "RESULT"
    assert first.out.count("reported: check run") == 3
    assert len(github.check_runs) == 3, "one check run per lagging run"
    for name in NEEDING:
        record = json.loads(
            cluster.runs[lagging[name]]["metadata"]["annotations"]["github.integrations.tekton.dev/status"]
        )
        assert record["conditions"][0]["status"] == "True"
        assert (
            record["runState"]["status"] == cluster.runs[lagging[name]]["status"]["conditions"][0]["status"]
        )
    calls = len(github.calls)

    second = cli("resync")
    assert second.code == ExitCode.OK
    assert second.out == "Nothing to resync in namespace ci: every record is up to date with its run.\n"
    assert len(github.calls) == calls


def test_since_limits_by_completion_time(cli: Cli, cluster: FakeCluster, lagging: dict[str, RunRef]) -> None:
    for ref in lagging.values():  # the samples finished at 09:24:52; move two of them back a day
        if ref.name in ("lost-all-events", "lost-final-event"):
            cluster.runs[ref]["status"]["completionTime"] = "2026-03-13T09:00:00Z"
    assert set(listed(cli("resync", "--dry-run", "--since", "2h").out)) == {"retry-pending"}
    assert set(listed(cli("resync", "--dry-run", "--since", "2d").out)) == set(NEEDING)


def test_filters_narrow_the_runs(cli: Cli, lagging: dict[str, RunRef]) -> None:
    assert cli("resync", "--dry-run", "--integration", "slack").out.startswith("Nothing to resync")
    assert cli("resync", "--dry-run", "--kind", "taskrun").out.startswith("Nothing to resync")
    assert cli("resync", "--dry-run", "-n", "team-b").out.startswith("Nothing to resync in namespace team-b")


def test_delivers_to_function_urls(cli: Cli, lagging: dict[str, RunRef]) -> None:
    with Receiver() as github_function:
        for _ in NEEDING:
            github_function.answer(200, body=b'{"outcome": "reported", "detail": "check run set"}')
        result = cli("resync", "--url", f"github={github_function.url}")
    assert result.code == ExitCode.OK
    assert result.out.count("reported: check run set") == 3
    types = sorted(r.headers["ce-type"] for r in github_function.requests)
    assert types == [
        "dev.tekton.event.pipelinerun.running.v1",
        "dev.tekton.event.pipelinerun.successful.v1",
        "dev.tekton.event.pipelinerun.successful.v1",
    ]
    names = {json.loads(r.body)["pipelineRun"]["metadata"]["name"] for r in github_function.requests}
    assert names == set(NEEDING)


def test_work_left_undone_exits_1(cli: Cli, lagging: dict[str, RunRef]) -> None:
    with Receiver() as github_function:
        github_function.answer(503, body=b'{"outcome": "retry", "detail": "GitHub answered 503"}')
        result = cli("resync", "--url", f"github={github_function.url}")
    assert result.code == ExitCode.ERROR
    assert "HTTP 503: GitHub answered 503" in result.out

    result = cli("resync", "--url", f"github=http://127.0.0.1:{free_port()}/")
    assert result.code == ExitCode.ERROR
    assert result.out.count("unreachable: could not POST") == 3

    result = cli("resync", "--url", "slack=http://127.0.0.1:1/")
    assert result.out.count("skipped: no --url github=URL given") == 3


@pytest.mark.parametrize("argv", [["--since", "yesterday"], ["--url", "http://no-name"], ["--sha", "xyz"]])
def test_bad_arguments_are_usage_errors(cli: Cli, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("resync", *argv)
    assert exit_info.value.code == ExitCode.USAGE


@pytest.fixture
def function_meanwhile(cluster: FakeCluster, github: GitHubStandIn) -> Iterator[None]:
    """The github function, delivering the same event just before resync's first write (its claim)."""
    from common.http import use_run_client

    use_run_client(cluster)
    client = function_client("github")
    delivered: list[bool] = []

    def interleave(verb: str, ref: RunRef) -> None:
        if verb == "patch" and not delivered:
            delivered.append(True)
            cluster.before_request = None
            from common import samples

            sample = samples.load("pipelinerun-successful")
            sample["data"]["pipelineRun"]["metadata"].update(
                name=ref.name, uid=cluster.runs[ref]["metadata"]["uid"]
            )
            headers, body = event_request(sample)
            assert client.post("/", headers=headers, data=body).status_code == 200

    cluster.before_request = interleave
    yield
    use_run_client(None)


def test_concurrent_with_the_function_the_state_is_reported_once(
    cli: Cli, cluster: FakeCluster, github: GitHubStandIn, function_meanwhile: None
) -> None:
    cluster.add_sample("pipelinerun-successful", annotations=SLACK_OFF)
    result = cli("resync")
    assert result.code == ExitCode.OK
    assert "ignored:" in result.out or "reported:" in result.out
    assert len(github.check_runs) == 1, "the function and resync raced; one check run was created"


def test_a_state_the_settings_do_not_ask_for_is_not_needed(cluster: FakeCluster) -> None:
    ref = cluster.add_sample("pipelinerun-successful", annotations=SLACK_OFF)
    run = parse_run("PipelineRun", cluster.runs[ref])
    view = IntegrationView("github", configured=True, record=None, stored=None)
    only_failures: Integration[Any, Any] = Integration(
        declared_in=__file__,
        name="github",
        config=GitHubConfig,
        report=lambda _: Report("-"),
        policy=TargetsNothing(),
        idempotency=Idempotency("-"),
        wants=lambda ctx: ctx.run.phase.value == "failed",
    )
    settings = RuntimeSettings()
    assert need_of(run, view, Loaded("github", only_failures), NOW, settings) is None
    need = need_of(run, view, Loaded("github", None, "not installed"), NOW, settings)
    assert need is not None
    assert need.why == "NoRecord"
    assert need_of(run, view, Loaded("github", only_failures), NOW + timedelta(days=1), settings) is None


TYPO = {
    "githib.integrations.tekton.dev/owner": "acme",
    "githib.integrations.tekton.dev/repo": "widget-service",
    "githib.integrations.tekton.dev/sha": "9f1c2e7b4a6d8e0f1a2b3c4d5e6f708192a3b4c5",
}


def test_a_misspelt_prefix_is_a_warning_and_never_a_failure(
    cli: Cli, cluster: FakeCluster, lagging: dict[str, RunRef], github: GitHubStandIn
) -> None:
    """Issue 13: one run annotated githib.* must not make the CronJob fail every 15 minutes."""
    only_typo = {
        **dict.fromkeys(
            k for k in cluster.runs[lagging["reported"]]["metadata"]["annotations"] if k.startswith("github.")
        ),
        **TYPO,
        **SLACK_OFF,
    }
    cluster.add_sample("pipelinerun-successful", run_name="typo", namespace="team-b", annotations=only_typo)
    for argv in (["resync", "-A", "--dry-run"], ["resync", "-A"]):
        result = cli(*argv)
        assert result.code == ExitCode.OK, result.err
        assert "typo" not in result.out
        assert (
            "warning: pipelinerun/typo in namespace team-b: githib.integrations.tekton.dev/... names no "
            "installed integration (did you mean github.integrations.tekton.dev?)" in result.err
        )
    as_json = json.loads(cli("resync", "-A", "--dry-run", "-o", "json").out)
    assert any("githib" in warning for warning in as_json["warnings"])


def test_bad_annotations_are_recorded_with_the_human_message(
    cli: Cli, cluster: FakeCluster, github: GitHubStandIn
) -> None:
    """Issue 13: the record and the Event say 'use the full commit SHA', never the pattern."""
    ref = cluster.add_sample(
        "pipelinerun-failed", annotations={**SLACK_OFF, "github.integrations.tekton.dev/sha": "main"}
    )
    assert cli("resync").code == ExitCode.OK
    record = json.loads(cluster.runs[ref]["metadata"]["annotations"]["github.integrations.tekton.dev/status"])
    message = record["conditions"][0]["message"]
    assert (record["conditions"][0]["reason"], record["conditions"][0]["status"]) == (
        "InvalidConfiguration",
        "False",
    )
    assert "sha: 'main' does not have the expected form: use the full commit SHA" in message
    assert "pattern" not in message
    ((_, reason, event),) = cluster.events
    assert reason == "IntegrationFailed"
    assert "use the full commit SHA" in event
    assert "pattern" not in event
    wide = cli("status", "-o", "wide").out
    assert "use the full commit SHA" in wide
    assert "should match pattern" not in wide


def test_name_output_and_no_headers(cli: Cli, lagging: dict[str, RunRef]) -> None:
    names = cli("resync", "--dry-run", "-o", "name").out.split()
    assert sorted(names) == sorted(f"pipelinerun.tekton.dev/{name}" for name in NEEDING)
    bare = cli("resync", "--dry-run", "--no-headers").out.splitlines()
    assert len(bare) == len(NEEDING)
    assert not bare[0].startswith("RUN")


def test_a_url_template_delivers_to_every_integrations_function(cli: Cli, cluster: FakeCluster) -> None:
    """The CronJob's way: no list of integrations to keep up to date."""
    with Receiver() as receiver:
        cluster.add_sample("pipelinerun-successful", annotations=SLACK_OFF)
        receiver.answer(200, {"Content-Type": "application/json"}, b'{"outcome": "reported", "detail": "ok"}')
        template = receiver.url.rstrip("/") + "/{name}"
        result = cli("resync", "--url-template", template)
        assert result.code == ExitCode.OK, result.err
        (request,) = receiver.requests
        assert request.path.endswith("/github"), "the template named the integration"


def test_a_url_template_must_name_the_integration(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("resync", "--url-template", "http://functions.example")
    assert exit_info.value.code == ExitCode.USAGE
    assert "has no {name}" in capsys.readouterr().err
