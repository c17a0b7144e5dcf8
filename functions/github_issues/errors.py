"""GitHub's fault hints for issues, and its special cases: PyGithub's exception types and
secondary rate limits (answered 403 with ``Retry-After`` or a "rate limit" message)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from common import Faults
from common.errors import IntegrationError

if TYPE_CHECKING:  # PyGithub and requests are imported by the first report, before any error
    from github import GithubException

FAULTS = Faults(
    "GitHub",
    {
        401: "GitHub rejected the credentials; check GITHUB_TOKEN(_FILE), or GITHUB_APP_ID and the App's key",
        403: "the token or App may not write issues here: a GitHub App needs the Issues (read and write) "
        "permission and to be installed on the repository; a token needs the repo scope (classic) or "
        "Issues read and write (fine-grained)",
        404: "not found: the repository does not exist or the token/App cannot see it "
        "(check github-issues.integrations.tekton.dev/owner and repo)",
        410: "issues are disabled on the repository: enable them in its settings, or name another repo",
        422: "GitHub refused the issue or comment",
    },
    reasons={401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 410: "IssuesDisabled", 422: "Rejected"},
)


def classify(error: Exception, what: str) -> IntegrationError:
    """The runtime error for a failed GitHub call; ``what`` names the call, e.g. ``open an issue``."""
    import requests  # noqa: PLC0415 -- loaded already by the call that failed
    from github import GithubException  # noqa: PLC0415

    if isinstance(error, GithubException):
        headers = {key.lower(): value for key, value in (error.headers or {}).items()}
        detail = _message(error.data)
        return FAULTS.for_status(
            error.status,
            headers,
            what=what,
            detail=detail,
            rate_limited=_rate_limited(error, headers, detail),
        )
    if isinstance(error, requests.exceptions.Timeout):
        return FAULTS.timeout(what)
    if isinstance(error, requests.exceptions.RequestException):
        return FAULTS.unreachable(what, error)
    raise error


def _rate_limited(error: GithubException, headers: Mapping[str, str], detail: str) -> bool:
    """A primary limit (nothing left) or a secondary one, which GitHub may answer with 403."""
    from github import RateLimitExceededException  # noqa: PLC0415 -- loaded already by the call

    return isinstance(error, RateLimitExceededException) or (
        error.status == 403
        and (
            headers.get("x-ratelimit-remaining") == "0"
            or "retry-after" in headers
            or "rate limit" in detail.lower()
        )
    )


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
