"""GitLab in the fault matrix: the loopback stand-in, and its answers for each fault class."""

from __future__ import annotations

from contextlib import ExitStack

from tests.support.faults import (
    FAR_RESET,
    SHA,
    Answer,
    Refused,
    Script,
    Service,
    Silent,
    permanent,
    rows,
    transient,
)
from tests.support.standins.gitlab import GitLabStandIn


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


SERVICE = GitLab
ROWS = rows(
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
)
