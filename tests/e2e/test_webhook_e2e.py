"""Webhook and CloudEvent functions served by functions-framework against a real kube-apiserver."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudevents.http import from_http
from kubernetes import client

from common import samples
from tests.e2e.conftest import ServeFunction, create_run, event_for, get_run, post_event, set_status
from tests.support.policies import LOOPBACK_RECEIVERS
from tests.support.receiver import Receiver, deliver_while_the_run_moves_on

REPO = Path(__file__).resolve().parents[2]
SECRET = b"e2e-webhook-signing-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, namespace: str) -> dict[str, str]:
    """Environment for a served function: a policy letting ``namespace`` reach loopback, a secret."""
    policy = tmp_path / "policy.yaml"
    entry = {"webhook": LOOPBACK_RECEIVERS, "cloudevent": LOOPBACK_RECEIVERS}
    policy.write_text(yaml.safe_dump({"namespaces": {namespace: entry}}), encoding="utf-8")
    secrets = tmp_path / "webhook-secrets"
    secrets.mkdir()
    (secrets / namespace).write_bytes(SECRET)
    return {"TI_POLICY_FILE": str(policy), "WEBHOOK_SECRET_DIR": str(secrets)}


def annotated(sample: dict[str, Any], prefix: str, **settings: str) -> dict[str, Any]:
    ((_, run),) = sample["data"].items()
    for key, value in settings.items():
        run["metadata"]["annotations"][f"{prefix}.integrations.tekton.dev/{key}"] = value
    return sample


def record_of(api: client.ApiClient, namespace: str, name: str, integration: str) -> dict[str, Any]:
    run = get_run(api, namespace, "PipelineRun", name)
    return json.loads(run["metadata"]["annotations"][f"{integration}.integrations.tekton.dev/status"])


def documented_verify() -> Any:
    text = (REPO / "docs" / "webhook.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- verify-snippet[^>]*-->\s*```python\n(.*?)```", text, flags=re.DOTALL)
    assert found
    namespace: dict[str, Any] = {}
    exec(compile(found.group(1), "docs/webhook.md", "exec"), namespace)
    return namespace["verify"]


def test_a_signed_webhook_reaches_the_receiver_and_is_recorded_on_the_run(
    api: client.ApiClient,
    namespace: str,
    serve_function: ServeFunction,
    receiver: Receiver,
    settings: dict[str, str],
) -> None:
    url = serve_function("webhook", **settings)
    running = annotated(samples.load("pipelinerun-running"), "webhook", url=receiver.url)
    successful = annotated(samples.load("pipelinerun-successful"), "webhook", url=receiver.url)
    live = create_run(api, namespace, running)
    assert post_event(url, event_for(running, live)).status_code == 200
    live = set_status(api, namespace, successful)
    for _ in range(3):  # Tekton repeats itself; the receiver hears each state once
        assert post_event(url, event_for(successful, live)).status_code == 200

    verify = documented_verify()
    assert [json.loads(r.body)["state"]["phase"] for r in receiver.requests] == ["running", "succeeded"]
    for request in receiver.requests:
        headers = request.headers
        assert verify(
            SECRET,
            request.body,
            headers["x-tekton-integrations-timestamp"],
            headers["x-tekton-integrations-signature-256"],
        )
    record = record_of(api, namespace, live["metadata"]["name"], "webhook")
    assert (record["conditions"][0]["status"], record["annotations"]["last-http-status"]) == ("True", "200")


def test_a_cloudevent_retried_by_the_sender_counts_its_retries_on_the_run(
    api: client.ApiClient,
    namespace: str,
    serve_function: ServeFunction,
    receiver: Receiver,
    settings: dict[str, str],
) -> None:
    url = serve_function("cloudevent", **settings)
    running = annotated(samples.load("pipelinerun-running"), "cloudevent", target=receiver.url)
    live = create_run(api, namespace, running)
    receiver.answer(503)
    assert post_event(url, event_for(running, live)).status_code == 503
    first = record_of(api, namespace, live["metadata"]["name"], "cloudevent")
    assert post_event(url, event_for(running, live)).status_code == 200
    second = record_of(api, namespace, live["metadata"]["name"], "cloudevent")

    assert (first["conditions"][0]["status"], first["annotations"]["retryCount"]) == ("Unknown", "0")
    assert (second["conditions"][0]["status"], second["annotations"]["retryCount"]) == ("True", "1")
    assert second["annotations"]["target"] == receiver.url
    events = [from_http(r.headers, r.body) for r in receiver.requests]
    assert len({event["id"] for event in events}) == 1


@pytest.mark.parametrize(("integration", "key"), [("webhook", "url"), ("cloudevent", "target")])
def test_started_running_and_duplicates_together_reach_the_receiver_once_per_state(  # noqa: PLR0917
    api: client.ApiClient,
    namespace: str,
    serve_function: ServeFunction,
    receiver: Receiver,
    settings: dict[str, str],
    integration: str,
    key: str,
) -> None:
    url = serve_function(integration, WORKERS="2", THREADS="8", **settings)  # two processes: two replicas
    started = annotated(samples.load("pipelinerun-started"), integration, **{key: receiver.url})
    running = annotated(samples.load("pipelinerun-running"), integration, **{key: receiver.url})
    live = create_run(api, namespace, started)
    events = [event_for(started, live), event_for(running, live)] * 4
    gate = receiver.hold()  # the first request waits at the receiver while the rest arrive
    answered, redelivered = deliver_while_the_run_moves_on(
        lambda event: post_event(url, event),
        events,
        gate,
        lambda: set_status(api, namespace, running),  # meanwhile the run moves on
        lambda answer: answer.status_code,
    )

    statuses = {answer.status_code for _, answer in answered} | {a.status_code for a in redelivered}
    assert statuses <= {200, 429}
    states = [json.loads(request.body)["state"]["reason"] for request in receiver.requests]
    assert sorted(states) == ["Running", "Started"]
    record = record_of(api, namespace, live["metadata"]["name"], integration)
    assert (record["conditions"][0]["status"], record["runState"]["reason"]) == ("True", "Running")
