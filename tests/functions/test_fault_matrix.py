"""The fault matrix: for every integration, each failure class of its service and of Kubernetes gets
the right HTTP answer and the right condition on the run, and nothing is lost (DESIGN.md §1, §3).

``ROWS`` is the table. Each row says what the service really does for a class (an HTTP answer,
a Slack error code, an SMTP reply, a refused or silent connection) and what the function must
answer: 2xx with condition ``False`` for a permanent failure; 503, or 429 with ``Retry-After``,
with condition ``Unknown`` for a transient one. After a transient failure the same event is
delivered again and must report the run exactly once; after a permanent one a redelivery must not
call the service again. Where a class does not exist for a service the row says so (its id ends
in ``not-applicable``), says why, and is not run.

The Kubernetes side (``KUBE_FAULTS``) is injected with ``MemoryRunClient.before_request``, raising
what ``common.kube`` raises for the API server's answer.

Services are the loopback stand-ins (GitHub, Slack, GitLab), ``tests.support.receiver`` for
webhook and CloudEvent targets, and aiosmtpd (STARTTLS and AUTH) for email. Timeouts are made
short; nothing here sleeps.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any, ClassVar, Literal, NoReturn

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from common import registry, samples, targets
from common.kube import _translated
from common.runclient import MemoryRunClient, RunRef
from common.standins.github import GitHubStandIn
from tests.conftest import Deliver, add_run, body, function_client, written_texts
from tests.support.policies import LOOPBACK_RECEIVERS, use_policy
from tests.support.receiver import IPAddress, Receiver, free_port
from tests.support.standins.gitlab import GitLabStandIn
from tests.support.standins.slack import SlackStandIn
from tests.support.tiers import unavailable
from tests.support.tls import make_certificates

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    AIOSMTPD_MISSING = ""
except ImportError as e:  # pragma: no cover - aiosmtpd is in the test extras
    AIOSMTPD_MISSING = str(e)

INTEGRATIONS = tuple(registry.names())
"""Every installed integration: each must have a ``Service`` below and a row for every class."""
CLASSES = ("refused", "timeout", "500", "502", "503", "429-retry-after", "429", "401", "403", "404", "422")
"""The failure classes every integration is checked for; services add rows of their own."""
SHA = "9f1c2e7b4a6d8e0f1a2b3c4d5e6f708192a3b4c5"
FAR_RESET = "4102444800"
"""An ``X-RateLimit-Reset`` in 2100: the answer caps the wait at an hour."""


# -- what a service does ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """Nothing listens where the service should be: the connection is refused."""


@dataclass(frozen=True)
class Silent:
    """The service accepts the connection and never answers: the request times out."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer from the service (GitHub, GitLab, a webhook or CloudEvent target)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SlackError:
    """Slack's answer to ``chat.postMessage``: an error code, on HTTP ``status``."""

    code: str
    status: int = 200
    retry_after: int | None = None


@dataclass(frozen=True)
class SmtpReply:
    """The relay's reply at one step of the SMTP dialogue, instead of accepting it."""

    step: Literal["auth", "mail", "rcpt", "data"]
    reply: str


@dataclass(frozen=True)
class NotApplicable:
    """The class does not exist for this service."""

    why: str


Script = Refused | Silent | Answer | SlackError | SmtpReply


@dataclass(frozen=True)
class Expect:
    http: int
    status: Literal["False", "Unknown"]
    reason: str
    retry_after: int | None = None

    @property
    def transient(self) -> bool:
        return self.status == "Unknown"


def transient(reason: str, retry_after: int | None = None) -> Expect:
    """503, or 429 with ``Retry-After``; condition ``Unknown``; the redelivery must succeed."""
    return Expect(429 if retry_after else 503, "Unknown", reason, retry_after)


def permanent(reason: str) -> Expect:
    """2xx; condition ``False``; a redelivery must not call the service again."""
    return Expect(200, "False", reason)


@dataclass(frozen=True)
class Row:
    integration: str
    fault: str
    """One of ``CLASSES``, or a class only this service has."""
    script: Script | NotApplicable
    expect: Expect | None = None

    @property
    def id(self) -> str:
        return f"{self.integration}-{self.fault}" + (
            "-not-applicable" if isinstance(self.script, NotApplicable) else ""
        )


def rows(integration: str, table: dict[str, tuple[Script, Expect] | NotApplicable]) -> list[Row]:
    return [
        Row(integration, fault, cell) if isinstance(cell, NotApplicable) else Row(integration, fault, *cell)
        for fault, cell in table.items()
    ]


SMTP_HAS_NO_HTTP = NotApplicable(
    "SMTP has no HTTP statuses: relays answer 4xx replies (421/450/451/452/454, transient) and "
    "5xx replies (535/550/553/554, permanent); see the email-smtp-* rows"
)


TARGET_FAULTS: dict[str, tuple[Script, Expect] | NotApplicable] = {
    "refused": (Refused(), transient("TargetUnreachable")),
    "timeout": (Silent(), transient("TargetTimeout")),
    "500": (Answer(500), transient("TargetUnavailable")),
    "502": (Answer(502), transient("TargetUnavailable")),
    "503": (Answer(503), transient("TargetUnavailable")),
    "503-retry-after": (Answer(503, {"Retry-After": "20"}), transient("TargetUnavailable", 20)),
    "429-retry-after": (Answer(429, {"Retry-After": "17"}), transient("TargetRateLimited", 17)),
    "429": (Answer(429), transient("TargetRateLimited", 60)),
    "401": (Answer(401), permanent("TargetRejected")),
    "403": (Answer(403), permanent("TargetRejected")),
    "404": (Answer(404), permanent("TargetRejected")),
    "422": (Answer(422), permanent("TargetRejected")),
}
"""Webhook and CloudEvent share one sender (``common.targets``), so they answer alike."""

ROWS = [
    *rows(
        "github",
        {
            "refused": (Refused(), transient("GitHubUnreachable")),
            "timeout": (Silent(), transient("GitHubTimeout")),
            "500": (Answer(500), transient("GitHubUnavailable")),
            "502": (Answer(502), transient("GitHubUnavailable")),
            "503": (Answer(503), transient("GitHubUnavailable")),
            "503-retry-after": (Answer(503, {"Retry-After": "20"}), transient("GitHubUnavailable", 20)),
            # A 429 is always a secondary rate limit on GitHub.
            "429-retry-after": (Answer(429, {"Retry-After": "17"}), transient("GitHubRateLimited", 17)),
            # Without Retry-After and with requests left, GitHub says: wait at least a minute.
            "429": (Answer(429), transient("GitHubRateLimited", 60)),
            "403-primary-rate-limit": (
                Answer(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": FAR_RESET}),
                transient("GitHubRateLimited", 3600),
            ),
            "429-primary-rate-limit": (
                Answer(429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": FAR_RESET}),
                transient("GitHubRateLimited", 3600),
            ),
            "403-secondary-rate-limit": (
                Answer(403, {"Retry-After": "45"}),
                transient("GitHubRateLimited", 45),
            ),
            "401": (Answer(401), permanent("GitHubUnauthorized")),
            "403": (Answer(403), permanent("GitHubForbidden")),
            "404": (Answer(404), permanent("GitHubNotFound")),
            "422": (Answer(422), permanent("GitHubRejected")),
        },
    ),
    *rows(
        "slack",
        {
            "refused": (Refused(), transient("SlackUnreachable")),
            "timeout": (Silent(), transient("SlackTimeout")),
            "500": (SlackError("internal_error", 500), transient("SlackUnavailable")),
            "502": (SlackError("", 502), transient("SlackUnavailable")),  # a proxy's page: no Slack code
            "503": (SlackError("service_unavailable", 503), transient("SlackUnavailable")),
            "503-retry-after": (
                SlackError("service_unavailable", 503, retry_after=20),
                transient("SlackUnavailable", 20),
            ),
            "429-retry-after": (
                SlackError("ratelimited", 429, retry_after=17),
                transient("SlackRateLimited", 17),
            ),
            "429": (SlackError("ratelimited", 429), transient("SlackRateLimited", 60)),
            # The Web API answers HTTP 200 with ok:false for everything else, including its
            # per-app posting limit, which chat.postMessage documents as rate_limited.
            "200-rate_limited": (SlackError("rate_limited"), transient("SlackRateLimited", 60)),
            "200-fatal_error": (SlackError("fatal_error"), transient("SlackUnavailable")),
            "401": (SlackError("invalid_auth"), permanent("SlackUnauthorized")),
            "401-not_authed": (SlackError("not_authed"), permanent("SlackUnauthorized")),
            "401-token_revoked": (SlackError("token_revoked"), permanent("SlackUnauthorized")),
            "403": (SlackError("missing_scope"), permanent("SlackMissingScope")),
            "403-restricted_action": (SlackError("restricted_action"), permanent("SlackForbidden")),
            "404": (SlackError("channel_not_found"), permanent("SlackChannelNotFound")),
            "404-not_in_channel": (SlackError("not_in_channel"), permanent("SlackNotInChannel")),
            "422": (SlackError("invalid_blocks"), permanent("SlackRejected")),
        },
    ),
    *rows("webhook", TARGET_FAULTS),
    *rows("cloudevent", TARGET_FAULTS),
    *rows(
        "gitlab",
        {
            "refused": (Refused(), transient("GitLabUnreachable")),
            "timeout": (Silent(), transient("GitLabTimeout")),
            "500": (Answer(500), transient("GitLabUnavailable")),
            "502": (Answer(502), transient("GitLabUnavailable")),
            "503": (Answer(503), transient("GitLabUnavailable")),
            "503-retry-after": (Answer(503, {"Retry-After": "20"}), transient("GitLabUnavailable", 20)),
            "429-retry-after": (Answer(429, {"Retry-After": "17"}), transient("GitLabRateLimited", 17)),
            "429": (Answer(429), transient("GitLabRateLimited", 60)),
            # GitLab's own rate-limit headers: with nothing left, the reset time stands in for Retry-After.
            "429-ratelimit-reset": (
                Answer(429, {"RateLimit-Remaining": "0", "RateLimit-Reset": FAR_RESET}),
                transient("GitLabRateLimited", 3600),
            ),
            # GitLab answers 409 "Resource lock" under concurrent writes to one commit.
            "409-resource-lock": (Answer(409), transient("GitLabUnavailable")),
            "401": (Answer(401), permanent("GitLabUnauthorized")),
            "403": (Answer(403), permanent("GitLabForbidden")),
            "404": (Answer(404), permanent("GitLabNotFound")),
            "422": (Answer(422), permanent("GitLabRejected")),
        },
    ),
    *rows(
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
    ),
]


# -- the services ----------------------------------------------------------------------------------


@contextmanager
def silent_listener(host: str = "127.0.0.1", port: int = 0) -> Iterator[tuple[str, int]]:
    """A socket that listens and never accepts: connections open, requests are never answered."""
    with socket.socket() as sock:
        sock.bind((host, port))
        sock.listen(16)
        yield host, int(sock.getsockname()[1])


class Service:
    """One integration's service on loopback, the annotations that make a run use it, and ways
    to break it. Subclasses start the service in ``start`` and say how to point the function at
    another address (``divert``) and how to shorten its timeout."""

    name: ClassVar[str]
    claims: ClassVar[bool] = False
    """Whether the function claims the run before calling (a side effect that must not repeat)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stack: ExitStack) -> None:
        self.monkeypatch = monkeypatch
        self.tmp_path = tmp_path
        self.start(stack)

    def start(self, stack: ExitStack) -> None:
        raise NotImplementedError

    def annotations(self) -> dict[str, str]:
        raise NotImplementedError

    def apply(self, script: Script) -> None:
        """Make the service answer the function's next call as ``script`` says."""
        raise NotImplementedError

    def unsupported(self, script: Script) -> NoReturn:
        raise TypeError(f"{self.name} has no {type(script).__name__}: fix the table")

    def calls(self) -> int:
        """Requests (or SMTP sessions) that reached the service."""
        raise NotImplementedError

    def effects(self) -> int:
        """What the service did that users see: check runs, messages, deliveries, statuses, mails."""
        raise NotImplementedError

    def divert(self, address: tuple[str, int] | None) -> None:
        """Point the function at ``address``, or back at the service when ``None``."""
        raise NotImplementedError

    def shorten_timeout(self) -> None:
        """Shorten the integration's total deadline (its declared ``<PREFIX>_TIMEOUT_SECONDS``)."""
        declared = registry.load(self.name).integration
        assert declared is not None
        self.monkeypatch.setenv(declared.settings.variable("timeout_seconds"), "0.5")

    def credentials(self) -> list[str]:
        """The credentials the function holds for this service, which no text it writes may show."""
        raise NotImplementedError

    def echo_credentials(self, status: int) -> None:
        """Make the service answer the next call with ``status`` and a body echoing the credential
        the request carried (a misbehaving proxy or server does)."""
        raise NotImplementedError

    def event(self) -> dict[str, Any]:
        """A Tekton event about a running PipelineRun that asks for this integration only."""
        sample = samples.load("pipelinerun-running")
        _, run = samples.run_object(sample)
        run["metadata"]["annotations"] = {
            f"{self.name}.integrations.tekton.dev/{key}": value for key, value in self.annotations().items()
        }
        return sample

    @contextmanager
    def broken(self, script: Script) -> Iterator[None]:
        """The service fails the next call as ``script`` says; a refused or silent address is
        put back when the block ends, so the next delivery reaches the service."""
        if isinstance(script, Refused | Silent):
            with self._unavailable(script) as address:
                self.divert(address)
                try:
                    yield
                finally:
                    self.divert(None)
        else:
            self.apply(script)
            yield

    @contextmanager
    def _unavailable(self, script: Refused | Silent) -> Iterator[tuple[str, int]]:
        if isinstance(script, Refused):
            yield "127.0.0.1", free_port()
            return
        self.shorten_timeout()
        with silent_listener() as address:
            yield address


class GitHub(Service):
    name = "github"
    claims = True  # one check run per run: created once, under a claim

    def start(self, stack: ExitStack) -> None:
        self.standin = stack.enter_context(GitHubStandIn())
        self.token = "fault-matrix-github-credential"  # no well-known shape: only remembering masks it
        self.monkeypatch.setenv("GITHUB_TOKEN", self.token)
        self.divert(None)

    def annotations(self) -> dict[str, str]:
        return {"owner": "acme", "repo": "widget-service", "sha": SHA}

    def apply(self, script: Script) -> None:
        if not isinstance(script, Answer):
            self.unsupported(script)
        self.standin.fail_next(script.status, headers=script.headers)

    def calls(self) -> int:
        return len(self.standin.calls_to())

    def effects(self) -> int:
        with self.standin.lock:
            return len(self.standin.check_runs)

    def credentials(self) -> list[str]:
        return [self.token]

    def echo_credentials(self, status: int) -> None:
        self.standin.echo_credentials_next(status, as_json=True)

    def divert(self, address: tuple[str, int] | None) -> None:
        url = self.standin.url if address is None else f"http://{address[0]}:{address[1]}"
        self.monkeypatch.setenv("GITHUB_API_URL", url)


class Slack(Service):
    name = "slack"
    claims = True  # one message per run, posted once

    def start(self, stack: ExitStack) -> None:
        self.standin = stack.enter_context(SlackStandIn())
        self.token = "xoxb-fault-matrix-0123456789-abcdef"
        self.monkeypatch.setenv("SLACK_BOT_TOKEN", self.token)
        self.divert(None)

    def annotations(self) -> dict[str, str]:
        return {"channel": "#widget-ci"}

    def apply(self, script: Script) -> None:
        if not isinstance(script, SlackError):
            self.unsupported(script)
        self.standin.fail_next(
            script.code, status=script.status, retry_after=script.retry_after, method="chat.postMessage"
        )

    def calls(self) -> int:
        with self.standin.lock:
            return len(self.standin.calls)

    def effects(self) -> int:
        with self.standin.lock:
            return len(self.standin.messages)

    def credentials(self) -> list[str]:
        return [self.token]

    def echo_credentials(self, status: int) -> None:
        self.standin.echo_credentials_next(status, method="chat.postMessage")

    def divert(self, address: tuple[str, int] | None) -> None:
        url = self.standin.api_url if address is None else f"http://{address[0]}:{address[1]}/api/"
        self.monkeypatch.setenv("SLACK_API_URL", url)


class Target(Service):
    """A webhook or CloudEvent target: a loopback receiver named ``receiver.test``.

    The run's URL names the host, so the same event always goes to the same URL; what the name
    resolves to (``common.targets.resolve``, the tests' seam) is what a fault changes: another
    loopback address where nothing listens, or where a socket never answers, on the same port.
    """

    HOST = "receiver.test"
    claims = True  # one request per run state: each delivery is claimed first
    id_header: ClassVar[str]
    url_key: ClassVar[str]

    def start(self, stack: ExitStack) -> None:
        use_policy(self.monkeypatch, self.tmp_path, {"namespaces": {"ci": {self.name: LOOPBACK_RECEIVERS}}})
        self.receiver = stack.enter_context(Receiver())
        self.scripted = 0
        self.address = "127.0.0.1"
        self.monkeypatch.setattr(targets, "resolve", self._resolve)

    def _resolve(self, host: str, port: int) -> list[IPAddress]:
        assert host == self.HOST, host
        return [ip_address(self.address)]

    def annotations(self) -> dict[str, str]:
        return {self.url_key: f"http://{self.HOST}:{self.receiver.port}/hook"}

    def apply(self, script: Script) -> None:
        if not isinstance(script, Answer):
            self.unsupported(script)
        self.receiver.answer(script.status, script.headers, b"the target says no")
        self.scripted += 1

    def calls(self) -> int:
        return self.receiver.connections

    def effects(self) -> int:
        """Deliveries the target accepted, counted as receivers count them: by delivery id."""
        ids = [request.headers[self.id_header] for request in self.receiver.requests]
        assert len(set(ids)) <= 1, "every delivery of one run state carries the same id"
        return len(set(ids[self.scripted :]))  # the first requests got the scripted answers

    def divert(self, address: tuple[str, int] | None) -> None:
        self.address = "127.0.0.1" if address is None else address[0]

    def credentials(self) -> list[str]:
        return []

    def echo_credentials(self, status: int) -> None:
        self.receiver.answer(status, {}, b"you sent:", echo=True)
        self.scripted += 1

    @contextmanager
    def _unavailable(self, script: Refused | Silent) -> Iterator[tuple[str, int]]:
        port = self.receiver.port  # the URL's port; only the address behind the name changes
        if isinstance(script, Refused):
            yield "127.0.0.2", port  # loopback too, but the receiver listens on 127.0.0.1 only
            return
        self.shorten_timeout()
        with silent_listener("127.0.0.3", port) as address:
            yield address


class Webhook(Target):
    name = "webhook"
    id_header = "x-tekton-integrations-delivery"
    url_key = "url"

    def start(self, stack: ExitStack) -> None:
        secrets = self.tmp_path / "webhook-secrets"
        secrets.mkdir()
        (secrets / "default").write_bytes(self.SIGNING_KEY.encode())
        self.monkeypatch.setenv("WEBHOOK_SECRET_DIR", str(secrets))
        super().start(stack)

    SIGNING_KEY = "fault-matrix-signing-secret"

    def credentials(self) -> list[str]:
        return [self.SIGNING_KEY]


class CloudEvent(Target):
    name = "cloudevent"
    id_header = "ce-id"
    url_key = "target"


class GitLab(Service):
    name = "gitlab"

    def start(self, stack: ExitStack) -> None:
        self.token = "fault-matrix-gitlab-credential"  # no well-known shape: only remembering masks it
        self.standin = stack.enter_context(GitLabStandIn({"acme/widget-service": 17}, token=self.token))
        self.monkeypatch.setenv("GITLAB_TOKEN", self.token)
        self.divert(None)

    def annotations(self) -> dict[str, str]:
        return {"project": "acme/widget-service", "sha": SHA}

    def apply(self, script: Script) -> None:
        if not isinstance(script, Answer):
            self.unsupported(script)
        self.standin.fail_next(script.status, headers=script.headers)

    def calls(self) -> int:
        return len(self.standin.calls_to())

    def effects(self) -> int:
        return len(self.standin.states())

    def credentials(self) -> list[str]:
        return [self.token]

    def echo_credentials(self, status: int) -> None:
        self.standin.echo_credentials_next(status)

    def divert(self, address: tuple[str, int] | None) -> None:
        url = self.standin.url if address is None else f"http://{address[0]}:{address[1]}"
        self.monkeypatch.setenv("GITLAB_URL", url)


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


SERVICES: dict[str, type[Service]] = {
    service.name: service for service in (GitHub, Slack, Webhook, CloudEvent, GitLab, Email)
}
OpenService = Callable[[str], Service]


@pytest.fixture
def open_service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[OpenService]:
    """``open_service("slack")`` starts that integration's service and points the function at it."""
    with ExitStack() as stack:
        yield lambda name: SERVICES[name](monkeypatch, tmp_path, stack)


def record(kube: MemoryRunClient, ref: RunRef, integration: str) -> dict[str, Any] | None:
    value = (
        kube.runs[ref]["metadata"].get("annotations", {}).get(f"{integration}.integrations.tekton.dev/status")
    )
    return json.loads(value) if value else None


def condition(kube: MemoryRunClient, ref: RunRef, integration: str) -> tuple[str, str]:
    stored = record(kube, ref, integration)
    assert stored is not None, "no record on the run"
    first = stored["conditions"][0]
    return first["status"], first["reason"]


# -- the matrix ------------------------------------------------------------------------------------


def test_the_matrix_covers_every_class_for_every_integration() -> None:
    assert INTEGRATIONS, "the registry found no integration"
    assert set(INTEGRATIONS) <= set(SERVICES), f"no Service for {set(INTEGRATIONS) - set(SERVICES)}"
    cells = {(row.integration, row.fault): row for row in ROWS}
    missing = [(name, fault) for name in INTEGRATIONS for fault in CLASSES if (name, fault) not in cells]
    assert not missing, f"no row for {missing}"
    assert len(cells) == len(ROWS), "a cell appears twice"
    for row in ROWS:
        assert (row.expect is None) == isinstance(row.script, NotApplicable), row.id
        if isinstance(row.script, NotApplicable):
            assert row.fault in CLASSES, f"{row.id}: only a common class can be not applicable"


def _params() -> list[Any]:
    """The rows that exist for their service; the coverage test above accounts for the rest."""
    return [pytest.param(row, id=row.id) for row in ROWS if not isinstance(row.script, NotApplicable)]


@pytest.mark.parametrize("row", _params())
def test_service_fault(row: Row, kube: MemoryRunClient, deliver: Deliver, open_service: OpenService) -> None:
    assert row.expect is not None
    assert not isinstance(row.script, NotApplicable)
    expect = row.expect
    service = open_service(row.integration)
    event = service.event()
    ref = add_run(kube, event)
    client = function_client(row.integration)

    with service.broken(row.script):
        answer = deliver(client, event)

    assert (answer.status_code, body(answer).get("reason")) == (expect.http, expect.reason)
    assert answer.headers.get("Retry-After") == (str(expect.retry_after) if expect.retry_after else None)
    assert condition(kube, ref, row.integration) == (expect.status, expect.reason)
    assert [reason for _, reason, _ in kube.events] == ["IntegrationFailed"]
    assert service.effects() == 0, "the service did not accept anything"

    if expect.transient:  # nothing is lost: the same event, delivered again, reports the run once
        again = deliver(client, event)
        assert (again.status_code, body(again)["outcome"]) == (200, "reported")
        assert condition(kube, ref, row.integration)[0] == "True"
        assert service.effects() == 1
        assert body(deliver(client, event))["outcome"] == "ignored", "a third delivery is a duplicate"
        assert service.effects() == 1
    else:  # the record says why; the sender does not redeliver, and a duplicate calls nothing
        calls = service.calls()
        again = deliver(client, event)
        assert (again.status_code, body(again)["outcome"]) == (200, "ignored")
        assert service.calls() == calls
        assert condition(kube, ref, row.integration) == ("False", expect.reason)


# -- credentials echoed back ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 500])
@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_a_credential_echoed_by_the_service_leaves_in_no_text(  # noqa: PLR0917 -- fixtures
    integration: str,
    status: int,
    kube: MemoryRunClient,
    deliver: Deliver,
    open_service: OpenService,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A server or proxy that repeats the request's credential in a 4xx/5xx body: the credential is
    in no HTTP answer, record, Kubernetes Event or log line the function writes."""
    service = open_service(integration)
    if not service.credentials():
        pytest.skip(f"the {integration} function holds no credential")
    event = service.event()
    ref = add_run(kube, event)
    client = function_client(integration)
    service.echo_credentials(status)
    answer = deliver(client, event)

    assert answer.status_code in (200, 429, 503)
    assert condition(kube, ref, integration)[0] != "True", "the echo was the answer"
    texts = written_texts(answer, kube, capsys)
    for secret in service.credentials():
        for where, text in texts.items():
            assert secret not in text, f"the {integration} credential is in the {where}"


# -- Kubernetes ------------------------------------------------------------------------------------


def kube_error(raised: Exception) -> Exception:
    """What ``common.kube``'s client raises when the ``kubernetes`` library raises ``raised``."""
    try:
        with _translated(RunRef("PipelineRun", "ci", "build-and-test-run-x7k2p")):
            raise raised
    except Exception as translated:
        return translated
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class KubeFault:
    verbs: tuple[str, ...]
    """The requests that fail (Kubernetes Events are best effort and never fail the delivery)."""
    error: Exception
    http: int
    outcome: str
    reason: str


ALL_VERBS = ("get", "patch", "patch_status")
KUBE_FAULTS = {
    "404-run-deleted": KubeFault(("get",), ApiException(status=404, reason="Not Found"), 200, "ignored", ""),
    "409-conflict-forever": KubeFault(
        ("patch",), ApiException(status=409, reason="Conflict"), 503, "retry", "ConflictRetriesExhausted"
    ),
    "500": KubeFault(
        ALL_VERBS,
        ApiException(status=500, reason="Internal Server Error"),
        503,
        "retry",
        "KubernetesUnavailable",
    ),
    "unreachable": KubeFault(
        ALL_VERBS,
        urllib3.exceptions.MaxRetryError(  # what the kubernetes client raises when nothing listens
            urllib3.HTTPSConnectionPool("127.0.0.1", 6443),
            "/apis/tekton.dev/v1/namespaces/ci/pipelineruns/build-and-test-run-x7k2p",
            urllib3.exceptions.NewConnectionError(
                urllib3.connection.HTTPSConnection("127.0.0.1", 6443), "[Errno 111] Connection refused"
            ),
        ),
        503,
        "retry",
        "KubernetesUnavailable",
    ),
}


@pytest.mark.parametrize("fault", KUBE_FAULTS)
@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_kubernetes_fault(
    integration: str, fault: str, kube: MemoryRunClient, deliver: Deliver, open_service: OpenService
) -> None:
    case = KUBE_FAULTS[fault]
    service = open_service(integration)
    event = service.event()
    ref = add_run(kube, event)
    client = function_client(integration)
    error = kube_error(case.error)

    def fail(verb: str, _: RunRef) -> None:
        if verb in case.verbs:
            raise error

    kube.before_request = fail
    answer = deliver(client, event)
    kube.before_request = None

    assert (answer.status_code, body(answer)["outcome"], body(answer).get("reason", "")) == (
        case.http,
        case.outcome,
        case.reason,
    )
    assert record(kube, ref, integration) is None
    if fault == "409-conflict-forever" and not service.claims:
        # Without a claim the call is made before the record is written: once, not once per try.
        assert service.effects() == 1
    else:
        assert service.calls() == 0, "no call to the service before the run was read and claimed"
    if case.outcome == "ignored":
        return

    again = deliver(client, event)
    assert (again.status_code, body(again)["outcome"]) == (200, "reported")
    assert condition(kube, ref, integration)[0] == "True"
    assert service.effects() == 1


@pytest.mark.parametrize("fault", ["409-conflict-forever", "500"])
@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_kubernetes_failing_right_after_the_call_loses_nothing(
    integration: str, fault: str, kube: MemoryRunClient, deliver: Deliver, open_service: OpenService
) -> None:
    """The run is read (and claimed), the service is called, then every write of the record fails.

    Where a claim stays on the run, the redelivery on the same instance writes the record the
    call left unwritten (ids included) instead of waiting out the claim and calling again.
    """
    case = KUBE_FAULTS[fault]
    service = open_service(integration)
    event = service.event()
    ref = add_run(kube, event)
    client = function_client(integration)
    error = kube_error(case.error)
    allowed_patches = 1 if service.claims else 0  # the claim goes through
    patches = 0

    def fail_after_the_call(verb: str, _: RunRef) -> None:
        nonlocal patches
        if verb == "patch":
            patches += 1
            if patches > allowed_patches:
                raise error

    kube.before_request = fail_after_the_call
    answer = deliver(client, event)
    kube.before_request = None

    assert (answer.status_code, body(answer)["outcome"]) == (503, "retry")
    assert service.effects() == 1

    again = deliver(client, event)
    # Without a claim the call is repeated, as the same report: the same delivery id or
    # CloudEvent id, and GitLab answers a status already set with "Cannot transition".
    assert service.effects() == 1, "no second report"
    assert again.status_code == 200
    assert condition(kube, ref, integration)[0] == "True", "the redelivery records the report"
