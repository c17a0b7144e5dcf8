"""Slack in the fault matrix: the loopback stand-in and its error codes for each fault class."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

from tests.support.faults import Refused, Script, Service, Silent, permanent, rows, transient
from tests.support.standins.slack import SlackStandIn


@dataclass(frozen=True)
class SlackError:
    """Slack's answer to ``chat.postMessage``: an error code, on HTTP ``status``."""

    code: str
    status: int = 200
    retry_after: int | None = None


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


SERVICE = Slack
ROWS = rows(
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
)
