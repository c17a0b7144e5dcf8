"""The dead-letter receiver records an integration's final delivery failure on the run."""

from __future__ import annotations

import base64
import json

from common import samples
from common.runclient import MemoryRunClient
from common.standins.github import GitHubStandIn
from tests.conftest import DEADLETTER, Deliver, add_run, body, function_client, source_client


def dead_letter(name: str, destination: str | None, code: str = "503") -> dict[str, object]:
    sample = samples.load(name)
    if destination is not None:
        sample["headers"]["ce-knativeerrordest"] = destination
        sample["headers"]["ce-knativeerrorcode"] = code
        sample["headers"]["ce-knativeerrordata"] = base64.b64encode(b'{"outcome": "retry"}').decode()
    return sample


def test_a_dead_letter_marks_the_failing_integrations_record_false(
    kube: MemoryRunClient, deliver: Deliver
) -> None:
    event = dead_letter("pipelinerun-running", "http://github.tekton-integrations.svc.cluster.local/")
    ref = add_run(kube, event)
    answer = deliver(source_client(DEADLETTER), event)
    assert answer.status_code == 200
    record = json.loads(kube.runs[ref]["metadata"]["annotations"]["github.integrations.tekton.dev/status"])
    condition = record["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("False", "DeliveryFailed")
    assert "HTTP 503" in condition["message"]
    assert '{"outcome": "retry"}' in condition["message"]
    assert [reason for _, reason, _ in kube.events] == ["IntegrationFailed"]
    assert "slack.integrations.tekton.dev/status" not in kube.runs[ref]["metadata"]["annotations"]


def test_a_dead_letter_does_not_override_a_state_already_reported(
    kube: MemoryRunClient, deliver: Deliver, github: GitHubStandIn
) -> None:
    event = samples.load("pipelinerun-running")
    ref = add_run(kube, event)
    deliver(function_client("github"), event)
    before = kube.runs[ref]["metadata"]["annotations"]["github.integrations.tekton.dev/status"]
    late = dead_letter("pipelinerun-running", "http://github.tekton-integrations.svc.cluster.local")
    assert body(deliver(source_client(DEADLETTER), late))["outcome"] == "ignored"
    assert kube.runs[ref]["metadata"]["annotations"]["github.integrations.tekton.dev/status"] == before


def test_a_dead_letter_without_a_known_destination_is_refused(
    kube: MemoryRunClient, deliver: Deliver
) -> None:
    for destination in (None, "http://unknown.example.org"):
        answer = deliver(source_client(DEADLETTER), dead_letter("pipelinerun-running", destination))
        assert answer.status_code == 400
        assert "knativeerrordest" in body(answer)["detail"]


def test_a_redelivery_after_a_dead_letter_reports_the_state(
    kube: MemoryRunClient, deliver: Deliver, github: GitHubStandIn
) -> None:
    """``resync`` (or any later delivery) repairs what the dead-letter receiver recorded."""
    event = dead_letter("pipelinerun-running", "http://github.tekton-integrations.svc.cluster.local")
    ref = add_run(kube, event)
    deliver(source_client(DEADLETTER), event)
    assert (
        body(deliver(function_client("github"), samples.load("pipelinerun-running")))["outcome"] == "reported"
    )
    record = json.loads(kube.runs[ref]["metadata"]["annotations"]["github.integrations.tekton.dev/status"])
    assert record["conditions"][0]["status"] == "True"
    assert len(github.check_runs) == 1
