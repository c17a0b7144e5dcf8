"""Hand a message to the SMTP relay the settings name, and classify what goes wrong.

Settings (``SmtpSettings``): ``SMTP_HOST``, ``SMTP_PORT``, ``SMTP_SECURITY`` (``starttls`` by
default, ``tls`` or ``none``), ``SMTP_USERNAME`` with ``SMTP_PASSWORD`` (or ``SMTP_PASSWORD_FILE``),
``SMTP_FROM``, ``SMTP_CA`` (or ``SMTP_CA_FILE``: the PEM of a private CA that signed the relay's
certificate) and ``SMTP_TIMEOUT_SECONDS``. Credentials are never sent over an unencrypted
connection.

SMTP is not HTTP, so its replies are classified here: 4xx replies are temporary, 5xx permanent.
Timeouts and unreachable relays read as the shared fault table words them (``SMTPTimeout``,
``SMTPUnreachable``).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr

from common import Faults, PermanentError, ServiceSettings, TemporaryError
from common.errors import IntegrationError, clip
from common.redaction import redact
from functions.email.addresses import sender

FAULTS = Faults("SMTP")
MAX_REPLY = 300
"""Characters of a relay's reply kept in a message."""
Security = Literal["starttls", "tls", "none"]
DEFAULT_PORTS: dict[Security, int] = {"starttls": 587, "tls": 465, "none": 25}
Refused = dict[str, tuple[int, bytes]]


def _lowered(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


class SmtpSettings(ServiceSettings):
    """``SMTP_*``: the relay, how to reach it and log in, and the sender."""

    prefix: ClassVar[str] = "SMTP"
    service: ClassVar[str] = "Email"

    host: str | None = None
    port: int | None = Field(None, gt=0, le=65535)
    """Default: 587 for ``starttls``, 465 for ``tls``, 25 for ``none``."""
    security: Annotated[Security, BeforeValidator(_lowered)] = "starttls"
    username: str | None = None
    """Logs in when set; the base class remembers the password together with it (AUTH PLAIN)."""
    password: SecretStr | None = None
    from_: Annotated[str, AfterValidator(sender)] | None = Field(None, alias="SMTP_FROM")
    """``ci@example.org`` or ``Tekton CI <ci@example.org>``; the envelope sender is its address."""
    ca: str | None = None
    """PEM text of the CA(s) to trust instead of the system's; usually ``SMTP_CA_FILE``."""

    @property
    def relay(self) -> str:
        return f"{self.host}:{self.port or DEFAULT_PORTS[self.security]}"

    def checked(self) -> SmtpSettings:
        """These settings, if they can work together; else ``EmailNotConfigured`` naming why."""
        self.require("host", "from_")
        username, password = self.variable("username"), self.variable("password")
        if self.username and self.security == "none":
            raise self.not_configured(
                f"{username} is set with {self.variable('security')}=none, which would send the SMTP "
                "password in clear text: use starttls or tls"
            )
        if self.username and self.password is None:
            raise self.not_configured(f"{username} is set without {password}(_FILE)", "password")
        if self.unreadable("ca"):
            raise self.not_configured(f"cannot use {self.variable('ca')}(_FILE)", "ca")
        return self

    def tls_context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cadata=self.ca)
        except (ssl.SSLError, ValueError) as e:
            raise self.not_configured(
                f"{self.variable('ca')}(_FILE) holds no usable PEM certificate ({type(e).__name__})"
            ) from e


def send(settings: SmtpSettings, message: EmailMessage) -> Refused:
    """Deliver ``message`` to the relay; return the recipients it refused while accepting others."""
    context = settings.tls_context()
    try:
        return _send(settings, message, context)
    except Exception as e:
        raise classify(e, settings) from e


def _send(settings: SmtpSettings, message: EmailMessage, context: ssl.SSLContext) -> Refused:
    assert settings.host is not None
    port, timeout = settings.port or DEFAULT_PORTS[settings.security], settings.timeout_seconds
    smtp: smtplib.SMTP
    if settings.security == "tls":
        smtp = smtplib.SMTP_SSL(settings.host, port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(settings.host, port, timeout=timeout)
    with smtp:
        if settings.security == "starttls":
            smtp.starttls(context=context)
        if settings.username and settings.password:
            smtp.login(settings.username, settings.password.get_secret_value())
        return smtp.send_message(message)


def classify(error: Exception, settings: SmtpSettings) -> IntegrationError:
    """The runtime error for a failed delivery: 4xx and network trouble retry, 5xx do not."""
    relay = settings.relay
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        detail = describe_refused(error.recipients)
        if any(400 <= code < 500 for code in codes):
            return TemporaryError("SMTPTemporaryFailure", f"{relay} deferred every recipient: {detail}")
        return PermanentError("SMTPRecipientsRefused", f"{relay} refused every recipient: {detail}")
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return PermanentError(
            "SMTPMisconfigured",
            f"{relay}: {error}; check {settings.variable('security')} and {settings.variable('username')}",
        )
    if isinstance(error, smtplib.SMTPResponseException):
        said = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) else ""
        what = f"{relay} answered {error.smtp_code} {_reply(said)}".rstrip()
        if isinstance(error, smtplib.SMTPAuthenticationError) and error.smtp_code >= 500:
            return PermanentError(
                "SMTPAuthenticationFailed", f"{what}; check {settings.variable('username')} and the password"
            )
        if 500 <= error.smtp_code < 600:
            return PermanentError("SMTPRejected", what)
        return TemporaryError("SMTPTemporaryFailure", what)
    if isinstance(error, ssl.SSLCertVerificationError):
        return PermanentError(
            "SMTPCertificateRejected",
            f"{relay}: {error.verify_message}; set {settings.variable('ca')}(_FILE) for a private CA",
        )
    what = f"deliver mail through {relay}"
    if isinstance(error, TimeoutError) or (
        # smtplib turns a reply that does not come in time into "Connection unexpectedly closed"
        isinstance(error, smtplib.SMTPServerDisconnected) and isinstance(error.__context__, TimeoutError)
    ):
        return FAULTS.timeout(what, settings.timeout_seconds)
    if isinstance(error, OSError):  # includes smtplib.SMTPServerDisconnected, ssl.SSLError, DNS errors
        return FAULTS.unreachable(what, error)
    raise error


def _reply(text: str) -> str:
    """A relay's reply for a message: redacted before it is cut, so no cut hides part of a secret."""
    return clip(redact(" ".join(text.split())), MAX_REPLY)


def describe_refused(refused: Refused) -> str:
    return clip(
        "; ".join(
            f"{address} ({code} {_reply(reply.decode('utf-8', 'replace'))})"
            for address, (code, reply) in refused.items()
        ),
        500,
    )
