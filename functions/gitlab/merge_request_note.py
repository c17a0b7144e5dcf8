"""One merge-request note, edited in place, that lists every run on the merge request's head commit
that asks for it (``merge-request: <iid>`` and ``comment: "true"``), with state, duration, failed
tasks and links.

- Found by a hidden marker (an HTML comment holding a UUID of namespace, project and iid), and
  only among the notes the token's own user wrote (``GET /user``, asked once per token): a note
  anyone else wrote with the marker is never edited; ids read from records are not used.
- Created once, and always recomputed from the live runs and written again after a write if the
  runs changed meanwhile (``common.runs_comment``, shared with GitHub's pull-request comment).
- A run on an older commit of the merge request changes nothing: the note is about the head.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, Any

from common import Context, PermanentError, runs_comment
from common.runs_comment import asks_for_comment
from functions.gitlab.client import (
    GitLabSettings,
    create_note,
    merge_request,
    notes,
    own_user_id,
    update_note,
)
from functions.gitlab.errors import FAULTS
from functions.gitlab.shared import Commit

if TYPE_CHECKING:
    from common.runclient import ClusterAccess

Note = dict[str, Any]
Ctx = Context[Any, GitLabSettings]

MAX_NOTES_SEARCHED = 3000
BODY_LIMIT = 1_000_000
"""GitLab's longest note."""
_KEYS = uuid.UUID("9a4e2c71-0f3b-4d86-b5a8-1e7c6d2f9b30")


def note_key(namespace: str, commit: Commit, iid: int) -> str:
    return str(uuid.uuid5(_KEYS, "/".join(("note", namespace, commit.project, str(iid)))))


def marker(key: str) -> str:
    """The hidden line that marks the note: GitLab renders nothing of an HTML comment."""
    return f"<!-- tekton-integrations:merge-request-note:{key} -->"


def report_note(ctx: Ctx, cluster: ClusterAccess, commit: Commit, iid: int) -> dict[str, str]:
    """Bring the merge request's note up to date; the record keeps its id."""
    settings, project = ctx.settings, commit.project
    found = merge_request(settings, project, iid)
    if found is None:
        raise PermanentError(FAULTS.reason("NotFound"), f"merge request !{iid} not found in {project}")
    if str(found.get("sha") or "").lower() != commit.sha:
        return {}  # a run on an older commit: the note lists the head's runs
    key = note_key(ctx.run.namespace, commit, iid)
    mark, own = marker(key), own_user_id(settings)

    def ours(note: Note) -> bool:
        author = note.get("author") or {}
        return not note.get("system") and author.get("id") == own and mark in str(note.get("body"))

    note = runs_comment.keep(
        ctx,
        cluster,
        key=f"note/{key}",
        text=lambda: runs_comment.body(
            ctx,
            cluster,
            marker=mark,
            title=f"Tekton runs on {commit.sha[:8]}",
            limit=BODY_LIMIT,
            belongs=lambda given: commit.names(given) and asks_for_comment(given, "merge-request", iid),
        ),
        find=lambda: _find(settings, project, iid, ours),
        create=lambda text: create_note(settings, project, iid, text),
        update=lambda found, text: update_note(settings, project, iid, int(found["id"]), text),
        what=f"the note on merge request !{iid}",
    )
    return {"note-id": str(note["id"])}


def _find(settings: GitLabSettings, project: str, iid: int, ours: Callable[[Note], bool]) -> Note | None:
    return next(
        (note for note in islice(notes(settings, project, iid), MAX_NOTES_SEARCHED) if ours(note)), None
    )
