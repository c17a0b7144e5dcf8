"""Classify what python-gitlab and requests raise into the runtime's permanent and temporary errors."""

from __future__ import annotations

import requests
from gitlab.exceptions import GitlabError

from common import PermanentError, TemporaryError
from common.errors import IntegrationError, clip

_PERMANENT_HINTS = {
    400: ("GitLabRejected", "GitLab refused the request"),
    401: ("GitLabUnauthorized", "GitLab rejected the token; check GITLAB_TOKEN(_FILE) and its expiry"),
    403: (
        "GitLabForbidden",
        "the token may not set commit statuses here: it needs the api scope and the Developer role",
    ),
    404: (
        "GitLabNotFound",
        "not found: the project or commit does not exist, no branch contains the commit "
        "(set the ref annotation), or the token cannot see the project",
    ),
    422: ("GitLabRejected", "GitLab refused the request"),
}
_TEMPORARY_STATUSES = frozenset({408, 409, 425})
"""GitLab answers 409 ``Resource lock`` under concurrent writes; 408/425 ask for a retry."""


class ThrottledError(Exception):
    """GitLab asked us to slow down (429, or a 5xx with ``Retry-After``); raised at the transport
    so that python-gitlab never sleeps through the wait."""

    def __init__(self, status: int, retry_after: float) -> None:
        super().__init__(f"GitLab answered {status}; retry in {retry_after:.0f}s")
        self.status = status
        self.retry_after = retry_after


class RedirectRefusedError(Exception):
    """GitLab answered with a redirect, which is not followed: the token would travel with it."""

    def __init__(self, status: int, location: str) -> None:
        super().__init__(f"GitLab answered {status} redirecting to {clip(location, 200)}")


def is_already_there(error: GitlabError) -> bool:
    """GitLab's answer to a state the status already has (or has passed), e.g. ``running`` twice."""
    return error.response_code == 400 and "Cannot transition status" in str(error.error_message)


def classify(error: Exception, what: str) -> IntegrationError:
    """The runtime error for a failed GitLab call; ``what`` names the call and the project."""
    if isinstance(error, ThrottledError):
        reason = "GitLabRateLimited" if error.status == 429 else "GitLabUnavailable"
        return TemporaryError(reason, f"{what}: {error}", error.retry_after)
    if isinstance(error, RedirectRefusedError):
        return PermanentError(
            "GitLabRedirected", f"{what}: {error}; set GITLAB_URL to the instance's final address"
        )
    if isinstance(error, GitlabError) and error.response_code is not None:
        status = error.response_code
        detail = clip(str(error.error_message), 300)
        if status >= 500 or status in _TEMPORARY_STATUSES or status == 429:
            return TemporaryError("GitLabUnavailable", f"GitLab answered {status} to {what}: {detail}")
        reason, hint = _PERMANENT_HINTS.get(status, ("GitLabRejected", "GitLab refused the request"))
        return PermanentError(reason, f"{what}: {status} {hint}" + (f" ({detail})" if detail else ""))
    if isinstance(error, GitlabError):
        return TemporaryError("GitLabUnavailable", f"unreadable answer from GitLab to {what}")
    if isinstance(error, requests.exceptions.Timeout):
        return TemporaryError("GitLabTimeout", f"GitLab did not answer {what} in time")
    if isinstance(error, requests.exceptions.RequestException):
        return TemporaryError(
            "GitLabUnreachable", f"could not reach GitLab for {what}: {type(error).__name__}"
        )
    raise error
