"""Hand a message to the SMTP relay named by the environment, and classify what goes wrong.

Settings: ``SMTP_HOST``, ``SMTP_PORT``, ``SMTP_SECURITY`` (``starttls`` by default, ``tls`` or
``none``), ``SMTP_USERNAME`` with ``SMTP_PASSWORD_FILE`` (or ``SMTP_PASSWORD``), ``SMTP_FROM``,
and ``SMTP_CA_FILE`` for a relay whose certificate a private CA signed. Credentials are never
sent over an unencrypted connection. Every network step is bounded by ``TIMEOUT_SECONDS``.

4xx replies, dropped connections and timeouts are temporary; 5xx replies are permanent.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal

from common import PermanentError, TemporaryError
from common.errors import IntegrationError, clip
from common.secrets import read_secret
from functions.email.addresses import sender

TIMEOUT_SECONDS = 10.0
Security = Literal["starttls", "tls", "none"]
DEFAULT_PORTS: dict[Security, int] = {"starttls": 587, "tls": 465, "none": 25}
_SECURITY: dict[str, Security] = {"starttls": "starttls", "tls": "tls", "none": "none"}
Refused = dict[str, tuple[int, bytes]]


def _not_configured(message: str) -> PermanentError:
    return PermanentError("EmailNotConfigured", message)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: Security
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None

    @classmethod
    def from_env(cls) -> SmtpSettings:
        host, sender_value = os.environ.get("SMTP_HOST", "").strip(), os.environ.get("SMTP_FROM", "").strip()
        if not host or not sender_value:
            raise _not_configured("the email function needs SMTP_HOST and SMTP_FROM")
        requested = os.environ.get("SMTP_SECURITY", "starttls").strip().lower()
        security = _SECURITY.get(requested)
        if security is None:
            raise _not_configured(f"SMTP_SECURITY must be starttls, tls or none, not {requested[:20]!r}")
        port = os.environ.get("SMTP_PORT", "").strip()
        if port and not port.isdigit():
            raise _not_configured("SMTP_PORT must be a port number")
        username = os.environ.get("SMTP_USERNAME", "").strip() or None
        password = None
        if username:
            if security == "none":
                raise _not_configured("SMTP_SECURITY=none would send the SMTP password in clear text")
            try:
                password = read_secret("SMTP_PASSWORD")
            except OSError as e:
                raise _not_configured(f"cannot read SMTP_PASSWORD_FILE: {e.strerror}") from e
            if not password:
                raise _not_configured("SMTP_USERNAME is set without SMTP_PASSWORD_FILE")
        try:
            from_address = sender(sender_value)
        except ValueError as e:
            raise _not_configured(str(e)) from e
        return cls(
            host=host,
            port=int(port) if port else DEFAULT_PORTS[security],
            security=security,
            sender=from_address,
            username=username,
            password=password,
            ca_file=os.environ.get("SMTP_CA_FILE") or None,
        )


def send(settings: SmtpSettings, message: EmailMessage) -> Refused:
    """Deliver ``message`` to the relay; return the recipients it refused while accepting others."""
    try:
        context = ssl.create_default_context(cafile=settings.ca_file)
    except OSError as e:  # includes ssl.SSLError for a file that holds no certificate
        raise _not_configured(f"cannot use SMTP_CA_FILE {settings.ca_file}: {e}") from e
    try:
        return _send(settings, message, context)
    except Exception as e:
        raise classify(e, f"{settings.host}:{settings.port}") from e


def _send(settings: SmtpSettings, message: EmailMessage, context: ssl.SSLContext) -> Refused:
    smtp: smtplib.SMTP
    if settings.security == "tls":
        smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=TIMEOUT_SECONDS, context=context)
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT_SECONDS)
    with smtp:
        if settings.security == "starttls":
            smtp.starttls(context=context)
        if settings.username and settings.password:
            smtp.login(settings.username, settings.password)
        return smtp.send_message(message)


def classify(error: Exception, relay: str) -> IntegrationError:
    """The runtime error for a failed delivery: 4xx and network trouble retry, 5xx do not."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        detail = describe_refused(error.recipients)
        if any(400 <= code < 500 for code in codes):
            return TemporaryError("SMTPTemporaryFailure", f"{relay} deferred every recipient: {detail}")
        return PermanentError("SMTPRecipientsRefused", f"{relay} refused every recipient: {detail}")
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return PermanentError("SMTPMisconfigured", f"{relay}: {error}; check SMTP_SECURITY and SMTP_USERNAME")
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) else ""
        what = f"{relay} answered {error.smtp_code} {clip(text, 300)}".rstrip()
        if isinstance(error, smtplib.SMTPAuthenticationError) and error.smtp_code >= 500:
            return PermanentError("SMTPAuthenticationFailed", f"{what}; check SMTP_USERNAME and the password")
        if 500 <= error.smtp_code < 600:
            return PermanentError("SMTPRejected", what)
        return TemporaryError("SMTPTemporaryFailure", what)
    if isinstance(error, ssl.SSLCertVerificationError):
        return PermanentError(
            "SMTPCertificateRejected", f"{relay}: {error.verify_message}; set SMTP_CA_FILE for a private CA"
        )
    if isinstance(error, TimeoutError) or (
        # smtplib turns a reply that does not come in time into "Connection unexpectedly closed"
        isinstance(error, smtplib.SMTPServerDisconnected) and isinstance(error.__context__, TimeoutError)
    ):
        return TemporaryError("SMTPTimeout", f"{relay} did not answer within {TIMEOUT_SECONDS:g}s")
    if isinstance(error, OSError):  # includes smtplib.SMTPServerDisconnected, ssl.SSLError, DNS errors
        return TemporaryError("SMTPUnreachable", f"could not deliver through {relay}: {type(error).__name__}")
    raise error


def describe_refused(refused: Refused) -> str:
    return clip(
        "; ".join(
            f"{address} ({code} {reply.decode('utf-8', 'replace')})"
            for address, (code, reply) in refused.items()
        ),
        500,
    )
