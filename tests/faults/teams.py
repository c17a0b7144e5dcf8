"""Teams in the fault matrix: a channel's Workflows webhook on the loopback stand-in, and its answers
for each fault class (Azure Logic Apps' request trigger: 202, or ``{"error": {"code", "message"}}``)."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

from tests.support.faults import Answer, Refused, Script, Service, Silent, permanent, rows, transient
from tests.support.standins.teams import TeamsStandIn

CHANNEL = "widget-ci"


@dataclass(frozen=True)
class FlowTurnedOff:
    """The channel's flow is turned off in Power Automate: 400 ``WorkflowTriggerIsNotEnabled``."""


@dataclass(frozen=True)
class FlowDeleted:
    """The channel's flow was deleted: 400 ``WorkflowTriggerIsNotEnabled``, in state ``'Deleted'``."""


@dataclass(frozen=True)
class WrongSignature:
    """The Secret holds the URL with another signature (a regenerated flow, a copy error): 401."""


class Teams(Service):
    name = "teams"
    claims = True  # a card cannot be taken back: each state is claimed first

    def start(self, stack: ExitStack) -> None:
        self.standin = stack.enter_context(TeamsStandIn((CHANNEL,)))
        self.channels = self.tmp_path / "teams-channels"
        self.channels.mkdir()
        self.monkeypatch.setenv("TEAMS_CHANNELS_DIR", str(self.channels))
        self.divert(None)

    def annotations(self) -> dict[str, str]:
        return {"channel": CHANNEL, "on": "started,finished"}

    def apply(self, script: Script) -> None:
        if isinstance(script, Answer):
            self.standin.fail_next(script.status, headers=script.headers)
        elif isinstance(script, FlowTurnedOff):
            self.standin.turn_off(CHANNEL)
        elif isinstance(script, FlowDeleted):
            self.standin.delete(CHANNEL)
        elif isinstance(script, WrongSignature):
            self._write(self.standin.url_for(CHANNEL, signature="not-the-flows-signature-0123456789"))
        else:
            self.unsupported(script)

    def calls(self) -> int:
        return len(self.standin.calls_to())

    def effects(self) -> int:
        return len(self.standin.cards())

    def credentials(self) -> list[str]:
        return [self.standin.url_for(CHANNEL), self.standin.flow(CHANNEL).signature]

    def echo_credentials(self, status: int) -> None:
        self.standin.echo_credentials_next(status)

    def divert(self, address: tuple[str, int] | None) -> None:
        base = None if address is None else f"http://{address[0]}:{address[1]}"
        self._write(self.standin.url_for(CHANNEL, base=base))

    def _write(self, url: str) -> None:
        (self.channels / CHANNEL).write_text(url + "\n", encoding="utf-8")


SERVICE = Teams
ROWS = rows(
    "teams",
    {
        "refused": (Refused(), transient("TeamsUnreachable")),
        "timeout": (Silent(), transient("TeamsTimeout")),
        "500": (Answer(500), transient("TeamsUnavailable")),
        "502": (Answer(502), transient("TeamsUnavailable")),
        "503": (Answer(503), transient("TeamsUnavailable")),
        "503-retry-after": (Answer(503, {"Retry-After": "20"}), transient("TeamsUnavailable", 20)),
        "429-retry-after": (Answer(429, {"Retry-After": "17"}), transient("TeamsRateLimited", 17)),
        "429": (Answer(429), transient("TeamsRateLimited", 60)),
        "401": (Answer(401), permanent("TeamsUnauthorized")),
        "401-wrong-signature": (WrongSignature(), permanent("TeamsUnauthorized")),
        "403": (Answer(403), permanent("TeamsForbidden")),
        "404": (Answer(404), permanent("TeamsWorkflowNotFound")),
        "400-flow-deleted": (FlowDeleted(), permanent("TeamsWorkflowNotFound")),
        "400-flow-turned-off": (FlowTurnedOff(), permanent("TeamsWorkflowDisabled")),
        "400-schema-mismatch": (Answer(400), permanent("TeamsRejected")),
        "413": (Answer(413), permanent("TeamsRejected")),
        "422": (Answer(422), permanent("TeamsRejected")),
    },
)
