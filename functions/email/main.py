"""Email: mail the people a run names when it reaches a state they asked for (by default, when it fails).

Annotations: ``email.integrations.tekton.dev/{to,cc,on}``. One mail per run and phase: the runtime
claims the state before the mail is handed to the relay and records it after, so duplicate and
concurrent deliveries of the same event send nothing more; the record keeps the phase mailed
last, so Tekton's ``started`` and ``running`` (two states, one phase) make one mail, not two.
A mail cannot be taken back, and a crash between handing it over and recording it makes a
redelivery send it again: that repeat carries the same ``Message-ID`` (``ctx.key``), which mail
systems and clients de-duplicate.
"""

from __future__ import annotations

from email.utils import parseaddr
from typing import Annotated

from pydantic import AfterValidator, Field

from common import (
    CommaList,
    Context,
    Destinations,
    Idempotency,
    Integration,
    IntegrationConfig,
    Report,
    RunPhase,
    always,
    serve,
)
from common.config import STATE_NAMES, RunStates
from common.summary import unsuccessful_tasks
from functions.email.addresses import domain, recipients
from functions.email.compose import compose
from functions.email.delivery import FAULTS, SmtpSettings, describe_refused, send

MAX_RECIPIENTS = 50
PHASE_KEY = "phase"


def _at_least_one(addresses: list[str]) -> list[str]:
    if not addresses:
        raise ValueError("name at least one address")
    return addresses


Addresses = Annotated[CommaList, AfterValidator(recipients), Field(max_length=MAX_RECIPIENTS)]


class EmailConfig(IntegrationConfig):
    to: Annotated[Addresses, AfterValidator(_at_least_one)]
    cc: Addresses = Field(default_factory=list)
    on: RunStates | None = None
    """Unset: the declared default, ``failed`` (failed, cancelled and timed-out runs)."""


Ctx = Context[EmailConfig, SmtpSettings]


def _wants(ctx: Ctx) -> bool:
    """Not a phase already mailed (the record is untrusted, but it can only suppress a mail)."""
    return ctx.recorded(PHASE_KEY) != ctx.run.phase.value


def _domains(ctx: Ctx) -> list[str]:
    """Every recipient's domain, for the namespace policy: one refused, none mailed."""
    return sorted({domain(address) for address in (*ctx.config.to, *ctx.config.cc)})


def _message_id(ctx: Ctx, sender: str) -> str:
    """``<uuid@sender-domain>``, the same for every delivery of this run's phase (Tekton's
    ``started`` and ``running`` are two states of one phase, mailed once)."""
    key = ctx.key("phase", ctx.run.phase.value, per_state=False)
    return f"<{key}@{domain(parseaddr(sender)[1])}>"


def report(ctx: Ctx) -> Report:
    config, run = ctx.config, ctx.run
    settings = ctx.settings.checked()
    assert settings.from_ is not None
    failed = run.phase.is_done and run.phase is not RunPhase.SUCCEEDED
    message = compose(
        run,
        sender=settings.from_,
        message_id=_message_id(ctx, settings.from_),
        to=config.to,
        cc=config.cc,
        link=ctx.run_url,
        tasks=unsuccessful_tasks(run, ctx.child_runs()) if failed else [],
    )
    refused = send(settings, message)
    sent = len(config.to) + len(config.cc) - len(refused)
    kept = {PHASE_KEY: run.phase.value, "message-id": str(message["Message-ID"])}
    text = f"mailed {run.phase.value} to {sent} recipient(s)"
    if refused:
        return Report(f"{text}; refused: {describe_refused(refused)}", kept, reason="PartiallyDelivered")
    return Report(text, kept)


integration = Integration(
    declared_in=__file__,
    config=EmailConfig,
    settings=SmtpSettings,
    report=report,
    policy=Destinations("domains", "domain"),
    destinations=_domains,
    faults=FAULTS,
    idempotency=Idempotency(
        "Message-ID <key per (run UID, integration, state)@sender domain>: a mail repeated after a "
        "crash between handing it over and recording it carries the same id, which mail systems "
        "and clients de-duplicate",
        claim=always,
    ),
    states=STATE_NAMES["failed"],
    wants=_wants,
)
handle = serve(integration)
