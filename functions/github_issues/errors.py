"""GitHub's fault hints for issues; the special cases (secondary rate limits answered 403, the
client's transport errors) are the GitHub function's (``functions.github.errors``)."""

from __future__ import annotations

from common import Faults
from common.errors import IntegrationError
from functions.github import errors as github_errors

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
    return github_errors.classify(error, what, FAULTS)
