"""The webhook function, driven through functions-framework, POSTing to loopback receivers."""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from common import samples, targets
from common.logs import JsonFormatter
from common.policy import PolicyError
from common.redaction import MASK
from common.runclient import MemoryRunClient, RunRef
from tests.conftest import Deliver, add_run, advance, body, function_client
from tests.support.policies import LOOPBACK_RECEIVERS, use_policy
from tests.support.receiver import (
    Received,
    Receiver,
    deliver_while_the_run_moves_on,
    fake_resolver,
    free_port,
    spy_connections,
    to_app,
)

REPO = Path(__file__).resolve().parents[2]
RECORD = "webhook.integrations.tekton.dev/status"
DELIVERY = "x-tekton-integrations-delivery"
SECRET = b"ci-namespace-secret-9f8e7d"
DEFAULT_SECRET = b"default-secret-1a2b3c"

Verify = Callable[..., bool]


SNIPPET = re.compile(r"<!-- verify-snippet[^>]*-->\s*```python\n(.*?)```", flags=re.DOTALL)


@pytest.fixture
def verify() -> Verify:
    """The ``verify`` function documented for receivers, executed from the documents themselves.

    docs/webhook.md must carry it; README.md is checked too once it carries a marked copy. The
    returned function answers True only when every documented copy does.
    """
    copies: list[Verify] = []
    for document in ("docs/webhook.md", "README.md"):
        path = REPO / document
        found = SNIPPET.search(path.read_text(encoding="utf-8")) if path.exists() else None
        if found is None:
            assert document != "docs/webhook.md", "docs/webhook.md lost its verification snippet"
            continue
        namespace: dict[str, Any] = {}
        exec(compile(found.group(1), document, "exec"), namespace)
        copies.append(namespace["verify"])
    return lambda *args: all(copy(*args) for copy in copies)


@pytest.fixture
def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "webhook-secrets"
    directory.mkdir()
    (directory / "ci").write_bytes(SECRET + b"\n")
    (directory / "default").write_bytes(DEFAULT_SECRET)
    monkeypatch.setenv("WEBHOOK_SECRET_DIR", str(directory))
    return directory


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets: Path) -> Iterator[Receiver]:
    """A loopback receiver that namespace ``ci``'s policy allows."""
    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {"webhook": LOOPBACK_RECEIVERS}}})
    with Receiver() as server:
        yield server


def with_webhook(sample: dict[str, Any], url: str, **settings: str) -> dict[str, Any]:
    ((_, run),) = sample["data"].items()
    annotations = run["metadata"]["annotations"]
    annotations["webhook.integrations.tekton.dev/url"] = url
    for key, value in settings.items():
        annotations[f"webhook.integrations.tekton.dev/{key}"] = value
    return sample


def record(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    return json.loads(kube.runs[ref]["metadata"]["annotations"][RECORD])


def condition(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = record(kube, ref)["conditions"]
    return conditions[0]


def signature_of(request: Received) -> tuple[str, str]:
    headers = request.headers
    return headers["x-tekton-integrations-timestamp"], headers["x-tekton-integrations-signature-256"]


def test_a_signed_post_reaches_the_receiver_which_verifies_it_with_the_documented_snippet(
    kube: MemoryRunClient, receiver: Receiver, deliver: Deliver, verify: Verify
) -> None:
    running = with_webhook(samples.load("pipelinerun-running"), receiver.url)
    ref = add_run(kube, running)

    answer = deliver(function_client("webhook"), running)

    assert answer.status_code == 200
    (request,) = receiver.requests
    timestamp, signature = signature_of(request)
    assert signature.startswith("sha256=")
    assert request.headers["content-type"] == "application/json"
    assert verify(SECRET, request.body, timestamp, signature)
    assert not verify(DEFAULT_SECRET, request.body, timestamp, signature), "the namespace's own secret"
    assert not verify(SECRET, request.body.replace(b"running", b"succeeded"), timestamp, signature)
    assert not verify(SECRET, request.body, str(int(timestamp) - 3600), signature), "a replayed old request"
    stored = record(kube, ref)
    assert SECRET.decode() not in json.dumps(kube.runs[ref]) + json.dumps(kube.events)
    assert condition(kube, ref)["status"] == "True"
    assert condition(kube, ref)["reason"] == "Delivered"
    assert stored["annotations"]["last-http-status"] == "200"
    assert stored["annotations"]["delivery-id"] == request.headers["x-tekton-integrations-delivery"]


def test_the_default_secret_signs_for_namespaces_without_their_own(
    kube: MemoryRunClient, receiver: Receiver, deliver: Deliver, verify: Verify, secrets: Path
) -> None:
    (secrets / "ci").unlink()
    running = with_webhook(samples.load("pipelinerun-running"), receiver.url)
    add_run(kube, running)
    deliver(function_client("webhook"), running)
    (request,) = receiver.requests
    assert verify(DEFAULT_SECRET, request.body, *signature_of(request))


def test_without_any_key_nothing_is_sent_and_the_record_names_the_files(
    kube: MemoryRunClient, receiver: Receiver, deliver: Deliver, secrets: Path
) -> None:
    for path in secrets.iterdir():
        path.unlink()
    running = with_webhook(samples.load("pipelinerun-running"), receiver.url)
    ref = add_run(kube, running)
    answer = deliver(function_client("webhook"), running)
    assert answer.status_code == 200
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "WebhookNotConfigured")
    assert f"no file {secrets / 'ci'} or {secrets / 'default'}" in cond["message"]
    assert "WEBHOOK_SECRET_DIR" in cond["message"]
    assert receiver.connections == 0


def test_an_empty_namespace_key_is_not_replaced_by_the_default_one(
    kube: MemoryRunClient, receiver: Receiver, deliver: Deliver, secrets: Path
) -> None:
    (secrets / "ci").write_bytes(b"\n")
    running = with_webhook(samples.load("pipelinerun-running"), receiver.url)
    ref = add_run(kube, running)
    assert deliver(function_client("webhook"), running).status_code == 200
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "WebhookNotConfigured")
    assert f"{secrets / 'ci'} is empty" in cond["message"]
    assert receiver.connections == 0


def test_an_invalid_total_deadline_is_a_configuration_error_naming_the_variable(
    kube: MemoryRunClient, receiver: Receiver, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "300")
    running = with_webhook(samples.load("pipelinerun-running"), receiver.url)
    ref = add_run(kube, running)
    assert deliver(function_client("webhook"), running).status_code == 200
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "WebhookNotConfigured")
    assert "WEBHOOK_TIMEOUT_SECONDS" in cond["message"]
    assert receiver.connections == 0


def test_the_payload_describes_the_run(
    kube: MemoryRunClient, receiver: Receiver, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org")
    successful = with_webhook(samples.load("pipelinerun-successful"), receiver.url)
    add_run(kube, successful)
    deliver(function_client("webhook"), successful)
    (request,) = receiver.requests
    payload = json.loads(request.body)
    assert payload["apiVersion"] == "integrations.tekton.dev/v1alpha1"
    assert payload["kind"] == "RunNotification"
    assert payload["run"] == {
        "kind": "PipelineRun",
        "namespace": "ci",
        "name": "build-and-test-run-x7k2p",
        "uid": "5f0d3a8e-2c4b-4e71-9a36-0b7d1c9e4f12",
        "definition": "build-and-test",
    }
    assert payload["state"] == {
        "phase": "succeeded",
        "status": "True",
        "reason": "Succeeded",
        "message": "Tasks Completed: 3 (Failed: 0, Cancelled 0), Skipped: 0",
        "lastTransitionTime": "2026-03-14T09:24:52Z",
    }
    assert payload["timing"]["completionTime"] == "2026-03-14T09:24:52Z"
    assert payload["timing"]["durationSeconds"] == 225.0
    assert isinstance(payload["results"], dict)
    assert (
        payload["url"]
        == "https://dashboard.example.org/#/namespaces/ci/pipelineruns/build-and-test-run-x7k2p"
    )
    assert set(payload) == {"apiVersion", "kind", "run", "state", "timing", "results", "url"}


def test_each_state_is_sent_once_and_replayed_events_send_nothing(
    kube: MemoryRunClient, receiver: Receiver, deliver: Deliver
) -> None:
    names = ["pipelinerun-queued", "pipelinerun-started", "pipelinerun-running", "pipelinerun-successful"]
    events = [with_webhook(samples.load(name), receiver.url) for name in names]
    ref = add_run(kube, events[0])
    client = function_client("webhook")
    for event in events:
        advance(kube, ref, event)
        assert deliver(client, event).status_code == 200
    phases = [json.loads(r.body)["state"]["phase"] for r in receiver.requests]
    assert phases == ["queued", "running", "running", "succeeded"]  # started and running differ by reason
    ids = [r.headers["x-tekton-integrations-delivery"] for r in receiver.requests]
    assert len(set(ids)) == 4

    replays = events * 3
    random.Random(4).shuffle(replays)
    for event in replays:
        assert deliver(client, event).status_code == 200
    assert len(receiver.requests) == 4
    assert condition(kube, ref)["status"] == "True"


def test_a_retried_delivery_repeats_the_same_id_and_body(
    kube: MemoryRunClient, receiver: Receiver, deliver: Deliver
) -> None:
    running = with_webhook(samples.load("pipelinerun-running"), receiver.url)
    ref = add_run(kube, running)
    client = function_client("webhook")
    receiver.answer(503, body=b"try later")

    assert deliver(client, running).status_code == 503
    assert condition(kube, ref)["status"] == "Unknown"
    assert record(kube, ref)["annotations"]["last-http-status"] == "503"
    assert deliver(client, running).status_code == 200

    first, second = receiver.requests
    assert first.body == second.body
    assert first.headers["x-tekton-integrations-delivery"] == second.headers["x-tekton-integrations-delivery"]
    assert condition(kube, ref)["status"] == "True"
    assert record(kube, ref)["attempts"] == 2
    assert record(kube, ref)["annotations"]["last-http-status"] == "200"


def test_on_selects_the_states_to_send(kube: MemoryRunClient, receiver: Receiver, deliver: Deliver) -> None:
    running = with_webhook(samples.load("pipelinerun-running"), receiver.url, on="finished")
    successful = with_webhook(samples.load("pipelinerun-successful"), receiver.url, on="finished")
    ref = add_run(kube, running)
    client = function_client("webhook")
    assert body(deliver(client, running))["outcome"] == "ignored"
    advance(kube, ref, successful)
    deliver(client, successful)
    assert [json.loads(r.body)["state"]["phase"] for r in receiver.requests] == ["succeeded"]


@pytest.mark.parametrize(
    ("status", "headers", "answer", "retry_after", "condition_status", "reason"),
    [
        (500, {}, 503, None, "Unknown", "TargetUnavailable"),
        (502, {}, 503, None, "Unknown", "TargetUnavailable"),
        (503, {"Retry-After": "30"}, 429, "30", "Unknown", "TargetUnavailable"),
        (429, {"Retry-After": "12"}, 429, "12", "Unknown", "TargetRateLimited"),
        (429, {}, 429, "60", "Unknown", "TargetRateLimited"),  # a rate limit without a wait: a minute
        (400, {}, 200, None, "False", "TargetRejected"),
        (401, {}, 200, None, "False", "TargetRejected"),
        (404, {}, 200, None, "False", "TargetRejected"),
        (422, {}, 200, None, "False", "TargetRejected"),
    ],
)
def test_receiver_answers_are_classified_and_the_status_recorded(  # noqa: PLR0917
    kube: MemoryRunClient,
    receiver: Receiver,
    deliver: Deliver,
    status: int,
    headers: dict[str, str],
    answer: int,
    retry_after: str | None,
    condition_status: str,
    reason: str,
) -> None:
    running = with_webhook(samples.load("pipelinerun-running"), receiver.url)
    ref = add_run(kube, running)
    receiver.answer(status, headers, b"receiver says no")
    response = deliver(function_client("webhook"), running)
    assert response.status_code == answer
    assert response.headers.get("Retry-After") == retry_after
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == (condition_status, reason)
    assert f"the webhook receiver at http://127.0.0.1:{receiver.port}" in cond["message"]
    if status == 429:
        assert "rate-limited" in cond["message"]
    else:
        assert str(status) in cond["message"]
        assert "receiver says no" in cond["message"]
    assert record(kube, ref)["annotations"]["last-http-status"] == str(status)
    assert kube.events
    assert kube.events[-1][1] == "IntegrationFailed"


def test_a_receiver_that_does_not_answer_in_time_is_retried(
    kube: MemoryRunClient, receiver: Receiver, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "0.3")
    running = with_webhook(samples.load("pipelinerun-running"), receiver.url)
    ref = add_run(kube, running)
    receiver.hang()
    assert deliver(function_client("webhook"), running).status_code == 503
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("Unknown", "TargetTimeout")
    assert record(kube, ref)["annotations"].get("last-http-status", "none") == "none"


def test_a_dripping_receiver_is_cut_off_at_the_total_deadline(
    kube: MemoryRunClient, receiver: Receiver, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "1")
    running = with_webhook(samples.load("pipelinerun-running"), receiver.url)
    ref = add_run(kube, running)
    length = 4000
    receiver.drip(0.02, length)  # each byte well within the per-read timeout; 80 s to the end

    answer = deliver(function_client("webhook"), running)

    assert answer.status_code == 503
    assert body(answer)["reason"] == "TargetTimeout"
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("Unknown", "TargetTimeout")
    assert record(kube, ref)["annotations"].get("last-http-status", "none") == "none", "not an answer"
    assert receiver.cut_off.wait(timeout=30), "the function never closed the connection"
    assert receiver.dripped < length


def test_a_lost_answer_is_redelivered_with_the_same_delivery_id_and_body(
    kube: MemoryRunClient, receiver: Receiver, deliver: Deliver
) -> None:
    running = with_webhook(samples.load("pipelinerun-running"), receiver.url)
    ref = add_run(kube, running)
    client = function_client("webhook")
    receiver.lose()  # the receiver got the request, but its answer never arrives

    assert deliver(client, running).status_code == 503
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == (
        "Unknown",
        "TargetUnreachable",
    )
    assert deliver(client, running).status_code == 200
    assert deliver(client, running).status_code == 200  # a later duplicate sends nothing

    first, second = receiver.requests
    assert (
        first.headers[DELIVERY] == second.headers[DELIVERY] == record(kube, ref)["annotations"]["delivery-id"]
    )
    assert first.body == second.body
    assert condition(kube, ref)["status"] == "True"


def test_started_running_and_duplicates_delivered_together_send_one_request_per_state(
    kube: MemoryRunClient, receiver: Receiver
) -> None:
    started = with_webhook(samples.load("pipelinerun-started"), receiver.url)
    running = with_webhook(samples.load("pipelinerun-running"), receiver.url)
    ref = add_run(kube, started)
    app = function_client("webhook").application
    gate = receiver.hold()  # the first request waits at the receiver while the rest arrive
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

    states = [json.loads(request.body)["state"]["reason"] for request in receiver.requests]
    assert sorted(states) == ["Running", "Started"]
    assert len({request.headers[DELIVERY] for request in receiver.requests}) == 2
    assert (condition(kube, ref)["status"], record(kube, ref)["runState"]["reason"]) == ("True", "Running")


@pytest.mark.parametrize("status", [401, 500])
def test_a_receiver_echoing_the_request_and_the_key_leaks_the_key_nowhere(
    kube: MemoryRunClient,
    receiver: Receiver,
    deliver: Deliver,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    running = with_webhook(samples.load("pipelinerun-running"), receiver.url)
    ref = add_run(kube, running)
    receiver.answer(status, body=b"signature mismatch, expected key " + SECRET, echo=True)

    with caplog.at_level(logging.DEBUG):
        answer = deliver(function_client("webhook"), running)

    texts = {
        "answer": answer.get_data(as_text=True),
        "record": json.dumps(kube.runs[ref]),
        "log": "\n".join(JsonFormatter().format(line) for line in caplog.records),  # as written
        "events": json.dumps(kube.events, default=str),
    }
    for where, text in texts.items():
        assert SECRET.decode() not in text, where
        assert f"expected key {MASK}" in text, where  # the key is masked where it was echoed...
    (request,) = receiver.requests
    message = condition(kube, ref)["message"]
    assert request.headers[DELIVERY] in message  # ...and the rest of the echo kept: it is no secret
    assert "POST /hook HTTP/1.1" in message


def test_an_unreachable_receiver_is_retried(
    kube: MemoryRunClient, receiver: Receiver, deliver: Deliver
) -> None:
    running = with_webhook(samples.load("pipelinerun-running"), f"http://127.0.0.1:{free_port()}/hook")
    ref = add_run(kube, running)
    assert deliver(function_client("webhook"), running).status_code == 503
    assert condition(kube, ref)["reason"] == "TargetUnreachable"


def test_a_redirect_to_a_refused_address_is_not_followed(
    kube: MemoryRunClient, receiver: Receiver, deliver: Deliver
) -> None:
    with Receiver() as inside:
        receiver.answer(302, {"Location": f"http://169.254.169.254:{inside.port}/latest/meta-data/"})
        running = with_webhook(samples.load("pipelinerun-running"), receiver.url)
        ref = add_run(kube, running)
        assert deliver(function_client("webhook"), running).status_code == 200
    assert len(receiver.requests) == 1
    assert inside.connections == 0
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "TargetRedirected")
    assert record(kube, ref)["annotations"]["last-http-status"] == "302"


REFUSED_POLICY: dict[str, Any] = {
    "namespaces": {"ci": {"webhook": {"allowHttp": True}}},
    "clusterServiceNetworks": ["10.96.0.0/12"],
}
STRICT_POLICY: dict[str, Any] = {"namespaces": {"ci": {"webhook": {"hosts": ["hooks.example.com"]}}}}
NAMES = {
    "metadata.google.internal": ["169.254.169.254"],
    "internal.example.com": ["10.0.0.5"],
    "rebind.example.com": ["93.184.216.34", "127.0.0.1"],
    "kubernetes.default.svc": ["10.96.0.1"],
    "ula.example.com": ["fd00::10"],
    "hooks.example.com": ["127.0.0.1"],
}


@pytest.mark.parametrize(
    ("url", "policy"),
    [
        ("http://127.0.0.1:{port}/hook", REFUSED_POLICY),
        ("http://localhost:{port}/hook", REFUSED_POLICY),
        ("http://127.1:{port}/hook", REFUSED_POLICY),
        ("http://2130706433:{port}/hook", REFUSED_POLICY),
        ("http://0x7f.1:{port}/hook", REFUSED_POLICY),
        ("http://[::1]:{port}/hook", REFUSED_POLICY),
        ("http://[::ffff:127.0.0.1]:{port}/hook", REFUSED_POLICY),
        ("http://0.0.0.0:{port}/hook", REFUSED_POLICY),
        ("http://[::]:{port}/hook", REFUSED_POLICY),
        ("http://169.254.169.254/latest/meta-data/", REFUSED_POLICY),
        ("http://metadata.google.internal/computeMetadata/v1/", REFUSED_POLICY),
        ("http://[fe80::1]/", REFUSED_POLICY),
        ("http://10.1.2.3/", REFUSED_POLICY),
        ("http://172.16.5.4/", REFUSED_POLICY),
        ("http://192.168.0.1/", REFUSED_POLICY),
        ("http://internal.example.com/", REFUSED_POLICY),
        ("http://ula.example.com/", REFUSED_POLICY),
        ("http://100.64.0.1/", REFUSED_POLICY),
        ("http://10.96.0.1/", REFUSED_POLICY),
        ("http://kubernetes.default.svc/", REFUSED_POLICY),
        ("http://rebind.example.com:{port}/hook", REFUSED_POLICY),
        ("http://224.0.0.1/", REFUSED_POLICY),
        ("http://[64:ff9b::7f00:1]/", REFUSED_POLICY),
        ("ftp://127.0.0.1:{port}/hook", REFUSED_POLICY),
        ("file:///etc/passwd", REFUSED_POLICY),
        ("gopher://127.0.0.1:{port}/_hook", REFUSED_POLICY),
        ("https://user:password@hooks.example.com/", STRICT_POLICY),
        ("http://hooks.example.com:{port}/hook", STRICT_POLICY),  # https required
        ("https://evil.example.net/", STRICT_POLICY),  # not in the namespace's hosts
        ("https://hooks.example.com:{port}/hook", STRICT_POLICY),  # allowed name, loopback address
    ],
)
def test_refused_targets_send_no_byte_and_record_target_not_allowed(  # noqa: PLR0917
    kube: MemoryRunClient,
    deliver: Deliver,
    secrets: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    policy: dict[str, Any],
) -> None:
    use_policy(monkeypatch, tmp_path, policy)
    real_resolve = targets.resolve
    fake = fake_resolver(NAMES)
    monkeypatch.setattr(
        targets, "resolve", lambda host, port: (fake if host in NAMES else real_resolve)(host, port)
    )
    with Receiver() as listener:
        running = with_webhook(samples.load("pipelinerun-running"), url.format(port=listener.port))
        ref = add_run(kube, running)
        client = function_client("webhook")
        connections = spy_connections(monkeypatch)
        answer = deliver(client, running)
    assert answer.status_code == 200
    assert listener.connections == 0
    assert connections == []
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "TargetNotAllowed")
    assert record(kube, ref)["annotations"].get("last-http-status", "none") == "none"
    assert "password" not in cond["message"]


def test_a_policy_broken_after_startup_stops_every_delivery_until_fixed(
    kube: MemoryRunClient,
    receiver: Receiver,
    deliver: Deliver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running = with_webhook(samples.load("pipelinerun-running"), receiver.url)
    ref = add_run(kube, running)
    client = function_client("webhook")
    use_policy(monkeypatch, tmp_path, "namespaces: {ci: {webhook: {allowHtp: true}}}")
    answer = deliver(client, running)
    assert answer.status_code == 503
    assert body(answer)["reason"] == "PolicyInvalid"
    assert "allowHtp: unknown key" in body(answer)["detail"]  # names the mistake
    assert receiver.connections == 0
    assert RECORD not in kube.runs[ref]["metadata"]["annotations"]

    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {"webhook": LOOPBACK_RECEIVERS}}})
    assert deliver(client, running).status_code == 200
    assert len(receiver.requests) == 1


def test_a_malformed_policy_stops_the_function_at_startup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_policy(monkeypatch, tmp_path, "default: [")
    with pytest.raises(PolicyError, match="not valid YAML"):
        function_client("webhook")
