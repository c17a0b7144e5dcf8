"""The fault matrix's machinery: fault classes, expectations, rows, and the ``Service`` base class.

Each installed integration has a module ``tests/faults/<name>.py`` that exports ``SERVICE`` (its
service on loopback, a ``Service`` subclass) and ``ROWS`` (what the service does for each class,
and what the function must answer); ``tests/functions/test_fault_matrix.py`` finds them by the
registry's names and fails for an integration without one.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any, ClassVar, Literal, NoReturn

import pytest

from common import registry, samples, targets
from tests.support.policies import LOOPBACK_RECEIVERS, use_policy
from tests.support.receiver import IPAddress, Receiver, free_port

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
class NotApplicable:
    """The class does not exist for this service."""

    why: str


Script = object
"""What a service does for a fault class: ``Refused``, ``Silent``, ``Answer``, or a script of the
service's own (a Slack error code, an SMTP reply)."""


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
