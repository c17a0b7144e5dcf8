"""The Jira function, driven through functions-framework against the loopback Jira stand-in:
a run that names an issue keeps one comment on it, edited as the run progresses (Cloud and
Data Center), and may move the issue when it succeeds. The project mode (an issue per failing
pipeline) is tested in ``test_jira_issues.py``."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator, Mapping
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
from functions.jira.client import JiraSettings
from tests.conftest import Deliver, add_run, advance, function_client
from tests.support.policies import use_policy
from tests.support.receiver import Receiver, post_together, to_app
from tests.support.standins.jira import BOT, PERSON, JiraStandIn

RECORD = "jira.integrations.tekton.dev/status"
PREFIX = "jira.integrations.tekton.dev/"
USER = "tekton-bot@acme.example"
TOKEN = "jira-unit-test-api-token-5e1f"
PAT = "jira-unit-test-personal-token-9c3d"
EDITIONS = ("cloud", "datacenter")


@pytest.fixture(params=EDITIONS)
def jira(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[JiraStandIn]:
    """A loopback Jira: Cloud (Basic: email and API token, REST v3), or Data Center under a
    context path (a personal access token, REST v2; the deployment taken from the host)."""
    yield from serve_jira(request.param, monkeypatch)


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[JiraStandIn]:
    yield from serve_jira("cloud", monkeypatch)


def serve_jira(edition: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[JiraStandIn]:
    if edition == "cloud":
        with JiraStandIn("cloud", username=USER, api_token=TOKEN) as standin:
            monkeypatch.setenv("JIRA_URL", standin.url)
            monkeypatch.setenv("JIRA_DEPLOYMENT", "cloud")  # a loopback host is not *.atlassian.net
            monkeypatch.setenv("JIRA_USERNAME", USER)
            monkeypatch.setenv("JIRA_API_TOKEN", TOKEN)
            standin.add_issue("WID", "Release the widget")
            yield standin
        return
    with JiraStandIn("datacenter", personal_access_token=PAT, context="/jira") as standin:
        monkeypatch.setenv("JIRA_URL", standin.url + "/")
        monkeypatch.setenv("JIRA_PERSONAL_ACCESS_TOKEN", PAT)
        standin.add_issue("WID", "Release the widget")
        yield standin


# -- helpers ---------------------------------------------------------------------------------------


def annotate(*events: dict[str, Any], **settings: str) -> None:
    """Give the events' run only this integration's annotations (``issue``, ``on``, ...)."""
    for event in events:
        metadata = samples.run_object(event)[1]["metadata"]
        metadata["annotations"] = {PREFIX + key.replace("_", "-"): value for key, value in settings.items()}


def on_run(sample: dict[str, Any], like: dict[str, Any]) -> dict[str, Any]:
    """``sample``'s state, as an event about ``like``'s run."""
    samples.run_object(sample)[1]["metadata"] = json.loads(
        json.dumps(samples.run_object(like)[1]["metadata"])
    )
    return sample


def events(*names: str, **settings: str) -> list[dict[str, Any]]:
    """Sample events of one run (the first's), annotated with ``settings``."""
    loaded = [samples.load(f"pipelinerun-{name}") for name in names]
    for event in loaded[1:]:
        on_run(event, loaded[0])
    annotate(*loaded, **settings)
    return loaded


def failing(kube: MemoryRunClient, **settings: str) -> tuple[dict[str, Any], dict[str, Any], RunRef]:
    """The failed sample's run, started then failed; its failed child TaskRun is in the store."""
    failed = samples.load("pipelinerun-failed")
    started = on_run(samples.load("pipelinerun-started"), failed)
    annotate(started, failed, **settings)
    ref = add_run(kube, started)
    add_run(kube, samples.load("taskrun-failed"))
    return started, failed, ref


def record(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(kube.runs[ref]["metadata"]["annotations"][RECORD])
    return stored


def condition(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    first: dict[str, Any] = record(kube, ref)["conditions"][0]
    return first


def outcome(answer: TestResponse) -> str:
    body = answer.get_json()
    assert isinstance(body, dict)
    return str(body["outcome"])


def plain(body: Any) -> str:
    """What a person reads: an ADF document's text, or wiki markup without its escapes."""
    if isinstance(body, str):
        return _WIKI.sub(lambda m: m.group("escaped") or m.group("label") or "", body)
    texts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if node.get("type") == "text":
                texts.append(str(node["text"]))
            elif node.get("type") == "status":
                texts.append(str(node["attrs"]["text"]))
            for child in node.get("content") or []:
                walk(child)
            if node.get("type") in ("paragraph", "listItem"):
                texts.append("\n")

    walk(body)
    return "".join(texts)


_WIKI = re.compile(r"\\(?P<escaped>.)|\[(?P<label>[^|\]]*)\|[^\]]*\]|\{color(?::[^}]*)?\}|\{\{|\}\}|\*")
"""Wiki markup a person does not read: escapes (kept as the character), links (their label),
colours, monospace and bold marks."""


def bot_comments(jira: JiraStandIn, key: str = "WID-1") -> list[dict[str, Any]]:
    return [comment for comment in jira.comments(key) if comment["author"] == BOT]


def api_calls(jira: JiraStandIn) -> list[tuple[str, str]]:
    """(method, path below the edition's API) of every call, e.g. ``("GET", "/issue/WID-1")``."""
    prefix = jira.api
    return [(call.method, call.path.removeprefix(prefix)) for call in jira.calls_to()]


# -- one comment per run, edited in place -----------------------------------------------------------


def test_started_then_succeeded_keeps_one_comment_edited_in_place(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org")
    started, succeeded = events("started", "successful", issue="wid-1")
    ref = add_run(kube, started)
    client = function_client("jira")

    assert outcome(deliver(client, started)) == "reported"
    ((comment_id, first),) = [(c["id"], c) for c in bot_comments(jira)]
    assert api_calls(jira) == [
        ("GET", "/issue/WID-1"),
        ("GET", "/myself"),
        ("GET", "/issue/WID-1/comment"),
        ("POST", "/issue/WID-1/comment"),
    ], "the issue is read (its project checked) and the comments searched before posting"
    assert jira.calls_to("GET", f"{jira.api}/issue/WID-1")[0].query == {"fields": "project,status"}
    assert jira.calls_to("GET", f"{jira.api}/issue/WID-1/comment")[0].query == {
        "startAt": "0",
        "maxResults": "100",
        "orderBy": "-created",
    }
    assert "RUNNING" in plain(first["body"])
    assert "ci/build-and-test-run-x7k2p (pipeline build-and-test)" in plain(first["body"])
    assert condition(kube, ref)["status"] == "True"

    jira.calls.clear()
    advance(kube, ref, succeeded)
    assert outcome(deliver(client, succeeded)) == "reported"

    (comment,) = bot_comments(jira)
    assert comment["id"] == comment_id
    assert api_calls(jira) == [
        ("GET", "/issue/WID-1"),
        ("GET", f"/issue/WID-1/comment/{comment_id}"),
        ("PUT", f"/issue/WID-1/comment/{comment_id}"),
    ], "the recorded comment is confirmed with Jira, then edited: no second lookup, no second comment"
    text = plain(comment["body"])
    assert "SUCCEEDED" in text
    assert "took 3m 45s" in text
    assert "RUNNING" not in text
    stored = record(kube, ref)
    assert stored["annotations"] == {"issue": "WID-1", "comment-id": comment_id}
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("True", "Reported")
    assert f"comment {comment_id} on WID-1 shows SUCCEEDED" in condition(kube, ref)["message"]


def test_cloud_bodies_are_atlassian_documents_sent_with_basic_auth(
    kube: MemoryRunClient, cloud: JiraStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org")
    (started,) = events("started", issue="WID-1")
    add_run(kube, started)
    deliver(function_client("jira"), started)

    (post,) = cloud.calls_to("POST")
    assert post.path == "/rest/api/3/issue/WID-1/comment"
    assert {call.auth for call in cloud.calls} == {"basic"}
    body = post.body["body"]
    assert (body["type"], body["version"]) == ("doc", 1)
    head = body["content"][0]["content"]
    assert head[0] == {"type": "status", "attrs": {"text": "RUNNING", "color": "blue"}}
    link = next(node for node in head if node.get("marks", [{}])[0].get("type") == "link")
    assert link["marks"][0]["attrs"]["href"] == (
        "https://dashboard.example.org/#/namespaces/ci/pipelineruns/build-and-test-run-x7k2p"
    )
    marker = body["content"][-1]["content"][-1]
    assert marker["marks"] == [{"type": "code"}]
    assert marker["text"].startswith("tekton-run:")


def test_data_center_bodies_are_wiki_markup_sent_with_a_bearer_token(
    kube: MemoryRunClient, monkeypatch: pytest.MonkeyPatch, deliver: Deliver
) -> None:
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org")
    (started,) = events("started", issue="WID-1")
    add_run(kube, started)
    with JiraStandIn("datacenter", personal_access_token=PAT) as dc:
        dc.add_issue("WID")
        monkeypatch.setenv("JIRA_URL", dc.url)  # a host not on atlassian.net: Data Center
        monkeypatch.setenv("JIRA_PERSONAL_ACCESS_TOKEN", PAT)
        deliver(function_client("jira"), started)

    (post,) = dc.calls_to("POST")
    assert post.path == "/rest/api/2/issue/WID-1/comment"
    assert {call.auth for call in dc.calls} == {"bearer"}
    body = post.body["body"]
    assert isinstance(body, str)
    assert body.startswith("{color:#0052cc}*RUNNING*{color} PipelineRun {{ci/build-and-test-run-x7k2p}}")
    assert "[View the run|https://dashboard.example.org/#/namespaces/ci/pipelineruns/" in body
    assert "Reported by tekton-integrations · {{tekton-run:" in body


def test_a_failed_run_shows_its_failed_and_skipped_tasks(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    started, failed, ref = failing(kube, issue="WID-1")
    client = function_client("jira")
    deliver(client, started)
    advance(kube, ref, failed)
    assert outcome(deliver(client, failed)) == "reported"

    (comment,) = bot_comments(jira)
    text = plain(comment["body"])
    assert "FAILED" in text
    assert "Failed: Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 1" in text
    assert 'unit-tests (StepFailed): "step-run-tests" exited with code 1: Error' in text
    assert "build-image (Skipped): PipelineRun was stopping" in text
    assert condition(kube, ref)["status"] == "True"


def test_what_a_run_writes_cannot_become_wiki_markup(
    kube: MemoryRunClient, monkeypatch: pytest.MonkeyPatch, deliver: Deliver
) -> None:
    _, failed, ref = failing(kube, issue="WID-1")
    message = "see [here|https://evil.example] {code}*boom*{code} -struck- !image.png!"
    samples.run_object(failed)[1]["status"]["conditions"][0]["message"] = message
    with JiraStandIn("datacenter", personal_access_token=PAT) as dc:
        dc.add_issue("WID")
        monkeypatch.setenv("JIRA_URL", dc.url)
        monkeypatch.setenv("JIRA_PERSONAL_ACCESS_TOKEN", PAT)
        advance(kube, ref, failed)
        deliver(function_client("jira"), failed)
        (comment,) = bot_comments(dc)
    body = comment["body"]
    assert r"see \[here\|https://evil.example\] \{code\}\*boom\*\{code\} \-struck\- \!image.png\!" in body
    assert "[here|" not in body


@pytest.mark.parametrize(
    ("name", "status", "transition"), [("Done", "Done", "31"), ("resolved", "Resolved", "41")]
)
def test_success_moves_the_issue_with_the_named_transition(  # noqa: PLR0917 -- fixtures and cases
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver, name: str, status: str, transition: str
) -> None:
    """The transition is looked up by name, or by the name of the status it leads to."""
    started, succeeded = events("started", "successful", issue="WID-1", transition=name)
    ref = add_run(kube, started)
    client = function_client("jira")
    deliver(client, started)
    assert jira.issue("WID-1")["status"] == "To Do", "only a success moves the issue"
    advance(kube, ref, succeeded)
    deliver(client, succeeded)

    assert jira.issue("WID-1")["status"] == status
    (move,) = jira.calls_to("POST", "*/transitions")
    assert move.body == {"transition": {"id": transition}}
    assert jira.calls_to("GET", "*/transitions")
    assert condition(kube, ref)["status"] == "True"
    assert f"moved WID-1 to {status}" in condition(kube, ref)["message"]
    assert len(bot_comments(jira)) == 1


def test_a_failed_run_does_not_move_the_issue(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    _, failed, ref = failing(kube, issue="WID-1", transition="Done")
    advance(kube, ref, failed)
    deliver(function_client("jira"), failed)
    assert jira.issue("WID-1")["status"] == "To Do"
    assert not jira.calls_to(path="*/transitions")


def test_a_transition_the_workflow_does_not_offer_is_recorded_with_the_offered_ones(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    (succeeded,) = events("successful", issue="WID-1", transition="Ship it")
    ref = add_run(kube, succeeded)
    client = function_client("jira")
    answer = deliver(client, succeeded)

    assert (answer.status_code, outcome(answer)) == (200, "failed")
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "JiraTransitionUnavailable")
    assert "no transition named 'Ship it'" in cond["message"]
    assert "'Start Progress', 'Done', 'Resolve Issue'" in cond["message"]
    (comment,) = bot_comments(jira)
    assert "SUCCEEDED" in plain(comment["body"]), "the comment was written before the move was tried"
    assert record(kube, ref)["annotations"]["comment-id"] == comment["id"]
    calls = len(jira.calls)
    assert outcome(deliver(client, succeeded)) == "ignored"
    assert len(jira.calls) == calls


def test_duplicates_and_reordering_produce_nothing_new(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    loaded = events("queued", "started", "running", "successful", issue="WID-1", transition="Done")
    ref = add_run(kube, loaded[0])
    client = function_client("jira")
    for event in loaded:  # the live run moves on; each event is delivered once, in order
        advance(kube, ref, event)
        assert deliver(client, event).status_code == 200
    final = record(kube, ref)
    calls = len(jira.calls)

    shuffled = loaded * 3
    random.Random(11).shuffle(shuffled)
    for event in shuffled:
        assert outcome(deliver(client, event)) == "ignored"

    assert len(jira.calls) == calls, "duplicates made Jira calls"
    assert record(kube, ref) == final
    (comment,) = bot_comments(jira)
    assert "SUCCEEDED" in plain(comment["body"])
    assert len(jira.calls_to("POST", "*/transitions")) == 1


def test_a_late_started_event_never_regresses_the_comment(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    started, succeeded = events("started", "successful", issue="WID-1")
    ref = add_run(kube, started)
    advance(kube, ref, succeeded)  # the run is done before any delivery
    client = function_client("jira")
    deliver(client, succeeded)
    deliver(client, started)
    (comment,) = bot_comments(jira)
    assert "SUCCEEDED" in plain(comment["body"])
    assert record(kube, ref)["runState"] == {"status": "True", "reason": "Succeeded"}


# -- faults ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "http", "reason", "wait"),
    [
        (429, {"Retry-After": "17", "RateLimit-Reason": "jira-burst-based"}, 429, "JiraRateLimited", "17"),
        (429, {"X-RateLimit-Reset": "in-a-minute"}, 429, "JiraRateLimited", "60"),
        (500, {}, 503, "JiraUnavailable", None),
        (503, {"Retry-After": "30"}, 429, "JiraUnavailable", "30"),
    ],
)
def test_rate_limits_and_server_errors_are_retried_later(  # noqa: PLR0917 -- fixtures and cases
    kube: MemoryRunClient,
    jira: JiraStandIn,
    deliver: Deliver,
    status: int,
    headers: dict[str, str],
    http: int,
    reason: str,
    wait: str | None,
) -> None:
    (started,) = events("started", issue="WID-1")
    ref = add_run(kube, started)
    client = function_client("jira")
    jira.fail_next(status, headers=headers, method="POST", path="*/issue/WID-1/comment")
    answer = deliver(client, started)

    assert (answer.status_code, answer.headers.get("Retry-After")) == (http, wait)
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("Unknown", reason)
    assert not bot_comments(jira)
    assert outcome(deliver(client, started)) == "reported", "the sender's redelivery"
    assert len(bot_comments(jira)) == 1


def test_jiras_iso_reset_time_gives_the_wait_when_there_is_no_retry_after(
    kube: MemoryRunClient, cloud: JiraStandIn, deliver: Deliver
) -> None:
    (started,) = events("started", issue="WID-1")
    add_run(kube, started)
    reset = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%MZ")
    cloud.fail_next(429, headers={"X-RateLimit-Reset": reset})
    answer = deliver(function_client("jira"), started)
    assert answer.status_code == 429
    assert 200 <= int(answer.headers["Retry-After"]) <= 300


def test_an_edit_that_fails_is_retried_on_the_same_comment(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    started, succeeded = events("started", "successful", issue="WID-1")
    ref = add_run(kube, started)
    client = function_client("jira")
    deliver(client, started)
    advance(kube, ref, succeeded)
    jira.fail_next(502, method="PUT")
    assert deliver(client, succeeded).status_code == 503
    assert deliver(client, succeeded).status_code == 200
    (comment,) = bot_comments(jira)
    assert "SUCCEEDED" in plain(comment["body"])
    assert record(kube, ref)["attempts"] == 2


@pytest.mark.parametrize(
    ("status", "reason", "hint"),
    [
        (
            401,
            "JiraUnauthorized",
            "check JIRA_USERNAME and JIRA_API_TOKEN(_FILE), or JIRA_PERSONAL_ACCESS_TOKEN",
        ),
        (403, "JiraForbidden", "it needs Browse projects, Add comments and Edit own comments"),
        (404, "JiraNotFound", "the issue or project does not exist, or the Jira account cannot see it"),
    ],
)
def test_refusals_are_recorded_false_with_a_hint_and_jiras_words(  # noqa: PLR0917 -- fixtures and cases
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver, status: int, reason: str, hint: str
) -> None:
    (started,) = events("started", issue="WID-1")
    ref = add_run(kube, started)
    client = function_client("jira")
    words = {"errorMessages": ["No, not this time."], "errors": {"comment": "is refused"}}
    jira.fail_next(status, body=words, path="*/issue/WID-1")
    answer = deliver(client, started)

    assert (answer.status_code, outcome(answer)) == (200, "failed")
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", reason)
    assert f"read issue WID-1: {status} " in cond["message"]
    assert hint in cond["message"]
    assert "(No, not this time.; comment: is refused)" in cond["message"]
    assert [reason for _, reason, _ in kube.events] == ["IntegrationFailed"]
    calls = len(jira.calls)
    assert outcome(deliver(client, started)) == "ignored"
    assert len(jira.calls) == calls


def test_an_unknown_issue_is_jiras_404(kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver) -> None:
    (started,) = events("started", issue="WID-77")
    ref = add_run(kube, started)
    deliver(function_client("jira"), started)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "JiraNotFound")
    assert "Issue" in cond["message"]
    assert not jira.writes()


def test_a_redirect_is_not_followed_with_the_credentials(
    kube: MemoryRunClient, cloud: JiraStandIn, deliver: Deliver
) -> None:
    (started,) = events("started", issue="WID-1")
    ref = add_run(kube, started)
    with Receiver() as elsewhere:
        cloud.fail_next(301, headers={"Location": elsewhere.url + "rest/api/3/issue/WID-1"})
        deliver(function_client("jira"), started)
        assert not elsewhere.requests
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "JiraRedirected")
    assert "configure the final address" in cond["message"]


# -- where it may write ----------------------------------------------------------------------------


def test_an_issue_moved_to_another_project_is_not_written_to(
    kube: MemoryRunClient,
    jira: JiraStandIn,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The policy allows WID; WID-1 now lives in OPS, which it does not allow. Jira still answers
    to the old key, so the project Jira names is checked before anything is written."""
    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {"jira": {"projects": ["WID"]}}}})
    moved = jira.move_issue("WID-1", "OPS")
    (started,) = events("started", issue="WID-1")
    ref = add_run(kube, started)
    deliver(function_client("jira"), started)

    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "TargetNotAllowed")
    assert f"project OPS (as {moved})" in cond["message"]
    assert not jira.writes()
    assert [call.method for call in jira.calls] == ["GET"]


@pytest.mark.parametrize(("allowed", "reported"), [(["WID"], True), (["OPS", "W*D2"], False)])
def test_the_namespace_policy_decides_which_projects_a_run_may_write_to(  # noqa: PLR0917
    kube: MemoryRunClient,
    jira: JiraStandIn,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    allowed: list[str],
    reported: bool,
) -> None:
    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {"jira": {"projects": allowed}}}})
    (started,) = events("started", issue="wid-1")
    ref = add_run(kube, started)
    deliver(function_client("jira"), started)
    cond = condition(kube, ref)
    if reported:
        assert cond["status"] == "True"
        return
    assert (cond["status"], cond["reason"]) == ("False", "TargetNotAllowed")
    assert "jira project 'WID'" in cond["message"]
    assert not jira.calls, "nothing is sent for a project the policy does not allow"


def forge_record(kube: MemoryRunClient, ref: RunRef, annotations: dict[str, str]) -> None:
    """What the run's author can do with ``kubectl annotate``: a record naming any ids."""
    forged = {
        "name": "jira.integrations.tekton.dev",
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Succeeded",
                "status": "True",
                "reason": "Reported",
                "message": "",
                "lastTransitionTime": "2026-03-14T09:00:00Z",
            }
        ],
        "annotations": annotations,
        "runUID": kube.runs[ref]["metadata"]["uid"],
        "runState": {"status": "Unknown", "reason": "Started"},
    }
    kube.patch(ref, {"metadata": {"annotations": {RECORD: json.dumps(forged)}}})


def another_run(sample: str, name: str, **settings: str) -> dict[str, Any]:
    event = samples.load(f"pipelinerun-{sample}")
    metadata = samples.run_object(event)[1]["metadata"]
    metadata["name"], metadata["uid"] = name, f"0000-{name}"
    annotate(event, **settings)
    return event


@pytest.mark.parametrize(
    "target", ["another-runs-comment", "a-copy-by-someone-else", "another-issue", "a-path"]
)
def test_a_forged_record_never_edits_what_is_not_this_runs(  # noqa: PLR0917 -- fixtures and cases
    kube: MemoryRunClient,
    cloud: JiraStandIn,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    target: str,
) -> None:
    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {"jira": {"projects": ["WID"]}}}})
    client = function_client("jira")
    victim = another_run("running", "victim", issue="WID-1")
    add_run(kube, victim)
    deliver(client, victim)
    (victims,) = bot_comments(cloud)
    ops = cloud.add_issue("OPS", "Operations")
    outside = cloud.add_comment(ops, {"type": "doc", "version": 1, "content": []}, author=BOT)
    started, succeeded = events("started", "successful", issue="WID-1")
    ref = add_run(kube, started)
    deliver(client, started)
    own = next(c for c in bot_comments(cloud) if c["id"] != victims["id"])
    copy = cloud.add_comment("WID-1", own["body"], author=PERSON)  # the marker, copied by a person
    forged = {
        "another-runs-comment": victims["id"],
        "a-copy-by-someone-else": copy,
        "another-issue": outside,
        "a-path": f"../../{ops}/comment/{outside}",
    }[target]
    forge_record(kube, ref, {"issue": "OPS-1", "comment-id": forged})
    before = {key: cloud.comments(key) for key in ("WID-1", ops)}
    cloud.calls.clear()

    advance(kube, ref, succeeded)
    assert outcome(deliver(client, succeeded)) == "reported"

    (edit,) = cloud.calls_to("PUT")
    assert edit.path == f"/rest/api/3/issue/WID-1/comment/{own['id']}", "only the run's own comment is edited"
    assert not [call for call in cloud.calls if "OPS" in call.path], "nothing outside the policy is touched"
    after = {c["id"]: c for c in cloud.comments("WID-1")}
    for comment in before["WID-1"]:
        if comment["id"] != own["id"]:
            assert after[comment["id"]] == comment, "another comment was changed"
    assert cloud.comments(ops) == before[ops]
    assert "SUCCEEDED" in plain(after[own["id"]]["body"])
    assert record(kube, ref)["annotations"] == {"issue": "WID-1", "comment-id": own["id"]}


# -- exactly one comment across crashes (DESIGN.md §3) -------------------------------------------


class ReplicaConnection:
    """Another replica's own connection to the same API server: the runs, not the first replica's memory."""

    def __init__(self, server: MemoryRunClient) -> None:
        self.server = server

    def get(self, ref: RunRef) -> dict[str, Any]:
        return self.server.get(ref)

    def patch(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self.server.patch(ref, patch)

    def patch_status(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self.server.patch_status(ref, patch)

    def record_event(self, ref: RunRef, uid: str, reason: str, message: str) -> None:
        self.server.record_event(ref, uid, reason, message)


def another_replica(kube: MemoryRunClient) -> FlaskClient:
    """A fresh process: a new function module and run client, nothing the first one remembered."""
    use_run_client(ReplicaConnection(kube))
    return function_client("jira")


def die_after(kube: MemoryRunClient, jira: JiraStandIn, method: str, path: str) -> None:
    """The replica dies once Jira acted on ``method path``: no record is written after that."""

    def fail(verb: str, _: RunRef) -> None:
        if verb == "patch" and jira.calls_to(method, path):
            raise KubernetesUnavailableError("the replica was killed")

    kube.before_request = fail


def expire_claim(kube: MemoryRunClient, ref: RunRef) -> None:
    """Time passes: the claim the dead replica left is older than a claim protects."""
    stored = record(kube, ref)
    assert stored["claim"], "the dead replica left its claim"
    stored["claim"]["at"] = (datetime.now(UTC) - CLAIM_TTL - timedelta(seconds=1)).isoformat()
    kube.runs[ref]["metadata"]["annotations"][RECORD] = json.dumps(stored)


def test_a_replica_killed_between_the_comment_and_the_record_leaves_one_comment(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    started, succeeded = events("started", "successful", issue="WID-1")
    ref = add_run(kube, started)
    die_after(kube, jira, "POST", "*/issue/WID-1/comment")
    assert deliver(function_client("jira"), started).status_code == 503
    kube.before_request = None
    (posted,) = bot_comments(jira)
    assert "comment-id" not in record(kube, ref)["annotations"]

    replica = another_replica(kube)
    busy = replica.post("/", headers=dict(started["headers"]), data=json.dumps(started["data"]))
    assert (busy.status_code, busy.get_json()["reason"]) == (429, "Busy"), "a fresh claim is waited for"
    expire_claim(kube, ref)
    assert outcome(deliver(replica, started)) == "reported"
    advance(kube, ref, succeeded)
    assert outcome(deliver(replica, succeeded)) == "reported"

    (comment,) = bot_comments(jira)
    assert comment["id"] == posted["id"], "the second replica found the comment by its marker"
    assert "SUCCEEDED" in plain(comment["body"])
    assert len(jira.calls_to("POST", "*/comment")) == 1
    assert record(kube, ref)["annotations"]["comment-id"] == posted["id"]


def test_a_replica_killed_after_the_transition_does_not_move_the_issue_again(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    """Resolve Issue leads to Resolved: once taken, Jira no longer offers it, and the comment
    already showing the success says the earlier delivery got that far."""
    started, succeeded = events("started", "successful", issue="WID-1", transition="Resolve Issue")
    ref = add_run(kube, started)
    client = function_client("jira")
    deliver(client, started)
    advance(kube, ref, succeeded)
    die_after(kube, jira, "POST", "*/transitions")
    assert deliver(client, succeeded).status_code == 503
    kube.before_request = None
    assert jira.issue("WID-1")["status"] == "Resolved"

    answer = deliver(another_replica(kube), succeeded)

    assert (answer.status_code, outcome(answer)) == (200, "reported")
    assert len(jira.calls_to("POST", "*/transitions")) == 1
    assert "WID-1 is already Resolved" in condition(kube, ref)["message"]
    assert len(bot_comments(jira)) == 1


# -- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"issue": "WID-1", "project": "WID"}, f"{PREFIX}project: name either an issue"),
        ({"on": "failed"}, f"{PREFIX}project: name an issue to comment on"),
        ({"issue": "WID 1"}, f"{PREFIX}issue: 'WID 1' does not have the expected form"),
        ({"issue": "WID-1", "resolve": "Done"}, f"{PREFIX}resolve: only with a project"),
        ({"project": "WID", "transition": "Done"}, f"{PREFIX}transition: only with an issue"),
        ({"project": "WID", "on": "started,failed"}, f"{PREFIX}on: with a project, name"),
        ({"project": "WID", "labels": "ci, needs triage"}, "'needs triage' is not a Jira label"),
        ({"issue": "WID-1", "transtion": "Done"}, f"{PREFIX}transtion: unknown key"),
    ],
)
def test_invalid_annotations_are_recorded_naming_the_key(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver, settings: dict[str, str], problem: str
) -> None:
    (started,) = events("failed")
    annotate(started, **settings)
    ref = add_run(kube, started)
    deliver(function_client("jira"), started)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "InvalidConfiguration")
    assert problem in cond["message"]
    assert not jira.calls


@pytest.mark.parametrize(
    ("environment", "problem"),
    [
        (
            {"JIRA_URL": "https://acme.atlassian.net", "JIRA_PERSONAL_ACCESS_TOKEN": PAT},
            "Jira Cloud needs JIRA_USERNAME",
        ),
        ({"JIRA_USERNAME": USER, "JIRA_API_TOKEN": TOKEN}, "the Jira function needs JIRA_URL"),
        (
            {
                "JIRA_URL": "https://jira.example.com",
                "JIRA_USERNAME": USER,
                "JIRA_API_TOKEN_FILE": "/nowhere/token",
            },
            "JIRA_API_TOKEN_FILE names /nowhere/token, which does not exist",
        ),
        ({"JIRA_URL": "ftp://jira.example.com"}, "JIRA_URL: must be the site's http(s) base URL"),
        ({"JIRA_URL": "https://u:p@jira.example.com"}, "JIRA_URL: must not carry credentials"),
        ({"JIRA_URL": "https://jira.example.com", "JIRA_DEPLOYMENT": "onprem"}, "JIRA_DEPLOYMENT:"),
    ],
)
def test_missing_or_unusable_settings_are_recorded_not_configured(
    kube: MemoryRunClient,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    problem: str,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    (started,) = events("started", issue="WID-1")
    ref = add_run(kube, started)
    answer = deliver(function_client("jira"), started)
    assert (answer.status_code, outcome(answer)) == (200, "failed")
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "JiraNotConfigured")
    assert problem in cond["message"]


@pytest.mark.parametrize(
    ("url", "deployment", "edition", "api"),
    [
        ("https://acme.atlassian.net/", None, "cloud", "https://acme.atlassian.net/rest/api/3"),
        (
            "HTTPS://Jira.Example.com:443/jira/rest/api/2",
            None,
            "datacenter",
            "https://jira.example.com/jira/rest/api/2",
        ),
        ("https://jira.acme.example", "cloud", "cloud", "https://jira.acme.example/rest/api/3"),
        ("https://acme.atlassian.net", "Data-Center", "datacenter", "https://acme.atlassian.net/rest/api/2"),
    ],
)
def test_the_deployment_is_taken_from_the_host_unless_it_is_set(
    monkeypatch: pytest.MonkeyPatch, url: str, deployment: str | None, edition: str, api: str
) -> None:
    monkeypatch.setenv("JIRA_URL", url)
    if deployment:
        monkeypatch.setenv("JIRA_DEPLOYMENT", deployment)
    settings = JiraSettings.load()
    assert (settings.edition, settings.api) == (edition, api)


def test_the_api_token_is_read_from_its_file_and_masked_everywhere(
    kube: MemoryRunClient,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = tmp_path / "api-token"
    secret.write_text(TOKEN + "\n", encoding="utf-8")
    with JiraStandIn("cloud", username=USER, api_token=TOKEN) as standin:
        standin.add_issue("WID")
        monkeypatch.setenv("JIRA_URL", standin.url)
        monkeypatch.setenv("JIRA_DEPLOYMENT", "cloud")
        monkeypatch.setenv("JIRA_USERNAME", USER)
        monkeypatch.setenv("JIRA_API_TOKEN_FILE", str(secret))
        (started,) = events("started", issue="WID-1")
        ref = add_run(kube, started)
        standin.echo_credentials_next(500)
        answer = deliver(function_client("jira"), started)
        assert answer.status_code == 503
        assert "Authorization: Basic [REDACTED]" in condition(kube, ref)["message"]
        assert outcome(deliver(function_client("jira"), started)) == "reported"
        assert {call.valid for call in standin.calls[1:]} == {True}
    assert TOKEN not in json.dumps(list(kube.runs.values())) + capsys.readouterr().err


# -- limits ----------------------------------------------------------------------------------------


def test_a_run_with_hundreds_of_failed_tasks_stays_within_jiras_size_limit(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    (failed,) = events("failed", issue="WID-1")
    status = samples.run_object(failed)[1]["status"]
    status["skippedTasks"] = [{"name": f"task-{n:03d}", "reason": "x" * 3000} for n in range(300)]
    add_run(kube, failed)
    answer = deliver(function_client("jira"), failed)

    assert outcome(answer) == "reported"
    (comment,) = bot_comments(jira)
    size = len(comment["body"]) if isinstance(comment["body"], str) else len(json.dumps(comment["body"]))
    assert size <= 32_767
    text = plain(comment["body"])
    assert "task-000 (Skipped): " + "x" * 100 in text
    assert "… and 280 more." in text
    assert "tekton-run:" in text, "the marker survives any cut"


def test_a_failed_move_keeps_the_new_comment_in_the_record(
    kube: MemoryRunClient, jira: JiraStandIn, deliver: Deliver
) -> None:
    """The comment is posted, then Jira fails the transition: the retry edits that comment."""
    (succeeded,) = events("successful", issue="WID-1", transition="Done", on="succeeded")
    ref = add_run(kube, succeeded)
    client = function_client("jira")
    jira.fail_next(503, method="GET", path="*/transitions")
    assert deliver(client, succeeded).status_code == 503
    (comment,) = bot_comments(jira)
    assert record(kube, ref)["annotations"] == {"issue": "WID-1", "comment-id": comment["id"]}

    assert outcome(deliver(client, succeeded)) == "reported"
    assert bot_comments(jira) == [comment], "found again, already showing the success: not edited"
    assert jira.issue("WID-1")["status"] == "Done"


def test_concurrent_events_of_many_runs_all_report(kube: MemoryRunClient, cloud: JiraStandIn) -> None:
    """Deliveries served at once each keep their own connections to Jira (a client per thread)."""
    delivered = []
    for number in range(16):
        event = another_run("running", f"build-{number}", issue="WID-1")
        add_run(kube, event)
        delivered.append(event)
    app = function_client("jira").application
    answers = [answer for _, answer in post_together(to_app(app), delivered)]
    assert [(a.status_code, outcome(a)) for a in answers] == [(200, "reported")] * len(delivered)
    assert len(bot_comments(cloud)) == len(delivered)
