"""The Teams function, driven through functions-framework against the loopback Workflows stand-in."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from common import samples
from common.errors import KubernetesUnavailableError
from common.http import use_run_client
from common.runclient import MemoryRunClient, RunRef
from common.status import CLAIM_TTL
from tests.conftest import Deliver, add_run, advance, body, event_request, function_client, written_texts
from tests.support.policies import use_policy
from tests.support.reports import LOG_TOKEN, log_failed_step, mount_templates, pod_log_reads
from tests.support.standins.teams import TEAMS_MESSAGE_LIMIT, TeamsStandIn

RECORD = "teams.integrations.tekton.dev/status"
PREFIX = "teams.integrations.tekton.dev/"
CHANNEL = "widget-ci"
OTHER = "releases"
DASHBOARD = "https://dashboard.example.org"
ADAPTIVE = "application/vnd.microsoft.card.adaptive"
BODY_LIMIT = 27 * 1024


@pytest.fixture
def channels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The directory the operator's Secret is mounted at: one file per channel."""
    directory = tmp_path / "teams-channels"
    directory.mkdir()
    monkeypatch.setenv("TEAMS_CHANNELS_DIR", str(directory))
    return directory


@pytest.fixture
def teams(channels: Path) -> Iterator[TeamsStandIn]:
    """Two channels with a Workflows webhook each; the Secret holds both URLs."""
    with TeamsStandIn((CHANNEL, OTHER)) as standin:
        for channel in (CHANNEL, OTHER):
            (channels / channel).write_text(standin.url_for(channel) + "\n", encoding="utf-8")
        yield standin


def annotate(
    kube: MemoryRunClient | None, ref: RunRef | None, *events: dict[str, Any], **values: str
) -> None:
    """Set ``teams.integrations.tekton.dev/<key>`` on the events' runs (and on the stored run)."""
    for event in events:
        annotations = samples.run_object(event)[1]["metadata"].setdefault("annotations", {})
        annotations.update({PREFIX + key: value for key, value in values.items()})
    if kube is not None and ref is not None:
        kube.runs[ref]["metadata"]["annotations"].update(
            {PREFIX + key: value for key, value in values.items()}
        )


def on_run(sample: dict[str, Any], like: dict[str, Any]) -> dict[str, Any]:
    """``sample``'s state, as an event about ``like``'s run."""
    samples.run_object(sample)[1]["metadata"] = json.loads(
        json.dumps(samples.run_object(like)[1]["metadata"])
    )
    return sample


def failing_run(kube: MemoryRunClient, **values: str) -> tuple[dict[str, Any], dict[str, Any], RunRef]:
    """A PipelineRun's running and failed events, reported to ``widget-ci``; its failed child TaskRun
    is in the store."""
    failed = samples.load("pipelinerun-failed")
    annotate(None, None, failed, channel=CHANNEL, **values)
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


def outcome(answer: TestResponse) -> str:
    return str(body(answer)["outcome"])


def elements(card: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every element of a card, depth first."""
    for item in card.get("body", []):
        yield item
        yield from elements({"body": item.get("items", [])})


def title(card: Mapping[str, Any]) -> str:
    return "".join(inline["text"] for inline in card["body"][0]["items"][0]["inlines"])


def facts(card: Mapping[str, Any]) -> dict[str, str]:
    return {
        fact["title"]: fact["value"]
        for element in elements(card)
        if element["type"] == "FactSet"
        for fact in element["facts"]
    }


def shown(card: Mapping[str, Any]) -> list[str]:
    """The card's text runs, one string per rich text block."""
    return [
        "".join(inline["text"] for inline in element["inlines"])
        for element in elements(card)
        if element["type"] == "RichTextBlock"
    ]


def notification_id(card: Mapping[str, Any]) -> str:
    """Where docs/teams.md tells a flow to read it: the last element's first fact."""
    last = card["body"][-1]
    assert last["id"] == "tekton-notification"
    return str(last["facts"][0]["value"])


# -- what users see ---------------------------------------------------------------------------------


def test_started_then_succeeded_posts_a_card_for_each_and_records_true(
    kube: MemoryRunClient, teams: TeamsStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", DASHBOARD)
    started, running, successful = (
        samples.load("pipelinerun-started"),
        samples.load("pipelinerun-running"),
        samples.load("pipelinerun-successful"),
    )
    annotate(None, None, started, running, successful, channel=CHANNEL, on="started,finished")
    ref = add_run(kube, started)
    client = function_client("teams")

    assert outcome(deliver(client, started)) == "reported"
    advance(kube, ref, running)
    assert outcome(deliver(client, running)) == "ignored", "started and running are one phase: one card"
    advance(kube, ref, successful)
    assert outcome(deliver(client, successful)) == "reported"

    calls = teams.calls_to(CHANNEL)
    assert [(call.method, call.status, call.credential) for call in calls] == [("POST", 202, "valid")] * 2
    assert not teams.calls_to(OTHER)
    for call in calls:  # what the Workflows template reads
        assert call.body["type"] == "message"
        (attachment,) = call.body["attachments"]
        assert attachment["contentType"] == ADAPTIVE
        assert (attachment["content"]["type"], attachment["content"]["version"]) == ("AdaptiveCard", "1.4")
    first, second = teams.cards(CHANNEL)
    assert title(first) == "🔄 build-and-test is running"
    assert first["body"][0]["style"] == "accent"
    assert facts(first)["Started"] == "2026-03-14 09:21 UTC"
    assert title(second) == "✅ build-and-test succeeded"
    assert second["body"][0]["style"] == "good"
    assert facts(second)["PipelineRun"] == "ci/build-and-test-run-x7k2p"
    assert facts(second)["Status"] == "Succeeded"
    assert "Duration" in facts(second)
    assert second["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open in the Tekton Dashboard",
            "url": f"{DASHBOARD}/#/namespaces/ci/pipelineruns/build-and-test-run-x7k2p",
        }
    ]
    assert notification_id(first) != notification_id(second), "one id per phase"

    stored = record(kube, ref)
    cond = stored["conditions"][0]
    assert (cond["status"], cond["reason"]) == ("True", "Posted")
    assert (
        "posted the succeeded card to channel 'widget-ci': Workflows answered 202 Accepted" in cond["message"]
    )
    assert stored["annotations"] == {
        "phase": "succeeded",
        "notification-id": notification_id(second),
        "workflow-run-id": teams.runs[-1].id,
    }
    assert stored["runState"] == {"status": "True", "reason": "Succeeded"}


def test_by_default_one_card_when_the_run_ends(
    kube: MemoryRunClient, teams: TeamsStandIn, deliver: Deliver
) -> None:
    running, failed, ref = failing_run(kube)
    client = function_client("teams")

    assert outcome(deliver(client, running)) == "ignored"
    assert not teams.calls
    advance(kube, ref, failed)
    assert outcome(deliver(client, failed)) == "reported"

    (card,) = teams.cards(CHANNEL)
    assert title(card) == "❌ build-and-test failed"


def test_a_failed_run_shows_what_failed_literally(
    kube: MemoryRunClient, teams: TeamsStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", DASHBOARD)
    _, failed, ref = failing_run(kube)
    child = RunRef("TaskRun", "ci", "build-and-test-run-q4m9z-unit-tests")
    conditions = kube.runs[child]["status"]["conditions"]
    conditions[0]["message"] += "\nsee [the fix](https://evil.example) **now** <at>everyone</at>"
    advance(kube, ref, failed)

    assert outcome(deliver(function_client("teams"), failed)) == "reported"

    (card,) = teams.cards(CHANNEL)
    assert title(card) == "❌ build-and-test failed"
    assert card["body"][0]["style"] == "attention"
    assert (
        card["fallbackText"]
        == "❌ PipelineRun ci/build-and-test-run-q4m9z (build-and-test): Failed after 1m 0s"
    )
    assert facts(card) | {"Notification id": "-"} == {
        "PipelineRun": "ci/build-and-test-run-q4m9z",
        "Status": "Failed",
        "Duration": "1m 0s",
        "Notification id": "-",
    }
    text = shown(card)
    assert "Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 1" in text
    assert "2 tasks did not succeed" in text
    assert "unit-tests (StepFailed) · build-and-test-run-q4m9z-unit-tests" in text
    injected = "see [the fix](https://evil.example) **now** <at>everyone</at>"
    assert f'"step-run-tests" exited with code 1: Error\n{injected}' in text, "shown as it is"
    assert "build-image (Skipped)" in text
    assert "PipelineRun was stopping" in text
    assert card["actions"][0]["url"] == f"{DASHBOARD}/#/namespaces/ci/pipelineruns/build-and-test-run-q4m9z"
    # Run output goes only into text runs, which Teams shows without Markdown: no link, no mention.
    assert {element["type"] for element in elements(card)} == {"Container", "RichTextBlock", "FactSet"}
    assert "evil.example" not in json.dumps(facts(card))


def test_a_huge_failure_is_trimmed_to_fit_teams_message_limit(
    kube: MemoryRunClient, teams: TeamsStandIn, deliver: Deliver
) -> None:
    """60 failed tasks with long, partly unprintable messages, 300 skipped tasks and a long condition
    message: the request stays under the budget, Teams posts the card, and it says what it left out."""
    _, failed, ref = failing_run(kube)
    run = samples.run_object(failed)[1]
    status = run["status"]
    status["conditions"][0]["message"] = "\x01" * 5000  # six bytes each once escaped in JSON
    status["childReferences"] = []
    template = samples.run_object(samples.load("taskrun-failed"))[1]
    for index in range(60):
        name = f"build-and-test-run-q4m9z-shard-{index:02d}"
        child = json.loads(json.dumps(template))
        child["metadata"].update(name=name, uid=f"00000000-0000-0000-0000-{index:012d}")
        child["metadata"]["labels"]["tekton.dev/pipelineTask"] = f"shard-{index:02d}"
        child["status"]["conditions"][0]["message"] = f"shard {index} failed: " + "ünïcødé\x02 " * 1500
        kube.add("TaskRun", child)
        status["childReferences"].append(
            {"kind": "TaskRun", "name": name, "pipelineTaskName": f"shard-{index:02d}"}
        )
    status["skippedTasks"] = [
        {"name": f"deploy-{index}", "reason": "When Expressions evaluated to false"} for index in range(300)
    ]
    advance(kube, ref, failed)

    assert outcome(deliver(function_client("teams"), failed)) == "reported"

    (call,) = teams.calls_to(CHANNEL)
    assert call.size <= BODY_LIMIT < TEAMS_MESSAGE_LIMIT
    assert teams.runs[-1].status == "Succeeded", teams.runs[-1].error
    (card,) = teams.cards(CHANNEL)
    text = shown(card)
    # At most 50 child TaskRuns are read (the runtime's limit), plus the 300 skipped tasks.
    assert "350 tasks did not succeed" in text
    listed = [line for line in text if line.startswith("shard-")]
    assert 0 < len(listed) <= 20
    assert f"and {350 - len(listed)} more, not shown" in text
    assert notification_id(card) == record(kube, ref)["annotations"]["notification-id"]


# -- exactly once --------------------------------------------------------------------------------------


def test_duplicates_and_reordered_events_post_nothing_new(
    kube: MemoryRunClient, teams: TeamsStandIn, deliver: Deliver
) -> None:
    running, failed, ref = failing_run(kube, on="started,finished")
    annotate(kube, ref, running, on="started,finished")
    started = on_run(samples.load("pipelinerun-started"), failed)
    client = function_client("teams")

    assert outcome(deliver(client, running)) == "reported"
    advance(kube, ref, failed)
    assert outcome(deliver(client, failed)) == "reported"
    settled = json.dumps(kube.runs[ref]["metadata"]["annotations"][RECORD])

    for late in (failed, running, started, failed):
        assert outcome(deliver(client, late)) == "ignored"

    assert [title(card) for card in teams.cards(CHANNEL)] == [
        "🔄 build-and-test is running",
        "❌ build-and-test failed",
    ]
    assert len(teams.calls) == 2
    assert json.dumps(kube.runs[ref]["metadata"]["annotations"][RECORD]) == settled


def test_concurrent_deliveries_of_one_event_post_one_card(kube: MemoryRunClient, teams: TeamsStandIn) -> None:
    _, failed, ref = failing_run(kube)
    advance(kube, ref, failed)
    app = function_client("teams").application
    headers, data = event_request(failed)
    start = threading.Barrier(8)
    answers: list[TestResponse] = []
    lock = threading.Lock()

    def deliver_once() -> None:
        client = app.test_client()  # Flask test clients are not shared between threads
        start.wait()
        answer = client.post("/", headers=headers, data=data)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=deliver_once) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [outcome(answer) for answer in answers].count("reported") == 1
    assert all(answer.status_code in (200, 429) for answer in answers), "the others: done, or Busy"
    assert len(teams.cards(CHANNEL)) == 1


# -- what the service answers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "answer_status", "retry_after", "reason"),
    [
        (429, {"Retry-After": "17"}, 429, "17", "TeamsRateLimited"),
        (429, {}, 429, "60", "TeamsRateLimited"),
        (500, {}, 503, None, "TeamsUnavailable"),
        (502, {}, 503, None, "TeamsUnavailable"),
        (503, {"Retry-After": "20"}, 429, "20", "TeamsUnavailable"),
    ],
)
def test_throttling_and_server_errors_are_retried_and_then_post_once(  # noqa: PLR0917 -- parameters
    kube: MemoryRunClient,
    teams: TeamsStandIn,
    deliver: Deliver,
    status: int,
    headers: dict[str, str],
    answer_status: int,
    retry_after: str | None,
    reason: str,
) -> None:
    _, failed, ref = failing_run(kube)
    advance(kube, ref, failed)
    client = function_client("teams")
    teams.fail_next(status, headers=headers)

    answer = deliver(client, failed)

    assert (answer.status_code, answer.headers.get("Retry-After")) == (answer_status, retry_after)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("Unknown", reason)
    assert not teams.cards()
    assert outcome(deliver(client, failed)) == "reported"
    assert len(teams.cards(CHANNEL)) == 1
    assert condition(kube, ref)["status"] == "True"


Breaks = Callable[[TeamsStandIn, Path], object]
"""What a test does to the service or the Secret before the delivery."""


def _wrong_signature(teams: TeamsStandIn, channels: Path) -> None:
    (channels / CHANNEL).write_text(teams.url_for(CHANNEL, signature="copied-from-an-older-flow-0123"))


def _no_signature(teams: TeamsStandIn, channels: Path) -> None:
    (channels / CHANNEL).write_text(teams.url_for(CHANNEL, signature=""))


@pytest.mark.parametrize(
    ("breaks", "reason", "hint"),
    [
        (_wrong_signature, "TeamsUnauthorized", "copy the flow's HTTP POST URL again"),
        (_no_signature, "TeamsUnauthorized", "'Who can trigger the flow' is 'Anyone'"),
        (
            lambda teams, _: teams.fail_next(403),
            "TeamsForbidden",
            "set 'Who can trigger the flow' to 'Anyone'",
        ),
        (lambda teams, _: teams.delete(CHANNEL), "TeamsWorkflowNotFound", "create it again in the channel"),
        (lambda teams, _: teams.turn_off(CHANNEL), "TeamsWorkflowDisabled", "turn it on in Teams"),
        (lambda teams, _: teams.fail_next(400), "TeamsRejected", "leave the trigger's request schema empty"),
    ],
    ids=["401-wrong-signature", "401-no-signature", "403", "400-deleted", "400-turned-off", "400-schema"],
)
def test_refusals_record_false_with_what_to_do_and_are_not_retried(  # noqa: PLR0917 -- parameters
    kube: MemoryRunClient,
    teams: TeamsStandIn,
    channels: Path,
    deliver: Deliver,
    breaks: Breaks,
    reason: str,
    hint: str,
) -> None:
    _, failed, ref = failing_run(kube)
    advance(kube, ref, failed)
    client = function_client("teams")
    breaks(teams, channels)

    answer = deliver(client, failed)

    assert (answer.status_code, outcome(answer)) == (200, "failed")
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", reason)
    assert "post the card to Teams channel 'widget-ci'" in cond["message"]
    assert hint in cond["message"]
    assert [reason for _, reason, _ in kube.events] == ["IntegrationFailed"]
    calls = len(teams.calls)
    assert outcome(deliver(client, failed)) == "ignored"
    assert len(teams.calls) == calls
    assert not teams.cards()


def test_a_redirect_is_not_followed(kube: MemoryRunClient, teams: TeamsStandIn, deliver: Deliver) -> None:
    _, failed, ref = failing_run(kube)
    advance(kube, ref, failed)
    teams.fail_next(307, headers={"Location": teams.url_for(OTHER)})

    assert outcome(deliver(function_client("teams"), failed)) == "failed"

    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "TeamsRedirected")
    assert not teams.calls_to(OTHER), "the URL, a credential, never travels to the redirect's target"
    assert teams.flow(OTHER).signature not in cond["message"]
    assert "[REDACTED]" in cond["message"]


# -- configuration -------------------------------------------------------------------------------------


def _unmounted(_: TeamsStandIn, channels: Path) -> None:
    for path in channels.iterdir():
        path.unlink()
    channels.rmdir()


def _retired(_: TeamsStandIn, channels: Path) -> None:
    url = "https://acme.webhook.office.com/webhookb2/0000/IncomingWebhook/1111/retired-connector-secret"
    (channels / CHANNEL).write_text(url)


def _plain_http(teams: TeamsStandIn, channels: Path) -> None:
    (channels / CHANNEL).write_text(teams.url_for(CHANNEL, base="http://teams.example"))


@pytest.mark.parametrize(
    ("breaks", "why"),
    [
        (lambda _, channels: (channels / CHANNEL).unlink(), "has no file 'widget-ci'"),
        (lambda _, channels: (channels / CHANNEL).write_text("\n"), "is empty"),
        (_unmounted, "does not exist (is the Secret mounted?)"),
        (_retired, "Office 365 connector URL, which Microsoft retired"),
        (_plain_http, "plain http"),
    ],
    ids=["no-file", "empty", "not-mounted", "retired-connector", "plain-http"],
)
def test_a_channel_without_a_usable_url_is_not_configured_and_names_the_setting(  # noqa: PLR0917
    kube: MemoryRunClient, teams: TeamsStandIn, channels: Path, deliver: Deliver, breaks: Breaks, why: str
) -> None:
    _, failed, ref = failing_run(kube)
    advance(kube, ref, failed)
    secret = (channels / CHANNEL).read_text().strip()
    breaks(teams, channels)

    assert outcome(deliver(function_client("teams"), failed)) == "failed"

    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "TeamsChannelNotConfigured")
    assert "no Workflows webhook for channel 'widget-ci'" in cond["message"]
    assert why in cond["message"]
    assert "TEAMS_CHANNELS_DIR" in cond["message"]
    assert "Nothing was sent" in cond["message"]
    assert secret not in cond["message"]
    assert "retired-connector-secret" not in cond["message"]
    assert not teams.calls


@pytest.mark.parametrize("channel", ["../teams-channels/widget-ci", ".hidden", "", "a/b"])
def test_a_channel_that_is_not_a_secret_key_is_invalid_configuration(
    kube: MemoryRunClient, teams: TeamsStandIn, deliver: Deliver, channel: str
) -> None:
    _, failed, ref = failing_run(kube)
    annotate(kube, ref, failed, channel=channel)
    advance(kube, ref, failed)

    assert outcome(deliver(function_client("teams"), failed)) == "failed"

    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "InvalidConfiguration")
    assert "teams.integrations.tekton.dev/channel" in cond["message"]
    assert not teams.calls


@pytest.mark.parametrize(("channel", "allowed"), [(CHANNEL, True), (OTHER, False)])
def test_the_namespace_policy_decides_which_channels_a_run_may_post_to(  # noqa: PLR0917 -- parameters
    kube: MemoryRunClient,
    teams: TeamsStandIn,
    deliver: Deliver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    channel: str,
    allowed: bool,
) -> None:
    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {"teams": {"channels": ["widget-*"]}}}})
    _, failed, ref = failing_run(kube)
    annotate(kube, ref, failed, channel=channel)
    advance(kube, ref, failed)

    deliver(function_client("teams"), failed)

    cond = condition(kube, ref)
    if allowed:
        assert cond["status"] == "True"
        assert len(teams.cards(CHANNEL)) == 1
    else:
        assert (cond["status"], cond["reason"]) == ("False", "TargetNotAllowed")
        assert "teams channel 'releases'" in cond["message"]
        assert not teams.calls


# -- the URL is a credential ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["echo-401", "echo-500", "lost-answer", "refused"])
def test_the_webhook_url_leaves_in_no_text_even_when_echoed(  # noqa: PLR0917 -- fixtures
    kube: MemoryRunClient,
    teams: TeamsStandIn,
    channels: Path,
    deliver: Deliver,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    _, failed, ref = failing_run(kube)
    advance(kube, ref, failed)
    url, signature = teams.url_for(CHANNEL), teams.flow(CHANNEL).signature
    if how.startswith("echo"):
        teams.echo_credentials_next(int(how.removeprefix("echo-")))
    elif how == "lost-answer":
        teams.drop_answer_next()
    else:
        (channels / CHANNEL).write_text(teams.url_for(CHANNEL, base="http://127.0.0.1:9"))

    with caplog.at_level(logging.DEBUG):  # urllib3 logs each request line at DEBUG
        answer = deliver(function_client("teams"), failed)

    assert condition(kube, ref)["status"] != "True"
    texts = written_texts(answer, kube, capsys, caplog)
    for where, text in texts.items():
        assert url not in text, f"the webhook URL is in the {where}"
        assert signature not in text, f"the webhook URL's signature is in the {where}"
        assert "sig=" not in text, f"the signature parameter is not masked whole in the {where}"


# -- crashes, lost answers and forged records (DESIGN.md §3) ----------------------------------------


class SameCluster:
    """The same run store through another connection, as another replica holds one."""

    def __init__(self, cluster: MemoryRunClient) -> None:
        self.cluster = cluster

    def get(self, ref: RunRef) -> dict[str, Any]:
        return self.cluster.get(ref)

    def patch(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self.cluster.patch(ref, patch)

    def patch_status(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self.cluster.patch_status(ref, patch)

    def record_event(self, ref: RunRef, uid: str, reason: str, message: str) -> None:
        self.cluster.record_event(ref, uid, reason, message)


def another_replica(kube: MemoryRunClient) -> FlaskClient:
    """A fresh process: nothing the first replica remembered (records it could not write) helps."""
    use_run_client(SameCluster(kube))
    return function_client("teams")


def expire_claim(kube: MemoryRunClient, ref: RunRef) -> None:
    """Time passes: the dead replica's claim is older than a claim protects."""
    stored = record(kube, ref)
    assert stored["claim"], "the dead replica left its claim"
    stored["claim"]["at"] = (datetime.now(UTC) - CLAIM_TTL - timedelta(seconds=1)).isoformat()
    kube.patch(ref, {"metadata": {"annotations": {RECORD: json.dumps(stored)}}})


def test_a_crash_between_the_post_and_the_record_repeats_the_card_with_the_same_id(
    kube: MemoryRunClient, teams: TeamsStandIn, deliver: Deliver
) -> None:
    """Workflows keeps nothing to look a card up by: the documented repeat, recognisable by its id."""
    _, failed, ref = failing_run(kube)
    advance(kube, ref, failed)

    def killed_after_the_post(verb: str, _: RunRef) -> None:
        if verb == "patch" and teams.calls:
            raise KubernetesUnavailableError("the replica was killed")

    kube.before_request = killed_after_the_post
    assert deliver(function_client("teams"), failed).status_code == 503
    kube.before_request = None
    assert len(teams.cards(CHANNEL)) == 1

    replica = another_replica(kube)
    busy = deliver(replica, failed)
    assert (busy.status_code, body(busy)["reason"]) == (429, "Busy"), "a fresh claim is waited for"
    expire_claim(kube, ref)
    assert outcome(deliver(replica, failed)) == "reported"
    assert outcome(deliver(replica, failed)) == "ignored"

    first, repeat = teams.cards(CHANNEL)
    assert notification_id(first) == notification_id(repeat), "receivers drop the repeat by its id"
    assert record(kube, ref)["annotations"]["notification-id"] == notification_id(first)
    assert condition(kube, ref)["status"] == "True"


def test_a_lost_answer_repeats_the_card_with_the_same_id(
    kube: MemoryRunClient, teams: TeamsStandIn, deliver: Deliver
) -> None:
    _, failed, ref = failing_run(kube)
    advance(kube, ref, failed)
    teams.drop_answer_next()  # the flow runs and posts; the function never hears back

    assert deliver(function_client("teams"), failed).status_code == 503
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("Unknown", "TeamsUnreachable")
    assert outcome(deliver(another_replica(kube), failed)) == "reported"

    first, repeat = teams.cards(CHANNEL)
    assert notification_id(first) == notification_id(repeat)
    assert record(kube, ref)["annotations"]["notification-id"] == notification_id(first)


def test_an_older_record_written_back_by_tekton_repeats_the_card_with_the_same_id(
    kube: MemoryRunClient, teams: TeamsStandIn, deliver: Deliver
) -> None:
    """Tekton's reconciler can write back its older copy of the annotations (DESIGN.md §3): the
    record of the running card replaces that of the failed one, and the failed card repeats."""
    running, failed, ref = failing_run(kube, on="started,finished")
    annotate(kube, ref, running, on="started,finished")
    client = function_client("teams")
    assert outcome(deliver(client, running)) == "reported"
    older = kube.runs[ref]["metadata"]["annotations"][RECORD]
    advance(kube, ref, failed)
    assert outcome(deliver(client, failed)) == "reported"

    kube.patch(ref, {"metadata": {"annotations": {RECORD: older}}})
    assert outcome(deliver(client, failed)) == "reported"

    _, first, repeat = teams.cards(CHANNEL)
    assert notification_id(first) == notification_id(repeat)
    assert outcome(deliver(client, failed)) == "ignored"
    assert len(teams.cards(CHANNEL)) == 3


def forge(
    kube: MemoryRunClient, ref: RunRef, annotations: dict[str, str], *, run_uid: str | None = None
) -> None:
    """What the run's author can do with ``kubectl annotate``: any record, any ids."""
    forged = {
        "name": "teams.integrations.tekton.dev",
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Succeeded",
                "status": "True",
                "reason": "Posted",
                "message": "",
                "lastTransitionTime": "2026-03-14T10:02:50Z",
            }
        ],
        "annotations": annotations,
        "runUID": run_uid or kube.runs[ref]["metadata"]["uid"],
        "runState": {"status": "Unknown", "reason": "Running"},
    }
    kube.patch(ref, {"metadata": {"annotations": {RECORD: json.dumps(forged)}}})


@pytest.mark.parametrize("forgery", ["names another channel and id", "copied from another run"])
def test_a_forged_record_sends_nothing_outside_the_policy_and_lends_no_id(  # noqa: PLR0917 -- fixtures
    kube: MemoryRunClient,
    teams: TeamsStandIn,
    deliver: Deliver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    forgery: str,
) -> None:
    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {"teams": {"channels": ["widget-*"]}}}})
    _, failed, ref = failing_run(kube)
    planted = "0d6f3c52-7a1e-4c1b-9a55-3f0c2b7e9d41"
    forge(
        kube,
        ref,
        {"channel": OTHER, "notification-id": planted, "phase": "running"},
        run_uid=planted if forgery == "copied from another run" else None,
    )
    advance(kube, ref, failed)

    assert outcome(deliver(function_client("teams"), failed)) == "reported"

    assert not teams.calls_to(OTHER), "a call outside the namespace's policy"
    (card,) = teams.cards(CHANNEL)
    assert notification_id(card) != planted
    kept = record(kube, ref)["annotations"]
    assert kept["notification-id"] == notification_id(card)
    assert kept["phase"] == "failed"


def test_a_forged_record_can_only_hold_its_own_runs_card_back(
    kube: MemoryRunClient, teams: TeamsStandIn, deliver: Deliver
) -> None:
    """Saying the phase was posted suppresses the card: nothing the run's author could not do by
    removing the annotation; it never sends anything."""
    _, failed, ref = failing_run(kube)
    advance(kube, ref, failed)
    forge(kube, ref, {"phase": "failed"})

    assert outcome(deliver(function_client("teams"), failed)) == "ignored"
    assert not teams.calls


# -- templates and the failed steps' logs --------------------------------------------------------------

LOG = [
    "=== RUN TestWidget",
    f"    widget_test.go:42: pushing with {LOG_TOKEN}",
    "--- FAIL: TestWidget (0.01s)",
]


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return mount_templates(
        tmp_path,
        monkeypatch,
        {
            "short.teams.j2": "**{{ run.definition }}** {{ run.headline }}, "
            "owner {{ run.annotations.owner }}\n"
            "{% for t in failed_tasks %}- {{ t.name }}: {{ t.reason }}\n{% endfor %}",
            "broken.j2": "{{ run.no_such_fact }}",
        },
    )


def failed_with(kube: MemoryRunClient, **values: str) -> tuple[dict[str, Any], RunRef]:
    """The failed run, finished in the store, with the given annotations and an owner to show."""
    _, failed, ref = failing_run(kube, **values)
    samples.run_object(failed)[1]["metadata"]["annotations"]["owner"] = "*me* [x](https://evil)"
    advance(kube, ref, failed)
    annotate(kube, ref, **values)
    kube.runs[ref]["metadata"]["annotations"]["owner"] = "*me* [x](https://evil)"
    return failed, ref


def test_a_template_writes_the_cards_text_under_its_title(
    kube: MemoryRunClient, teams: TeamsStandIn, templates: Path, deliver: Deliver
) -> None:
    failed, ref = failed_with(kube, template="short")

    assert outcome(deliver(function_client("teams"), failed)) == "reported"

    (card,) = teams.cards(CHANNEL)
    assert title(card) == "❌ build-and-test failed"
    assert card["body"][1] == {
        "type": "TextBlock",
        "wrap": True,
        "text": "**build-and-test** Failed, owner \\*me\\* \\[x\\](https://evil)\n"
        "- unit-tests: StepFailed\n- build-image: Skipped",
    }
    assert list(facts(card)) == ["Notification id"], "the template replaces the facts and the tasks"
    assert notification_id(card) == record(kube, ref)["annotations"]["notification-id"]
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("True", "Posted")


def test_a_template_that_fails_posts_the_default_card_and_says_so(
    kube: MemoryRunClient, teams: TeamsStandIn, templates: Path, deliver: Deliver
) -> None:
    failed, ref = failed_with(kube, template="broken")

    assert outcome(deliver(function_client("teams"), failed)) == "reported"

    (card,) = teams.cards(CHANNEL)
    assert facts(card)["Status"] == "Failed"
    assert "2 tasks did not succeed" in shown(card)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("True", "TemplateFailed")
    assert (
        "template 'broken' failed (UndefinedError: 'dict object' has no attribute 'no_such_fact')"
        in (cond["message"])
    )


def test_the_failed_steps_last_lines_are_a_monospace_block_in_the_card(
    kube: MemoryRunClient, teams: TeamsStandIn, deliver: Deliver
) -> None:
    failed, _ = failed_with(kube, **{"log-lines": "2"})
    log_failed_step(kube, *LOG)

    assert outcome(deliver(function_client("teams"), failed)) == "reported"

    (card,) = teams.cards(CHANNEL)
    (block,) = [
        element
        for element in elements(card)
        if element["type"] == "RichTextBlock"
        and element["inlines"][0].get("fontType") == "Monospace"
        and "widget_test.go" in element["inlines"][0]["text"]
    ]
    assert block["inlines"][0]["text"] == (
        "Task unit-tests, step run-tests (TaskRun build-and-test-run-q4m9z-unit-tests), last 2 lines:\n"
        "        widget_test.go:42: pushing with [REDACTED]\n"
        "    --- FAIL: TestWidget (0.01s)"
    )
    assert "The failed steps' last lines" in shown(card)
    assert LOG_TOKEN not in json.dumps(card)


def test_without_log_lines_the_card_reads_no_log(
    kube: MemoryRunClient, teams: TeamsStandIn, deliver: Deliver
) -> None:
    failed, _ = failed_with(kube)
    log_failed_step(kube, *LOG)

    assert outcome(deliver(function_client("teams"), failed)) == "reported"

    assert not pod_log_reads(kube)
    assert "The failed steps' last lines" not in shown(teams.cards(CHANNEL)[0])


def test_huge_logs_and_a_huge_template_are_cut_to_fit_teams_message_limit(
    kube: MemoryRunClient, teams: TeamsStandIn, templates: Path, deliver: Deliver
) -> None:
    (templates / "huge.j2").write_text("{% for i in range(1900) %}ünïcødé\x02 {% endfor %}", encoding="utf-8")
    failed, ref = failed_with(kube, template="huge", **{"log-lines": "200"})
    log_failed_step(kube, *(f"line {i}: " + "\x01ü" * 200 for i in range(300)))

    assert outcome(deliver(function_client("teams"), failed)) == "reported"

    (call,) = teams.calls_to(CHANNEL)
    assert call.size <= BODY_LIMIT
    assert teams.runs[-1].status == "Succeeded", teams.runs[-1].error
    (card,) = teams.cards(CHANNEL)
    assert card["body"][1]["text"].endswith("…")
    assert notification_id(card) == record(kube, ref)["annotations"]["notification-id"]
