"""Target safety: which URLs and addresses are refused, and how a POST reaches the checked address."""

from __future__ import annotations

from contextlib import suppress
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
from urllib3.exceptions import ConnectTimeoutError

from common import deadline, targets
from common.errors import IntegrationError, PermanentError, TargetNotAllowedError, TemporaryError
from common.policy import NetworkPolicy
from common.redaction import MASK, remember
from common.targets import Response, TargetURL, Timeouts, classify, deliver, post
from tests.support.receiver import Receiver, fake_resolver, free_port, spy_connections
from tests.support.tls import make_certificates

STRICT = NetworkPolicy("webhook", "ci", "namespaces.ci of the policy file /p.yaml")
"""No exceptions: https only, nothing private."""
LOOPBACK = NetworkPolicy(
    "webhook",
    "ci",
    "namespaces.ci of the policy file /p.yaml",
    allow_http=True,
    allowed_networks=(ip_network("127.0.0.0/8"), ip_network("::1/128")),
)
FAST = Timeouts(2.0)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("ftp://hooks.example.com/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://127.0.0.1:6379/_SET", "only http and https"),
        ("hooks.example.com/path", "only http and https"),
        ("https://user:secret@hooks.example.com/", "credentials in the URL"),
        ("https://hooks.example.com\\@evil.net/", "control characters"),
        ("https://hooks.example.com/a b", "spaces"),
        ("https:///no-host", "no host"),
        ("https://hooks.example.com:99999/", "not a valid URL"),
        ("https://bad_host!.example.com/", "not a valid host name"),
    ],
)
def test_malformed_and_unsupported_urls_are_refused(url: str, complaint: str) -> None:
    with pytest.raises(TargetNotAllowedError, match=complaint):
        TargetURL.parse(url)


def test_url_parts_are_normalised() -> None:
    target = TargetURL.parse("HTTPS://Hooks.Example.COM.:443/a/b?token=x#frag")
    assert (target.scheme, target.host, target.port) == ("https", "hooks.example.com", 443)
    assert target.request_target == "/a/b?token=x"
    assert target.host_header == "hooks.example.com"
    assert target.without_query == "https://hooks.example.com/a/b"
    assert TargetURL.parse("http://[::1]:8080").host_header == "[::1]:8080"
    assert TargetURL.parse("https://bücher.example/").host == "xn--bcher-kva.example"


def test_https_is_required_unless_allowed() -> None:
    with pytest.raises(
        TargetNotAllowedError, match=r"plain http is not allowed.*webhook\.allowHttp in namespaces\.ci"
    ):
        targets.check("http://93.184.216.34/", STRICT)


def test_hosts_outside_the_policy_are_refused_before_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    resolved: list[str] = []

    def resolve(host: str, port: int) -> list[Any]:
        resolved.append(host)
        return []

    monkeypatch.setattr(targets, "resolve", resolve)
    policy = NetworkPolicy(
        "webhook", "ci", "namespaces.ci of the policy file /p.yaml", hosts=("*.example.com",)
    )
    with pytest.raises(TargetNotAllowedError) as refused:
        targets.check("https://evil.example.net/", policy)
    assert refused.value.message.startswith("namespace \"ci\" may not target webhook host 'evil.example.net'")
    assert (
        "webhook.hosts in namespaces.ci of the policy file /p.yaml (*.example.com)" in refused.value.message
    )
    assert not resolved


@pytest.mark.parametrize(
    ("names", "url"),
    [
        ({"internal.example.com": ["10.0.0.5"]}, "https://internal.example.com/"),
        ({"metadata.google.internal": ["169.254.169.254"]}, "https://metadata.google.internal/"),
        ({"rebind.example.com": ["93.184.216.34", "127.0.0.1"]}, "https://rebind.example.com/"),
        ({"v6.example.com": ["2606:4700::1", "fd12::1"]}, "https://v6.example.com/"),
    ],
)
def test_a_name_is_refused_when_any_address_it_resolves_to_is(
    monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]], url: str
) -> None:
    monkeypatch.setattr(targets, "resolve", fake_resolver(names))
    connections = spy_connections(monkeypatch)
    with pytest.raises(TargetNotAllowedError, match="resolves to") as refused:
        post(url, b"{}", {}, STRICT, timeouts=FAST)
    assert "nothing was sent" in refused.value.message
    assert "allowPrivateNetworks" in refused.value.message
    assert not connections


def test_a_post_reaches_an_allowed_loopback_receiver_with_the_names_host_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Receiver() as receiver:
        monkeypatch.setattr(targets, "resolve", fake_resolver({"hooks.test": ["127.0.0.1"]}))
        response = post(
            f"http://hooks.test:{receiver.port}/in?x=1",
            b'{"a":1}',
            {"Content-Type": "application/json"},
            LOOPBACK,
            timeouts=FAST,
        )
    assert response.status == 200
    (request,) = receiver.requests
    assert (request.method, request.path, request.body) == ("POST", "/in?x=1", b'{"a":1}')
    assert request.headers["host"] == f"hooks.test:{receiver.port}"
    assert request.headers["user-agent"].startswith("tekton-integrations/")


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])  # a rebinding resolver: safe first, then not
    lookups: list[str] = []

    def rebinding(host: str, port: int) -> list[Any]:
        lookups.append(host)
        return [ip_address(a) for a in next(answers)]

    monkeypatch.setattr(targets, "resolve", rebinding)
    with Receiver() as receiver:
        connections = spy_connections(monkeypatch)
        post(f"http://rebind.test:{receiver.port}/", b"{}", {}, LOOPBACK, timeouts=FAST)
    assert lookups == ["rebind.test"]
    assert [address[0] for address in connections] == ["127.0.0.1"]
    assert len(receiver.requests) == 1


def test_a_failed_connection_moves_on_to_the_next_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    with Receiver() as receiver:
        monkeypatch.setattr(targets, "resolve", fake_resolver({"two.test": ["127.0.0.2", "127.0.0.1"]}))
        response = post(f"http://two.test:{receiver.port}/", b"{}", {}, LOOPBACK, timeouts=FAST)
    assert response.status == 200
    assert len(receiver.requests) == 1


def test_redirects_are_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    with Receiver() as first, Receiver() as second:
        first.answer(307, {"Location": f"http://127.0.0.1:{second.port}/elsewhere"})
        with pytest.raises(PermanentError) as redirected:
            deliver(first.url, b"{}", {}, LOOPBACK, service="webhook receiver", timeouts=FAST)
    assert redirected.value.reason == "TargetRedirected"
    assert redirected.value.annotations == {"last-http-status": "307"}
    assert f"127.0.0.1:{second.port}/elsewhere" in redirected.value.message
    assert len(first.requests) == 1
    assert second.connections == 0


def test_environment_proxies_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    with Receiver() as proxy, Receiver() as receiver:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        post(receiver.url, b"{}", {}, LOOPBACK, timeouts=FAST)
    assert len(receiver.requests) == 1
    assert proxy.connections == 0


def test_a_refused_connection_is_temporary_and_has_no_http_status() -> None:
    with pytest.raises(TemporaryError) as refused:
        deliver(
            f"http://127.0.0.1:{free_port()}/", b"{}", {}, LOOPBACK, service="webhook receiver", timeouts=FAST
        )
    assert refused.value.reason == "TargetUnreachable"
    assert refused.value.annotations == {"last-http-status": "none"}
    assert "the POST to the webhook receiver at http://127.0.0.1:" in refused.value.message
    assert "ConnectionRefusedError" in refused.value.message


def test_a_receiver_that_does_not_answer_times_out() -> None:
    with Receiver() as receiver:
        receiver.hang()
        with pytest.raises(TemporaryError) as slow:
            post(receiver.url, b"{}", {}, LOOPBACK, timeouts=Timeouts(0.3))
    assert slow.value.reason == "TargetTimeout"


def test_a_dripping_answer_is_cut_off_by_the_runtimes_total_deadline() -> None:
    """Per-read timeouts cannot stop a byte-at-a-time answer; the deadline around ``report`` does."""
    with Receiver() as receiver:
        receiver.drip(0.01, 4000)  # each byte well within the per-read timeout; 40 s to the end
        with deadline.within(0.5) as scope, suppress(IntegrationError):
            post(receiver.url, b"{}", {}, LOOPBACK, timeouts=Timeouts(5))
        assert scope.expired
        assert receiver.cut_off.wait(timeout=30), "the connection was never closed"
    assert receiver.dripped < 4000


def test_no_further_address_is_tried_once_the_total_has_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each address may take the whole connect timeout; the next one is not started past the total."""
    now = [100.0]
    tried: list[str] = []

    def exchange(target: Any, address: Any, *_: Any) -> Response:
        tried.append(str(address))
        now[0] += 5.0  # a connect that timed out after its full 5 s
        raise ConnectTimeoutError("timed out")

    monkeypatch.setattr(targets, "monotonic", lambda: now[0])
    monkeypatch.setattr(targets, "_exchange", exchange)
    monkeypatch.setattr(targets, "resolve", fake_resolver({"three.test": ["8.8.8.1", "8.8.8.2", "8.8.8.3"]}))
    with pytest.raises(TemporaryError) as slow:
        post("https://three.test/", b"{}", {}, STRICT, timeouts=Timeouts(8))
    assert tried == ["8.8.8.1", "8.8.8.2"]
    assert slow.value.reason == "TargetTimeout"


def test_timeouts_keep_within_the_total() -> None:
    assert (Timeouts(10).connect, Timeouts(10).read) == (5.0, 10)
    assert (Timeouts(0.5).connect, Timeouts(0.5).read) == (0.5, 0.5)


def test_unresolvable_names_are_permanent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(targets, "resolve", fake_resolver({}))
    with pytest.raises(PermanentError) as unknown:
        post("https://nowhere.test/", b"{}", {}, STRICT, timeouts=FAST)
    assert unknown.value.reason == "TargetUnresolvable"


def test_the_answers_excerpt_is_redacted_as_it_is_read() -> None:
    secret = "a-key-the-receiver-echoes-9c8b7a"
    remember(secret)
    with Receiver() as receiver:
        receiver.answer(
            500, body=f"bad signature, expected {secret}; Authorization: Bearer 0123456789abcdefXYZ".encode()
        )
        response = post(receiver.url, b"{}", {}, LOOPBACK, timeouts=FAST)
    assert response.excerpt == f"bad signature, expected {MASK}; Authorization: {MASK}"


def test_https_verifies_the_certificate_for_the_name_and_sends_it_as_sni(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    certificates = make_certificates(tmp_path, "hooks.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca_file))
    monkeypatch.setattr(
        targets, "resolve", fake_resolver({"hooks.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    )
    with Receiver(tls=certificates.server_context()) as receiver:
        response = post(f"https://hooks.test:{receiver.port}/", b"{}", {}, LOOPBACK, timeouts=FAST)
        assert response.status == 200
        with pytest.raises(PermanentError) as mismatch:
            post(f"https://other.test:{receiver.port}/", b"{}", {}, LOOPBACK, timeouts=FAST)
    assert receiver.server_names == ["hooks.test", "other.test"]
    assert len(receiver.requests) == 1, "no request over a connection whose certificate did not match"
    assert mismatch.value.reason == "TargetTLSError"
    assert "other.test" in mismatch.value.message


def test_the_operators_own_destination_skips_host_and_address_checks() -> None:
    trusted = NetworkPolicy.operator_configured("cloudevent", "CLOUDEVENT_DEFAULT_SINK")
    with Receiver() as receiver:
        assert post(receiver.url, b"{}", {}, trusted, timeouts=FAST).status == 200
    with pytest.raises(TargetNotAllowedError, match="only http and https"):
        post("ftp://127.0.0.1/", b"{}", {}, trusted, timeouts=FAST)


def _response(status: int, **headers: str) -> Response:
    return Response(status, "Reason", {k.lower().replace("_", "-"): v for k, v in headers.items()}, "detail")


@pytest.mark.parametrize(
    ("status", "kind", "reason"),
    [
        (200, None, None),
        (202, None, None),
        (204, None, None),
        (301, PermanentError, "TargetRedirected"),
        (400, PermanentError, "TargetRejected"),
        (401, PermanentError, "TargetRejected"),
        (403, PermanentError, "TargetRejected"),
        (404, PermanentError, "TargetRejected"),
        (408, TemporaryError, "TargetUnavailable"),
        (422, PermanentError, "TargetRejected"),
        (425, TemporaryError, "TargetUnavailable"),
        (429, TemporaryError, "TargetRateLimited"),
        (500, TemporaryError, "TargetUnavailable"),
        (502, TemporaryError, "TargetUnavailable"),
        (503, TemporaryError, "TargetUnavailable"),
    ],
)
def test_answers_are_classified_by_status(
    status: int, kind: type[Exception] | None, reason: str | None
) -> None:
    error = classify(_response(status), "the POST to the webhook receiver at https://h")
    if kind is None:
        assert error is None
        return
    assert isinstance(error, kind)
    assert error.reason == reason
    assert "the POST to the webhook receiver at https://h" in error.message


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (503, {"retry_after": "30"}, 30.0),
        (503, {}, None),
        (429, {"retry_after": "12"}, 12.0),
        (429, {}, 60.0),  # a rate limit that does not say how long: the shared table's minute
        (429, {"retry_after": "999999"}, 3600.0),
    ],
)
def test_retry_after_comes_from_the_shared_fault_table(
    status: int, headers: dict[str, str], retry_after: float | None
) -> None:
    error = classify(_response(status, **headers), "the POST")
    assert isinstance(error, TemporaryError)
    assert error.retry_after == retry_after
