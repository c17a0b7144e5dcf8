"""One pull-request comment, edited in place, that lists every run on the pull request's head commit
that asks for it (``pull-request: <number>`` and ``comment: "true"``), with state, duration,
failed tasks and links.

- Found by a hidden marker (an HTML comment holding a UUID of namespace, repository and number),
  and only among the comments written by this function's own identity: the App (the comment's
  ``performed_via_github_app``) or the token's user (``GET /user``, asked once per token). A
  comment anyone else wrote with the marker is never edited; ids read from records are not used.
- Created once, and always recomputed from the live runs and written again after a write if the
  runs changed meanwhile, as the rollup check run is (``common.runs_comment``, shared with
  GitLab's merge-request note).
- A run on an older commit of the pull request changes nothing: the comment is about the head.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any

from common import Context, PermanentError, runs_comment
from common.runs_comment import asks_for_comment
from functions.github.client import GitHubSettings
from functions.github.errors import FAULTS
from functions.github.shared import Commit

if TYPE_CHECKING:
    from common.runclient import ClusterAccess
    from functions.github.rest import Repo

Comment = dict[str, Any]
Ctx = Context[Any, GitHubSettings]

MAX_COMMENTS_SEARCHED = 3000
BODY_LIMIT = 65536
"""GitHub's longest comment body."""
_KEYS = uuid.UUID("6c1d7f0a-2b9e-4e53-a8f4-5d0b3c7e91a2")
_own_users: dict[str, int] = {}
_own_users_lock = threading.Lock()


def comment_key(namespace: str, commit: Commit, number: int) -> str:
    joined = "/".join(("comment", namespace, commit.owner.lower(), commit.repo.lower(), str(number)))
    return str(uuid.uuid5(_KEYS, joined))


def marker(key: str) -> str:
    """The hidden line that marks the comment: GitHub renders nothing of an HTML comment."""
    return f"<!-- tekton-integrations:pull-request-comment:{key} -->"


def report_comment(
    ctx: Ctx, cluster: ClusterAccess, repo: Repo, commit: Commit, number: int
) -> dict[str, str]:
    """Bring the pull request's comment up to date; the record keeps its id."""
    pull = repo.pull_request(number)
    if pull is None:
        raise PermanentError(
            FAULTS.reason("NotFound"), f"pull request #{number} not found in {repo.full_name}"
        )
    head = str((pull.get("head") or {}).get("sha") or "").lower()
    if head != commit.sha:
        return {}  # a run on an older commit: the comment lists the head's runs
    key = comment_key(ctx.run.namespace, commit, number)
    mark, ours = marker(key), _identity(ctx.settings, repo)
    comment = runs_comment.keep(
        ctx,
        cluster,
        key=f"comment/{key}",
        text=lambda: runs_comment.body(
            ctx,
            cluster,
            marker=mark,
            title=f"Tekton runs on {commit.sha[:7]}",
            limit=BODY_LIMIT,
            belongs=lambda given: commit.names(given) and asks_for_comment(given, "pull-request", number),
        ),
        find=lambda: _find(repo, number, mark, ours),
        create=lambda text: repo.create_issue_comment(number, text),
        update=lambda found, text: repo.update_issue_comment(int(found["id"]), text),
        what=f"the comment on pull request #{number}",
    )
    return {"comment-id": str(comment["id"])}


def _find(repo: Repo, number: int, mark: str, ours: Callable[[Comment], bool]) -> Comment | None:
    comments = islice(repo.issue_comments(number), MAX_COMMENTS_SEARCHED)
    return next((c for c in comments if mark in str(c.get("body") or "") and ours(c)), None)


def _identity(settings: GitHubSettings, repo: Repo) -> Callable[[Comment], bool]:
    """Whether a comment was written by this function: by its App, or by its token's user."""
    if settings.app_id and settings.app_private_key:
        app_id = settings.app_id

        def by_app(comment: Comment) -> bool:
            app: Mapping[str, Any] = comment.get("performed_via_github_app") or {}
            return app_id in (str(app.get("id")), app.get("client_id"))

        return by_app
    assert settings.token is not None
    own = _token_user(settings.base_url, settings.token.get_secret_value(), repo)
    return lambda comment: (comment.get("user") or {}).get("id") == own


def _token_user(base_url: str, token: str, repo: Repo) -> int:
    """The id of the token's user, asked of GitHub once per token and API."""
    cache_key = hashlib.sha256(f"{base_url}\n{token}".encode()).hexdigest()
    with _own_users_lock:
        known = _own_users.get(cache_key)
    if known is None:
        known = int(repo.api.request("GET", "/user").data["id"])
        with _own_users_lock:
            if len(_own_users) > 64:
                _own_users.clear()
            _own_users[cache_key] = known
    return known
