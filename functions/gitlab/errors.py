"""GitLab's fault hints, and its special cases: answers raised at the transport, ``409 Resource
lock``, and ``Cannot transition status`` (a state the status already has)."""

from __future__ import annotations

from collections.abc import Mapping

from common import Faults, TemporaryError
from common.errors import IntegrationError

FAULTS = Faults(
    "GitLab",
    {
        401: "GitLab rejected the token; check GITLAB_TOKEN(_FILE) and its expiry",
        403: "the token may not set commit statuses here: it needs the api scope and the Developer role",
        404: "not found: the project or commit does not exist, no branch contains the commit "
        "(set the ref annotation), or the token cannot see the project",
    },
)
RESOURCE_LOCK = 409
"""GitLab answers ``409 Resource lock`` to concurrent writes on one commit: worth a retry."""


class GitLabAnswerError(Exception):
    """GitLab answered with anything but a success; raised by the transport, so python-gitlab
    neither sleeps through a rate limit nor follows a redirect, and the headers are kept."""

    def __init__(self, status: int, headers: Mapping[str, str], detail: str) -> None:
        super().__init__(f"GitLab answered {status}")
        self.status = status
        self.headers = headers
        self.detail = detail


def is_already_there(error: GitLabAnswerError) -> bool:
    """GitLab's answer to a state the status already has (or has passed), e.g. ``running`` twice."""
    return error.status == 400 and "Cannot transition status" in error.detail


def classify(error: Exception, what: str) -> IntegrationError:
    """The runtime error for a failed GitLab call; ``what`` names the call and the project."""
    import requests  # noqa: PLC0415 -- python-gitlab and requests: loaded already by the call
    from gitlab.exceptions import GitlabError  # noqa: PLC0415

    if isinstance(error, GitLabAnswerError):
        if error.status == RESOURCE_LOCK:
            return TemporaryError(FAULTS.reason("Unavailable"), f"GitLab answered 409 to {what}: try again")
        return FAULTS.for_status(error.status, error.headers, what=what, detail=error.detail)
    if isinstance(error, GitlabError):  # a success whose body python-gitlab could not read
        return TemporaryError(FAULTS.reason("Unavailable"), f"unreadable answer from GitLab to {what}")
    if isinstance(error, requests.exceptions.Timeout):
        return FAULTS.timeout(what)
    if isinstance(error, requests.exceptions.RequestException):
        return FAULTS.unreachable(what, error)
    raise error
