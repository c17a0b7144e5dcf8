"""Slack's fault hints, and its special cases: ``ok: false`` answers whose error code says what happened.

The Web API answers most failures with HTTP 200 and ``{"ok": false, "error": "<code>"}``; incoming
webhooks answer 4xx with the code as plain text. The codes that mean "rate-limited" or "try again"
become temporary errors, the others a reason and a hint saying what the user should do. HTTP
status, ``Retry-After`` and transport failures go through the shared table (``common.faults``).
Messages never carry the bot token or the incoming-webhook URL: both are credentials, and only a
code that looks like one (``ERROR_CODE``) is ever repeated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.error import URLError

from common import Faults, PermanentError, TemporaryError
from common.errors import IntegrationError, clip
from common.faults import retry_after

CHANNEL_ANNOTATION = "slack.integrations.tekton.dev/channel"
ERROR_CODE = re.compile(r"[a-z0-9_.]{1,80}")
"""What Slack's error codes look like; anything else (an HTML error page) is not repeated."""

FAULTS = Faults(
    "Slack",
    {
        400: "Slack refused the message",
        401: "Slack rejected the credentials: check SLACK_BOT_TOKEN(_FILE) or SLACK_WEBHOOK_URL(_FILE)",
        403: "Slack does not allow this request",
        404: "not found: check SLACK_API_URL, or the incoming webhook's URL",
    },
)

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
    lowered = _lowered(headers)
    if status == 429 or code in RATE_LIMITED:
        return FAULTS.for_status(status, lowered, what=what, rate_limited=True)
    if status >= 500 or 300 <= status < 400:
        return FAULTS.for_status(status, lowered, what=what, detail=code)
    if code in TRANSIENT:
        return TemporaryError(
            FAULTS.reason("Unavailable"), f"Slack answered {code} to {what}", retry_after(lowered)
        )
    hint = _hint(code, channel, bot or "<your bot>", webhook=webhook)
    if hint is not None:
        reason, advice = hint
        return PermanentError(FAULTS.reason(reason), f"{what}: {advice}")
    if status != 200:
        return FAULTS.for_status(status, lowered, what=what, detail=code)
    return PermanentError(FAULTS.reason("Rejected"), f"{what}: Slack refused the request ({clip(code, 100)})")


def unreachable(error: Exception, what: str) -> TemporaryError:
    """A request that got no answer; urllib wraps the real cause (a timeout, a refusal) in ``URLError``."""
    cause = error.reason if isinstance(error, URLError) and isinstance(error.reason, BaseException) else error
    return FAULTS.unreachable(what, cause)


def _hint(code: str, channel: str, bot: str, *, webhook: bool) -> tuple[str, str] | None:
    """Slack's own codes: the reason (after ``Slack``) and what the user should do."""
    invite = f"/invite @{bot} in {channel}"
    if webhook and (code in WEBHOOK_GONE or code in CREDENTIALS):
        return "WebhookGone", (
            f"the incoming webhook was removed or is invalid ({code}): create a new one and update "
            "the secret that SLACK_WEBHOOK_URL_FILE points at"
        )
    if code == "account_inactive":
        return "Unauthorized", (
            "the bot's user or workspace was deactivated (account_inactive): reinstall the Slack app "
            "and update SLACK_BOT_TOKEN(_FILE)"
        )
    if code in CREDENTIALS:
        return "Unauthorized", (
            f"Slack rejected the bot token ({code}): check SLACK_BOT_TOKEN or the file SLACK_BOT_TOKEN_FILE "
            "names, and reinstall the Slack app if it was removed"
        )
    if code == "channel_not_found":
        return "ChannelNotFound", (
            f"Slack has no channel {channel} that the bot can see (channel_not_found): check "
            f"{CHANNEL_ANNOTATION}; for a private channel, invite the bot first with {invite}"
        )
    if code == "not_in_channel":
        return "NotInChannel", (
            f"the bot is not a member of {channel} (not_in_channel): invite it with {invite}, "
            "or give the Slack app the chat:write.public scope"
        )
    if code in ("is_archived", "channel_is_archived"):
        return (
            "ChannelArchived",
            f"{channel} is archived ({code}): unarchive it or change {CHANNEL_ANNOTATION}",
        )
    if code == "missing_scope":
        return "MissingScope", (
            "the bot token lacks a scope (missing_scope): add chat:write to the Slack app and reinstall it"
        )
    if code in FORBIDDEN:
        return "Forbidden", (
            f"the workspace does not let the bot post in {channel} ({code}): ask a Slack admin, "
            f"or change {CHANNEL_ANNOTATION}"
        )
    if code in MESSAGE_GONE:
        return "MessageGone", (
            f"the run's Slack message was deleted or can no longer be edited ({code}); "
            "later states of this run are not shown"
        )
    return None


def _lowered(headers: Mapping[str, object]) -> dict[str, str]:
    """Header names lower-cased, values as text (slack_sdk gives lists for the Web API)."""
    return {
        str(name).lower(): str(value[0] if isinstance(value, list) and value else value)
        for name, value in headers.items()
    }
