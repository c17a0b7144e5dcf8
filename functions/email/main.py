"""Email: mail the people a run names when it reaches a state they asked for (by default, when it fails).

Annotations: ``email.integrations.tekton.dev/{to,cc,on,log-lines,template}``: ``log-lines`` puts
the failed steps' last lines in the body; ``template`` has an operator's template
(docs/templates.md) write it. One mail per run and phase: the runtime
claims the state before the mail is handed to the relay and records it after, so duplicate and
concurrent deliveries of the same event send nothing more; the record keeps the phase mailed
last, so Tekton's ``started`` and ``running`` (two states, one phase) make one mail, not two.
A mail cannot be taken back, and a crash between handing it over and recording it makes a
redelivery send it again: that repeat carries the same ``Message-ID`` (``ctx.key``), which mail
systems and clients de-duplicate.
"""

from __future__ import annotations

from dataclasses import replace
from email.utils import parseaddr
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field

from common import (
    PHASE_KEY,
    CommaList,
    Context,
    Destinations,
    Idempotency,
    Integration,
    Report,
    always,
    phase_not_reported,
    serve,
)
from common.config import STATE_NAMES, RunStates, ShowsStepLogs, Templated
from functions.email.addresses import domain, recipients
from functions.email.compose import Body, body, compose, subject
from functions.email.delivery import FAULTS, SmtpSettings, describe_refused, send

if TYPE_CHECKING:  # the message's templates load with the first message
    from common.templates import Message, Rendered

MAX_RECIPIENTS = 50


def _at_least_one(addresses: list[str]) -> list[str]:
    if not addresses:
        raise ValueError("name at least one address")
    return addresses


Addresses = Annotated[CommaList, AfterValidator(recipients), Field(max_length=MAX_RECIPIENTS)]


class EmailConfig(ShowsStepLogs, Templated):
    to: Annotated[Addresses, AfterValidator(_at_least_one)]
    cc: Addresses = Field(default_factory=list)
    on: RunStates | None = None
    """Unset: the declared default, ``failed`` (failed, cancelled and timed-out runs)."""


Ctx = Context[EmailConfig, SmtpSettings]


def _domains(ctx: Ctx) -> list[str]:
    """Every recipient's domain, for the namespace policy: one refused, none mailed."""
    return sorted({domain(address) for address in (*ctx.config.to, *ctx.config.cc)})


def _message_id(ctx: Ctx, sender: str) -> str:
    """``<uuid@sender-domain>``, the same for every delivery of this run's phase (Tekton's
    ``started`` and ``running`` are two states of one phase, mailed once)."""
    key = ctx.phase_key()
    return f"<{key}@{domain(parseaddr(sender)[1])}>"


def _outgoing(ctx: Ctx) -> tuple[Rendered, Body]:
    """The body for the run's current state, and the template's text or the default one."""
    from common.steplogs import what_failed  # noqa: PLC0415 -- loaded with the first message
    from common.templates import render, template_text  # noqa: PLC0415 -- loaded with the first message

    run, failed = ctx.run, what_failed(ctx)

    def default() -> str:
        return body(run, link=ctx.run_url, tasks=failed.tasks).text.rstrip("\n")

    rendered = render(ctx, "email", default, children=failed.children, step_logs=failed.step_logs)
    text = template_text(ctx, rendered)
    return rendered, body(run, link=ctx.run_url, tasks=failed.tasks, text=text, logs=failed.step_logs)


def message(ctx: Ctx) -> Message:
    """What ``report`` mails for the run's current state, without mailing it (``render``)."""
    from common.templates import Message  # noqa: PLC0415 -- loaded with the first message

    rendered, content = _outgoing(ctx)
    payload = {"subject": subject(ctx.run), "text": content.text, "html": content.html}
    return Message(rendered, payload)


def report(ctx: Ctx) -> Report:
    from common.templates import with_fallback  # noqa: PLC0415 -- loaded with the first message

    config, run = ctx.config, ctx.run
    settings = ctx.settings.checked()
    assert settings.from_ is not None
    rendered, content = _outgoing(ctx)
    message = compose(
        run,
        sender=settings.from_,
        message_id=_message_id(ctx, settings.from_),
        to=config.to,
        cc=config.cc,
        content=content,
    )
    refused = send(settings, message)
    sent = len(config.to) + len(config.cc) - len(refused)
    kept = {PHASE_KEY: run.phase.value, "message-id": str(message["Message-ID"])}
    text = f"mailed {run.phase.value} to {sent} recipient(s)"
    if refused:
        partial = Report(f"{text}; refused: {describe_refused(refused)}", kept, reason="PartiallyDelivered")
        return replace(with_fallback(partial, rendered), reason=partial.reason)  # the delivery comes first
    return with_fallback(Report(text, kept), rendered)


integration = Integration(
    declared_in=__file__,
    config=EmailConfig,
    settings=SmtpSettings,
    report=report,
    message=message,
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
    wants=phase_not_reported,
)
handle = serve(integration)
