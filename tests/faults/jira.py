"""Jira in the fault matrix: the loopback stand-in (Jira Cloud), a run that comments on an issue,
and Jira's answers for each fault class."""

from __future__ import annotations

from contextlib import ExitStack

from tests.support.faults import (
    Answer,
    Refused,
    Script,
    Service,
    Silent,
    permanent,
    rows,
    transient,
)
from tests.support.standins.jira import JiraStandIn


class Jira(Service):
    name = "jira"
    claims = True  # the run's comment is posted once: claimed first

    def start(self, stack: ExitStack) -> None:
        self.token = "fault-matrix-jira-api-token"  # no well-known shape: only remembering masks it
        self.user = "tekton-bot@acme.example"
        self.standin = stack.enter_context(JiraStandIn("cloud", username=self.user, api_token=self.token))
        self.issue = self.standin.add_issue("WID", "Widget release")
        self.monkeypatch.setenv("JIRA_USERNAME", self.user)
        self.monkeypatch.setenv("JIRA_API_TOKEN", self.token)
        self.monkeypatch.setenv("JIRA_DEPLOYMENT", "cloud")
        self.divert(None)

    def annotations(self) -> dict[str, str]:
        return {"issue": self.issue}

    def apply(self, script: Script) -> None:
        if not isinstance(script, Answer):
            self.unsupported(script)
        self.standin.fail_next(script.status, headers=script.headers)

    def calls(self) -> int:
        return len(self.standin.calls_to())

    def effects(self) -> int:
        """Comments and issues the function wrote."""
        comments = [c for c in self.standin.comments(self.issue) if c["author"] == "bot"]
        return len(comments) + len(self.standin.opened_by_bot())

    def credentials(self) -> list[str]:
        return [self.token]

    def echo_credentials(self, status: int) -> None:
        self.standin.echo_credentials_next(status)

    def divert(self, address: tuple[str, int] | None) -> None:
        url = self.standin.url if address is None else f"http://{address[0]}:{address[1]}"
        self.monkeypatch.setenv("JIRA_URL", url)


RESET = "2100-01-01T00:00Z"
"""Jira Cloud's ``X-RateLimit-Reset``: an ISO 8601 time; far away, so the wait is capped."""

SERVICE = Jira
ROWS = rows(
    "jira",
    {
        "refused": (Refused(), transient("JiraUnreachable")),
        "timeout": (Silent(), transient("JiraTimeout")),
        "500": (Answer(500), transient("JiraUnavailable")),
        "502": (Answer(502), transient("JiraUnavailable")),
        "503": (Answer(503), transient("JiraUnavailable")),
        # Jira Cloud sheds load with 503 and a Retry-After.
        "503-retry-after": (Answer(503, {"Retry-After": "20"}), transient("JiraUnavailable", 20)),
        "429-retry-after": (
            Answer(429, {"Retry-After": "17", "RateLimit-Reason": "jira-burst-based"}),
            transient("JiraRateLimited", 17),
        ),
        "429": (Answer(429), transient("JiraRateLimited", 60)),
        # Without Retry-After, Jira Cloud's reset time (ISO 8601, not epoch seconds) gives the wait.
        "429-ratelimit-reset-iso": (
            Answer(429, {"X-RateLimit-Reset": RESET, "RateLimit-Reason": "jira-per-issue-on-write"}),
            transient("JiraRateLimited", 3600),
        ),
        "401": (Answer(401), permanent("JiraUnauthorized")),
        "403": (Answer(403), permanent("JiraForbidden")),
        "404": (Answer(404), permanent("JiraNotFound")),
        "422": (Answer(422), permanent("JiraRejected")),
        "400": (Answer(400), permanent("JiraRejected")),
        # A proxy or a moved site answering with a redirect: never followed with the credentials.
        "302-redirect": (
            Answer(302, {"Location": "https://elsewhere.example/"}),
            permanent("JiraRedirected"),
        ),
    },
)
