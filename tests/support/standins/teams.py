"""A loopback stand-in for Microsoft Teams Workflows webhooks: the HTTP trigger of a Power Automate
flow made from the template "Post to a channel when a webhook request is received".

Owns: a stdlib HTTP server on 127.0.0.1 that keeps one flow per channel, records every request
(never the signature itself) and answers as the flows' runtime, Azure Logic Apps' request trigger,
documents and is observed to:

- the trigger URL is ``/workflows/<id>/triggers/manual/paths/invoke?api-version=2016-06-01&sp=
  %2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=<signature>``; the signature is the only credential;
- ``POST`` with a JSON body: ``202 Accepted``, an empty body and the ``x-ms-workflow-run-id``,
  ``x-ms-correlation-id`` and ``x-ms-tracking-id`` headers. The flow then runs on its own: for each
  attachment of type ``application/vnd.microsoft.card.adaptive`` it posts the ``content`` card to
  its channel. A card that is not an ``AdaptiveCard``, or larger than Teams' message limit (about
  28 KB), fails that run (``RequestEntityTooLarge``) although the request got its 202, as with
  Teams: the run history says so (:attr:`TeamsStandIn.runs`);
- errors as ``{"error": {"code": ..., "message": ...}}``: a URL without ``sig`` is 401
  ``DirectApiAuthorizationRequired``, a wrong one 401 ``DirectApiInvalidAuthorizationSignature``,
  an unknown flow 404 ``WorkflowNotFound``, a flow turned off or deleted 400
  ``WorkflowTriggerIsNotEnabled`` naming its state (``'Disabled'``, ``'Deleted'``: Power Automate
  keeps a deleted flow's id), a body that is not JSON 400 ``InvalidRequestContent``, another
  method than POST 400 ``TriggerRequestMethodNotValid``. The signature is checked before the
  flow's state, so only the URL's holder learns the state.

Scripted answers: :meth:`TeamsStandIn.fail_next` (any status and headers, with a Logic Apps error
body), :meth:`TeamsStandIn.echo_credentials_next` (a proxy's error page repeating the request line,
signature included) and :meth:`TeamsStandIn.drop_answer_next` (the flow runs, then the connection
closes without an answer: a lost answer). :meth:`turn_off` and :meth:`delete` change a flow.

Does not: render cards, check Adaptive Card schemas beyond the type, throttle by itself, or follow
what the flow's later steps would do beyond posting.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Final, Literal

from tests.support.standins.loopback import LoopbackStandIn, Reply, Request, proxy_page

__all__ = ["TEAMS_MESSAGE_LIMIT", "FlowRun", "TeamsCall", "TeamsStandIn"]

JsonObject = dict[str, Any]
State = Literal["Enabled", "Disabled", "Deleted"]
Credential = Literal["valid", "invalid"] | None

TEAMS_MESSAGE_LIMIT: Final = 28 * 1024
"""Teams refuses a posted message above about 28 KB."""
ADAPTIVE: Final = "application/vnd.microsoft.card.adaptive"
QUERY: Final = "api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0"
_PATH_PREFIX: Final = "/workflows/"
_PATH_SUFFIX: Final = "/triggers/manual/paths/invoke"
_DEFAULT_CODES: Final = {
    400: (
        "TriggerInputSchemaMismatch",
        "The input body for trigger 'manual' of type 'Request' did not match.",
    ),
    401: ("DirectApiInvalidAuthorizationSignature", "The provided authorization signature is not valid."),
    403: ("AuthorizationFailed", "The client does not have permission to perform action 'run'."),
    404: ("WorkflowNotFound", "The workflow could not be found."),
    429: ("WorkflowRequestsThrottled", "The request was throttled."),
}


@dataclass
class Flow:
    """One channel's flow: its id, the channel it posts to, its signature and its state."""

    id: str
    channel: str
    signature: str
    state: State = "Enabled"


@dataclass(frozen=True)
class TeamsCall:
    """One request as the stand-in saw it; the signature is reduced to whether it was right."""

    method: str
    channel: str | None
    """The channel of the flow the path names; ``None`` for an unknown flow."""
    credential: Credential
    status: int
    size: int
    """Bytes in the request body."""
    body: Any
    """The parsed JSON body, or ``None``."""


@dataclass(frozen=True)
class FlowRun:
    """A run of a flow, started by an accepted request; what it posted or why it failed."""

    id: str
    channel: str
    status: Literal["Succeeded", "Failed"]
    cards: tuple[JsonObject, ...] = ()
    error: str | None = None


@dataclass
class _Fault:
    status: int
    headers: dict[str, str]
    channel: str | None
    echo: bool = False
    drop: bool = False


class TeamsStandIn(LoopbackStandIn):
    """Flows for ``channels`` on ``127.0.0.1``; use with ``with``. Inspect under :attr:`lock`, or
    through :meth:`cards` and :meth:`calls_to`, which copy under it."""

    def __init__(self, channels: tuple[str, ...] = ("widget-ci",)) -> None:
        self.lock = threading.RLock()
        self.flows: dict[str, Flow] = {}
        self.calls: list[TeamsCall] = []
        self.runs: list[FlowRun] = []
        self._faults: list[_Fault] = []
        self._run_ids = itertools.count(1)
        for channel in channels:
            self.add_channel(channel)

    @property
    def base(self) -> str:
        return self.origin

    # -- flows ---------------------------------------------------------------------------------

    def add_channel(self, channel: str) -> Flow:
        """A new flow posting to ``channel`` (replacing any earlier one: a new URL, as in Teams)."""
        flow = Flow(secrets.token_hex(16), channel, secrets.token_urlsafe(32))
        with self.lock:
            self.flows[flow.id] = flow
        return flow

    def flow(self, channel: str) -> Flow:
        with self.lock:
            return next(f for f in reversed(self.flows.values()) if f.channel == channel)

    def url_for(self, channel: str, *, base: str | None = None, signature: str | None = None) -> str:
        """The flow's HTTP POST URL, as Teams shows it; ``base`` puts it at another address."""
        flow = self.flow(channel)
        sig = flow.signature if signature is None else signature
        query = QUERY + (f"&sig={sig}" if sig else "")
        return f"{base or self.base}{_PATH_PREFIX}{flow.id}{_PATH_SUFFIX}?{query}"

    def turn_off(self, channel: str) -> None:
        with self.lock:
            self.flow(channel).state = "Disabled"

    def delete(self, channel: str) -> None:
        with self.lock:
            self.flow(channel).state = "Deleted"

    # -- scripting and inspection --------------------------------------------------------------

    def fail_next(
        self, status: int, *, headers: dict[str, str] | None = None, channel: str | None = None
    ) -> None:
        """Answer the next request (for ``channel``'s flow, if given) with ``status`` and a Logic
        Apps error body; nothing is run."""
        with self.lock:
            self._faults.append(_Fault(status, dict(headers or {}), channel))

    def echo_credentials_next(self, status: int = 502, *, channel: str | None = None) -> None:
        """Answer the next request with ``status`` and a plain-text page repeating the request line,
        signature included, as a misbehaving proxy does."""
        with self.lock:
            self._faults.append(_Fault(status, {}, channel, echo=True))

    def drop_answer_next(self, *, channel: str | None = None) -> None:
        """Run the flow for the next request, then close the connection without answering."""
        with self.lock:
            self._faults.append(_Fault(202, {}, channel, drop=True))

    def calls_to(self, channel: str | None = None) -> list[TeamsCall]:
        with self.lock:
            return [call for call in self.calls if channel is None or call.channel == channel]

    def cards(self, channel: str | None = None) -> list[JsonObject]:
        """Every card the flows posted, in order (to ``channel`` only, if given)."""
        with self.lock:
            return [
                card
                for run in self.runs
                if run.status == "Succeeded" and (channel is None or run.channel == channel)
                for card in run.cards
            ]

    # -- handling (server threads) -------------------------------------------------------------

    def serve(self, request: Request) -> Reply:
        path, raw, body = request.path, request.body, request.json()
        echo = f"{request.method} {request.target}"
        with self.lock:
            flow_id = path.removeprefix(_PATH_PREFIX).removesuffix(_PATH_SUFFIX)
            inside = path.startswith(_PATH_PREFIX) and path.endswith(_PATH_SUFFIX)
            flow = self.flows.get(flow_id) if inside else None
            signature = request.query.get("sig")
            credential: Credential = None
            if signature:
                credential = "valid" if flow is not None and signature == flow.signature else "invalid"
            channel = flow.channel if flow is not None else None
            reply = self._answer(request.method, flow, credential, raw=raw, body=body, echo=echo)
            self.calls.append(TeamsCall(request.method, channel, credential, reply.status, len(raw), body))
        return reply

    def _answer(
        self, method: str, flow: Flow | None, credential: Credential, *, raw: bytes, body: Any, echo: str
    ) -> Reply:
        channel = flow.channel if flow is not None else None
        fault = next((f for f in self._faults if f.channel in (None, channel)), None)
        if fault is not None:
            self._faults.remove(fault)
            if fault.echo:
                return Reply(fault.status, proxy_page(echo, fault.status) + "\n")
            if not fault.drop:
                code, message = _DEFAULT_CODES.get(
                    fault.status, (f"Status{fault.status}", "A stand-in fault.")
                )
                return Reply(fault.status, _error(code, message), fault.headers)
        if flow is None:
            return Reply(404, _error("WorkflowNotFound", "The workflow could not be found."))
        if credential is None:
            return Reply(
                401,
                _error(
                    "DirectApiAuthorizationRequired",
                    "The request must be authenticated only by Shared Access scheme.",
                ),
            )
        if credential == "invalid":
            return Reply(
                401,
                _error(
                    "DirectApiInvalidAuthorizationSignature",
                    "The provided authorization signature is not valid.",
                ),
            )
        if flow.state != "Enabled":  # Power Automate keeps a deleted flow's id, answering this
            return Reply(
                400,
                _error(
                    "WorkflowTriggerIsNotEnabled",
                    f"Cannot start a new run for workflow '{flow.id}' because it is in state '{flow.state}'.",
                ),
            )
        if method != "POST":
            return Reply(
                400,
                _error(
                    "TriggerRequestMethodNotValid",
                    f"The HTTP method for this request is not valid: expected 'Post' and actual '{method}'.",
                ),
            )
        if raw and body is None:
            return Reply(400, _error("InvalidRequestContent", "The request content is not valid JSON."))
        run = self._run(flow, body)
        headers = {"x-ms-workflow-run-id": run.id, "x-ms-correlation-id": run.id, "x-ms-tracking-id": run.id}
        return Reply(202, None, headers, dropped=fault is not None and fault.drop)

    def _run(self, flow: Flow, body: Any) -> FlowRun:
        """What the template's steps do with an accepted request: post each adaptive card."""
        run_id = f"0858{next(self._run_ids):020d}CU00"
        attachments = body.get("attachments") if isinstance(body, dict) else None
        if not isinstance(attachments, list):
            run = FlowRun(run_id, flow.channel, "Failed", error="attachments is not an array")
        else:
            contents = [
                a.get("content")
                for a in attachments
                if isinstance(a, dict) and a.get("contentType") == ADAPTIVE
            ]
            problem = next(filter(None, map(_card_problem, contents)), None)
            cards = tuple(card for card in contents if isinstance(card, dict))
            run = (
                FlowRun(run_id, flow.channel, "Failed", error=problem)
                if problem
                else FlowRun(run_id, flow.channel, "Succeeded", cards)
            )
        self.runs.append(run)
        return run


def _card_problem(card: Any) -> str | None:
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        return "InvalidAdaptiveCard: the content is not an AdaptiveCard"
    if len(json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode()) > TEAMS_MESSAGE_LIMIT:
        return "RequestEntityTooLarge: Request Entity too large"
    return None


def _error(code: str, message: str) -> JsonObject:
    return {"error": {"code": code, "message": message}}
