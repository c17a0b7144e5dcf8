"""Gerrit in the fault matrix: the loopback stand-in, and its answers for each fault class.

A common class breaks the function's first request (reading the change); the rows of Gerrit's
own break the review itself, or answer a success Gerrit never sends (no JSON after ``)]}'``).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field

from tests.support.faults import SHA, Answer, Refused, Script, Service, Silent, permanent, rows, transient
from tests.support.standins.gerrit import GerritStandIn


@dataclass(frozen=True)
class ReviewAnswer:
    """Gerrit's answer to ``POST .../review`` (the change was read fine)."""

    status: int
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Unreadable:
    """A 200 whose body is not Gerrit's JSON (a login page from a misconfigured proxy)."""


class Gerrit(Service):
    name = "gerrit"
    claims = True  # every reported phase posts a message, which must not repeat

    def start(self, stack: ExitStack) -> None:
        self.password = "fault-matrix-gerrit-credential"  # no well-known shape: only remembering masks it
        self.standin = stack.enter_context(GerritStandIn())
        self.standin.add_account("tekton-ci", self.password)
        self.standin.add_change("acme/widget-service", 4711, [SHA])
        self.monkeypatch.setenv("GERRIT_USERNAME", "tekton-ci")
        self.monkeypatch.setenv("GERRIT_PASSWORD", self.password)
        self.divert(None)

    def annotations(self) -> dict[str, str]:
        return {"change": "4711", "revision": SHA, "project": "acme/widget-service"}

    def apply(self, script: Script) -> None:
        if isinstance(script, Answer):
            self.standin.fail_next(script.status, headers=script.headers)
        elif isinstance(script, ReviewAnswer):
            self.standin.fail_next(
                script.status, headers=script.headers, body=script.body, method="POST", path="*/review"
            )
        elif isinstance(script, Unreadable):
            self.standin.fail_next(200, body="<html>Sign in</html>\n", method="GET")
        else:
            self.unsupported(script)

    def calls(self) -> int:
        return len(self.standin.calls_to())

    def effects(self) -> int:
        return len(self.standin.reviews())

    def credentials(self) -> list[str]:
        return [self.password]

    def echo_credentials(self, status: int) -> None:
        self.standin.echo_credentials_next(status)

    def divert(self, address: tuple[str, int] | None) -> None:
        url = self.standin.url if address is None else f"http://{address[0]}:{address[1]}"
        self.monkeypatch.setenv("GERRIT_URL", url)


SERVICE = Gerrit
ROWS = rows(
    "gerrit",
    {
        "refused": (Refused(), transient("GerritUnreachable")),
        "timeout": (Silent(), transient("GerritTimeout")),
        "500": (Answer(500), transient("GerritUnavailable")),
        "502": (Answer(502), transient("GerritUnavailable")),
        "503": (Answer(503), transient("GerritUnavailable")),
        "503-retry-after": (Answer(503, {"Retry-After": "20"}), transient("GerritUnavailable", 20)),
        # Gerrit's quota enforcers answer 429, with or without Retry-After.
        "429-retry-after": (Answer(429, {"Retry-After": "17"}), transient("GerritRateLimited", 17)),
        "429": (Answer(429), transient("GerritRateLimited", 60)),
        "401": (Answer(401), permanent("GerritUnauthorized")),
        "403": (Answer(403), permanent("GerritForbidden")),
        "404": (Answer(404), permanent("GerritNotFound")),
        "422": (Answer(422), permanent("GerritRejected")),
        # The review itself fails after the change was read: one review after the redelivery.
        "503-review": (ReviewAnswer(503), transient("GerritUnavailable")),
        "429-review": (ReviewAnswer(429, headers={"Retry-After": "5"}), transient("GerritRateLimited", 5)),
        "403-review": (ReviewAnswer(403, "review not permitted\n"), permanent("GerritForbidden")),
        "404-revision": (ReviewAnswer(404, f"Not found: {SHA}\n"), permanent("GerritNotFound")),
        "409-review": (
            ReviewAnswer(409, "Cannot reduce vote on labels for closed change: Verified\n"),
            permanent("GerritRejected"),
        ),
        "400-comment-size": (
            ReviewAnswer(400, "Comment size exceeds limit (20000 > 16384)\n"),
            permanent("GerritRejected"),
        ),
        "200-not-json": (Unreadable(), transient("GerritUnavailable")),
    },
)
