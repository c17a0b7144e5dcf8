"""The Slack stand-in speaks what slack_sdk sends and answers as Slack does."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError

from common.standins.slack import WEBHOOK, SlackStandIn


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    with SlackStandIn(channels={"widget-ci": "C0WIDGETCI"}) as running:
        yield running


def web(standin: SlackStandIn, token: str = "xoxb-standin-test") -> WebClient:
    return WebClient(token=token, base_url=standin.api_url, timeout=5, retry_handlers=[])


def test_post_by_name_then_update_by_id_and_reply_in_thread(standin: SlackStandIn) -> None:
    client = web(standin)
    posted = client.chat_postMessage(channel="#widget-ci", text="first")
    assert posted["channel"] == "C0WIDGETCI"
    client.chat_update(channel="C0WIDGETCI", ts=posted["ts"], text="second")
    reply = client.chat_postMessage(channel="C0WIDGETCI", text="details", thread_ts=posted["ts"])
    assert standin.messages[posted["ts"]]["text"] == "second"
    assert standin.messages[posted["ts"]]["updated"] == 1
    assert standin.messages[reply["ts"]]["thread_ts"] == posted["ts"]
    assert [call.method for call in standin.calls] == ["chat.postMessage", "chat.update", "chat.postMessage"]
    assert {call.token_type for call in standin.calls} == {"xoxb"}
    assert client.auth_test()["user"] == "tekton-bot"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.chat_postMessage(channel="#nope", text="x"), "channel_not_found"),
        (lambda c: c.chat_update(channel="#widget-ci", ts="1.1", text="x"), "channel_not_found"),
        (lambda c: c.chat_update(channel="C0WIDGETCI", ts="1.1", text="x"), "message_not_found"),
    ],
)
def test_slack_errors_are_200_with_ok_false(
    standin: SlackStandIn, call: Callable[[WebClient], object], error: str
) -> None:
    with pytest.raises(SlackApiError) as raised:
        call(web(standin))
    assert (raised.value.response.status_code, raised.value.response["error"]) == (200, error)


def test_tokens_are_checked_and_never_recorded(standin: SlackStandIn) -> None:
    with pytest.raises(SlackApiError) as raised:
        web(standin, token="secret-but-not-slack").chat_postMessage(channel="#widget-ci", text="x")
    assert raised.value.response["error"] == "invalid_auth"
    assert "secret-but-not-slack" not in repr(standin.calls)


def test_ratelimited_is_429_with_retry_after(standin: SlackStandIn) -> None:
    standin.fail_next("ratelimited", status=429, retry_after=7, method="chat.postMessage")
    with pytest.raises(SlackApiError) as raised:
        web(standin).chat_postMessage(channel="#widget-ci", text="x")
    response = raised.value.response
    assert (response.status_code, response["error"], response.headers["Retry-After"]) == (
        429,
        "ratelimited",
        "7",
    )
    assert web(standin).chat_postMessage(channel="#widget-ci", text="x")["ok"]


def test_incoming_webhook_answers_plain_text(standin: SlackStandIn) -> None:
    hook = WebhookClient(standin.webhook_url, timeout=5, retry_handlers=[])
    assert (hook.send(text="hello").status_code, hook.send(text="again").body) == (200, "ok")
    standin.fail_next("no_service", status=404, method=WEBHOOK)
    assert (hook.send(text="x").status_code, hook.send(text="y").status_code) == (404, 200)
    assert [m["text"] for m in standin.webhook_messages] == ["hello", "again", "y"]
