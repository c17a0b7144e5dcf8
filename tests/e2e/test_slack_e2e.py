"""The Slack function served by functions-framework, against realkube and the loopback Slack."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from kubernetes import client

from common import samples
from tests.e2e.conftest import ServeFunction, create_run, event_for, get_run, post_event, set_status
from tests.support.standins.slack import SlackStandIn

RECORD = "slack.integrations.tekton.dev/status"
TOKEN = "xoxb-e2e-test-token"
POST, UPDATE = "chat.postMessage", "chat.update"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as standin:
        yield standin


@pytest.fixture
def slack_url(serve_function: ServeFunction, slack: SlackStandIn) -> str:
    return serve_function("slack", SLACK_API_URL=slack.api_url, SLACK_BOT_TOKEN=TOKEN)


def record_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(obj["metadata"]["annotations"][RECORD])


def running_and_failed() -> tuple[dict[str, Any], dict[str, Any]]:
    """The running and failed events of one PipelineRun."""
    failed = samples.load("pipelinerun-failed")
    running = samples.load("pipelinerun-running")
    running["data"]["pipelineRun"]["metadata"] = copy.deepcopy(failed["data"]["pipelineRun"]["metadata"])
    return running, failed


def test_running_then_failed_posts_once_and_updates_on_a_real_api_server(
    api: client.ApiClient, namespace: str, slack: SlackStandIn, slack_url: str
) -> None:
    running, failed = running_and_failed()
    live = create_run(api, namespace, running)
    assert post_event(slack_url, event_for(running, live)).status_code == 200

    live = set_status(api, namespace, failed)
    assert post_event(slack_url, event_for(failed, live)).status_code == 200

    assert len(slack.calls_to(POST)) == 1
    assert len(slack.calls_to(UPDATE)) == 1
    (message,) = slack.messages.values()
    assert message["text"].startswith(f":x: PipelineRun {namespace}/build-and-test-run-q4m9z")
    assert "*build-image* (Skipped)" in json.dumps(message["attachments"])
    stored = get_run(api, namespace, "PipelineRun", live["metadata"]["name"])
    record = record_of(stored)
    ids = {key: record["annotations"][key] for key in ("ts", "channel", "details-ts")}
    assert ids == {"ts": message["ts"], "channel": "C0WIDGETCI", "details-ts": ""}
    assert len(record["annotations"]["sig"]) == 64, "the message's ids are signed"
    assert record["conditions"][0]["status"] == "True"
    assert record["runUID"] == stored["metadata"]["uid"]
    assert stored["metadata"]["generation"] == 1, "annotation writes must not bump generation"


def test_ten_concurrent_deliveries_post_once_on_a_real_api_server(
    api: client.ApiClient, namespace: str, slack: SlackStandIn, slack_url: str
) -> None:
    running, _ = running_and_failed()
    live = create_run(api, namespace, running)
    events = [event_for(running, live) for _ in range(10)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda event: post_event(slack_url, event), events))
    # One posts; the rest find it reported (200) or find its claim in flight (429 Busy) and are
    # settled by the sender's redelivery, which then finds the state reported.
    assert all(answer.status_code in (200, 429) for answer in answers)
    assert [answer.json()["outcome"] for answer in answers].count("reported") == 1
    busy = [event for event, answer in zip(events, answers, strict=True) if answer.status_code == 429]
    assert all(post_event(slack_url, event).json()["outcome"] == "ignored" for event in busy)
    assert len(slack.calls_to(POST)) == 1
    record = record_of(get_run(api, namespace, "PipelineRun", live["metadata"]["name"]))
    assert record["annotations"]["ts"] == next(iter(slack.messages))


def test_ratelimited_and_channel_not_found_get_the_right_answers(
    api: client.ApiClient, namespace: str, slack: SlackStandIn, slack_url: str
) -> None:
    running, _ = running_and_failed()
    live = create_run(api, namespace, running)
    name = live["metadata"]["name"]

    slack.fail_next("ratelimited", status=429, retry_after=42)
    answer = post_event(slack_url, event_for(running, live))
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "42")
    condition = record_of(get_run(api, namespace, "PipelineRun", name))["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("Unknown", "SlackRateLimited")

    slack.fail_next("channel_not_found", method=POST)
    answer = post_event(slack_url, event_for(running, live))
    assert answer.status_code == 200
    condition = record_of(get_run(api, namespace, "PipelineRun", name))["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("False", "SlackChannelNotFound")
    assert "/invite @tekton-bot" in condition["message"]
    assert not slack.messages
