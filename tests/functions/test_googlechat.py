"""The Google Chat function, driven through functions-framework against the loopback Google Chat
stand-in, its spaces' webhook URLs in a mounted-secret directory."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from common import samples
from common.errors import KubernetesUnavailableError
from common.http import use_run_client
from common.runclient import MemoryRunClient, RunRef
from tests.conftest import Deliver, add_run, advance, body, function_client, written_texts
from tests.support.policies import use_policy
from tests.support.receiver import post_together, to_app
from tests.support.reports import FAILING_TEST, LOG_TOKEN, log_failed_step, mount_templates, pod_log_reads
from tests.support.standins.googlechat import GoogleChatStandIn, widgets

RECORD = "googlechat.integrations.tekton.dev/status"
SPACE, SPACE_ID = "widget-ci", "AAAAwidgetci"
KEY = "AIzaSyUnitTestKey-0123456789abcdefghijk"
TOKEN = "unit-test-token_0123456789abcdefABCDEF+/="
"""With characters a URL encodes: the file holds the token encoded, Chat's answers may hold it either way."""
REPLY_OPTION = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
DASHBOARD = "https://dashboard.example.org"


@dataclass
class Chat:
    standin: GoogleChatStandIn
    spaces: Path
    url: str
    """The webhook URL of ``SPACE``: a credential."""

    def add_space(self, name: str, space_id: str, *, key: str = KEY, token: str = TOKEN) -> str:
        url = self.standin.add_webhook(space_id, key=key, token=token)
        (self.spaces / name).write_text(url + "\n", encoding="utf-8")
        return url

    def secrets(self) -> list[str]:
        """Every form the webhook's credentials can take in a text."""
        return [self.url, urlsplit(self.url).query, KEY, TOKEN, quote(TOKEN, safe="")]


@pytest.fixture
def chat(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Chat]:
    """A loopback Google Chat; the space ``widget-ci``'s webhook URL is the file of that name in
    ``GOOGLECHAT_SPACES_DIR``."""
    spaces = tmp_path / "googlechat-spaces"
    spaces.mkdir()
    monkeypatch.setenv("GOOGLECHAT_SPACES_DIR", str(spaces))
    with GoogleChatStandIn() as standin:
        chat = Chat(standin, spaces, "")
        chat.url = chat.add_space(SPACE, SPACE_ID)
        yield chat


def in_space(sample: dict[str, Any], space: str = SPACE, **settings: str) -> dict[str, Any]:
    annotations = samples.run_object(sample)[1]["metadata"]["annotations"]
    annotations["googlechat.integrations.tekton.dev/space"] = space
    for key, value in settings.items():
        annotations[f"googlechat.integrations.tekton.dev/{key}"] = value
    return sample


def event(name: str, space: str = SPACE, **settings: str) -> dict[str, Any]:
    return in_space(samples.load(name), space, **settings)


def on_run(sample: dict[str, Any], like: dict[str, Any]) -> dict[str, Any]:
    """``sample``'s state, as an event about ``like``'s run."""
    samples.run_object(sample)[1]["metadata"] = copy.deepcopy(samples.run_object(like)[1]["metadata"])
    return sample


def failing_run(kube: MemoryRunClient) -> tuple[dict[str, Any], dict[str, Any], RunRef]:
    """A PipelineRun's running and failed events; its failed child TaskRun is in the store."""
    failed = event("pipelinerun-failed")
    running = on_run(samples.load("pipelinerun-running"), failed)
    ref = add_run(kube, running)
    add_run(kube, samples.load("taskrun-failed"))
    return running, failed, ref


def record(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(kube.runs[ref]["metadata"]["annotations"][RECORD])
    return stored


def condition(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    first: dict[str, Any] = record(kube, ref)["conditions"][0]
    return first


def card_text(message: dict[str, Any]) -> str:
    return json.dumps(message["cardsV2"], ensure_ascii=False)


def expire_claim(kube: MemoryRunClient, ref: RunRef) -> None:
    """Time passes: the stored claim was taken longer ago than a claim protects (120 s)."""
    stored = record(kube, ref)
    stored["claim"]["at"] = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kube.patch(ref, {"metadata": {"annotations": {RECORD: json.dumps(stored)}}})


# -- what users see --------------------------------------------------------------------------------


def test_started_then_succeeded_posts_two_cards_in_the_runs_thread_and_records_true(
    kube: MemoryRunClient, chat: Chat, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", DASHBOARD)
    started, succeeded = event("pipelinerun-started"), event("pipelinerun-successful")
    ref = add_run(kube, started)
    client = function_client("googlechat")

    assert deliver(client, started).status_code == 200
    advance(kube, ref, succeeded)
    assert deliver(client, succeeded).status_code == 200

    calls = chat.standin.calls_to(SPACE_ID)
    assert [(call.method, call.status, call.key, call.token) for call in calls] == [
        ("POST", 200, "valid", "valid")
    ] * 2
    assert {call.params["messageReplyOption"] for call in calls} == {REPLY_OPTION}
    ids = [call.params["messageId"] for call in calls]
    assert all(i.startswith("client-") and len(i) <= 63 for i in ids)
    assert len(set(ids)) == 2
    keys = {call.body["thread"]["threadKey"] for call in calls}
    assert len(keys) == 1, "every state of the run is sent with the same thread key"
    running_card, done_card = chat.standin.posted(SPACE_ID)
    assert len(set(chat.standin.thread_names())) == 1, "and Chat put both messages in one thread"
    assert "🔄 PipelineRun ci/build-and-test-run-x7k2p (build-and-test): Running" in running_card["text"]
    assert "build-and-test is running" in card_text(running_card)
    assert done_card["text"] == (
        "✅ PipelineRun ci/build-and-test-run-x7k2p (build-and-test): Succeeded after 3m 45s"
    )
    card = done_card["cardsV2"][0]["card"]
    assert card["header"]["title"] == "✅ build-and-test succeeded"
    facts = {
        w["decoratedText"]["topLabel"]: w["decoratedText"]["text"]
        for w in card["sections"][0]["widgets"]
        if "decoratedText" in w
    }
    assert "Succeeded" in facts["State"]
    assert facts["Run"] == "PipelineRun ci/build-and-test-run-x7k2p"
    assert facts["Duration"] == "3m 45s"
    (button,) = card["sections"][-1]["widgets"][0]["buttonList"]["buttons"]
    assert button["onClick"]["openLink"]["url"] == (
        f"{DASHBOARD}/#/namespaces/ci/pipelineruns/build-and-test-run-x7k2p"
    )
    stored = record(kube, ref)
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("True", "Reported")
    assert stored["annotations"] == {"space": SPACE, "phase": "succeeded", "message-id": ids[1]}
    assert SPACE_ID not in json.dumps(kube.runs[ref]), "the record names the space as the operator did"


def test_without_a_dashboard_the_card_has_no_button(
    kube: MemoryRunClient, chat: Chat, deliver: Deliver
) -> None:
    succeeded = event("pipelinerun-successful")
    add_run(kube, succeeded)
    deliver(function_client("googlechat"), succeeded)
    (message,) = chat.standin.posted()
    assert "buttonList" not in card_text(message)


def test_a_failed_run_shows_the_tasks_that_did_not_succeed(
    kube: MemoryRunClient, chat: Chat, deliver: Deliver
) -> None:
    running, failed, ref = failing_run(kube)
    client = function_client("googlechat")
    deliver(client, running)
    advance(kube, ref, failed)
    assert deliver(client, failed).status_code == 200

    _, message = chat.standin.posted()
    assert message["text"] == (
        "❌ PipelineRun ci/build-and-test-run-q4m9z (build-and-test): Failed after 1m 0s. "
        "Did not succeed: unit-tests, build-image"
    )
    card = message["cardsV2"][0]["card"]
    assert card["header"]["title"] == "❌ build-and-test failed"
    tasks = card["sections"][1]
    assert tasks["header"] == "Did not succeed (2)"
    unit, build = (w["decoratedText"] for w in tasks["widgets"])
    assert unit["topLabel"] == "unit-tests"
    assert unit["text"].startswith("<b>StepFailed</b>: ")
    assert unit["bottomLabel"] == "build-and-test-run-q4m9z-unit-tests"
    assert (build["topLabel"], build["text"]) == ("build-image", "<b>Skipped</b>: PipelineRun was stopping")
    assert "Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 1" in card_text(message)
    assert condition(kube, ref)["status"] == "True"
    assert len(set(chat.standin.thread_names())) == 1


def test_a_card_stays_within_google_chats_limits(kube: MemoryRunClient, chat: Chat, deliver: Deliver) -> None:
    """A run with hundreds of skipped tasks and huge messages: Chat accepts the message (≤ 32,000
    bytes, text ≤ 4,096 characters, ≤ 100 widgets), and nothing the run says becomes markup."""
    failed = event("pipelinerun-failed")
    status = samples.run_object(failed)[1]["status"]
    noisy = "<users/all> & <b>bold</b> " * 300
    status["conditions"][0]["message"] = noisy
    status["skippedTasks"] = [{"name": f"task-{n:03d}", "reason": noisy} for n in range(300)]
    status["childReferences"] = []
    ref = add_run(kube, failed)
    assert deliver(function_client("googlechat"), failed).status_code == 200

    (message,) = chat.standin.posted()
    sent = chat.standin.calls_to(SPACE_ID)[0].body
    assert len(json.dumps(sent).encode()) <= 32_000
    assert len(sent["text"]) <= 4096
    assert widgets(sent) <= 100
    assert "<users/all>" not in sent["text"], "no mention of everyone from a run's text"
    assert "<users/all>" not in card_text(message)
    assert "&lt;users/all&gt;" in card_text(message)
    assert "and 280 more" in card_text(message)
    assert condition(kube, ref)["status"] == "True"


# -- one message per state -------------------------------------------------------------------------


def test_duplicates_and_reordering_post_nothing_new(
    kube: MemoryRunClient, chat: Chat, deliver: Deliver
) -> None:
    names = ["pipelinerun-queued", "pipelinerun-started", "pipelinerun-running", "pipelinerun-successful"]
    events = [event(name, on="all") for name in names]
    ref = add_run(kube, events[0])
    client = function_client("googlechat")
    for each in events:
        advance(kube, ref, each)
        assert deliver(client, each).status_code == 200
    first_pass = chat.standin.posted()
    assert [m["text"].split(": ")[-1].split(" after")[0] for m in first_pass] == [
        "Queued",
        "Running",
        "Succeeded",
    ], "started and running are one phase: one message"
    final = record(kube, ref)
    calls = len(chat.standin.calls)

    replays = events * 3
    random.Random(12).shuffle(replays)
    for each in replays:
        assert deliver(client, each).status_code == 200

    assert chat.standin.posted() == first_pass
    assert len(chat.standin.calls) == calls, "duplicates made no call to Google Chat"
    assert record(kube, ref) == final


def test_concurrent_deliveries_of_one_state_post_once(kube: MemoryRunClient, chat: Chat) -> None:
    running = event("pipelinerun-running")
    add_run(kube, running)
    app = function_client("googlechat").application
    answers = [answer.status_code for _, answer in post_together(to_app(app), [running] * 8)]
    assert answers.count(200) >= 1
    assert set(answers) <= {200, 429}
    assert len(chat.standin.posted()) == 1


def test_a_message_chat_already_has_is_not_posted_again(
    kube: MemoryRunClient, chat: Chat, deliver: Deliver
) -> None:
    """Tekton writes back an older copy of the annotations, without the record: the redelivery
    creates the message under the same ``messageId``, Chat answers ALREADY_EXISTS, and that is done."""
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    client = function_client("googlechat")
    deliver(client, running)
    kube.runs[ref]["metadata"]["annotations"].pop(RECORD)

    answer = deliver(client, running)

    assert (answer.status_code, body(answer)["outcome"]) == (200, "reported")
    first, repeat = chat.standin.calls_to(SPACE_ID)
    assert first.params["messageId"] == repeat.params["messageId"]
    assert (repeat.status, repeat.error) == (409, "ALREADY_EXISTS")
    assert len(chat.standin.posted()) == 1
    assert condition(kube, ref)["status"] == "True"
    assert "already has" in condition(kube, ref)["message"]


def test_a_replica_killed_before_recording_leaves_one_message(
    kube: MemoryRunClient, chat: Chat, deliver: Deliver
) -> None:
    """Chat created the message, then the replica died before the record was written; the
    redelivery reaches another replica once the claim expired: it creates the message under the
    same ``messageId``, Chat refuses the repeat, and the run is recorded as reported."""
    running, succeeded = event("pipelinerun-running"), event("pipelinerun-successful")
    ref = add_run(kube, running)
    patches = 0

    def die_before_recording(verb: str, _: RunRef) -> None:
        nonlocal patches
        patches += verb == "patch"
        if verb == "patch" and patches == 2:  # the claim was written, the record never is
            raise KubernetesUnavailableError("the replica was killed")

    kube.before_request = die_before_recording
    assert deliver(function_client("googlechat"), running).status_code == 503
    kube.before_request = None
    assert len(chat.standin.posted()) == 1
    assert record(kube, ref)["claim"] is not None

    use_run_client(kube)
    other = function_client("googlechat")  # the dead replica's memory is gone with it
    busy = deliver(other, running)
    assert (busy.status_code, body(busy)["reason"]) == (429, "Busy"), "a fresh claim is waited for"
    expire_claim(kube, ref)
    assert deliver(other, running).status_code == 200
    assert condition(kube, ref)["status"] == "True"
    advance(kube, ref, succeeded)
    assert deliver(other, succeeded).status_code == 200

    assert [call.status for call in chat.standin.calls_to(SPACE_ID)] == [200, 409, 200]
    assert len(chat.standin.posted()) == 2, "one message for running, one for succeeded"
    assert len(set(chat.standin.thread_names())) == 1
    assert condition(kube, ref)["status"] == "True"


def test_a_lost_answer_leaves_one_message(kube: MemoryRunClient, chat: Chat, deliver: Deliver) -> None:
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    client = function_client("googlechat")
    chat.standin.drop_answer_next()

    lost = deliver(client, running)
    assert (lost.status_code, body(lost)["reason"]) == (503, "GoogleChatUnreachable")
    again = deliver(client, running)

    assert (again.status_code, body(again)["outcome"]) == (200, "reported")
    assert len(chat.standin.posted()) == 1
    assert condition(kube, ref)["status"] == "True"


# -- faults ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "http", "reason", "retry_after"),
    [
        (429, {}, 429, "GoogleChatRateLimited", "60"),
        (429, {"Retry-After": "7"}, 429, "GoogleChatRateLimited", "7"),
        (500, {}, 503, "GoogleChatUnavailable", None),
        (502, {}, 503, "GoogleChatUnavailable", None),
        (503, {"Retry-After": "20"}, 429, "GoogleChatUnavailable", "20"),
    ],
)
def test_rate_limits_and_server_errors_are_retried_into_one_message(  # noqa: PLR0917 -- parameters
    kube: MemoryRunClient,
    chat: Chat,
    deliver: Deliver,
    status: int,
    headers: dict[str, str],
    http: int,
    reason: str,
    retry_after: str | None,
) -> None:
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    client = function_client("googlechat")
    chat.standin.fail_next(status, headers=headers)

    answer = deliver(client, running)

    assert (answer.status_code, body(answer)["reason"]) == (http, reason)
    assert answer.headers.get("Retry-After") == retry_after
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("Unknown", reason)
    if status == 429:
        assert chat.standin.calls[0].error == "RESOURCE_EXHAUSTED"
    assert not chat.standin.posted()
    assert deliver(client, running).status_code == 200  # the sender's redelivery
    assert len(chat.standin.posted()) == 1
    assert condition(kube, ref)["status"] == "True"


@pytest.mark.parametrize(
    ("status", "reason", "hint"),
    [
        (401, "GoogleChatUnauthorized", "create a new incoming webhook in the space"),
        (403, "GoogleChatForbidden", "ask a Workspace admin"),
        (404, "GoogleChatNotFound", "no such space or webhook"),
        (400, "GoogleChatRejected", "API key is not valid"),
    ],
)
def test_refusals_are_recorded_false_with_a_hint(  # noqa: PLR0917 -- parameters
    kube: MemoryRunClient, chat: Chat, deliver: Deliver, status: int, reason: str, hint: str
) -> None:
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    client = function_client("googlechat")
    chat.standin.fail_next(status)

    answer = deliver(client, running)

    assert (answer.status_code, body(answer)["outcome"]) == (200, "failed")
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", reason)
    assert hint in cond["message"]
    assert "GOOGLECHAT_SPACES_DIR" in cond["message"]
    assert f"space {SPACE!r}" in cond["message"]
    assert [reason for _, reason, _ in kube.events] == ["IntegrationFailed"]
    calls = len(chat.standin.calls)
    assert body(deliver(client, running))["outcome"] == "ignored", "recorded: not tried again"
    assert len(chat.standin.calls) == calls


@pytest.mark.parametrize(
    ("key", "token", "reason"),
    [
        (KEY, "another-token-0123456789", "GoogleChatUnauthorized"),
        ("AIzaSyWrong", TOKEN, "GoogleChatRejected"),
    ],
    ids=["deleted-webhook", "damaged-key"],
)
def test_a_webhook_url_chat_does_not_know_is_refused_by_the_stand_in_as_by_chat(  # noqa: PLR0917
    kube: MemoryRunClient, chat: Chat, deliver: Deliver, key: str, token: str, reason: str
) -> None:
    """A deleted webhook (its token no longer valid) and a damaged key, answered as Google does."""
    (chat.spaces / SPACE).write_text(
        f"{chat.standin.url}/v1/spaces/{SPACE_ID}/messages?key={key}&token={quote(token, safe='')}"
    )
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    assert deliver(function_client("googlechat"), running).status_code == 200
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("False", reason)
    assert not chat.standin.posted()


def test_a_redirect_is_not_followed(kube: MemoryRunClient, chat: Chat, deliver: Deliver) -> None:
    with GoogleChatStandIn() as elsewhere:
        target = elsewhere.add_webhook(SPACE_ID, key=KEY, token=TOKEN)
        chat.standin.redirect_next(target)
        running = event("pipelinerun-running")
        ref = add_run(kube, running)
        assert deliver(function_client("googlechat"), running).status_code == 200
        assert not elsewhere.calls, "the credentials never travelled to the redirect's target"
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "GoogleChatRedirected")
    assert TOKEN not in cond["message"]
    assert quote(TOKEN, safe="") not in cond["message"]


# -- configuration, policy and credentials -------------------------------------------------------


def test_a_space_without_a_webhook_file_is_recorded_not_configured(
    kube: MemoryRunClient, chat: Chat, deliver: Deliver
) -> None:
    running = event("pipelinerun-running", space="release-team")
    ref = add_run(kube, running)
    assert deliver(function_client("googlechat"), running).status_code == 200
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "GoogleChatSpaceNotConfigured")
    assert "GOOGLECHAT_SPACES_DIR" in cond["message"]
    assert "'release-team'" in cond["message"]
    assert not chat.standin.calls


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("", "is empty"),
        ("http://chat.example.org/v1/spaces/AAAA/messages?key=k&token=plain-text-token-123", "clear text"),
        ("chat.googleapis.com/v1/spaces/AAAA/messages?token=no-scheme-token-1234", "not an https:// URL"),
        ("https://a.example/1?token=first-line-token\nhttps://b.example/2", "more than one line"),
    ],
    ids=["empty", "http", "no-scheme", "two-lines"],
)
def test_an_unusable_webhook_file_is_recorded_naming_the_file_not_its_content(
    kube: MemoryRunClient, chat: Chat, deliver: Deliver, content: str, why: str
) -> None:
    (chat.spaces / SPACE).write_text(content, encoding="utf-8")
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    assert deliver(function_client("googlechat"), running).status_code == 200
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "GoogleChatNotConfigured")
    assert str(chat.spaces / SPACE) in cond["message"]
    assert why in cond["message"]
    for line in content.splitlines():
        assert line not in json.dumps(kube.runs[ref]) + json.dumps(kube.events, default=str)
    assert not chat.standin.calls


@pytest.mark.parametrize("space", ["../widget-ci", ".hidden", "..data", "a/b", "x" * 300])
def test_a_space_name_that_is_not_a_file_name_is_invalid_configuration(
    kube: MemoryRunClient, chat: Chat, deliver: Deliver, space: str
) -> None:
    running = event("pipelinerun-running", space=space)
    ref = add_run(kube, running)
    assert deliver(function_client("googlechat"), running).status_code == 200
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "InvalidConfiguration")
    assert "googlechat.integrations.tekton.dev/space" in cond["message"]
    assert not chat.standin.calls


def test_the_namespace_policy_decides_which_spaces_a_run_may_use(
    kube: MemoryRunClient, chat: Chat, deliver: Deliver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    chat.add_space("release-team", "AAAArelease")
    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {"googlechat": {"spaces": ["widget-*"]}}}})
    refused = event("pipelinerun-running", space="release-team")
    ref = add_run(kube, refused)
    assert deliver(function_client("googlechat"), refused).status_code == 200
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "TargetNotAllowed")
    assert "googlechat space 'release-team'" in cond["message"]
    assert not chat.standin.calls


def test_operator_url_parameters_do_not_override_the_thread_or_the_message_id(
    kube: MemoryRunClient, chat: Chat, deliver: Deliver
) -> None:
    (chat.spaces / SPACE).write_text(
        chat.url + "&threadKey=operator-thread&messageReplyOption=REPLY_MESSAGE_OR_FAIL&messageId=client-x"
    )
    started, succeeded = event("pipelinerun-started"), event("pipelinerun-successful")
    ref = add_run(kube, started)
    client = function_client("googlechat")
    deliver(client, started)
    advance(kube, ref, succeeded)
    deliver(client, succeeded)
    calls = chat.standin.calls_to(SPACE_ID)
    assert [call.status for call in calls] == [200, 200]
    assert {call.params.get("threadKey") for call in calls} == {None}
    assert {call.params["messageReplyOption"] for call in calls} == {REPLY_OPTION}
    assert "client-x" not in {call.params["messageId"] for call in calls}
    assert len(set(chat.standin.thread_names())) == 1


def forge_record(kube: MemoryRunClient, ref: RunRef, annotations: dict[str, str]) -> None:
    """What the run's author can do with ``kubectl annotate``: a record naming anything."""
    forged = {
        "name": "googlechat.integrations.tekton.dev",
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Succeeded",
                "status": "True",
                "reason": "Reported",
                "message": "",
                "lastTransitionTime": "2024-01-01T00:00:00Z",
            }
        ],
        "annotations": annotations,
        "runUID": kube.runs[ref]["metadata"]["uid"],
        "runState": {"status": "Unknown", "reason": "Pending"},
    }
    kube.patch(ref, {"metadata": {"annotations": {RECORD: json.dumps(forged)}}})


def test_a_forged_record_posts_nowhere_else_and_reuses_no_id(
    kube: MemoryRunClient, chat: Chat, deliver: Deliver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Another namespace's run posts to its own space; a run in ``ci``, whose record its author
    forged to name that space and that message, posts only where its annotation and the policy
    say, under its own ids, and the other space's thread is left alone."""
    chat.add_space("release-team", "AAAArelease")
    use_policy(
        monkeypatch,
        tmp_path,
        {
            "namespaces": {
                "ci": {"googlechat": {"spaces": ["widget-ci"]}},
                "release": {"googlechat": {"spaces": ["release-team"]}},
            }
        },
    )
    client = function_client("googlechat")
    victim = event("pipelinerun-running", space="release-team")
    metadata = samples.run_object(victim)[1]["metadata"]
    metadata.update(namespace="release", name="release-run", uid="0000-victim")
    add_run(kube, victim)
    assert deliver(client, victim).status_code == 200
    (victims,) = chat.standin.posted("AAAArelease")

    running, succeeded = event("pipelinerun-running"), event("pipelinerun-successful")
    ref = add_run(kube, running)
    forge_record(
        kube,
        ref,
        {"space": "release-team", "message-id": victims["clientAssignedMessageId"], "phase": "queued"},
    )
    assert deliver(client, running).status_code == 200
    advance(kube, ref, succeeded)
    assert deliver(client, succeeded).status_code == 200

    assert len(chat.standin.calls_to("AAAArelease")) == 1, "only the victim's own post reached its space"
    assert chat.standin.posted("AAAArelease") == [victims]
    own = chat.standin.posted(SPACE_ID)
    assert len(own) == 2
    assert victims["clientAssignedMessageId"] not in {m["clientAssignedMessageId"] for m in own}
    assert victims["thread"]["threadKey"] not in {m["thread"]["threadKey"] for m in own}
    assert record(kube, ref)["annotations"]["space"] == SPACE


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 502])
def test_the_webhook_url_is_in_no_text_even_when_google_chat_echoes_it(  # noqa: PLR0917 -- fixtures
    kube: MemoryRunClient,
    chat: Chat,
    deliver: Deliver,
    status: int,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = event("pipelinerun-running")
    ref = add_run(kube, running)
    chat.standin.echo_credentials_next(status)

    answer = deliver(function_client("googlechat"), running)

    if status != 429:  # a rate limit's message says when to retry, not what Chat said
        assert "[REDACTED]" in condition(kube, ref)["message"], "the echo reached the record, masked"
    for where, text in written_texts(answer, kube, capsys, caplog).items():
        for secret in chat.secrets():
            assert secret not in text, f"a webhook credential is in the {where}"


# -- templates and the failed steps' logs --------------------------------------------------------------


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return mount_templates(
        tmp_path,
        monkeypatch,
        {
            "short.googlechat.j2": "<b>{{ run.definition }}</b> {{ run.headline }}, "
            "owner {{ run.annotations.owner }}",
            "evil.j2": "{{ run.__class__ }}",
        },
    )


def failed_with(kube: MemoryRunClient, **settings: str) -> tuple[dict[str, Any], RunRef]:
    """The failed run, finished in the store, with the given settings and an owner to show."""
    _, failed, ref = failing_run(kube)
    for held in (
        samples.run_object(failed)[1]["metadata"]["annotations"],
        kube.runs[ref]["metadata"]["annotations"],
    ):
        held["owner"] = "<users/all> & co"
        held.update({f"googlechat.integrations.tekton.dev/{k}": v for k, v in settings.items()})
    advance(kube, ref, failed)
    return failed, ref


def test_a_template_writes_the_cards_text(
    kube: MemoryRunClient, chat: Chat, templates: Path, deliver: Deliver
) -> None:
    failed, ref = failed_with(kube, template="short")

    assert deliver(function_client("googlechat"), failed).status_code == 200

    (message,) = chat.standin.posted(SPACE_ID)
    card = message["cardsV2"][0]["card"]
    assert card["header"]["title"] == "❌ build-and-test failed"
    assert card["sections"][0]["widgets"] == [
        {"textParagraph": {"text": "<b>build-and-test</b> Failed, owner &lt;users/all&gt; &amp; co"}}
    ]
    assert "Did not succeed" not in card_text(message), "the template replaces the facts and tasks"
    assert message["text"].startswith("❌ PipelineRun ci/build-and-test-run-q4m9z (build-and-test): Failed")
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("True", "Reported")


def test_a_template_reaching_for_python_internals_falls_back_and_says_so(
    kube: MemoryRunClient, chat: Chat, templates: Path, deliver: Deliver
) -> None:
    failed, ref = failed_with(kube, template="evil")

    assert deliver(function_client("googlechat"), failed).status_code == 200

    (message,) = chat.standin.posted(SPACE_ID)
    assert "Did not succeed (2)" in card_text(message)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("True", "TemplateFailed")
    assert "template 'evil' failed (SecurityError: access to attribute '__class__'" in cond["message"]


def test_the_failed_steps_last_lines_are_a_section_of_the_card(
    kube: MemoryRunClient, chat: Chat, deliver: Deliver
) -> None:
    failed, _ = failed_with(kube, **{"log-lines": "2"})
    log_failed_step(kube, *FAILING_TEST)

    assert deliver(function_client("googlechat"), failed).status_code == 200

    (message,) = chat.standin.posted(SPACE_ID)
    (section,) = [
        section
        for section in message["cardsV2"][0]["card"]["sections"]
        if section.get("header") == "The failed steps' last lines"
    ]
    assert section["widgets"] == [
        {
            "textParagraph": {
                "text": "Task unit-tests, step run-tests (TaskRun build-and-test-run-q4m9z-unit-tests), "
                "last 2 lines:<br>        widget_test.go:42: &lt;pushing&gt; with [REDACTED]<br>"
                "    --- FAIL: TestWidget (0.01s)"
            }
        }
    ]
    assert LOG_TOKEN not in json.dumps(message)


def test_without_log_lines_no_log_is_read(kube: MemoryRunClient, chat: Chat, deliver: Deliver) -> None:
    failed, _ = failed_with(kube)
    log_failed_step(kube, *FAILING_TEST)

    assert deliver(function_client("googlechat"), failed).status_code == 200

    assert not pod_log_reads(kube)
    assert "last lines" not in card_text(chat.standin.posted(SPACE_ID)[0])


def test_huge_logs_keep_the_message_within_chats_limit_and_their_newest_lines(
    kube: MemoryRunClient, chat: Chat, templates: Path, deliver: Deliver
) -> None:
    failed, _ = failed_with(kube, template="short", **{"log-lines": "200"})
    log_failed_step(kube, *(f"line {i}: " + "<&>\x02ü" * 120 for i in range(300)))

    assert deliver(function_client("googlechat"), failed).status_code == 200

    (message,) = chat.standin.posted(SPACE_ID)
    assert len(json.dumps(message).encode()) <= 32_000
    text = card_text(message)
    assert "line 299" in text, "the newest lines are kept"
    assert "line 100:" not in text
    assert "<b>build-and-test</b> Failed" in text


def test_a_huge_template_is_cut_to_chats_limit(
    kube: MemoryRunClient, chat: Chat, templates: Path, deliver: Deliver
) -> None:
    (templates / "huge.j2").write_text("{% for i in range(2500) %}<&>\x02ü {% endfor %}", encoding="utf-8")
    failed, _ = failed_with(kube, template="huge")

    assert deliver(function_client("googlechat"), failed).status_code == 200

    (message,) = chat.standin.posted(SPACE_ID)
    assert len(json.dumps(message).encode()) <= 32_000
    assert message["cardsV2"][0]["card"]["sections"][0]["widgets"][0]["textParagraph"]["text"].endswith("…")
