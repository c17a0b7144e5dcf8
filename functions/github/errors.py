"""Classify what PyGithub and requests raise into the runtime's permanent and temporary errors."""

from __future__ import annotations

import time
from collections.abc import Mapping

import requests
from github import GithubException, RateLimitExceededException

from common import PermanentError, TemporaryError
from common.errors import IntegrationError, clip

MAX_RETRY_AFTER = 3600.0
"""Longest wait passed on to the sender; a later reset is checked again on redelivery."""

_PERMANENT_HINTS = {
    401: ("GitHubUnauthorized", "GitHub rejected the credentials; check the token or the App's key"),
    403: ("GitHubForbidden", "the token or App lacks permission (checks: write / statuses: write)"),
    404: ("GitHubNotFound", "not found: the repository does not exist or the token/App cannot see it"),
    422: ("GitHubRejected", "GitHub refused the request"),
}


def classify(error: Exception, what: str) -> IntegrationError:
    """The runtime error for a failed GitHub call; ``what`` names the call, e.g. ``create check run``."""
    if isinstance(error, GithubException):
        status = error.status
        headers = {k.lower(): v for k, v in (error.headers or {}).items()}
        detail = clip(_message(error.data), 300)
        retry_after = _rate_limit_wait(headers, error)
        if retry_after is not None:
            return TemporaryError(
                "GitHubRateLimited",
                f"GitHub rate limit reached during {what}; retry in {retry_after:.0f}s",
                retry_after,
            )
        if status >= 500:
            return TemporaryError(
                "GitHubUnavailable", f"GitHub answered {status} to {what}: {detail}", _retry_after(headers)
            )
        reason, hint = _PERMANENT_HINTS.get(status, ("GitHubRejected", "GitHub refused the request"))
        return PermanentError(reason, f"{what}: {status} {hint}" + (f" ({detail})" if detail else ""))
    if isinstance(error, requests.exceptions.Timeout):
        return TemporaryError("GitHubTimeout", f"GitHub did not answer {what} in time")
    if isinstance(error, requests.exceptions.RequestException):
        return TemporaryError(
            "GitHubUnreachable", f"could not reach GitHub for {what}: {type(error).__name__}"
        )
    raise error


def _message(data: object) -> str:
    if isinstance(data, Mapping):
        message = str(data.get("message") or "")
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            message += " " + "; ".join(
                str(e.get("message") or e.get("code") or e) if isinstance(e, Mapping) else str(e)
                for e in errors
            )
        return message.strip()
    return str(data or "")


def _rate_limit_wait(headers: Mapping[str, str], error: GithubException) -> float | None:
    """Seconds to wait when the answer is a primary or secondary rate limit, else ``None``."""
    limited = (
        isinstance(error, RateLimitExceededException)
        or error.status == 429
        or (error.status == 403 and headers.get("x-ratelimit-remaining") == "0")
        or (error.status == 403 and "rate limit" in _message(error.data).lower())
    )
    if not limited:
        return None
    if (wait := _retry_after(headers)) is not None:
        return wait
    # GitHub's advice: wait for the reset only when no requests are left (a primary limit);
    # otherwise (a secondary limit without Retry-After) wait at least a minute. The reset time is
    # sent on every answer, so using it for a secondary limit would wait up to an hour for nothing.
    reset = headers.get("x-ratelimit-reset", "")
    if headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        return min(MAX_RETRY_AFTER, max(1.0, float(reset) - time.time()))
    return 60.0


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds, within [1, ``MAX_RETRY_AFTER``]; ``None`` when absent."""
    if (value := headers.get("retry-after", "")).isdigit():
        return min(MAX_RETRY_AFTER, max(1.0, float(value)))
    return None
