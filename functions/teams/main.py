"""Microsoft Teams: post an Adaptive Card about a run to a channel, through the channel's Workflows webhook.

Annotations: ``teams.integrations.tekton.dev/{channel,on,log-lines,template}`` (docs/teams.md).
``channel`` names a channel the operator configured: a key of the Secret mounted at
``TEAMS_CHANNELS_DIR`` whose value is the channel's Workflows (Power Automate) webhook URL, a
credential that never appears in an annotation. By default one card per run, when it ends; ``on``
asks for more states. ``log-lines`` puts the failed steps' last lines in the card; ``template``
has an operator's template (docs/templates.md) write the card's text.

One card per run phase: a workflow webhook has no idempotency key and its messages cannot be read
or edited, so the runtime claims each state before posting (``claim=always``) and the record keeps
the phase posted (Tekton's ``started`` and ``running`` are one phase: one card). Duplicates,
reordering and concurrent deliveries post nothing more. Every card carries a notification id, the
same for every delivery of the run's phase (``ctx.key``): a crash between the post and the record,
a lost answer, or Tekton writing back an older record can repeat a card, and the repeat carries
the same id, so a receiver or flow can drop it.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator

from common import (
    PHASE_KEY,
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
from common.errors import IntegrationError
from functions.teams import card
from functions.teams.workflow import FAULTS, TeamsSettings, channel_url, post

if TYPE_CHECKING:  # the message's templates load with the first message
    from common.templates import Message, Rendered

NOTIFICATION_KEY = "notification-id"
RUN_ID_KEY = "workflow-run-id"

SECRET_KEY = re.compile(r"[A-Za-z0-9][-._A-Za-z0-9]{0,252}")
"""A key of a Kubernetes Secret (``[-._a-zA-Z0-9]+``), never ``.``-first: so never a path."""


def _secret_key(value: str) -> str:
    if not SECRET_KEY.fullmatch(value):
        raise ValueError(
            "use the name of a channel the operator configured: letters, digits, '-', '.' and '_', "
            "starting with a letter or digit (e.g. widget-ci)"
        )
    return value


Channel = Annotated[str, AfterValidator(_secret_key)]


class TeamsConfig(ShowsStepLogs, Templated):
    channel: Channel
    """``teams.integrations.tekton.dev/channel``: the channel's name, as the operator's Secret keys it."""
    on: RunStates | None = None
    """``teams.integrations.tekton.dev/on``: the states to post (default: finished)."""


Ctx = Context[TeamsConfig, TeamsSettings]


def _outgoing(ctx: Ctx) -> tuple[Rendered, bytes]:
    """The card for the run's current state, and the template's text or the default one."""
    from common.steplogs import what_failed  # noqa: PLC0415 -- loaded with the first message
    from common.templates import render, template_text  # noqa: PLC0415 -- loaded with the first message

    run, failed = ctx.run, what_failed(ctx)
    rendered = render(
        ctx, "teams", lambda: card.fallback_text(run), children=failed.children, step_logs=failed.step_logs
    )
    text = template_text(ctx, rendered)
    notification = ctx.phase_key()
    return rendered, card.message(
        run, failed.tasks, ctx.run_url, notification, text=text, logs=failed.step_logs
    )


def message(ctx: Ctx) -> Message:
    """What ``report`` posts for the run's current state, without posting it (``render``)."""
    from common.templates import Message  # noqa: PLC0415 -- loaded with the first message

    rendered, body = _outgoing(ctx)
    return Message(rendered, json.loads(body))


def report(ctx: Ctx) -> Report:
    from common.templates import with_fallback  # noqa: PLC0415 -- loaded with the first message

    run, channel = ctx.run, ctx.config.channel
    url = channel_url(ctx.settings, channel)
    notification = ctx.phase_key()
    rendered, body = _outgoing(ctx)
    try:
        accepted = post(url, body, channel=channel, timeout=ctx.settings.timeout_seconds)
    except IntegrationError as e:  # the id a repeat will carry; no flow run of an earlier card
        e.annotations = {NOTIFICATION_KEY: notification, RUN_ID_KEY: "", **e.annotations}
        raise
    started = f", flow run {accepted.run_id}" if accepted.run_id else ""
    posted = Report(
        f"posted the {run.phase.value} card to channel {channel!r}: Workflows answered "
        f"{accepted.status} {accepted.reason}{started}".rstrip(),
        {PHASE_KEY: run.phase.value, NOTIFICATION_KEY: notification, RUN_ID_KEY: accepted.run_id or ""},
        reason="Posted",
    )
    return with_fallback(posted, rendered)


integration = Integration(
    declared_in=__file__,
    config=TeamsConfig,
    settings=TeamsSettings,
    report=report,
    message=message,
    policy=Destinations("channels", "channel"),
    destinations=lambda ctx: [ctx.config.channel],
    faults=FAULTS,
    states=STATE_NAMES["finished"],
    wants=phase_not_reported,
    idempotency=Idempotency(
        "none that Workflows keeps (a webhook has no idempotency key, and its messages cannot be read "
        "or edited): each state is claimed and the record keeps the phase posted; every card shows a "
        "notification id per (run UID, phase) from ctx.key, so the repeat a crash between the post and "
        "the record or a lost answer can cause carries the same id and receivers drop it",
        claim=always,
    ),
)
handle = serve(integration)
