"""The email function against aiosmtpd, a real SMTP server on loopback, through functions-framework."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import logging
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import TestResponse

from common import TemporaryError, samples
from common.runclient import MemoryRunClient, RunRef
from tests.conftest import Deliver, add_run, advance, body, function_client, written_texts
from tests.support.policies import use_policy
from tests.support.reports import FAILING_TEST, LOG_TOKEN, log_failed_step, mount_templates, pod_log_reads
from tests.support.tiers import unavailable

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    AIOSMTPD_MISSING = ""
except ImportError as e:  # pragma: no cover - aiosmtpd is in the test extras
    AIOSMTPD_MISSING = str(e)

RECORD = "email.integrations.tekton.dev/status"
LINK = "https://dashboard.example.org/#/namespaces/ci/pipelineruns/build-and-test-run-q4m9z"
PASSWORD = "smtp-secret-password-4711"


@dataclass
class Mailbox:
    """What the SMTP server received, and how it should answer the next messages."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    """Replies to give to the next DATA commands instead of accepting them."""
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    on_data: Callable[[], None] | None = None
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 -- aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 -- aiosmtpd's name
        if self.on_data is not None:
            self.on_data()
        if self.replies:
            return self.replies.pop(0)
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and data.password == PASSWORD.encode()
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)


@dataclass
class EchoingRelay:
    """A relay that refuses every login with a 535 reply repeating the credentials it was sent,
    both as sent (base64) and decoded, as a misbehaving relay or proxy might."""

    echoed: list[str] = field(default_factory=list)

    async def handle_AUTH(self, server: Any, session: Any, envelope: Any, args: list[str]) -> str:  # noqa: N802 -- aiosmtpd's hook name
        sent = list(args)
        if args[0] == "LOGIN":  # the user came with the command; the password answers a challenge
            password = await server.challenge_auth("Password:")
            sent.append(base64.b64encode(password).decode())
        decoded = [base64.b64decode(part).decode().replace("\0", " ") for part in sent[1:]]
        reply = f"535 5.7.8 refused AUTH {' '.join(sent)} = {' / '.join(decoded)}"
        self.echoed.append(reply)
        return reply


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def smtp_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SMTP_HOST",
        "SMTP_PORT",
        "SMTP_SECURITY",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
        "SMTP_PASSWORD_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SMTP_CA", raising=False)
    monkeypatch.delenv("SMTP_CA_FILE", raising=False)
    monkeypatch.setenv("SMTP_FROM", "Tekton CI <ci@example.org>")
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org")


def serve_smtp(handler: Mailbox | EchoingRelay, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Any:
    """An aiosmtpd relay on loopback with ``handler``'s hooks; the function is pointed at it."""
    if AIOSMTPD_MISSING:
        unavailable(f"aiosmtpd is not importable ({AIOSMTPD_MISSING}); pip install -e '.[test]'")
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(controller.port))
    return controller


@pytest.fixture
def mailbox(smtp_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    """A plain SMTP server on loopback; the function sends to it without TLS."""
    box = Mailbox()
    controller = serve_smtp(box, monkeypatch)
    monkeypatch.setenv("SMTP_SECURITY", "none")
    yield box
    controller.stop()


def event(sample_name: str, /, **annotations: str) -> dict[str, Any]:
    """A sample event whose run asks for mail, to dev@example.org unless told otherwise."""
    sample = samples.load(sample_name)
    ((_, run),) = sample["data"].items()
    run["metadata"]["annotations"] = {
        f"email.integrations.tekton.dev/{key}": value
        for key, value in {"to": "dev@example.org", **annotations}.items()
    }
    return sample


def failed_run(kube: MemoryRunClient, **annotations: str) -> tuple[dict[str, Any], RunRef]:
    failed = event("pipelinerun-failed", **annotations)
    ref = add_run(kube, failed)
    add_run(kube, samples.load("taskrun-failed"))
    return failed, ref


def condition(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = json.loads(kube.runs[ref]["metadata"]["annotations"][RECORD])[
        "conditions"
    ]
    return conditions[0]


def outcome(answer: TestResponse) -> str:
    return str(body(answer)["outcome"])


def bodies(message: EmailMessage) -> tuple[str, str]:
    text, markup = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert markup is not None
    return str(text.get_content()), str(markup.get_content())


def test_a_failed_run_delivers_exactly_one_message(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver
) -> None:
    failed, ref = failed_run(kube, to="dev@example.org, Lead@Example.org", cc="qa@example.net")
    client = function_client("email")
    for _ in range(3):  # Tekton and the broker redeliver
        assert deliver(client, failed).status_code == 200

    (message,) = mailbox.messages
    assert message["Subject"] == "[Tekton] Failed: PipelineRun ci/build-and-test-run-q4m9z (build-and-test)"
    assert message["To"] == "dev@example.org, Lead@example.org"
    assert message["Cc"] == "qa@example.net"
    assert message["From"] == "Tekton CI <ci@example.org>"
    assert message["Auto-Submitted"] == "auto-generated"
    ((sender, recipients),) = mailbox.envelopes
    assert sender == "ci@example.org"
    assert sorted(recipients) == ["Lead@example.org", "dev@example.org", "qa@example.net"]
    text, markup = bodies(message)
    assert f"View the run: {LINK}" in text
    assert f'<a href="{LINK}">' in markup
    assert "unit-tests: StepFailed" in text
    assert "exited with code 1" in text
    assert "build-image: Skipped" in text
    assert "unit-tests: StepFailed" in markup
    cond = condition(kube, ref)
    assert (cond["status"], cond["message"]) == ("True", "mailed failed to 3 recipient(s)")


def test_running_and_successful_runs_send_nothing_by_default(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver
) -> None:
    running, successful = event("pipelinerun-running"), event("pipelinerun-successful")
    ref = add_run(kube, running)
    client = function_client("email")
    assert outcome(deliver(client, running)) == "ignored"
    advance(kube, ref, successful)
    assert outcome(deliver(client, successful)) == "ignored"
    assert not mailbox.messages


def test_one_mail_per_phase_asked_for(kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver) -> None:
    names = ["pipelinerun-queued", "pipelinerun-started", "pipelinerun-running", "pipelinerun-successful"]
    events = [event(name, on="started, succeeded") for name in names]
    ref = add_run(kube, events[0])
    client = function_client("email")
    for sample in events:
        advance(kube, ref, sample)
        for _ in range(2):
            assert deliver(client, sample).status_code == 200
    # Tekton's started and running are one phase: one mail, not two.
    assert [m["Subject"].split(":")[0] for m in mailbox.messages] == [
        "[Tekton] Running",
        "[Tekton] Succeeded",
    ]
    text, _ = bodies(mailbox.messages[-1])
    assert "Tasks that did not succeed" not in text


def test_concurrent_duplicate_cannot_send_a_second_mail(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver
) -> None:
    failed, _ = failed_run(kube)
    duplicate = function_client("email")
    answers: list[str] = []
    # While the first delivery is inside SMTP DATA, the same event arrives again.
    mailbox.on_data = lambda: answers.append(outcome(deliver(duplicate, failed)))
    assert outcome(deliver(function_client("email"), failed)) == "reported"
    assert answers == ["retry"], "asked to come back while the first delivery holds the claim"
    assert outcome(deliver(duplicate, failed)) == "ignored", "and then finds the state reported"
    assert len(mailbox.messages) == 1


def losing_the_record(kube: MemoryRunClient, mailbox: Mailbox, ref: RunRef, how: str) -> Callable[[], None]:
    """Arrange for the record of the next mail to be lost as ``how`` says; call the result after it.

    ``written-back``: Tekton's reconciler writes back its older copy of the annotations after the
    record was written. ``replica-died``: the record is never written after the relay accepted
    the mail, and the claim left on the run has expired when the event comes back.
    """
    if how == "written-back":
        before = dict(kube.runs[ref]["metadata"].get("annotations") or {})

        def write_back() -> None:
            kube.runs[ref]["metadata"]["annotations"] = before

        return write_back

    def die_after_the_mail(verb: str, _: RunRef) -> None:
        if verb.startswith("patch") and mailbox.messages:
            raise TemporaryError("KubernetesUnavailable", "the replica died before recording")

    kube.before_request = die_after_the_mail

    def expire_the_claim() -> None:
        kube.before_request = None
        annotations = kube.runs[ref]["metadata"]["annotations"]
        claimed = json.loads(annotations[RECORD])
        claimed["claim"]["at"] = "2020-01-01T00:00:00Z"
        annotations[RECORD] = json.dumps(claimed)

    return expire_the_claim


@pytest.mark.parametrize("how", ["written-back", "replica-died"])
def test_a_mail_repeated_after_a_lost_record_keeps_its_message_id(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver, how: str
) -> None:
    failed, ref = failed_run(kube)
    lose_the_record = losing_the_record(kube, mailbox, ref, how)
    answer = deliver(function_client("email"), failed)
    assert answer.status_code == (200 if how == "written-back" else 503)
    lose_the_record()

    assert outcome(deliver(function_client("email"), failed)) == "reported", "another replica mails"
    first, second = mailbox.messages
    assert first["Message-ID"] == second["Message-ID"]
    assert re.fullmatch(r"<[0-9a-f-]{36}@example\.org>", str(first["Message-ID"]))
    record = json.loads(kube.runs[ref]["metadata"]["annotations"][RECORD])
    assert record["annotations"]["message-id"] == first["Message-ID"]


def test_each_state_gets_its_own_message_id(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver
) -> None:
    running, successful = event("pipelinerun-running", on="all"), event("pipelinerun-successful", on="all")
    ref = add_run(kube, running)
    client = function_client("email")
    deliver(client, running)
    advance(kube, ref, successful)
    deliver(client, successful)
    first, second = mailbox.messages
    assert first["Message-ID"] != second["Message-ID"], "a de-duplicating client would hide the second"


@pytest.mark.parametrize(
    "where",
    ["data", "rcpt"],
)
def test_smtp_4xx_answers_retryable_and_redelivery_sends_once(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver, where: str
) -> None:
    failed, ref = failed_run(kube)
    if where == "data":
        mailbox.replies.append("451 4.3.0 Try again later")
    else:
        mailbox.refuse_rcpt["dev@example.org"] = "450 4.2.1 Mailbox busy"
    client = function_client("email")
    answer = deliver(client, failed)
    assert answer.status_code in (503, 429)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("Unknown", "SMTPTemporaryFailure")
    assert not mailbox.messages

    mailbox.refuse_rcpt.clear()
    assert deliver(client, failed).status_code == 200
    assert len(mailbox.messages) == 1
    assert condition(kube, ref)["status"] == "True"


@pytest.mark.parametrize(
    ("where", "reason"),
    [("data", "SMTPRejected"), ("rcpt", "SMTPRecipientsRefused")],
)
def test_smtp_5xx_records_false_and_is_not_retried(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver, where: str, reason: str
) -> None:
    failed, ref = failed_run(kube)
    if where == "data":
        mailbox.replies.append("554 5.7.1 Message rejected as spam")
    else:
        mailbox.refuse_rcpt["dev@example.org"] = "550 5.1.1 Mailbox unavailable"
    client = function_client("email")
    answer = deliver(client, failed)
    assert (answer.status_code, outcome(answer)) == (200, "failed")
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", reason)
    assert "55" in cond["message"]
    assert outcome(deliver(client, failed)) == "ignored"
    assert not mailbox.messages


def test_one_refused_recipient_does_not_stop_the_others(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver
) -> None:
    failed, ref = failed_run(kube, to="dev@example.org, gone@example.org")
    mailbox.refuse_rcpt["gone@example.org"] = "550 5.1.1 Mailbox unavailable"
    deliver(function_client("email"), failed)
    assert [recipients for _, recipients in mailbox.envelopes] == [["dev@example.org"]]
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("True", "PartiallyDelivered")
    assert "gone@example.org (550" in cond["message"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("to", "dev@example.org\r\nBcc: victim@example.org"),
        ("to", "Dev <dev@example.org>"),
        ("to", " , "),
        ("cc", "not-an-address"),
        ("on", "sometimes"),
    ],
)
def test_bad_annotations_are_recorded_and_nothing_is_sent(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver, key: str, value: str
) -> None:
    failed, ref = failed_run(kube, **{key: value})
    deliver(function_client("email"), failed)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "InvalidConfiguration")
    assert f"email.integrations.tekton.dev/{key}" in cond["message"]
    assert not mailbox.messages


@pytest.mark.parametrize(
    ("cc", "allowed"),
    [("", True), ("qa@Tenant.Example.org", True), ("qa@tenant.example.org, boss@elsewhere.com", False)],
)
def test_the_namespace_policy_decides_which_domains_may_be_mailed(
    kube: MemoryRunClient,
    mailbox: Mailbox,
    deliver: Deliver,
    *,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cc: str,
    allowed: bool,
) -> None:
    use_policy(
        monkeypatch,
        tmp_path,
        {"namespaces": {"ci": {"email": {"domains": ["example.org", "*.example.org"]}}}},
    )
    failed, ref = failed_run(kube, **({"cc": cc} if cc else {}))
    deliver(function_client("email"), failed)
    cond = condition(kube, ref)
    if allowed:
        assert cond["status"] == "True"
        assert len(mailbox.messages) == 1
    else:
        assert (cond["status"], cond["reason"]) == ("False", "TargetNotAllowed")
        assert "elsewhere.com" in cond["message"]
        assert not mailbox.messages


def test_control_characters_from_the_run_cannot_add_headers(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver
) -> None:
    failed, _ = failed_run(kube)
    failed["data"]["pipelineRun"]["status"]["conditions"][0]["reason"] = "Oops\r\nBcc: victim@example.org"
    kube.replace_status(
        RunRef("PipelineRun", "ci", "build-and-test-run-q4m9z"), failed["data"]["pipelineRun"]["status"]
    )
    deliver(function_client("email"), failed)
    (message,) = mailbox.messages
    assert message["Bcc"] is None
    assert "\n" not in message["Subject"]
    assert [recipients for _, recipients in mailbox.envelopes] == [["dev@example.org"]]


def test_unconfigured_relay_is_recorded(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMTP_FROM")
    failed, ref = failed_run(kube)
    deliver(function_client("email"), failed)
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("False", "EmailNotConfigured")


def test_password_is_never_sent_without_encryption(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "password").write_text(PASSWORD)
    monkeypatch.setenv("SMTP_USERNAME", "tekton")
    monkeypatch.setenv("SMTP_PASSWORD_FILE", str(tmp_path / "password"))
    failed, ref = failed_run(kube)
    deliver(function_client("email"), failed)
    assert condition(kube, ref)["reason"] == "EmailNotConfigured"
    assert "clear text" in condition(kube, ref)["message"]


def test_a_relay_without_login_ignores_an_absent_password_file(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD_FILE", "/nonexistent/smtp/password")  # optional Secret, not mounted
    failed, _ = failed_run(kube)
    deliver(function_client("email"), failed)
    assert len(mailbox.messages) == 1


def test_a_login_without_its_password_file_is_recorded(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_SECURITY", "starttls")
    monkeypatch.setenv("SMTP_USERNAME", "tekton")
    monkeypatch.setenv("SMTP_PASSWORD_FILE", "/nonexistent/smtp/password")
    failed, ref = failed_run(kube)
    deliver(function_client("email"), failed)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "EmailNotConfigured")
    assert "SMTP_PASSWORD_FILE" in cond["message"]
    assert not mailbox.messages


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        (
            "SMTP_CA_FILE",
            "/nonexistent/ca.pem",
            "SMTP_CA_FILE names /nonexistent/ca.pem, which does not exist",
        ),
        ("SMTP_CA", "not a certificate", "SMTP_CA(_FILE) holds no usable PEM certificate"),
    ],
)
def test_an_unusable_ca_is_recorded(
    kube: MemoryRunClient,
    mailbox: Mailbox,
    deliver: Deliver,
    *,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    said: str,
) -> None:
    monkeypatch.setenv(variable, value)
    failed, ref = failed_run(kube)
    deliver(function_client("email"), failed)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "EmailNotConfigured")
    assert said in cond["message"]
    assert not mailbox.messages


def test_unreachable_relay_is_temporary(
    kube: MemoryRunClient, smtp_env: None, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(free_port()))  # nobody listens there
    failed, ref = failed_run(kube)
    assert deliver(function_client("email"), failed).status_code == 503
    assert condition(kube, ref)["reason"] == "SMTPUnreachable"


def test_starttls_missing_on_the_relay_is_a_configuration_error(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_SECURITY", "starttls")
    failed, ref = failed_run(kube)
    deliver(function_client("email"), failed)
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "SMTPMisconfigured")
    assert "STARTTLS" in cond["message"]
    assert not mailbox.messages


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    server: ssl.SSLContext


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    """A private CA and a server certificate for 127.0.0.1 signed by it."""
    crypto = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(common: str) -> Any:
        return crypto.Name([crypto.NameAttribute(NameOID.COMMON_NAME, common)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        crypto.CertificateBuilder()
        .subject_name(name("test CA"))
        .issuer_name(name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(crypto.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(crypto.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            crypto.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(crypto.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        crypto.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())
        .serial_number(crypto.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            crypto.SubjectAlternativeName([crypto.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(
            crypto.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "server.pem").write_bytes(server.public_bytes(pem))
    (tmp_path / "server.key").write_bytes(
        server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    return Certificates(tmp_path / "ca.pem", context)


@pytest.mark.parametrize("given_as", ["SMTP_CA_FILE", "SMTP_CA"])
def test_starttls_with_a_private_ca_and_login(
    kube: MemoryRunClient,
    smtp_env: None,
    deliver: Deliver,
    *,
    monkeypatch: pytest.MonkeyPatch,
    certificates: Certificates,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    given_as: str,
) -> None:
    box = Mailbox()
    controller = serve_smtp(
        box,
        monkeypatch,
        tls_context=certificates.server,
        require_starttls=True,
        authenticator=box.authenticate,
        auth_required=True,
    )
    try:
        (tmp_path / "password").write_text(PASSWORD + "\n")
        monkeypatch.setenv("SMTP_USERNAME", "tekton")
        monkeypatch.setenv("SMTP_PASSWORD_FILE", str(tmp_path / "password"))
        if given_as == "SMTP_CA":  # the PEM itself, e.g. from a ConfigMap key
            monkeypatch.setenv("SMTP_CA", certificates.ca_file.read_text())
        else:
            monkeypatch.setenv("SMTP_CA_FILE", str(certificates.ca_file))
        caplog.set_level(logging.DEBUG)
        failed, ref = failed_run(kube)
        assert deliver(function_client("email"), failed).status_code == 200
    finally:
        controller.stop()
    assert box.logins == ["tekton"]
    assert len(box.messages) == 1
    assert condition(kube, ref)["status"] == "True"
    assert PASSWORD not in caplog.text
    assert PASSWORD not in json.dumps(kube.runs[ref])


def test_a_relay_certificate_from_an_unknown_ca_is_refused(
    kube: MemoryRunClient,
    smtp_env: None,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
    certificates: Certificates,
) -> None:
    box = Mailbox()
    controller = serve_smtp(box, monkeypatch, tls_context=certificates.server, require_starttls=True)
    try:
        failed, ref = failed_run(kube)
        deliver(function_client("email"), failed)
    finally:
        controller.stop()
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "SMTPCertificateRejected")
    assert not box.messages


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_credentials_echoed_by_the_relay_appear_in_no_answer_record_log_or_event(
    kube: MemoryRunClient,
    smtp_env: None,
    deliver: Deliver,
    *,
    monkeypatch: pytest.MonkeyPatch,
    certificates: Certificates,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    mechanism: str,
) -> None:
    relay = EchoingRelay()
    other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[mechanism]
    controller = serve_smtp(
        relay,
        monkeypatch,
        tls_context=certificates.server,
        require_starttls=True,
        auth_exclude_mechanism=[other, "CRAM-MD5"],
    )
    try:
        (tmp_path / "password").write_text(PASSWORD + "\n")
        monkeypatch.setenv("SMTP_SECURITY", "starttls")
        monkeypatch.setenv("SMTP_USERNAME", "tekton")
        monkeypatch.setenv("SMTP_PASSWORD_FILE", str(tmp_path / "password"))
        monkeypatch.setenv("SMTP_CA_FILE", str(certificates.ca_file))
        for logger in ("common", "functions"):  # not aiosmtpd's, which logs the echo it sends
            caplog.set_level(logging.DEBUG, logger=logger)
        failed, ref = failed_run(kube)
        answer = deliver(function_client("email"), failed)
    finally:
        controller.stop()

    (echo,) = relay.echoed
    assert PASSWORD in echo, "the relay echoed the password"
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("False", "SMTPAuthenticationFailed")
    assert "refused AUTH" in cond["message"]
    assert "[REDACTED]" in cond["message"]
    credentials = [
        PASSWORD,
        base64.b64encode(PASSWORD.encode()).decode(),
        base64.b64encode(f"\0tekton\0{PASSWORD}".encode()).decode(),
    ]
    produced = written_texts(answer, kube, capsys, caplog)
    assert kube.events, "the failure is reported as a Kubernetes Event"
    assert [(where, c[:4]) for where, text in produced.items() for c in credentials if c in text] == []


# -- templates and the failed steps' logs --------------------------------------------------------------


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return mount_templates(
        tmp_path,
        monkeypatch,
        {
            "short.j2": "{{ run.definition }} {{ run.phase }} <see {{ links.run_url }}>\n"
            "{% for t in failed_tasks %}* {{ t.name }} ({{ t.reason }})\n{% endfor %}",
            "evil.email.j2": "{{ ''.__class__.__base__.__subclasses__() }}",
        },
    )


def test_a_template_writes_the_mails_body(
    kube: MemoryRunClient, mailbox: Mailbox, templates: Path, deliver: Deliver
) -> None:
    failed, ref = failed_run(kube, template="short")

    assert deliver(function_client("email"), failed).status_code == 200

    (message,) = mailbox.messages
    assert message["Subject"] == "[Tekton] Failed: PipelineRun ci/build-and-test-run-q4m9z (build-and-test)"
    text, markup = bodies(message)
    lines = text.splitlines()
    assert lines == [
        f"build-and-test failed <see {LINK}>",
        "* unit-tests (StepFailed)",
        "* build-image (Skipped)",
    ]
    assert "&lt;see " in markup
    assert "<see" not in markup
    assert (condition(kube, ref)["status"], condition(kube, ref)["reason"]) == ("True", "Reported")


def test_a_template_reaching_for_python_internals_mails_the_default_body_and_says_so(
    kube: MemoryRunClient, mailbox: Mailbox, templates: Path, deliver: Deliver
) -> None:
    failed, ref = failed_run(kube, template="evil")

    assert deliver(function_client("email"), failed).status_code == 200

    (message,) = mailbox.messages
    text, _ = bodies(message)
    assert "unit-tests: StepFailed" in text
    assert "subclasses" not in text
    cond = condition(kube, ref)
    assert (cond["status"], cond["reason"]) == ("True", "TemplateFailed")
    assert cond["message"].startswith(
        "mailed failed to 1 recipient(s); template 'evil' failed (SecurityError: access to attribute "
        "'__class__' of 'str' object is unsafe.)"
    )


def test_the_failed_steps_last_lines_are_in_the_body(
    kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver
) -> None:
    failed, _ = failed_run(kube, **{"log-lines": "2"})
    log_failed_step(kube, *FAILING_TEST)

    assert deliver(function_client("email"), failed).status_code == 200

    (message,) = mailbox.messages
    text, markup = bodies(message)
    assert text.splitlines()[-5:] == [
        "The failed steps' last lines:",
        "",
        "Task unit-tests, step run-tests (TaskRun build-and-test-run-q4m9z-unit-tests), last 2 lines:",
        "        widget_test.go:42: <pushing> with [REDACTED]",
        "    --- FAIL: TestWidget (0.01s)",
    ]
    assert "widget_test.go:42: &lt;pushing&gt; with [REDACTED]" in markup
    assert LOG_TOKEN not in message.as_string()


def test_without_log_lines_no_log_is_read(kube: MemoryRunClient, mailbox: Mailbox, deliver: Deliver) -> None:
    failed, _ = failed_run(kube)
    log_failed_step(kube, *FAILING_TEST)

    assert deliver(function_client("email"), failed).status_code == 200

    assert not pod_log_reads(kube)
    assert "last lines" not in bodies(mailbox.messages[0])[0]
