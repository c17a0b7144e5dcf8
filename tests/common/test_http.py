"""What a sender sees: HTTP answers for malformed, oversized and well-formed events."""

from __future__ import annotations

import json

import pytest

from common import samples
from common.runclient import MemoryRunClient
from tests.conftest import add_run, body, event_request, function_client

SECRET = "Bearer very-secret-token"


@pytest.mark.parametrize(
    ("headers", "data", "detail"),
    [
        ({"Content-Type": "application/json"}, b'{"pipelineRun": {}}', "not a CloudEvent"),
        (
            {"Content-Type": "application/cloudevents+json"},
            b"{not json",
            "not a CloudEvent",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/x",
                "ce-type": "com.github.push",
                "Content-Type": "application/json",
            },
            b"{}",
            "not a Tekton run event",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/x",
                "ce-type": "dev.tekton.event.taskrun.failed.v1",
                "Content-Type": "application/json",
            },
            b"[1, 2]",
            "'taskRun' object",
        ),
    ],
)
def test_malformed_events_get_400_with_a_json_reason_and_no_echo(
    kube: MemoryRunClient, headers: dict[str, str], data: bytes, detail: str
) -> None:
    answer = function_client("github").post("/", headers={**headers, "Authorization": SECRET}, data=data)
    assert answer.status_code == 400
    assert answer.mimetype == "application/json"
    assert detail in body(answer)["detail"]
    assert b"very-secret-token" not in answer.data
    assert not kube.calls


def test_oversized_events_get_400(kube: MemoryRunClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TI_MAX_EVENT_BYTES", "2048")
    headers, data = event_request(samples.load("pipelinerun-running"))
    answer = function_client("github").post("/", headers=headers, data=data)
    assert answer.status_code == 400
    assert "larger than 2048 bytes" in body(answer)["detail"]


def test_structured_mode_events_are_handled_like_binary_ones(kube: MemoryRunClient) -> None:
    sample = samples.load("pipelinerun-successful-no-integrations")
    attributes = {k.removeprefix("ce-"): v for k, v in sample["headers"].items() if k.startswith("ce-")}
    envelope = {**attributes, "datacontenttype": "application/json", "data": sample["data"]}
    answer = function_client("github").post(
        "/", headers={"Content-Type": "application/cloudevents+json"}, data=json.dumps(envelope)
    )
    assert answer.status_code == 200
    assert body(answer) == {
        "integration": "github",
        "run": "reporting/nightly-report-8wzqf",
        "outcome": "ignored",
        "detail": "the run has no github.integrations.tekton.dev annotations",
    }


def test_each_event_logs_one_structured_line(
    kube: MemoryRunClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = samples.load("pipelinerun-running")
    add_run(kube, sample)
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")  # nothing listens: a transient failure
    headers, data = event_request(sample)
    answer = function_client("github").post("/", headers=headers, data=data)
    assert answer.status_code == 503
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    (line,) = [entry for entry in lines if entry.get("event_type")]
    assert line["namespace"] == "ci"
    assert line["name"] == "build-and-test-run-x7k2p"
    assert line["uid"] == "5f0d3a8e-2c4b-4e71-9a36-0b7d1c9e4f12"
    assert line["event_type"] == "dev.tekton.event.pipelinerun.running.v1"
    assert (line["integration"], line["outcome"], line["http_status"]) == ("github", "retry", 503)
    assert line["reason"] == "GitHubUnreachable"
    assert isinstance(line["duration_ms"], float)
