"""The Slack stand-in speaks what slack_sdk sends and answers as Slack does."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError

from tests.support.standins.slack import WEBHOOK, WEBHOOK_PATH, SlackStandIn


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


# -- message metadata and finding messages again ----------------------------------------------------

RUN = {"event_type": "tekton_run", "event_payload": {"uid": "run-uid-1", "phase": "Running"}}


def test_metadata_is_kept_and_shown_only_when_asked_for(standin: SlackStandIn) -> None:
    client = web(standin)
    posted = client.chat_postMessage(channel="#widget-ci", text="running", metadata=RUN)
    as_form = client.api_call(
        "chat.postMessage", data={"channel": "C0WIDGETCI", "text": "other", "metadata": json.dumps(RUN)}
    )
    assert standin.messages[as_form["ts"]]["metadata"] == RUN

    shown = client.conversations_history(channel="C0WIDGETCI", include_all_metadata=True)["messages"]
    assert [(m["ts"], m["metadata"]) for m in shown] == [(as_form["ts"], RUN), (posted["ts"], RUN)]
    assert all("metadata" not in m for m in client.conversations_history(channel="C0WIDGETCI")["messages"])

    # chat.update keeps metadata it is not given, replaces it when given, drops it for {}.
    client.chat_update(channel="C0WIDGETCI", ts=posted["ts"], text="still running")
    assert standin.messages[posted["ts"]]["metadata"] == RUN
    done = {"event_type": "tekton_run", "event_payload": {"uid": "run-uid-1", "phase": "Succeeded"}}
    client.chat_update(channel="C0WIDGETCI", ts=posted["ts"], text="done", metadata=done)
    assert standin.messages[posted["ts"]]["metadata"] == done
    client.chat_update(channel="C0WIDGETCI", ts=posted["ts"], text="done", metadata={})
    assert standin.messages[posted["ts"]]["metadata"] is None


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ("{not json", "invalid_metadata_format"),
        ("[1]", "invalid_metadata_format"),
        ({"event_type": "tekton_run"}, "invalid_metadata_schema"),
        ({"event_type": "", "event_payload": {}}, "invalid_metadata_schema"),
    ],
)
def test_malformed_metadata_is_refused(standin: SlackStandIn, metadata: object, error: str) -> None:
    with pytest.raises(SlackApiError) as raised:
        web(standin).api_call(
            "chat.postMessage", json={"channel": "C0WIDGETCI", "text": "x", "metadata": metadata}
        )
    assert raised.value.response["error"] == error
    assert not standin.messages


def test_history_is_newest_first_without_replies_and_shows_who_posted(standin: SlackStandIn) -> None:
    client = web(standin)
    first = client.chat_postMessage(channel="C0WIDGETCI", text="first")["ts"]
    reply = client.chat_postMessage(channel="C0WIDGETCI", text="reply", thread_ts=first)["ts"]
    human = standin.add_message("widget-ci", "a person wrote this")
    second = client.chat_postMessage(channel="C0WIDGETCI", text="second")["ts"]

    messages = client.conversations_history(channel="C0WIDGETCI")["messages"]

    assert [m["ts"] for m in messages] == [second, human, first]
    assert reply not in {m["ts"] for m in messages}
    newest, person, threaded = messages
    assert (newest["text"], newest["bot_id"], newest["app_id"], newest["user"]) == (
        "second",
        "B0BOT",
        "A0TEKTON",
        "U0BOT",
    )
    assert "bot_id" not in person
    assert "app_id" not in person
    assert (threaded["thread_ts"], threaded["reply_count"], threaded["latest_reply"]) == (first, 1, reply)


def test_history_bounds_and_pages(standin: SlackStandIn) -> None:
    client = web(standin)
    stamps = [client.chat_postMessage(channel="C0WIDGETCI", text=f"m{n}")["ts"] for n in range(5)]

    def history(*, inclusive: bool) -> list[str]:
        answer = client.conversations_history(
            channel="C0WIDGETCI", oldest=stamps[1], latest=stamps[3], inclusive=inclusive
        )
        return [m["ts"] for m in answer["messages"]]

    assert history(inclusive=False) == [stamps[2]]
    assert history(inclusive=True) == stamps[3:0:-1]

    first = client.conversations_history(channel="C0WIDGETCI", limit=2)
    assert (first["has_more"], [m["ts"] for m in first["messages"]]) == (True, stamps[:2:-1])
    pages = [[m["ts"] for m in page["messages"]] for page in first]  # slack_sdk follows next_cursor
    assert pages == [stamps[4:2:-1], stamps[2:0:-1], stamps[:1]]
    assert [call.body.get("cursor") is None for call in standin.calls_to("conversations.history")][-3:] == [
        True,
        False,
        False,
    ]
    last = client.conversations_history(channel="C0WIDGETCI", limit=10)
    assert (last["has_more"], "response_metadata" in last.data) == (False, False)

    with pytest.raises(SlackApiError) as raised:
        client.conversations_history(channel="C0WIDGETCI", cursor="bm90LWEtY3Vyc29y")
    assert raised.value.response["error"] == "invalid_cursor"
    with pytest.raises(SlackApiError) as raised:
        client.conversations_history(channel="widget-ci")  # a name: history needs the ID
    assert raised.value.response["error"] == "channel_not_found"


def test_conversations_list_filters_by_type_and_archive_and_pages() -> None:
    channels = {"widget-ci": "C0WIDGETCI", "releases": "C0RELEASES", "old": "C0OLD", "secret": "C0SECRET"}
    with SlackStandIn(channels, private=["secret"], archived=["C0OLD"]) as standin:
        client = web(standin)
        public = client.conversations_list()["channels"]
        assert [(c["id"], c["name"], c["is_archived"]) for c in public] == [
            ("C0WIDGETCI", "widget-ci", False),
            ("C0RELEASES", "releases", False),
            ("C0OLD", "old", True),
        ]
        both = client.conversations_list(types="public_channel,private_channel", exclude_archived=True)
        assert [(c["name"], c["is_private"]) for c in both["channels"]] == [
            ("widget-ci", False),
            ("releases", False),
            ("secret", True),
        ]
        pages = [[c["name"] for c in page["channels"]] for page in client.conversations_list(limit=2)]
        assert pages == [["widget-ci", "releases"], ["old"]]

        with pytest.raises(SlackApiError) as raised:
            client.chat_postMessage(channel="#old", text="x")
        assert raised.value.response["error"] == "is_archived"


def test_auth_test_names_the_bot(standin: SlackStandIn) -> None:
    answer = web(standin).auth_test()
    assert {key: answer[key] for key in ("ok", "user", "user_id", "bot_id", "team_id")} == {
        "ok": True,
        "user": "tekton-bot",
        "user_id": "U0BOT",
        "bot_id": "B0BOT",
        "team_id": "T0TEKTON",
    }


def test_a_method_without_its_scope_answers_missing_scope() -> None:
    channels = {"widget-ci": "C0WIDGETCI", "secret": "C0SECRET"}
    with SlackStandIn(channels, private=["secret"], scopes=["chat:write", "channels:read"]) as standin:
        client = web(standin)
        posted = client.chat_postMessage(channel="C0WIDGETCI", text="allowed")
        assert posted.headers["X-OAuth-Scopes"] == "chat:write,channels:read"
        with pytest.raises(SlackApiError) as raised:
            client.conversations_history(channel="C0WIDGETCI")
        assert raised.value.response.data == {
            "ok": False,
            "error": "missing_scope",
            "needed": "channels:history",
            "provided": "chat:write,channels:read",
        }
        with pytest.raises(SlackApiError) as raised:
            client.conversations_list(types="public_channel,private_channel")
        assert raised.value.response["needed"] == "groups:read"

        standin.scopes.append("channels:history")
        assert client.conversations_history(channel="C0WIDGETCI")["ok"]
        with pytest.raises(SlackApiError) as raised:
            client.conversations_history(channel="C0SECRET")
        assert raised.value.response["needed"] == "groups:history"
        assert [call.error for call in standin.calls][-1] == "missing_scope"


# -- echoed credentials ---------------------------------------------------------------------------


def test_echo_credentials_repeats_the_bearer_token(standin: SlackStandIn) -> None:
    token = "xoxb-echo-me-0123456789"
    standin.echo_credentials_next(502, method="chat.postMessage")
    with pytest.raises(SlackApiError) as raised:
        web(standin, token=token).chat_postMessage(channel="#widget-ci", text="x")
    assert raised.value.response.status_code == 502
    assert f"Authorization: Bearer {token}" in str(raised.value)  # slack_sdk quotes the page
    assert token not in repr(standin.calls)
    assert web(standin, token=token).chat_postMessage(channel="#widget-ci", text="x")["ok"]


def test_echo_credentials_repeats_a_form_token(standin: SlackStandIn) -> None:
    token = "xoxb-form-token-0123456789"
    standin.echo_credentials_next(403, as_json=True)
    request = urllib.request.Request(
        standin.api_url + "auth.test", data=urllib.parse.urlencode({"token": token}).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)
    with raised.value as answer:
        assert answer.code == 403
        assert f"token={token}" in json.load(answer)["error"]
    assert standin.calls[-1].token_type == "xoxb"
    assert token not in repr(standin.calls)


def test_echo_credentials_repeats_the_webhook_path(standin: SlackStandIn) -> None:
    hook = WebhookClient(standin.webhook_url, timeout=5, retry_handlers=[])
    standin.echo_credentials_next(500, method=WEBHOOK)
    answer = hook.send(text="x")
    assert answer.status_code == 500
    assert f"POST {WEBHOOK_PATH}" in answer.body
    assert hook.send(text="y").body == "ok"
