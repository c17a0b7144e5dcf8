"""GitHub's fault hints, and its special cases: secondary rate limits answered 403, and the
transport errors of ``rest`` (urllib3's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common import Faults
from common.errors import IntegrationError

if TYPE_CHECKING:  # rest (urllib3) is imported by the first report, before any error
    from functions.github.rest import GitHubError

FAULTS = Faults(
    "GitHub",
    {
        401: "GitHub rejected the credentials; check the token or the App's key",
        403: "the token or App lacks permission (checks: write / statuses: write)",
        404: "not found: the repository does not exist or the token/App cannot see it",
        422: "GitHub refused the request",
    },
    reasons={401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 422: "Rejected"},
)


def classify(error: Exception, what: str, faults: Faults = FAULTS) -> IntegrationError:
    """The runtime error for a failed GitHub call; ``what`` names the call, e.g. ``create check run``.

    ``faults``: the calling integration's hints (GitHub Issues has its own). Anything but a
    ``GitHubError`` or a transport error is raised again: it is a bug, not GitHub's answer.
    """
    from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError  # noqa: PLC0415
    from urllib3.exceptions import TimeoutError as Urllib3Timeout  # noqa: PLC0415 -- loaded by the call

    from functions.github.rest import GitHubError  # noqa: PLC0415

    if isinstance(error, GitHubError):
        return faults.for_status(
            error.status,
            error.headers,
            what=what,
            detail=error.message,
            rate_limited=rate_limited(error),
        )
    cause: BaseException = error
    if isinstance(error, MaxRetryError) and error.reason is not None:
        cause = error.reason  # the last connection's failure (its message names the URL: not kept)
    if isinstance(cause, NewConnectionError):  # refused or unresolved; urllib3 files it under timeouts
        return faults.unreachable(what, cause)
    if isinstance(cause, Urllib3Timeout | TimeoutError):
        return faults.timeout(what)
    if isinstance(cause, HTTPError | OSError):
        return faults.unreachable(what, cause)
    raise error


def rate_limited(error: GitHubError) -> bool:
    """A primary limit (nothing left) or a secondary one, which GitHub may answer with 403
    (with ``Retry-After`` or a "rate limit" message)."""
    headers = error.headers
    return error.status == 403 and (
        headers.get("x-ratelimit-remaining") == "0"
        or "retry-after" in headers
        or "rate limit" in error.message.lower()
    )
