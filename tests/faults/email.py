"""Email in the fault matrix: an aiosmtpd relay (STARTTLS and AUTH) and its replies at each step."""

from __future__ import annotations

import ssl
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.support.faults import NotApplicable, Refused, Script, Service, Silent, permanent, rows, transient
from tests.support.receiver import free_port
from tests.support.tiers import unavailable
from tests.support.tls import make_certificates

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    AIOSMTPD_MISSING = ""
except ImportError as e:  # pragma: no cover - aiosmtpd is in the test extras
    AIOSMTPD_MISSING = str(e)


@dataclass(frozen=True)
class SmtpReply:
    """The relay's reply at one step of the SMTP dialogue, instead of accepting it."""

    step: Literal["auth", "mail", "rcpt", "data"]
    reply: str


SMTP_HAS_NO_HTTP = NotApplicable(
    "SMTP has no HTTP statuses: relays answer 4xx replies (421/450/451/452/454, transient) and "
    "5xx replies (535/550/553/554, permanent); see the email-smtp-* rows"
)


@dataclass
class Relay:
    """An aiosmtpd handler: accepts mail unless a reply is scripted for a step of the dialogue."""

    password: str
    replies: dict[str, list[str]] = field(default_factory=dict)
    messages: list[bytes] = field(default_factory=list)
    sessions: list[Any] = field(default_factory=list)
    """Every session that logged in or tried to (a login comes first: the relay requires it)."""
    refused_logins: dict[int, str] = field(default_factory=dict)
    echo: str | None = None
    """A reply code: the next login is refused with a reply that repeats the credentials."""

    def take(self, step: str) -> str | None:
        queued = self.replies.get(step) or []
        return queued.pop(0) if queued else None

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        if not any(known is session for known in self.sessions):
            self.sessions.append(session)
        # smtplib tries each mechanism the relay offers; a relay refuses the session, not one of them.
        if self.echo is not None and isinstance(data, LoginPassword):
            said = f"{self.echo} 5.7.8 refused {data.login.decode()} {data.password.decode()}"
            self.refused_logins[id(session)] = said
        reply = self.refused_logins.get(id(session)) or self.take("auth")
        if reply is not None:
            self.refused_logins[id(session)] = reply
            return AuthResult(success=False, handled=False, message=reply)
        ok = isinstance(data, LoginPassword) and data.password == self.password.encode()
        return AuthResult(success=ok)

    async def handle_MAIL(  # noqa: N802 -- aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.take("mail")
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802 -- aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.take("rcpt")
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 -- aiosmtpd's name
        reply = self.take("data")
        if reply is not None:
            return reply
        self.messages.append(envelope.original_content)
        return "250 Message accepted for delivery"


class Email(Service):
    """A relay that requires STARTTLS and a login, as production relays do (so 535 can happen)."""

    name = "email"
    claims = True  # a mail cannot be taken back: claimed before it is handed to the relay

    def start(self, stack: ExitStack) -> None:
        if AIOSMTPD_MISSING:
            unavailable(f"aiosmtpd is not importable ({AIOSMTPD_MISSING}); pip install -e '.[test]'")
        certificates = make_certificates(self.tmp_path, "localhost")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(certificates.cert_file, certificates.key_file)
        self.relay = Relay(password="smtp-fault-matrix-password")
        controller = Controller(
            self.relay,
            hostname="127.0.0.1",
            port=free_port(),
            tls_context=tls,
            require_starttls=True,
            authenticator=self.relay.authenticate,
            auth_required=True,
        )
        controller.start()
        stack.callback(controller.stop)
        self.port = int(controller.port)
        for name, value in {
            "SMTP_FROM": "Tekton CI <ci@example.org>",
            "SMTP_SECURITY": "starttls",
            "SMTP_USERNAME": "tekton",
            "SMTP_PASSWORD": self.relay.password,
            "SMTP_CA_FILE": str(certificates.ca_file),
        }.items():
            self.monkeypatch.setenv(name, value)
        self.divert(None)

    def annotations(self) -> dict[str, str]:
        return {"to": "dev@example.org", "on": "running"}

    def apply(self, script: Script) -> None:
        if not isinstance(script, SmtpReply):
            self.unsupported(script)
        self.relay.replies.setdefault(script.step, []).append(script.reply)

    def calls(self) -> int:
        return len(self.relay.sessions)

    def effects(self) -> int:
        return len(self.relay.messages)

    def credentials(self) -> list[str]:
        return [self.relay.password]

    def echo_credentials(self, status: int) -> None:
        self.relay.echo = "454" if status >= 500 else "535"  # SMTP's temporary and permanent refusals

    def divert(self, address: tuple[str, int] | None) -> None:
        host, port = ("localhost", self.port) if address is None else address
        self.monkeypatch.setenv("SMTP_HOST", host)
        self.monkeypatch.setenv("SMTP_PORT", str(port))


SERVICE = Email
ROWS = rows(
    "email",
    {
        "refused": (Refused(), transient("SMTPUnreachable")),
        "timeout": (Silent(), transient("SMTPTimeout")),
        **dict.fromkeys(("500", "502", "503", "429-retry-after", "429"), SMTP_HAS_NO_HTTP),
        **dict.fromkeys(("401", "403", "404", "422"), SMTP_HAS_NO_HTTP),
        "smtp-421-at-mail": (
            SmtpReply("mail", "421 4.7.0 Too many connections, closing"),
            transient("SMTPTemporaryFailure"),
        ),
        "smtp-421-at-data": (
            SmtpReply("data", "421 4.3.2 Service shutting down"),
            transient("SMTPTemporaryFailure"),
        ),
        "smtp-450-at-rcpt": (
            SmtpReply("rcpt", "450 4.2.1 Mailbox busy, try again later"),
            transient("SMTPTemporaryFailure"),
        ),
        "smtp-451-at-data": (
            SmtpReply("data", "451 4.3.0 Local error in processing"),
            transient("SMTPTemporaryFailure"),
        ),
        "smtp-452-at-rcpt": (
            SmtpReply("rcpt", "452 4.5.3 Too many recipients"),
            transient("SMTPTemporaryFailure"),
        ),
        "smtp-454-at-auth": (
            SmtpReply("auth", "454 4.7.0 Temporary authentication failure"),
            transient("SMTPTemporaryFailure"),
        ),
        "smtp-535-at-auth": (
            SmtpReply("auth", "535 5.7.8 Authentication credentials invalid"),
            permanent("SMTPAuthenticationFailed"),
        ),
        "smtp-550-at-rcpt": (
            SmtpReply("rcpt", "550 5.1.1 No such user"),
            permanent("SMTPRecipientsRefused"),
        ),
        "smtp-553-at-mail": (
            SmtpReply("mail", "553 5.1.8 Sender address rejected"),
            permanent("SMTPRejected"),
        ),
        "smtp-554-at-data": (
            SmtpReply("data", "554 5.7.1 Message rejected as spam"),
            permanent("SMTPRejected"),
        ),
    },
)
