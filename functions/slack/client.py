"""Slack clients: the Web API with a bot token, or an incoming webhook; and the calls the function makes.

Credentials come from ``SlackSettings`` (environment or mounted files, DESIGN.md §5), never from
annotations. The mode is decided once per settings load, from what is actually readable: a
readable bot token means the Web API; else a readable incoming-webhook URL; else
``SlackNotConfigured`` naming the unreadable files. Everything the function decides (its default
states, its destinations, its claims, its report) asks the same ``SlackSettings.mode()``.

Nothing here sleeps through a rate limit: slack_sdk's ``RateLimitErrorRetryHandler`` is left out,
and the only retry is a short, capped one for a refused connection (nothing reached Slack, so a
post cannot repeat). Every failure leaves as the runtime's ``PermanentError`` or
``TemporaryError`` (``functions.slack.errors``).

Reading a channel's history is best effort: a token without the scopes for it (``missing_scope``,
``not_allowed_token_type``, or a channel the bot cannot read) makes ``find`` answer ``None``, as
if nothing were found; any other failure is raised, so a message is never posted while Slack
could still have said that it exists.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from pydantic import SecretStr, field_validator

from common import ServiceSettings
from common.errors import IntegrationError
from functions.slack.errors import ERROR_CODE, classify, unreachable
from functions.slack.message import SlackMessage
from functions.slack.ownership import CHANNEL_ID

if TYPE_CHECKING:  # slack_sdk is imported when the first client is built, for a run that posts
    from slack_sdk.http_retry import RetryHandler
    from slack_sdk.web import SlackResponse

DEFAULT_API_URL = "https://slack.com/api/"
UNREADABLE = frozenset({"missing_scope", "not_allowed_token_type", "not_in_channel", "channel_not_found"})
"""Answers meaning this token cannot read the channel's list or history: the lookup is skipped."""
LIST_PAGE, MAX_LIST_PAGES = 1000, 10
"""``conversations.list``: channels per page, and pages read at most to resolve a name."""
HISTORY_PAGE, MAX_HISTORY_PAGES = 200, 5
"""``conversations.history``/``replies``: messages per page, and pages read at most per lookup."""

log = logging.getLogger(__name__)
sdk_log = logging.getLogger("functions.slack.sdk")
sdk_log.setLevel(logging.WARNING)  # slack_sdk logs request URLs below WARNING; a webhook URL is a credential

Mode = Literal["bot", "webhook"]
Message = Mapping[str, Any]


class SlackSettings(ServiceSettings):
    """``SLACK_*``: a bot token or an incoming-webhook URL, the Web API's URL and the deadline."""

    prefix: ClassVar[str] = "SLACK"
    service: ClassVar[str] = "Slack"

    api_url: str = DEFAULT_API_URL
    """``SLACK_API_URL``: the Web API's base."""
    bot_token: SecretStr | None = None
    """``SLACK_BOT_TOKEN`` or ``SLACK_BOT_TOKEN_FILE``: a bot token (``xoxb-…``)."""
    webhook_url: SecretStr | None = None
    """``SLACK_WEBHOOK_URL`` or ``SLACK_WEBHOOK_URL_FILE``: an incoming webhook, when there is no bot."""

    @field_validator("api_url")
    @classmethod
    def _ends_with_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @classmethod
    def load(cls) -> Self:
        """The settings, with the mode decided: ``SlackNotConfigured`` when no credential is readable."""
        settings = super().load()
        settings.mode()
        return settings

    def mode(self) -> Mode:
        """``bot`` when the bot token is readable, else ``webhook`` when the webhook URL is."""
        if self.bot_token is not None:
            return "bot"
        if self.webhook_url is not None:
            return "webhook"
        raise self.not_configured(
            "the Slack function has no credentials: set SLACK_BOT_TOKEN(_FILE), "
            "or SLACK_WEBHOOK_URL(_FILE) for an incoming webhook",
            "bot_token",
            "webhook_url",
        )

    @property
    def request_timeout(self) -> int:
        """slack_sdk's per-request timeout, whole seconds (the runtime keeps the total deadline)."""
        return max(1, math.ceil(self.timeout_seconds))


def refused_connection_retry() -> RetryHandler:
    """Retry a refused connection twice, 0.2 s apart: nothing was sent, so nothing can repeat."""
    return _refused_connection_retry()()


@cache
def _refused_connection_retry() -> type[RetryHandler]:
    """The handler's class, defined with slack_sdk's base class when the first client needs it."""
    from slack_sdk.http_retry import (  # noqa: PLC0415 -- slack_sdk only for a run that posts
        FixedValueRetryIntervalCalculator,
        HttpRequest,
        HttpResponse,
        RetryHandler,
    )
    from slack_sdk.http_retry.state import RetryState  # noqa: PLC0415

    class RefusedConnectionRetry(RetryHandler):
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
            reason = getattr(error, "reason", None)
            return response is None and isinstance(reason, ConnectionRefusedError)

    return RefusedConnectionRetry


@dataclass(frozen=True)
class Posted:
    channel: str
    """The channel's ID, as Slack answers it: ``chat.update`` needs the ID, not the name."""
    ts: str


@dataclass(frozen=True)
class Identity:
    """Who the token is (``auth.test``): its messages carry ``bot_id`` (a bot) or ``user``."""

    name: str
    user_id: str
    bot_id: str | None

    def posted(self, message: Message) -> bool:
        if self.bot_id:
            return message.get("bot_id") == self.bot_id
        return message.get("user") == self.user_id


class _UnreadableError(Exception):
    """The token cannot read a channel list or history (a code in ``UNREADABLE``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class SlackBot:
    """The Web API calls of one bot token; caches its identity and channel IDs for the process."""

    def __init__(self, settings: SlackSettings) -> None:
        from slack_sdk import WebClient  # noqa: PLC0415 -- slack_sdk only for a run that posts

        assert settings.bot_token is not None, "SlackBot needs the bot mode"
        self.settings = settings
        self.web = WebClient(
            token=settings.bot_token.get_secret_value(),
            base_url=settings.api_url,
            timeout=settings.request_timeout,
            retry_handlers=[refused_connection_retry()],
            logger=sdk_log,
        )
        self._lock = threading.Lock()
        self._identity: Identity | None = None
        self._channels: dict[str, str] = {}
        self._unreadable_noted: set[str] = set()

    def post(
        self,
        channel: str,
        message: SlackMessage,
        metadata: Message,
        *,
        thread_ts: str | None = None,
        shown: str | None = None,
    ) -> Posted:
        """Post to ``channel`` (an ID or a name); ``shown`` names it in messages (``#widget-ci``)."""
        where = shown or channel
        what = f"post to {where}" if thread_ts is None else f"reply in a thread in {where}"
        answer = self._call(
            what,
            where,
            self.web.chat_postMessage,
            channel=channel,
            thread_ts=thread_ts,
            metadata=dict(metadata),
            **message.as_kwargs(),
        )
        posted = Posted(channel=str(answer["channel"]), ts=str(answer["ts"]))
        if not CHANNEL_ID.fullmatch(channel):
            with self._lock:
                self._channels[_name(channel)] = posted.channel
        return posted

    def update(
        self, channel: str, ts: str, message: SlackMessage, metadata: Message, *, shown: str | None = None
    ) -> None:
        where = shown or channel
        self._call(
            f"update message {ts} in {where}",
            where,
            self.web.chat_update,
            channel=channel,
            ts=ts,
            metadata=dict(metadata),
            **{"blocks": [], **message.as_kwargs()},  # Slack keeps a message's blocks unless told
        )

    def channel_id(self, channel: str) -> str | None:
        """The ID of ``channel`` (an ID, or a name with or without ``#``); ``None`` if it cannot be
        learnt: not listed (e.g. a private channel the bot is not in) or no scope to list channels."""
        if CHANNEL_ID.fullmatch(channel):
            return channel
        name = _name(channel)
        with self._lock:
            known = self._channels.get(name)
        if known is not None:
            return known
        for types in ("public_channel,private_channel", "public_channel"):  # the second: no groups:read
            try:
                for page in self._pages(
                    f"list channels to find {channel}",
                    channel,
                    self.web.conversations_list,
                    "channels",
                    MAX_LIST_PAGES,
                    types=types,
                    exclude_archived=True,
                    limit=LIST_PAGE,
                ):
                    for item in page:
                        if name in (item.get("name"), item.get("name_normalized")) and item.get("id"):
                            with self._lock:
                                self._channels[name] = str(item["id"])
                            return str(item["id"])
            except _UnreadableError:
                continue
            return None
        return None

    def find(
        self,
        channel: str,
        wanted: Callable[[Message], bool],
        *,
        oldest: str | None = None,
        thread_ts: str | None = None,
        shown: str | None = None,
    ) -> str | None:
        """The ``ts`` of the newest message in ``channel`` (or in the thread of ``thread_ts``) that
        this token posted and ``wanted`` accepts; ``None`` if none, or if the history is unreadable."""
        where = shown or channel
        what = f"read the history of {where}" if thread_ts is None else f"read a thread in {where}"
        if thread_ts is None:
            method: Callable[..., SlackResponse] = self.web.conversations_history
            scope: dict[str, Any] = {"oldest": oldest} if oldest else {}
        else:
            method, scope = self.web.conversations_replies, {"ts": thread_ts}
        try:
            for page in self._pages(
                what,
                where,
                method,
                "messages",
                MAX_HISTORY_PAGES,
                channel=channel,
                include_all_metadata=True,
                limit=HISTORY_PAGE,
                **scope,
            ):
                mine = [message for message in page if wanted(message) and self.identity().posted(message)]
                if mine:
                    return str(max(mine, key=lambda message: float(message.get("ts") or 0))["ts"])
        except _UnreadableError:
            return None
        return None

    def identity(self) -> Identity:
        """``auth.test``, once per process and token."""
        with self._lock:
            if self._identity is not None:
                return self._identity
        answer = self._call("identify the bot (auth.test)", "", self.web.auth_test)
        identity = Identity(
            name=str(answer.get("user") or ""),
            user_id=str(answer.get("user_id") or ""),
            bot_id=str(answer["bot_id"]) if answer.get("bot_id") else None,
        )
        with self._lock:
            self._identity = identity
        return identity

    def _pages(
        self,
        what: str,
        where: str,
        method: Callable[..., SlackResponse],
        key: str,
        most: int,
        **kwargs: Any,
    ) -> Iterator[list[Message]]:
        """Up to ``most`` pages of a cursor-paginated list, each read when the caller asks for it.

        Raises ``_UnreadableError`` (after noting it once) when the token cannot read the list.
        """
        cursor: str | None = None
        for _ in range(most):
            try:
                answer = self._call(what, where, method, tolerate=UNREADABLE, cursor=cursor, **kwargs)
            except _UnreadableError as e:
                self._note_unreadable(what, e.code)
                raise
            items = answer.get(key)
            yield [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []
            metadata = answer.get("response_metadata")
            cursor = metadata.get("next_cursor") if isinstance(metadata, Mapping) else None
            if not cursor:
                return

    def _call(
        self,
        what: str,
        where: str,
        method: Callable[..., SlackResponse],
        *,
        tolerate: frozenset[str] = frozenset(),
        **kwargs: Any,
    ) -> dict[str, Any]:
        from slack_sdk.errors import SlackApiError, SlackClientError  # noqa: PLC0415 -- loaded with the client

        try:
            answer = method(**{key: value for key, value in kwargs.items() if value is not None})
        except SlackApiError as e:
            code = _code(e.response)
            if code in tolerate:
                raise _UnreadableError(code) from e
            bot = self._bot_name() if code in ("channel_not_found", "not_in_channel") else None
            raise classify(
                e.response.status_code, code, e.response.headers, what=what, channel=where, bot=bot
            ) from e
        except (SlackClientError, OSError) as e:  # URLError, a dropped connection and timeouts are OSErrors
            raise unreachable(e, what) from e
        return dict(answer.data) if isinstance(answer.data, dict) else {}

    def _bot_name(self) -> str | None:
        """The bot's user name, to tell users whom to invite; ``None`` if Slack cannot say."""
        try:
            return self.identity().name or None
        except IntegrationError:
            return None

    def _note_unreadable(self, what: str, code: str) -> None:
        with self._lock:
            if code in self._unreadable_noted:
                return
            self._unreadable_noted.add(code)
        log.info(
            "Slack answered %s to %s: this run's message cannot be looked up before posting, so a crash "
            "between a post and its record can post twice (docs/slack.md)",
            code,
            what,
        )


class SlackWebhook:
    """One incoming webhook: posts only, to the channel chosen when the webhook was made."""

    def __init__(self, settings: SlackSettings) -> None:
        from slack_sdk import WebhookClient  # noqa: PLC0415 -- slack_sdk only for a run that posts

        assert settings.webhook_url is not None, "SlackWebhook needs the webhook mode"
        self.client = WebhookClient(
            settings.webhook_url.get_secret_value(),
            timeout=settings.request_timeout,
            retry_handlers=[refused_connection_retry()],
            logger=sdk_log,
        )

    def send(self, message: SlackMessage, channel: str) -> None:
        from slack_sdk.errors import SlackClientError  # noqa: PLC0415 -- loaded with the client

        what = "post through the incoming webhook"
        try:
            answer = self.client.send(**message.as_kwargs())
        except (SlackClientError, OSError) as e:
            raise unreachable(e, what) from e
        if answer.status_code != 200:
            body = answer.body.strip()
            code = body if ERROR_CODE.fullmatch(body) else ""
            raise classify(answer.status_code, code, answer.headers, what=what, channel=channel, webhook=True)


def _name(channel: str) -> str:
    return channel.removeprefix("#").lower()


def _code(response: SlackResponse) -> str:
    """Slack's error code, if the answer has one that looks like a code (never an echoed page)."""
    error = response.get("error") if isinstance(response.data, dict) else None
    return error if isinstance(error, str) and ERROR_CODE.fullmatch(error) else ""
