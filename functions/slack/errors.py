"""Classify Slack's answers and transport failures into the runtime's permanent and temporary errors.

Slack mostly answers 200 with ``ok: false`` and an error code; rate limits come as 429 with
``Retry-After``. Temporary errors pass that wait on; permanent ones say what the user should do.
Messages never carry the bot token or the incoming-webhook URL: both are credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.error import URLError

from common import PermanentError, TemporaryError
from common.errors import IntegrationError, clip

MAX_RETRY_AFTER = 3600.0
"""Longest wait passed on to the sender; Slack's own waits are usually under a minute."""
DEFAULT_RETRY_AFTER = 30.0
"""Wait passed on when Slack rate-limits without saying for how long."""
CHANNEL_ANNOTATION = "slack.integrations.tekton.dev/channel"

RATE_LIMITED = frozenset({"ratelimited", "rate_limited"})
"""``ratelimited`` comes with HTTP 429; ``rate_limited`` (the app posted too many messages) is
documented for ``chat.postMessage`` as an ``ok: false`` answer."""
TRANSIENT = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}
)
CREDENTIALS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "team_disabled"}
)
WEBHOOK_GONE = frozenset({"no_service", "invalid_token", "no_team", "team_disabled", "no_active_hooks"})
FORBIDDEN = frozenset(
    {"restricted_action", "action_prohibited", "posting_to_general_channel_denied", "ekm_access_denied"}
)
MESSAGE_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


def classify(
    status: int,
    code: str,
    headers: Mapping[str, object],
    *,
    what: str,
    channel: str,
    bot: str | None = None,
    webhook: bool = False,
) -> IntegrationError:
    """The runtime error for Slack answering ``status``/``code`` to ``what`` (e.g. ``post to #ci``)."""
    code = clip(code or f"HTTP {status}", 100)
    retry_after = _retry_after(headers)
    if status == 429 or code in RATE_LIMITED:
        wait = retry_after or DEFAULT_RETRY_AFTER
        return TemporaryError("SlackRateLimited", f"Slack rate-limited {what}; retry in {wait:.0f}s", wait)
    if status >= 500 or code in TRANSIENT:
        return TemporaryError("SlackUnavailable", f"Slack answered {code} to {what}", retry_after)
    reason, hint = _hint(code, channel, bot or "<your bot>", webhook)
    return PermanentError(reason, f"{what}: {hint}")


def unreachable(error: Exception, what: str) -> TemporaryError:
    """A request that got no answer. Only the exception's type and reason are kept, never a URL."""
    cause = error.reason if isinstance(error, URLError) else error
    if isinstance(cause, TimeoutError):
        return TemporaryError("SlackTimeout", f"Slack did not answer {what} in time")
    return TemporaryError("SlackUnreachable", f"could not reach Slack to {what}: {type(cause).__name__}")


def _hint(code: str, channel: str, bot: str, webhook: bool) -> tuple[str, str]:
    invite = f"/invite @{bot} in {channel}"
    if webhook and (code in WEBHOOK_GONE or code in CREDENTIALS):
        return "SlackWebhookGone", (
            f"the incoming webhook was removed or is invalid ({code}): create a new one and update "
            "the secret that SLACK_WEBHOOK_URL_FILE points at"
        )
    if code == "account_inactive":
        return "SlackUnauthorized", (
            "the bot's user or workspace was deactivated (account_inactive): reinstall the Slack app "
            "and update SLACK_BOT_TOKEN(_FILE)"
        )
    if code in CREDENTIALS:
        return "SlackUnauthorized", (
            f"Slack rejected the bot token ({code}): check SLACK_BOT_TOKEN or the file SLACK_BOT_TOKEN_FILE "
            "names, and reinstall the Slack app if it was removed"
        )
    if code == "channel_not_found":
        return "SlackChannelNotFound", (
            f"Slack has no channel {channel} that the bot can see (channel_not_found): check "
            f"{CHANNEL_ANNOTATION}; for a private channel, invite the bot first with {invite}"
        )
    if code == "not_in_channel":
        return "SlackNotInChannel", (
            f"the bot is not a member of {channel} (not_in_channel): invite it with {invite}, "
            "or give the Slack app the chat:write.public scope"
        )
    if code in ("is_archived", "channel_is_archived"):
        return "SlackChannelArchived", (
            f"{channel} is archived ({code}): unarchive it or change {CHANNEL_ANNOTATION}"
        )
    if code == "missing_scope":
        return "SlackMissingScope", (
            "the bot token lacks a scope (missing_scope): add chat:write to the Slack app and reinstall it"
        )
    if code in FORBIDDEN:
        return "SlackForbidden", (
            f"the workspace does not let the bot post in {channel} ({code}): ask a Slack admin, "
            f"or change {CHANNEL_ANNOTATION}"
        )
    if code in MESSAGE_GONE:
        return "SlackMessageGone", (
            f"the run's Slack message was deleted or can no longer be edited ({code}); "
            "later states of this run are not shown"
        )
    return "SlackRejected", f"Slack refused the request ({code})"


def _retry_after(headers: Mapping[str, object]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            text = str(value[0] if isinstance(value, list) and value else value).strip()
            if text.isdigit():
                return min(MAX_RETRY_AFTER, max(1.0, float(text)))
    return None
