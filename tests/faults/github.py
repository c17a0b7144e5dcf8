"""GitHub in the fault matrix: the loopback stand-in, and its answers for each fault class."""

from __future__ import annotations

from contextlib import ExitStack

from common.standins.github import GitHubStandIn
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


SERVICE = GitHub
ROWS = rows(
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
        # Never followed: the credential would travel to wherever the redirect points.
        "307-redirect": (
            Answer(307, {"Location": "https://elsewhere.example.org/repos/acme/widget-service"}),
            permanent("GitHubRedirected"),
        ),
    },
)
