"""Email: mail the people a run names when it reaches a state they asked for (by default, when it fails).

Annotations: ``email.integrations.tekton.dev/{to,cc,on}``. One mail per run and phase: the runtime
claims the state before the mail is handed to the relay and records it after, so duplicate and
concurrent deliveries of the same event send nothing more; the record keeps the phase mailed
last, so Tekton's ``started`` and ``running`` (two states, one phase) make one mail, not two.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from common import CommaList, Context, Integration, IntegrationConfig, Report, RunPhase, serve
from common.config import STATE_NAMES, RunStates
from common.summary import unsuccessful_tasks
from functions.email.addresses import domain, recipients
from functions.email.compose import compose
from functions.email.delivery import SmtpSettings, describe_refused, send

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
    on: RunStates = STATE_NAMES["failed"]
    """Default ``failed``: failed, cancelled and timed-out runs."""


def _wants(ctx: Context[EmailConfig]) -> bool:
    return ctx.run.phase in ctx.config.on and ctx.recorded(PHASE_KEY) != ctx.run.phase.value


def _needs_claim(_: Context[EmailConfig]) -> bool:
    """A mail cannot be taken back: claim the state before handing it to the relay."""
    return True


def _domains(ctx: Context[EmailConfig]) -> list[str]:
    """Every recipient's domain, for the namespace policy's ``email.domains``: one refused, none mailed."""
    return sorted({domain(address) for address in (*ctx.config.to, *ctx.config.cc)})


def report(ctx: Context[EmailConfig]) -> Report:
    config, run = ctx.config, ctx.run
    settings = SmtpSettings.from_env()
    failed = run.phase.is_done and run.phase is not RunPhase.SUCCEEDED
    message = compose(
        run,
        sender=settings.sender,
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
    name="email",
    config=EmailConfig,
    report=report,
    wants=_wants,
    needs_claim=_needs_claim,
    destinations=_domains,
)
handle = serve(integration)
