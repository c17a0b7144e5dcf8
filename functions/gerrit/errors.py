"""Gerrit's fault hints, and its special cases: a vote the account may not cast, a vote the
operator does not allow, and a vote Gerrit dropped. Pure: no I/O."""

from __future__ import annotations

from common import Faults, PermanentError

FAULTS = Faults(
    "Gerrit",
    {
        401: "Gerrit refused GERRIT_USERNAME and its HTTP password: generate a new HTTP password for "
        "the account (Settings > HTTP Credentials) and update GERRIT_PASSWORD(_FILE)",
        403: "the account may not do this: it needs Read on refs/heads/* (and, to vote, the Label "
        "permission) in the project's access rights",
        404: "not found: no change with that number in that project, no such revision (patch set or "
        "commit) of it, or the account cannot see it: check gerrit.integrations.tekton.dev/change, "
        "/revision and /project",
        409: "Gerrit refused the review on the change as it is: a merged change takes no lower vote, "
        "and a label without post-submit voting takes none after submit",
    },
)

RESTRICTED = "is restricted"
"""Gerrit's words for a vote outside the account's permitted range:
``Applying label "Verified": 1 is restricted`` (403; some versions answer 400)."""


def vote_forbidden(
    what: str, vote: str, *, label: str, project: str, username: str, said: str
) -> PermanentError:
    """Gerrit refused the vote (``said``): the account lacks the label permission for that value."""
    return PermanentError(
        FAULTS.reason("Forbidden"),
        f"{what}: Gerrit does not let {username} vote {vote} ({said.strip()}): grant the account (or a "
        f"group it is in) the 'Label {label}' permission with that value in its range on refs/heads/* "
        f"in the access rights of {project} (or of a parent project such as All-Projects)",
    )


def vote_not_allowed(vote: str, allowed: str) -> PermanentError:
    """The operator's ``GERRIT_ALLOWED_VOTES`` does not allow the vote: nothing was sent."""
    return PermanentError(
        FAULTS.reason("VoteNotAllowed"),
        f"the vote {vote} is not among the votes this function may cast (GERRIT_ALLOWED_VOTES: "
        f"{allowed}); nothing was sent: choose a label and values it allows with "
        "gerrit.integrations.tekton.dev/label (e.g. Verified=+1/-1, or none), or ask the operator "
        "to allow this vote",
    )


def vote_ignored(what: str, vote: str, project: str) -> PermanentError:
    """Gerrit posted the message but dropped the vote: the label or value is not the project's."""
    return PermanentError(
        FAULTS.reason("VoteIgnored"),
        f"{what}: the message was posted, but Gerrit ignored the vote {vote}: {project} has no such "
        "label, or the label has no such value; check gerrit.integrations.tekton.dev/label against "
        "the project's labels",
    )
