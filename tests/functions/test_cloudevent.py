"""The CloudEvent function, driven through functions-framework, sending to loopback sinks."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import from_http

from common import samples, targets
from common.logs import JsonFormatter
from common.redaction import MASK
from common.runclient import MemoryRunClient, RunRef
from tests.conftest import Deliver, add_run, advance, body, function_client
from tests.support.policies import LOOPBACK_RECEIVERS, use_policy
from tests.support.receiver import (
    Received,
    Receiver,
    deliver_while_the_run_moves_on,
    fake_resolver,
    spy_connections,
    to_app,
)

RECORD = "cloudevent.integrations.tekton.dev/status"
STATES = ["pipelinerun-queued", "pipelinerun-started", "pipelinerun-running", "pipelinerun-successful"]


@pytest.fixture
def sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A loopback sink that namespace ``ci``'s policy allows."""
    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {"cloudevent": LOOPBACK_RECEIVERS}}})
    with Receiver() as server:
        yield server


def with_cloudevent(sample: dict[str, Any], **settings: str) -> dict[str, Any]:
    ((_, run),) = sample["data"].items()
    for key, value in settings.items():
        run["metadata"]["annotations"][f"cloudevent.integrations.tekton.dev/{key}"] = value
    return sample


def record(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    return json.loads(kube.runs[ref]["metadata"]["annotations"][RECORD])


def condition(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = record(kube, ref)["conditions"]
    return conditions[0]


def event_of(request: Received) -> Any:
    return from_http(request.headers, request.body)


def test_the_sink_gets_one_event_per_state_change_however_often_tekton_repeats_them(
    kube: MemoryRunClient, sink: Receiver, deliver: Deliver
) -> None:
    events = [with_cloudevent(samples.load(name), target=sink.url) for name in STATES]
    ref = add_run(kube, events[0])
    client = function_client("cloudevent")
    for event in events:
        advance(kube, ref, event)
        assert deliver(client, event).status_code == 200
    replays = events * 3
    random.Random(11).shuffle(replays)
    for event in replays:
        assert deliver(client, event).status_code == 200

    received = [event_of(request) for request in sink.requests]
    assert [e["type"] for e in received] == [
        "dev.tekton.integrations.pipelinerun.queued.v1alpha1",
        "dev.tekton.integrations.pipelinerun.running.v1alpha1",  # Started
        "dev.tekton.integrations.pipelinerun.running.v1alpha1",  # Running
        "dev.tekton.integrations.pipelinerun.succeeded.v1alpha1",
    ]
    assert len({e["id"] for e in received}) == 4
    assert [e.data["state"]["reason"] for e in received] == ["", "Started", "Running", "Succeeded"]
    last = received[-1]
    assert last["source"] == "/apis/tekton.dev/v1/namespaces/ci/pipelineruns/build-and-test-run-x7k2p"
    assert last["subject"] == "build-and-test-run-x7k2p"
    assert last["time"] == "2026-03-14T09:24:52Z"
    assert last.data["kind"] == "RunNotification"
    assert last.data["run"]["uid"] == "5f0d3a8e-2c4b-4e71-9a36-0b7d1c9e4f12"


def test_events_use_binary_content_mode(kube: MemoryRunClient, sink: Receiver, deliver: Deliver) -> None:
    successful = with_cloudevent(samples.load("pipelinerun-successful"), target=sink.url)
    add_run(kube, successful)
    deliver(function_client("cloudevent"), successful)
    (request,) = sink.requests
    assert request.headers["content-type"] == "application/json"
    assert request.headers["ce-specversion"] == "1.0"
    assert request.headers["ce-type"] == "dev.tekton.integrations.pipelinerun.succeeded.v1alpha1"
    assert json.loads(request.body)["state"]["phase"] == "succeeded"


def test_the_record_follows_the_teps_cloudeventdelivery_mapping(
    kube: MemoryRunClient, sink: Receiver, deliver: Deliver
) -> None:
    running = with_cloudevent(samples.load("pipelinerun-running"), target=sink.url + "?token=abc")
    ref = add_run(kube, running)
    deliver(function_client("cloudevent"), running)
    stored = record(kube, ref)
    assert stored["name"] == "cloudevent.integrations.tekton.dev"
    assert stored["observedGeneration"] == 1
    (cond,) = stored["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("Succeeded", "True", "Sent")
    assert cond["lastTransitionTime"].endswith("Z")
    assert stored["annotations"]["target"] == sink.url, "the query string may hold a token: not recorded"
    assert stored["annotations"]["retryCount"] == "0"
    assert stored["annotations"]["last-http-status"] == "200"


def test_retry_count_grows_across_retried_deliveries(
    kube: MemoryRunClient, sink: Receiver, deliver: Deliver
) -> None:
    running = with_cloudevent(samples.load("pipelinerun-running"), target=sink.url)
    successful = with_cloudevent(samples.load("pipelinerun-successful"), target=sink.url)
    ref = add_run(kube, running)
    client = function_client("cloudevent")
    sink.answer(503)
    sink.answer(502)

    seen = []
    for expected_answer in (503, 503, 200):
        assert deliver(client, running).status_code == expected_answer
        stored = record(kube, ref)
        seen.append((condition(kube, ref)["status"], stored["annotations"]["retryCount"], stored["attempts"]))
    assert seen == [("Unknown", "0", 1), ("Unknown", "1", 2), ("True", "2", 3)]
    assert record(kube, ref)["annotations"]["last-http-status"] == "200"
    assert len({event_of(request)["id"] for request in sink.requests}) == 1, "a retry is the same event"

    advance(kube, ref, successful)
    deliver(client, successful)
    assert record(kube, ref)["annotations"]["retryCount"] == "0"
    assert len(sink.requests) == 4


def test_a_rejected_event_is_recorded_as_false_with_the_mapping(
    kube: MemoryRunClient, sink: Receiver, deliver: Deliver
) -> None:
    running = with_cloudevent(samples.load("pipelinerun-running"), target=sink.url)
    ref = add_run(kube, running)
    sink.answer(404, body=b"no such broker")
    assert deliver(function_client("cloudevent"), running).status_code == 200
    stored = record(kube, ref)
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("False", "TargetRejected")
    assert "no such broker" in condition(kube, ref)["message"]
    assert stored["annotations"] == {"target": sink.url, "retryCount": "0", "last-http-status": "404"}


def test_without_a_target_the_operators_default_sink_is_used(
    kube: MemoryRunClient, deliver: Deliver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {}}})  # nothing allows loopback
    with Receiver() as broker:
        monkeypatch.setenv("CLOUDEVENT_DEFAULT_SINK", broker.url)
        running = with_cloudevent(samples.load("pipelinerun-running"), on="all")
        ref = add_run(kube, running)
        assert deliver(function_client("cloudevent"), running).status_code == 200
    assert len(broker.requests) == 1
    assert record(kube, ref)["annotations"]["target"] == broker.url


def test_without_a_target_or_default_sink_the_configuration_is_invalid(
    kube: MemoryRunClient, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLOUDEVENT_DEFAULT_SINK", raising=False)
    running = with_cloudevent(samples.load("pipelinerun-running"), on="all")
    ref = add_run(kube, running)
    deliver(function_client("cloudevent"), running)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "InvalidConfiguration")
    assert "cloudevent.integrations.tekton.dev/target" in cond["message"]


def test_started_running_and_duplicates_delivered_together_send_one_event_per_state(
    kube: MemoryRunClient, sink: Receiver
) -> None:
    started = with_cloudevent(samples.load("pipelinerun-started"), target=sink.url)
    running = with_cloudevent(samples.load("pipelinerun-running"), target=sink.url)
    ref = add_run(kube, started)
    app = function_client("cloudevent").application
    gate = sink.hold()  # the first request waits at the receiver while the rest arrive
    answered, redelivered = deliver_while_the_run_moves_on(
        to_app(app),
        [started, running] * 4,
        gate,
        lambda: advance(kube, ref, running),
        lambda a: a.status_code,
    )

    assert all(answer.status_code in (200, 429) for _, answer in answered)
    assert all(body(answer)["reason"] == "Busy" for _, answer in answered if answer.status_code == 429)
    assert [body(answer)["outcome"] for _, answer in answered].count("reported") == 1
    assert [body(answer)["outcome"] for answer in redelivered].count("reported") == 1

    received = [event_of(request) for request in sink.requests]
    assert sorted(event.data["state"]["reason"] for event in received) == ["Running", "Started"]
    assert len({event["id"] for event in received}) == 2
    assert (condition(kube, ref)["status"], record(kube, ref)["runState"]["reason"]) == ("True", "Running")


def test_a_lost_answer_is_redelivered_as_the_same_event(
    kube: MemoryRunClient, sink: Receiver, deliver: Deliver
) -> None:
    running = with_cloudevent(samples.load("pipelinerun-running"), target=sink.url)
    ref = add_run(kube, running)
    client = function_client("cloudevent")
    sink.lose()  # the sink got the event, but its answer never arrives

    assert deliver(client, running).status_code == 503
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == (
        "Unknown",
        "TargetUnreachable",
    )
    assert deliver(client, running).status_code == 200
    assert deliver(client, running).status_code == 200  # a later duplicate sends nothing

    first, second = (event_of(request) for request in sink.requests)
    assert (first["id"], first["source"]) == (second["id"], second["source"])
    assert first.data == second.data
    assert record(kube, ref)["annotations"]["retryCount"] == "1"


def test_a_sink_that_does_not_answer_within_the_total_deadline_is_retried(
    kube: MemoryRunClient, sink: Receiver, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDEVENT_TIMEOUT_SECONDS", "1")
    running = with_cloudevent(samples.load("pipelinerun-running"), target=sink.url)
    ref = add_run(kube, running)
    length = 4000
    sink.drip(0.02, length)  # each byte well within the per-read timeout; 80 s to the end

    answer = deliver(function_client("cloudevent"), running)

    assert answer.status_code == 503
    assert body(answer)["reason"] == "TargetTimeout"
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("Unknown", "TargetTimeout")
    assert sink.cut_off.wait(timeout=30), "the function never closed the connection"
    assert sink.dripped < length


@pytest.mark.parametrize("status", [403, 502])
def test_a_sink_echoing_the_request_leaks_no_token_of_its_url(
    kube: MemoryRunClient,
    sink: Receiver,
    deliver: Deliver,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    token = "sink-access-token-5e6f7a8b"
    running = with_cloudevent(samples.load("pipelinerun-running"), target=f"{sink.url}?access_token={token}")
    ref = add_run(kube, running)
    sink.answer(status, body=b"refused", echo=True)  # the echo starts with the request line and its query

    with caplog.at_level(logging.DEBUG):
        answer = deliver(function_client("cloudevent"), running)

    texts = {
        "answer": answer.get_data(as_text=True),
        "record": json.dumps(record(kube, ref)),
        "log": "\n".join(JsonFormatter().format(line) for line in caplog.records),  # as written
        "events": json.dumps(kube.events, default=str),
    }
    for where, text in texts.items():
        assert token not in text, where
        assert f"POST /hook?{MASK}" in text, where
    assert record(kube, ref)["annotations"]["target"] == sink.url
    (request,) = sink.requests
    assert request.headers["ce-id"] in condition(kube, ref)["message"], "the rest of the echo is kept"


OPEN: dict[str, Any] = {
    "namespaces": {"ci": {"cloudevent": {"allowHttp": True}}},
    "clusterServiceNetworks": ["10.96.0.0/12"],
}
NAMED: dict[str, Any] = {"namespaces": {"ci": {"cloudevent": {"hosts": ["sink.example.com"]}}}}


@pytest.mark.parametrize(
    ("url", "policy"),
    [
        ("http://127.0.0.1:{port}/hook", OPEN),
        ("http://localhost:{port}/hook", OPEN),
        ("http://metadata.google.internal/", OPEN),
        ("http://internal.example.com/", OPEN),
        ("http://10.96.0.1/", OPEN),
        ("https://events.example.com/", NAMED),  # not in the namespace's hosts
    ],
)
def test_refused_targets_send_nothing(  # noqa: PLR0917
    kube: MemoryRunClient,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    url: str,
    policy: dict[str, Any],
) -> None:
    use_policy(monkeypatch, tmp_path, policy)
    names = {"metadata.google.internal": ["169.254.169.254"], "internal.example.com": ["10.0.0.5"]}
    real_resolve = targets.resolve
    fake = fake_resolver(names)
    monkeypatch.setattr(
        targets, "resolve", lambda host, port: (fake if host in names else real_resolve)(host, port)
    )
    with Receiver() as listener:
        running = with_cloudevent(samples.load("pipelinerun-running"), target=url.format(port=listener.port))
        ref = add_run(kube, running)
        client = function_client("cloudevent")
        connections = spy_connections(monkeypatch)
        assert deliver(client, running).status_code == 200
    assert listener.connections == 0
    assert connections == []
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("False", "TargetNotAllowed")
    if policy is OPEN:  # refused by address while sending: the record names the target
        annotations = record(kube, ref)["annotations"]
        assert annotations["target"] == url.format(port=listener.port)
        assert (annotations["retryCount"], annotations["last-http-status"]) == ("0", "none")
