"""Google Chat in the fault matrix: the loopback stand-in behind a space's webhook file, and its
answers for each fault class (Google's error bodies, ``google.rpc.Code`` names)."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

from tests.support.faults import Answer, Refused, Script, Service, Silent, permanent, rows, transient
from tests.support.standins.googlechat import GoogleChatStandIn, error_body

SPACE = "widget-ci"
KEY = "AIzaSyFaultMatrixKey-0123456789abcdefgh"
TOKEN = "fault-matrix-token_0123456789abcdefABCDEF/+="
"""With the characters a real token URL-encodes: the file holds it encoded, requests decode it."""


class GoogleChat(Service):
    name = "googlechat"
    claims = True  # one message per run state, created once

    def start(self, stack: ExitStack) -> None:
        self.standin = stack.enter_context(GoogleChatStandIn())
        self.url = self.standin.add_webhook("AAAAfaultmx", key=KEY, token=TOKEN)
        self.spaces = self.tmp_path / "googlechat-spaces"
        self.spaces.mkdir()
        self.monkeypatch.setenv("GOOGLECHAT_SPACES_DIR", str(self.spaces))
        self.divert(None)

    def annotations(self) -> dict[str, str]:
        return {"space": SPACE}

    def apply(self, script: Script) -> None:
        if isinstance(script, GoogleError):
            body = error_body(script.status, f"stand-in {script.name}", script.name)
            self.standin.fail_next(script.status, body=body)
        elif isinstance(script, Answer):
            self.standin.fail_next(script.status, headers=script.headers)
        else:
            self.unsupported(script)

    def calls(self) -> int:
        return len(self.standin.calls_to())

    def effects(self) -> int:
        return len(self.standin.posted())

    def credentials(self) -> list[str]:
        return [self.url, KEY, TOKEN]

    def echo_credentials(self, status: int) -> None:
        self.standin.echo_credentials_next(status)

    def divert(self, address: tuple[str, int] | None) -> None:
        """Rewrite the space's webhook file: the function reads it on every delivery."""
        url = self.url
        if address is not None:
            url = url.replace(self.standin.url, f"http://{address[0]}:{address[1]}")
        (self.spaces / SPACE).write_text(url + "\n", encoding="utf-8")


@dataclass(frozen=True)
class GoogleError:
    """An error answer whose body names a canonical status other than the usual one for its code."""

    status: int
    name: str


SERVICE = GoogleChat
ROWS = rows(
    "googlechat",
    {
        "refused": (Refused(), transient("GoogleChatUnreachable")),
        "timeout": (Silent(), transient("GoogleChatTimeout")),
        "500": (Answer(500), transient("GoogleChatUnavailable")),
        "502": (Answer(502), transient("GoogleChatUnavailable")),  # a Google front end's HTML page
        "503": (Answer(503), transient("GoogleChatUnavailable")),
        "503-retry-after": (Answer(503, {"Retry-After": "20"}), transient("GoogleChatUnavailable", 20)),
        "504": (Answer(504), transient("GoogleChatUnavailable")),
        # RESOURCE_EXHAUSTED (the per-space write quota); Chat sends no Retry-After: 60 s is assumed.
        "429": (Answer(429), transient("GoogleChatRateLimited", 60)),
        "429-retry-after": (Answer(429, {"Retry-After": "17"}), transient("GoogleChatRateLimited", 17)),
        # 409 ABORTED is a conflict on Chat's side (409 ALREADY_EXISTS, a repeat, is counted as done).
        "409-aborted": (GoogleError(409, "ABORTED"), transient("GoogleChatUnavailable")),
        "400": (Answer(400), permanent("GoogleChatRejected")),
        "401": (Answer(401), permanent("GoogleChatUnauthorized")),
        "403": (Answer(403), permanent("GoogleChatForbidden")),
        "404": (Answer(404), permanent("GoogleChatNotFound")),
        "422": (Answer(422), permanent("GoogleChatRejected")),  # not Google's, but a proxy's
    },
)
