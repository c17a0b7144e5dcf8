"""Slack: one message per run, posted once, then edited with ``chat.update`` as the run moves on.

Annotations: ``slack.integrations.tekton.dev/{channel,on,thread-failures}`` (docs/slack.md).
The record keeps the message's ``ts`` and ``channel`` ID (and ``details-ts``, the thread reply),
so any replica can edit the message later. With only an incoming webhook configured, each
reported state is a new message (webhooks cannot edit), and ``on`` defaults to finished states.
"""

from __future__ import annotations

import re
from contextlib import suppress
from typing import Annotated

from pydantic import Field, StringConstraints

from common import Context, Integration, IntegrationConfig, Report, Run, RunPhase, serve
from common.config import STATE_NAMES, RunStates
from common.errors import IntegrationError
from common.summary import TaskOutcome, headline, unsuccessful_tasks
from functions.slack.client import SlackBot, SlackSettings, SlackWebhook, configured_for_webhook
from functions.slack.message import details_message, run_message

Channel = Annotated[str, StringConstraints(pattern=r"^#?[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")]
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")

BOT_DEFAULT_STATES = STATE_NAMES["started"] | STATE_NAMES["finished"]
"""One message appears when the run starts and turns green or red when it ends."""
WEBHOOK_DEFAULT_STATES = STATE_NAMES["finished"]
"""A webhook cannot edit: one message per run, when it ends."""


class SlackConfig(IntegrationConfig):
    channel: Channel
    on: RunStates | None = None
    thread_failures: bool = Field(default=False, alias="thread-failures")


def report(ctx: Context[SlackConfig]) -> Report:
    settings = SlackSettings.from_env()
    tasks = unsuccessful_tasks(ctx.run, ctx.child_runs()) if _failed(ctx.run) else []
    if settings.token is None and settings.webhook_url:
        SlackWebhook(settings.webhook_url).send(run_message(ctx.run, tasks, ctx.run_url), ctx.config.channel)
        return Report(f"posted {headline(ctx.run)} through the incoming webhook")
    bot = SlackBot(settings)
    threaded = _threads_details(ctx) and bool(tasks)
    message = run_message(ctx.run, tasks, ctx.run_url, details_in_thread=threaded)
    ts, channel = ctx.recorded("ts"), ctx.recorded("channel")
    if ts and channel:
        bot.update(channel, ts, message)
    else:
        posted = bot.post(ctx.config.channel, message)
        ts, channel = posted.ts, posted.channel
    kept = {"ts": ts, "channel": channel}
    summary = f"message {ts} in {channel} shows {headline(ctx.run)}"
    if not threaded:
        return Report(summary, kept)
    try:
        kept["details-ts"] = _thread_details(ctx, bot, channel, ts, tasks)
    except IntegrationError as e:
        if ctx.recorded("ts"):
            raise  # the record already holds the message's ts: retrying cannot post it twice
        # The message was posted just now: failing would lose its ts and post it again later.
        # Show the details in the message instead (best effort) and say so in the record.
        with suppress(IntegrationError):
            bot.update(channel, ts, run_message(ctx.run, tasks, ctx.run_url))
        return Report(f"{summary}; failure details not threaded: {e.message}", kept, "ReportedWithoutDetails")
    return Report(f"{summary}, failure details in its thread", kept)


def _thread_details(
    ctx: Context[SlackConfig], bot: SlackBot, channel: str, ts: str, tasks: list[TaskOutcome]
) -> str:
    details = details_message(ctx.run, tasks)
    reply = ctx.recorded("details-ts")
    if reply:
        bot.update(channel, reply, details)
        return reply
    return bot.post(channel, details, thread_ts=ts).ts


def _failed(run: Run) -> bool:
    return run.condition is not None and run.condition.status == "False"


def _threads_details(ctx: Context[SlackConfig]) -> bool:
    return ctx.config.thread_failures and _failed(ctx.run) and not configured_for_webhook()


def _states(ctx: Context[SlackConfig]) -> frozenset[RunPhase]:
    if ctx.config.on is not None:
        return ctx.config.on
    return WEBHOOK_DEFAULT_STATES if configured_for_webhook() else BOT_DEFAULT_STATES


def _wants(ctx: Context[SlackConfig]) -> bool:
    return ctx.run.phase in _states(ctx)


def _destinations(ctx: Context[SlackConfig]) -> list[str]:
    """The channel, as the namespace policy names it (``#name`` or an ID). A webhook's channel is
    chosen by whoever made the webhook, not by the run, so it is not the run's to check."""
    if configured_for_webhook():
        return []
    channel = ctx.config.channel
    return [channel if channel.startswith("#") or CHANNEL_ID.fullmatch(channel) else f"#{channel}"]


def _needs_claim(ctx: Context[SlackConfig]) -> bool:
    """Posts must happen once: the run's message, its thread reply, and every webhook message."""
    if configured_for_webhook():
        return True
    return not ctx.recorded("ts") or (_threads_details(ctx) and not ctx.recorded("details-ts"))


integration = Integration(
    name="slack",
    config=SlackConfig,
    report=report,
    wants=_wants,
    needs_claim=_needs_claim,
    destinations=_destinations,
)
handle = serve(integration)
