"""Target safety: which URLs and addresses are refused, and how a POST reaches the checked address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest

from common import targets
from common.errors import TargetNotAllowedError
from common.policy import NetworkPolicy
from common.targets import (
    Response,
    TargetRejectedError,
    TargetUnavailableError,
    TargetURL,
    Timeouts,
    classify,
    deliver,
    post,
)
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
FAST = Timeouts(connect=2.0, read=0.5)


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
        with pytest.raises(TargetRejectedError) as redirected:
            deliver(first.url, b"{}", {}, LOOPBACK, service="webhook receiver", timeouts=FAST)
    assert redirected.value.reason == "TargetRedirected"
    assert redirected.value.http_status == 307
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


def test_a_refused_connection_is_temporary() -> None:
    with pytest.raises(TargetUnavailableError) as refused:
        post(
            f"http://127.0.0.1:{free_port()}/", b"{}", {}, LOOPBACK, service="webhook receiver", timeouts=FAST
        )
    assert refused.value.reason == "TargetUnreachable"
    assert refused.value.http_status is None
    assert "cannot connect to the webhook receiver at http://127.0.0.1:" in refused.value.message


def test_a_receiver_that_does_not_answer_times_out() -> None:
    with Receiver() as receiver:
        receiver.hang()
        with pytest.raises(TargetUnavailableError) as slow:
            post(receiver.url, b"{}", {}, LOOPBACK, timeouts=Timeouts(connect=2.0, read=0.2))
    assert slow.value.reason == "TargetTimeout"


def test_unresolvable_names_are_permanent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(targets, "resolve", fake_resolver({}))
    with pytest.raises(TargetRejectedError) as unknown:
        post("https://nowhere.test/", b"{}", {}, STRICT, timeouts=FAST)
    assert unknown.value.reason == "TargetUnresolvable"


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
        with pytest.raises(TargetRejectedError) as mismatch:
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
        (301, TargetRejectedError, "TargetRedirected"),
        (400, TargetRejectedError, "TargetRejected"),
        (401, TargetRejectedError, "TargetRejected"),
        (404, TargetRejectedError, "TargetRejected"),
        (408, TargetUnavailableError, "TargetUnavailable"),
        (422, TargetRejectedError, "TargetRejected"),
        (429, TargetUnavailableError, "TargetRateLimited"),
        (500, TargetUnavailableError, "TargetUnavailable"),
        (502, TargetUnavailableError, "TargetUnavailable"),
        (503, TargetUnavailableError, "TargetUnavailable"),
    ],
)
def test_answers_are_classified_by_status(
    status: int, kind: type[Exception] | None, reason: str | None
) -> None:
    error = classify(_response(status), "the webhook receiver at https://h")
    if kind is None:
        assert error is None
        return
    assert isinstance(error, kind)
    assert error.reason == reason
    assert error.http_status == status
    assert f"the webhook receiver at https://h answered {status}" in error.message or status < 400


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        ("0", 1.0),
        ("999999", 3600.0),
        (format_datetime(datetime.now(UTC) + timedelta(days=2), usegmt=True), 3600.0),
        (format_datetime(datetime.now(UTC) - timedelta(days=2), usegmt=True), 1.0),
        ("soon", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date(value: str, expected: Any) -> None:
    assert _response(429, retry_after=value).retry_after == expected
    assert _response(429).retry_after is None
