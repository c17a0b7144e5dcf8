"""``tekton-integrations send``: the tested alternative to a hand-written curl."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from werkzeug.serving import make_server

from common import samples
from common.cli import ExitCode
from common.http import use_run_client
from common.runclient import RunRef
from common.standins.github import GitHubStandIn
from tests.cli.conftest import SLACK_OFF, Cli
from tests.cli.fakes import FakeCluster
from tests.conftest import event_request, function_client
from tests.support.receiver import Receiver, free_port

RECORD = "github.integrations.tekton.dev/status"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def sent(receiver: Receiver) -> tuple[dict[str, str], dict[str, Any]]:
    (request,) = receiver.requests
    return request.headers, json.loads(request.body)


def test_a_run_from_the_cluster_is_sent_as_tekton_would(
    cli: Cli, cluster: FakeCluster, receiver: Receiver
) -> None:
    cluster.add_sample("pipelinerun-successful")
    receiver.answer(200, {"Content-Type": "application/json"}, b'{"outcome": "reported", "detail": "done"}')

    result = cli("send", "pipelinerun/build-and-test-run-x7k2p", "--url", receiver.url)

    assert result.code == ExitCode.OK
    headers, body = sent(receiver)
    assert headers["ce-type"] == "dev.tekton.event.pipelinerun.successful.v1"
    assert headers["ce-source"] == "/apis///namespaces/ci//build-and-test-run-x7k2p"
    assert headers["ce-specversion"] == "1.0"
    assert headers["content-type"] == "application/json"
    run = body["pipelineRun"]
    assert "apiVersion" not in run
    assert "kind" not in run
    assert run["status"]["pipelineResults"][0]["name"]
    assert "results" not in run["status"]
    assert result.out.splitlines() == [
        f"POST {receiver.url}",
        "  dev.tekton.event.pipelinerun.successful.v1 for pipelinerun/build-and-test-run-x7k2p"
        " (namespace ci)",
        "  -> 200 reported: done",
    ]


def test_a_non_2xx_answer_is_printed_and_exits_1(cli: Cli, receiver: Receiver) -> None:
    receiver.answer(503, {"Retry-After": "7"}, b'{"outcome": "retry", "detail": "GitHub answered 503"}')
    result = cli("send", "--sample", "pipelinerun-running", "--url", receiver.url)
    assert result.code == ExitCode.ERROR
    assert "-> 503 retry: GitHub answered 503" in result.out
    assert "Retry-After: 7" in result.out


def test_json_output_has_the_event_and_the_answer(cli: Cli, receiver: Receiver) -> None:
    result = cli("send", "--sample", "taskrun-running", "--url", receiver.url, "-o", "json")
    printed = json.loads(result.out)
    assert printed["answer"] == {"status": 200, "body": "ok"}
    assert printed["event"]["headers"]["ce-type"] == "dev.tekton.event.taskrun.running.v1"


def test_dry_run_output_is_sent_again_unchanged_by_file(
    cli: Cli, cluster: FakeCluster, receiver: Receiver, tmp_path: Path
) -> None:
    cluster.add_sample("pipelinerun-failed")
    printed = cli("send", "build-and-test-run-q4m9z", "--dry-run")
    assert receiver.requests == []
    saved = tmp_path / "event.json"
    saved.write_text(printed.out)

    assert cli("send", "-f", str(saved), "--url", receiver.url).code == ExitCode.OK
    headers, body = sent(receiver)
    assert body == json.loads(printed.out)["data"]
    assert headers["ce-type"] == "dev.tekton.event.pipelinerun.failed.v1"


def test_a_run_saved_with_kubectl_is_converted(
    cli: Cli, cluster: FakeCluster, receiver: Receiver, tmp_path: Path
) -> None:
    ref = cluster.add_sample("pipelinerun-successful")
    saved = tmp_path / "run.yaml"
    saved.write_text(yaml.safe_dump(cluster.runs[ref]))  # what `kubectl get pr NAME -o yaml` prints
    assert cli("send", "-f", str(saved), "--url", receiver.url).code == ExitCode.OK
    _, body = sent(receiver)
    assert "pipelineResults" in body["pipelineRun"]["status"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "name exactly one run"),
        (["build-and-test-run-x7k2p", "--sample", "pipelinerun-running"], "name exactly one run"),
        (["--sample", "pipelinerun-running"], "--url is required"),
    ],
)
def test_usage_errors(cli: Cli, argv: list[str], message: str) -> None:
    result = cli("send", *argv)
    assert result.code == ExitCode.USAGE
    assert message in result.err


def test_a_url_must_be_http(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("send", "--sample", "pipelinerun-running", "--url", "file:///etc/passwd")
    assert exit_info.value.code == ExitCode.USAGE


def test_an_unreachable_function_is_a_clear_error(cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    result = cli("send", "--sample", "pipelinerun-running", "--url", url)
    assert result.code == ExitCode.ERROR
    assert f"error: could not POST to {url}: [Errno 111] Connection refused" in result.err


def test_a_missing_run_is_exit_code_4(cli: Cli, receiver: Receiver) -> None:
    result = cli("send", "gone", "--url", receiver.url)
    assert result.code == ExitCode.RUN_NOT_FOUND
    assert receiver.requests == []


@pytest.fixture
def served_github(cluster: FakeCluster, github: GitHubStandIn) -> Iterator[str]:
    """The github function behind a real loopback HTTP server, using the fake cluster."""
    app = function_client("github").application
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    use_run_client(cluster)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    thread.join()
    use_run_client(None)


def test_send_produces_the_same_record_as_tektons_own_event(
    cli: Cli, cluster: FakeCluster, github: GitHubStandIn, served_github: str
) -> None:
    tekton = cluster.add_sample("pipelinerun-running", run_name="by-tekton", annotations=SLACK_OFF)
    ours = cluster.add_sample("pipelinerun-running", run_name="by-cli", annotations=SLACK_OFF)
    client = function_client("github")
    for step in ("pipelinerun-running", "pipelinerun-successful"):
        if step != "pipelinerun-running":
            cluster.advance(tekton, step)
            cluster.advance(ours, step)
        sample = samples.load(step)
        obj = sample["data"]["pipelineRun"]
        obj["metadata"].update(name="by-tekton", uid=cluster.uid(tekton))
        headers, data = event_request(sample)
        assert client.post("/", headers=headers, data=data).status_code == 200
        assert cli("send", "by-cli", "--url", served_github).code == ExitCode.OK

    assert normalised(cluster, ours) == normalised(cluster, tekton)
    assert len(github.check_runs) == 2
    assert {c["conclusion"] for c in github.check_runs.values()} == {"success"}


def normalised(cluster: FakeCluster, ref: RunRef) -> dict[str, Any]:
    record = json.loads(cluster.runs[ref]["metadata"]["annotations"][RECORD])
    record.pop("runUID")
    record["annotations"].pop("check-run-id")
    condition = record["conditions"][0]
    condition.pop("lastTransitionTime")
    condition["message"] = condition["message"].split("(")[0]
    return dict(record)
