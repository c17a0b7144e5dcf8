"""Slack clients: a bot token for the Web API, or an incoming webhook, and the calls the function makes.

Credentials come from the environment or mounted files (DESIGN.md §5), never from annotations.
Nothing here sleeps through a rate limit: slack_sdk's ``RateLimitErrorRetryHandler`` is left out,
and the only retry is a short, capped one for a refused connection (nothing reached Slack, so a
post cannot repeat). Rate limits and 5xx go back to the sender with ``Retry-After``.
Every failure leaves as the runtime's ``PermanentError`` or ``TemporaryError``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import FixedValueRetryIntervalCalculator, HttpRequest, HttpResponse, RetryHandler
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import SlackResponse

from common import PermanentError
from common.secrets import read_secret, unmounted
from functions.slack.errors import classify, unreachable
from functions.slack.message import SlackMessage

DEFAULT_API_URL = "https://slack.com/api/"
TIMEOUT_SECONDS = 10
ERROR_CODE = re.compile(r"[a-z0-9_.]{1,80}")
"""What Slack's error codes look like; anything else (an HTML error page) is not repeated."""
sdk_log = logging.getLogger("functions.slack.sdk")
sdk_log.setLevel(logging.WARNING)  # slack_sdk logs request URLs below WARNING; a webhook URL is a credential


class RefusedConnectionRetry(RetryHandler):
    """Retry a refused connection twice, 0.2 s apart: nothing was sent, so nothing can repeat."""

    def __init__(self) -> None:
        super().__init__(max_retry_count=2, interval_calculator=FixedValueRetryIntervalCalculator(0.2))

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return (
            response is None
            and isinstance(error, URLError)
            and isinstance(error.reason, ConnectionRefusedError)
        )


def configured_for_webhook() -> bool:
    """Whether only an incoming webhook is configured. Reads no secret, only which variables are set."""

    def given(variable: str) -> bool:
        return bool(os.environ.get(variable) or os.environ.get(f"{variable}_FILE"))

    return not given("SLACK_BOT_TOKEN") and given("SLACK_WEBHOOK_URL")


@dataclass(frozen=True)
class SlackSettings:
    api_url: str
    token: str | None = field(repr=False)
    webhook_url: str | None = field(repr=False)

    @classmethod
    def from_env(cls) -> SlackSettings:
        """Read on every event, so a rotated secret file is picked up without a restart."""
        api_url = os.environ.get("SLACK_API_URL") or DEFAULT_API_URL
        return cls(
            api_url=api_url if api_url.endswith("/") else api_url + "/",
            token=_secret("SLACK_BOT_TOKEN"),
            webhook_url=_secret("SLACK_WEBHOOK_URL"),
        )


def _secret(variable: str) -> str | None:
    try:
        return read_secret(variable) or None
    except OSError as e:
        raise PermanentError(
            "SlackNotConfigured",
            f"cannot read the file {variable}_FILE names: {e.strerror or type(e).__name__}",
        ) from e


@dataclass(frozen=True)
class Posted:
    channel: str
    """The channel's ID, as Slack answers it: ``chat.update`` needs the ID, not the name."""
    ts: str


class SlackBot:
    """``chat.postMessage`` and ``chat.update`` with a bot token."""

    def __init__(self, settings: SlackSettings) -> None:
        if not settings.token:
            raise PermanentError(
                "SlackNotConfigured",
                "the Slack function has no credentials: set SLACK_BOT_TOKEN(_FILE), "
                "or SLACK_WEBHOOK_URL_FILE for an incoming webhook"
                + unmounted("SLACK_BOT_TOKEN_FILE", "SLACK_WEBHOOK_URL_FILE"),
            )
        self.web = WebClient(
            token=settings.token,
            base_url=settings.api_url,
            timeout=TIMEOUT_SECONDS,
            retry_handlers=[RefusedConnectionRetry()],
            logger=sdk_log,
        )

    def post(self, channel: str, message: SlackMessage, *, thread_ts: str | None = None) -> Posted:
        what = f"post to {channel}" if thread_ts is None else f"reply in a thread in {channel}"
        answer = self._call(what, channel, self.web.chat_postMessage, message, thread_ts=thread_ts)
        return Posted(channel=str(answer["channel"]), ts=str(answer["ts"]))

    def update(self, channel: str, ts: str, message: SlackMessage) -> None:
        self._call(f"update message {ts} in {channel}", channel, self.web.chat_update, message, ts=ts)

    def bot_name(self) -> str | None:
        """The bot's user name (``auth.test``), to tell users whom to invite; ``None`` if unknown."""
        try:
            return str(self.web.auth_test()["user"])
        except (SlackClientError, OSError, KeyError):
            return None

    def _call(
        self,
        what: str,
        channel: str,
        method: Callable[..., SlackResponse],
        message: SlackMessage,
        **kwargs: Any,
    ) -> dict[str, Any]:
        try:
            answer = method(channel=channel, **kwargs, **message.as_kwargs())
        except SlackApiError as e:
            error = e.response.get("error") if isinstance(e.response.data, dict) else None
            code = error if isinstance(error, str) and ERROR_CODE.fullmatch(error) else ""
            bot = self.bot_name() if code in ("channel_not_found", "not_in_channel") else None
            raise classify(
                e.response.status_code, code, e.response.headers, what=what, channel=channel, bot=bot
            ) from e
        except (SlackClientError, OSError) as e:  # URLError and timeouts are OSErrors
            raise unreachable(e, what) from e
        return dict(answer.data) if isinstance(answer.data, dict) else {}


class SlackWebhook:
    """One incoming webhook: posts only, to the channel chosen when the webhook was made."""

    def __init__(self, url: str) -> None:
        self.client = WebhookClient(
            url, timeout=TIMEOUT_SECONDS, retry_handlers=[RefusedConnectionRetry()], logger=sdk_log
        )

    def send(self, message: SlackMessage, channel: str) -> None:
        what = "post through the incoming webhook"
        try:
            answer = self.client.send(**message.as_kwargs())
        except (SlackClientError, OSError) as e:
            raise unreachable(e, what) from e
        if answer.status_code != 200:
            code = answer.body.strip() if ERROR_CODE.fullmatch(answer.body.strip()) else ""
            raise classify(answer.status_code, code, answer.headers, what=what, channel=channel, webhook=True)
