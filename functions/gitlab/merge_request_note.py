"""One merge-request note, edited in place, that lists every run on the merge request's head commit
that asks for it (``merge-request: <iid>`` and ``comment: "true"``), with state, duration, failed
tasks and links.

- Found by a hidden marker (an HTML comment holding a UUID of namespace, project and iid), and
  only among the notes the token's own user wrote (``GET /user``, asked once per token): a note
  anyone else wrote with the marker is never edited; ids read from records are not used.
- Created once: claimed with a Lease (``common.coordination``), looked up before it is created.
- Always recomputed from the live runs (``common.peers``), and written again after a write if
  the runs changed meanwhile.
- A run on an older commit of the merge request changes nothing: the note is about the head.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from common import Context, PermanentError
from common.coordination import claim_shared, find_or_create, lease_seconds, new_holder
from common.errors import clip
from common.peers import list_peers, markdown_table
from functions.gitlab.client import (
    GitLabSettings,
    create_note,
    merge_request,
    notes,
    own_user_id,
    update_note,
)
from functions.gitlab.errors import FAULTS
from functions.gitlab.shared import Commit, is_true

if TYPE_CHECKING:
    from common.runclient import ClusterAccess

Note = dict[str, Any]
Ctx = Context[Any, GitLabSettings]

MAX_ROUNDS = 3
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
    own = own_user_id(settings)

    def body() -> str:
        peers = list_peers(
            cluster,
            ctx.run,
            ctx.integration,
            lambda given: (
                commit.names(given)
                and is_true(given.get("comment"))
                and given.get("merge-request", "").strip() == str(iid)
            ),
            failed_tasks=True,
        )
        table = markdown_table(peers, ctx.runtime.run_url, failed_tasks=True)
        text = f"{marker(key)}\n### Tekton runs on {commit.sha[:8]}\n\n{table}\n"
        return clip(text, BODY_LIMIT - 200) + "\n<sub>Edited in place as the runs progress.</sub>\n"

    def ours(note: Note) -> bool:
        author = note.get("author") or {}
        return not note.get("system") and author.get("id") == own and marker(key) in str(note.get("body"))

    wanted = body()
    note = _find(settings, project, iid, ours)
    if note is None:  # not there yet, or being created: claim its creation
        claim = claim_shared(
            cluster,
            ctx.run.namespace,
            f"note/{key}",
            new_holder(ctx.run),
            integration=ctx.integration,
            owner=ctx.run,
            duration=lease_seconds(settings.timeout_seconds),
            at=datetime.now(UTC),
        )
        note = find_or_create(
            claim,
            find=lambda _: _find(settings, project, iid, ours),
            create=lambda: create_note(settings, project, iid, wanted),
            id_of=lambda made: str(made["id"]),
            what=f"the note on merge request !{iid}",
        )[0]
    for _ in range(MAX_ROUNDS):
        if note.get("body") != wanted:
            note = update_note(settings, project, iid, int(note["id"]), wanted)
        fresh = body()  # the runs as they are after the write: another delivery's may be older
        if fresh == wanted:
            break
        wanted = fresh
    return {"note-id": str(note["id"])}


def _find(settings: GitLabSettings, project: str, iid: int, ours: Callable[[Note], bool]) -> Note | None:
    return next(
        (note for note in islice(notes(settings, project, iid), MAX_NOTES_SEARCHED) if ours(note)), None
    )
