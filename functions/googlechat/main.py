"""Google Chat: a card in a space for each state a run reaches, every card of one run in one thread.

Annotations: ``googlechat.integrations.tekton.dev/{space,on,log-lines,template}``
(docs/googlechat.md). ``space`` is the name of an incoming webhook the operator configured: the
file of that name in ``$GOOGLECHAT_SPACES_DIR`` holds its URL (``functions.googlechat.spaces``),
which is a credential and never appears in an annotation, a record, a log line, an Event or an
answer. ``log-lines`` puts the failed steps' last lines in the card; ``template`` has an
operator's template (docs/templates.md) write the card's text.

One message per run and phase (Tekton's ``started`` and ``running`` are one phase): the runtime
claims the state before the post (the fast path), and the message carries a client-assigned
``messageId`` derived from the run UID, the space name and the phase. Chat keeps it and refuses a
second message with it (409 ``ALREADY_EXISTS``, counted as done), so a crash between the post and
the record, a lost answer or a revived older record never posts twice (``functions.googlechat.client``).
Webhook messages cannot be edited, so the record keeps no id that is ever used: nothing read from
it is trusted, and it can only suppress a phase (``wants``), never redirect a post.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from pydantic import Field

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
from functions.googlechat.card import JsonObject, plain_text, run_message
from functions.googlechat.client import post
from functions.googlechat.errors import FAULTS
from functions.googlechat.spaces import GoogleChatSettings, SpaceName, webhook

if TYPE_CHECKING:  # the message's templates load with the first message
    from common.templates import Message, Rendered

DEFAULT_STATES = STATE_NAMES["started"] | STATE_NAMES["finished"]
"""The run's thread opens when it starts and gets a second card when it ends."""


class GoogleChatConfig(ShowsStepLogs, Templated):
    space: SpaceName = Field(
        description="the name of the space's webhook file in GOOGLECHAT_SPACES_DIR, such as widget-ci"
    )
    """``googlechat.integrations.tekton.dev/space``: the webhook's name, as the operator named its file."""
    on: RunStates | None = None
    """``googlechat.integrations.tekton.dev/on``: the states to post (default: started, finished)."""


Ctx = Context[GoogleChatConfig, GoogleChatSettings]


def _outgoing(ctx: Ctx) -> tuple[Rendered, JsonObject]:
    """The message for the run's current state, and the template's text or the default one."""
    from common.steplogs import what_failed  # noqa: PLC0415 -- loaded with the first message
    from common.templates import render, template_text  # noqa: PLC0415 -- loaded with the first message

    run, failed = ctx.run, what_failed(ctx)
    default = partial(plain_text, run, failed.tasks)
    rendered = render(ctx, "googlechat", default, children=failed.children, step_logs=failed.step_logs)
    text = template_text(ctx, rendered)
    thread = _thread_key(ctx)
    return rendered, run_message(
        run, failed.tasks, ctx.run_url, thread_key=thread, text=text, logs=failed.step_logs
    )


def message(ctx: Ctx) -> Message:
    """What ``report`` posts for the run's current state, without posting it (``render``)."""
    from common.templates import Message  # noqa: PLC0415 -- loaded with the first message

    rendered, body = _outgoing(ctx)
    return Message(rendered, body)


def report(ctx: Ctx) -> Report:
    from common.templates import with_fallback  # noqa: PLC0415 -- loaded with the first message

    run, space = ctx.run, ctx.config.space
    hook = webhook(ctx.settings, space)  # GoogleChatSpaceNotConfigured before anything is sent
    rendered, body = _outgoing(ctx)
    message_id = f"client-{ctx.key('message', space, run.phase.value, per_state=False)}"
    created = post(hook, body, message_id=message_id, timeout=ctx.settings.timeout_seconds)
    kept = {"space": space, PHASE_KEY: run.phase.value, "message-id": message_id}
    if not created:
        return Report(
            f"Google Chat space {space!r} already has this run's {run.phase.value} message "
            "(ALREADY_EXISTS): not posted again",
            kept,
        )
    posted = Report(f"posted {run.phase.value} to Google Chat space {space!r}, in the run's thread", kept)
    return with_fallback(posted, rendered)


def _thread_key(ctx: Ctx) -> str:
    """The run's thread: the same for every state, every replica and every retry."""
    return ctx.key("thread", per_state=False)


integration = Integration(
    declared_in=__file__,
    config=GoogleChatConfig,
    settings=GoogleChatSettings,
    report=report,
    message=message,
    policy=Destinations("spaces", "space"),
    destinations=lambda ctx: [ctx.config.space],
    faults=FAULTS,
    states=DEFAULT_STATES,
    wants=phase_not_reported,
    min_scale=1,  # a cold start would delay the card users watch for
    idempotency=Idempotency(
        "messageId client-<key per (run UID, integration, space, phase)>: Chat refuses a second "
        "message with it (409 ALREADY_EXISTS, counted as posted); threadKey per run UID",
        claim=always,
    ),
)
handle = serve(integration)
