"""Slack: one message per run, posted once, then edited with ``chat.update`` as the run moves on.

Annotations: ``slack.integrations.tekton.dev/{channel,on,thread-failures,log-lines,template}``
(docs/slack.md). A failed run's failed steps' last lines (``log-lines``) go into a thread reply,
with the failure details when ``thread-failures`` asks for them; an operator's template
(``template``, docs/templates.md) writes the message's text.

With a bot token, the record keeps the message's ``channel`` ID and ``ts`` (and ``details-ts``,
the thread reply), signed (``functions.slack.ownership``): any replica edits the message later,
and ids a run's author edited are never used. Without a usable record, the run's message is
looked up in the configured channel's history by its metadata (run UID) and poster (this bot)
before a message is posted; only a token that cannot read the history skips that, and then a
crash between a post and its record can post twice (the documented limit).

With only an incoming webhook (which cannot edit), each reported state is one new message,
claimed before it is sent, and ``on`` defaults to finished states; a crash between the post and
its record can repeat that state's message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, StringConstraints

from common import (
    Context,
    Destinations,
    Idempotency,
    Integration,
    Report,
    Run,
    RunPhase,
    serve,
)
from common.config import STATE_NAMES, RunStates, ShowsStepLogs, Templated
from common.errors import IntegrationError
from common.settings import PerSettings
from common.summary import headline
from functions.slack.client import SlackBot, SlackSettings, SlackWebhook
from functions.slack.errors import FAULTS
from functions.slack.message import (
    SlackMessage,
    fallback_text,
    run_message,
    templated_message,
    thread_reply,
)
from functions.slack.ownership import (
    MessageIds,
    Part,
    destination,
    metadata,
    names_run,
    signing_key,
    verified,
)

if TYPE_CHECKING:  # the message's templates load with the first message
    from common.templates import Message, Rendered

log = logging.getLogger(__name__)

Channel = Annotated[str, StringConstraints(pattern=r"^#?[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")]

BOT_DEFAULT_STATES = STATE_NAMES["started"] | STATE_NAMES["finished"]
"""One message appears when the run starts and turns green or red when it ends."""
WEBHOOK_DEFAULT_STATES = STATE_NAMES["finished"]
"""A webhook cannot edit: one message per run, when it ends."""
LOOKUP_MARGIN = timedelta(minutes=10)
"""History is searched from the run's creation minus this much (clock skew between cluster and Slack)."""


class SlackConfig(ShowsStepLogs, Templated):
    channel: Channel
    on: RunStates | None = None
    thread_failures: bool = Field(default=False, alias="thread-failures")


Ctx = Context[SlackConfig, SlackSettings]

_slack_bot = PerSettings(SlackBot)
"""The bot, with its caches (channel ids, its own bot id), for the current settings."""


@dataclass(frozen=True)
class _Outgoing:
    """What is sent for the run's current state."""

    rendered: Rendered
    main: SlackMessage
    """The run's message; failure details and logs are in the thread when there is a ``reply``."""
    reply: SlackMessage | None
    """The thread reply (with a bot): failure details (``thread-failures``), the failed steps' logs."""
    inline: SlackMessage
    """The run's message with everything in it: a webhook's, or the bot's when the reply fails."""


def _outgoing(ctx: Ctx) -> _Outgoing:
    """The messages for the run's current state: the template's text or the default one, the
    tasks that did not succeed and the failed steps' last lines (read only for a failed run that
    asks for ``log-lines``)."""
    from common.steplogs import what_failed  # noqa: PLC0415 -- loaded with the first message
    from common.templates import render, template_text  # noqa: PLC0415 -- loaded with the first message

    run, url, failed = ctx.run, ctx.run_url, what_failed(ctx)
    tasks, logs = failed.tasks, failed.step_logs
    rendered = render(ctx, "slack", lambda: fallback_text(run), children=failed.children, step_logs=logs)
    text = template_text(ctx, rendered)
    details = ctx.config.thread_failures and bool(tasks)
    threaded = not _webhook(ctx.settings) and (details or bool(logs))

    def shown(in_thread: bool) -> SlackMessage:
        threads = details and in_thread
        if text is None:
            return run_message(
                run, tasks, url, details_in_thread=threads, logs=logs, logs_in_thread=in_thread
            )
        return templated_message(
            run, text, url, details_in_thread=threads, logs=logs, logs_in_thread=in_thread
        )

    reply = thread_reply(run, tasks if details else [], logs) if threaded else None
    return _Outgoing(rendered, shown(threaded), reply, shown(in_thread=False))


def message(ctx: Ctx) -> Message:
    """What ``report`` sends for the run's current state, without sending it (``render``)."""
    from common.templates import Message  # noqa: PLC0415 -- loaded with the first message

    out = _outgoing(ctx)
    if _webhook(ctx.settings):
        return Message(out.rendered, {"message": out.inline.as_kwargs()})
    reply = out.reply.as_kwargs() if out.reply else None
    return Message(out.rendered, {"message": out.main.as_kwargs(), "reply": reply})


def report(ctx: Ctx) -> Report:
    from common.templates import with_fallback  # noqa: PLC0415 -- loaded with the first message

    out = _outgoing(ctx)
    if ctx.settings.mode() == "webhook":
        SlackWebhook(ctx.settings).send(out.inline, ctx.config.channel)
        return with_fallback(Report(f"posted {headline(ctx.run)} through the incoming webhook"), out.rendered)
    bot = _slack_bot(ctx.settings)
    ids: MessageIds | None = None
    try:
        ids, posted_now = _show_run(ctx, bot, out.main)
        summary = f"message {ids.ts} in {ids.channel} shows {headline(ctx.run)}"
        if out.reply is None:
            return with_fallback(Report(summary, _annotations(ctx, ids)), out.rendered)
        try:
            ids = replace(ids, details_ts=_thread_reply(ctx, bot, ids, out.reply, posted_now=posted_now))
        except IntegrationError as e:
            if not posted_now:
                raise  # the message existed before: a retry finds it and cannot post it twice
            # Posted just now; without history, failing could lose its ts and post it again later.
            # Show the details in the message instead (best effort) and say so in the record.
            with suppress(IntegrationError):
                bot.update(ids.channel, ids.ts, out.inline, _mark(ctx, "run"), shown=_destination(ctx))
            unthreaded = Report(
                f"{summary}; failure details not threaded: {e.message}",
                _annotations(ctx, ids),
                "ReportedWithoutDetails",
            )
            return with_fallback(unthreaded, out.rendered)
        threaded = Report(f"{summary}, details in its thread", _annotations(ctx, ids))
        return with_fallback(threaded, out.rendered)
    except IntegrationError as e:
        if ids is not None:  # keep where the message is, so the retry edits it
            e.annotations = {**_annotations(ctx, ids), **e.annotations}
        raise


def _show_run(ctx: Ctx, bot: SlackBot, message: SlackMessage) -> tuple[MessageIds, bool]:
    """Edit the run's message, found from the record or the history, or post it; and whether posted."""
    channel, ids = _locate(ctx, bot)
    if ids is not None:
        bot.update(ids.channel, ids.ts, message, _mark(ctx, "run"), shown=_destination(ctx))
        return ids, False
    posted = bot.post(channel, message, _mark(ctx, "run"), shown=_destination(ctx))
    return MessageIds(posted.channel, posted.ts), True


def _locate(ctx: Ctx, bot: SlackBot) -> tuple[str, MessageIds | None]:
    """Where to post (the channel's ID when it is known), and the run's message if it exists."""
    recorded = _recorded(ctx)
    if recorded is not None:
        return recorded.channel, recorded
    if ctx.recorded("ts") or ctx.recorded("channel"):
        log.warning(
            "the record on %s/%s names a Slack message whose signature does not verify for this run "
            "and channel: ignored, looking for the run's own message instead",
            ctx.run.namespace,
            ctx.run.name,
        )
    channel = bot.channel_id(_destination(ctx))
    if channel is None:
        return ctx.config.channel, None
    wanted = partial(_names, ctx, part="run")
    ts = bot.find(channel, wanted, oldest=_oldest(ctx.run), shown=_destination(ctx))
    return channel, MessageIds(channel, ts) if ts else None


def _thread_reply(
    ctx: Ctx, bot: SlackBot, ids: MessageIds, details: SlackMessage, *, posted_now: bool
) -> str:
    mark, shown = _mark(ctx, "details"), _destination(ctx)
    reply = ids.details_ts
    if reply is None and not posted_now:  # a new message has no replies yet
        wanted = partial(_names, ctx, part="details")
        reply = bot.find(ids.channel, wanted, thread_ts=ids.ts, shown=shown)
    if reply:
        bot.update(ids.channel, reply, details, mark, shown=shown)
        return reply
    return bot.post(ids.channel, details, mark, thread_ts=ids.ts, shown=shown).ts


def _recorded(ctx: Ctx) -> MessageIds | None:
    """The message ids of the previous record, if its signature verifies (else ``None``)."""
    if ctx.record is None:
        return None
    return verified(ctx.record.annotations, _key(ctx.settings), ctx.run.uid, _destination(ctx))


def _annotations(ctx: Ctx, ids: MessageIds) -> dict[str, str]:
    return ids.annotations(_key(ctx.settings), ctx.run.uid, _destination(ctx))


def _key(settings: SlackSettings) -> bytes:
    assert settings.bot_token is not None, "records are signed in the bot mode only"
    return signing_key(settings.bot_token.get_secret_value())


def _destination(ctx: Ctx) -> str:
    return destination(ctx.config.channel)


def _mark(ctx: Ctx, part: Part) -> dict[str, Any]:
    return metadata(ctx.integration, ctx.run.uid, part)


def _names(ctx: Ctx, message: Mapping[str, Any], *, part: Part) -> bool:
    return names_run(message, ctx.integration, ctx.run.uid, part)


def _oldest(run: Run) -> str | None:
    """Slack's ``oldest`` for the lookup: the run's creation (else start) minus ``LOOKUP_MARGIN``."""
    created = run.raw.get("metadata", {}).get("creationTimestamp")
    moment = run.start_time
    if isinstance(created, str):
        with suppress(ValueError):
            moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    if moment is None or moment.tzinfo is None:
        return None
    return f"{(moment - LOOKUP_MARGIN).timestamp():.6f}"


def _failed(run: Run) -> bool:
    return run.condition is not None and run.condition.status == "False"


def _webhook(settings: SlackSettings) -> bool:
    """``mode() == "webhook"``, and ``False`` where the settings hold no credential (``render``)."""
    return settings.bot_token is None and settings.webhook_url is not None


def _default_states(settings: SlackSettings) -> frozenset[RunPhase]:
    return WEBHOOK_DEFAULT_STATES if settings.mode() == "webhook" else BOT_DEFAULT_STATES


def _destinations(ctx: Ctx) -> list[str]:
    """The channel, as the namespace policy names it. A webhook's channel is fixed by whoever made
    the webhook, not by the run, so there is nothing of the run's to check."""
    return [] if ctx.settings.mode() == "webhook" else [_destination(ctx)]


def _may_post(ctx: Ctx) -> bool:
    """Whether this call may create a message: every webhook message; with a bot, the run's
    message or its thread reply when no verified record says where it already is."""
    if ctx.settings.mode() == "webhook":
        return True
    ids = _recorded(ctx)
    threads = (ctx.config.thread_failures or ctx.config.log_lines > 0) and _failed(ctx.run)
    return ids is None or (threads and ids.details_ts is None)


integration = Integration(
    declared_in=__file__,
    config=SlackConfig,
    settings=SlackSettings,
    report=report,
    message=message,
    policy=Destinations("channels", "channel"),
    destinations=_destinations,
    faults=FAULTS,
    states=_default_states,
    min_scale=1,  # a cold start would delay the message users watch
    idempotency=Idempotency(
        "message metadata naming the run UID, posted by this bot, looked up in the channel's history "
        "before posting (bot token with history scopes); a signed record of the message's channel and ts",
        claim=_may_post,
    ),
)
handle = serve(integration)
