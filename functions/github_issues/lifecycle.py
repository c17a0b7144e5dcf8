"""One issue per failing pipeline: open it, comment on repeat failures, close it when it passes.

Owns the decisions; the calls are ``functions.github_issues.issues``. For each reported run state:

1. The pipeline's open issues are listed by the stable label and kept only if GitHub says they
   are in the configured repository and carry the pipeline's marker (``markers.Subject``); the
   oldest is the issue, any other was opened by a race and is closed as its duplicate.
2. Whether this run state was already reported is looked up on GitHub, not in the record: its
   key (``Context.key()``) in the body or a comment (by the issue's author) of those issues or of
   the pipeline's issues closed since the run finished. A crash between a call and its record,
   a lost answer or an older record written back by Tekton thus never adds anything twice.
3. A failure comments on the issue, or opens one; a success comments on it and closes it (or,
   with ``close: false``, comments once per streak of failures and leaves it open).

The record keeps the issue's number. It is untrusted: it is only used after GitHub confirms that
the issue is in the configured repository, is no pull request and carries the pipeline's marker
and label; it only helps find an issue the list does not show yet.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from common import Context, PermanentError, Report, Run, TemporaryError
from common.summary import TaskOutcome, unsuccessful_tasks
from functions.github_issues.errors import FAULTS
from functions.github_issues.issues import PER_PAGE, Issue, IssuesApi
from functions.github_issues.markers import Subject, carries_key, outcome_of
from functions.github_issues.presentation import (
    LABEL,
    duplicate_body,
    failure_comment,
    opening_body,
    success_comment,
    title,
)

log = logging.getLogger(__name__)

ISSUE_NUMBER = "issue-number"
"""The record's annotation naming the issue this run state went to (untrusted when read back)."""
MAX_OPEN_ISSUES = 500
"""Open issues with the label looked through; with more, nothing is opened (it could duplicate)."""
MAX_RECENTLY_CLOSED = 100
MAX_COMMENTS = 300
"""Comments written since the run finished looked through, per issue."""
LOOKUP_MARGIN = timedelta(minutes=10)
"""Lookups start this long before the run finished: clock skew between the cluster and GitHub."""
WAIT_FOR_ANOTHER_DELIVERY = 5.0
"""Seconds a delivery waits for another one working on the same pipeline's issue in this process."""
BUSY_RETRY_AFTER = 2.0

_STRIPES = tuple(threading.Lock() for _ in range(64))


@contextmanager
def one_at_a_time(key: str) -> Iterator[None]:
    """Work on one pipeline's issue (``key``: GitHub, repository and pipeline) in one thread of
    this process at a time.

    Runs of one pipeline often fail together (a broken dependency breaks every run): without
    this, each would find no open issue and open its own. Across replicas the same race is
    rarer, and repaired: every later lookup closes all but the oldest open issue as duplicates.
    A fixed set of locks, chosen by the key's hash, keeps memory bounded.
    """
    lock = _STRIPES[zlib.crc32(key.lower().encode()) % len(_STRIPES)]
    if not lock.acquire(timeout=WAIT_FOR_ANOTHER_DELIVERY):
        raise TemporaryError("Busy", "another delivery is updating this pipeline's issue", BUSY_RETRY_AFTER)
    try:
        yield
    finally:
        lock.release()


class Lifecycle:
    """The work for one run state. ``issue`` is the issue it went to, once known (kept in the
    record when a later call fails, so the retry finds it even before the list shows it)."""

    def __init__(self, ctx: Context[Any, Any], api: IssuesApi, *, labels: Sequence[str], close: bool) -> None:
        self.ctx, self.api = ctx, api
        self.run = ctx.run
        self.subject = Subject.of(ctx.run)
        self.key = ctx.key()
        self.labels = [LABEL, *labels]
        self.closes = close
        self.since = _since(self.run)
        self.issue: int | None = None

    # -- the two outcomes ------------------------------------------------------------------------

    def failed(self) -> Report:
        recorded = self._recorded()
        issues = self._open_issues(recorded)
        done = self._reported_in(issues, recorded)
        if done is not None and (not done.open or done.number == issues[0].number):
            self.issue = done.number
            closed = self._close_duplicates(issues) if done.open else []
            return self._report(
                done, f"issue #{done.number} already shows this failure", closed, "IssueCommented"
            )
        if issues:
            return self._comment_failure(issues, "IssueCommented", f"{self.subject} failed again")
        created = self._open_new_issue()
        issues = self._open_issues([created])  # another run may have opened one at the same moment
        if issues[0].number != created.number:
            return self._comment_failure(issues, "IssueCommented", f"{self.subject} failed again")
        closed = self._close_duplicates(issues)
        return self._report(
            created, f"opened issue #{created.number}: {self.subject} is failing", closed, "IssueOpened"
        )

    def passed(self) -> Report:
        issues = self._open_issues(self._recorded())
        if not issues:
            return Report(f"no open issue for {self.subject}: nothing to close", reason="NoOpenIssue")
        issue = issues[0]
        self.issue = issue.number
        commented = False
        if not self._commented(issue) and (self.closes or self._latest_outcome(issue) != "passed"):
            body = success_comment(self.run, self.ctx.run_url, self.key, closes=self.closes)
            self.api.comment(issue.number, body)
            commented = True
        closed = self._close_duplicates(issues)
        if self.closes:
            self.api.close(issue.number, "completed")
            message = f"closed issue #{issue.number}: {self.subject} passed"
            return self._report(issue, message, closed, "IssueClosed")
        said = "commented on" if commented else "already said so on"
        message = f"{said} issue #{issue.number}: {self.subject} passed (the issue stays open)"
        return self._report(issue, message, closed, "IssueCommented")

    # -- steps -----------------------------------------------------------------------------------

    def _comment_failure(self, issues: Sequence[Issue], reason: str, what: str) -> Report:
        issue = issues[0]
        self.issue = issue.number
        self.api.comment(issue.number, failure_comment(self.run, self._tasks(), self.ctx.run_url, self.key))
        closed = self._close_duplicates(issues)
        return self._report(issue, f"commented on issue #{issue.number}: {what}", closed, reason)

    def _open_new_issue(self) -> Issue:
        body = opening_body(
            self.subject, self.run, self._tasks(), self.ctx.run_url, self.key, closes=self.closes
        )
        created = self.api.create(title(self.subject), body, self.labels)
        self.issue = created.number
        if LABEL not in created.labels:
            raise PermanentError(
                FAULTS.reason("LabelDropped"),
                f"GitHub opened issue #{created.number} without its label {LABEL}, so later failures "
                "cannot find it: the token or App needs push access to set labels (GitHub drops them "
                "silently otherwise), or create the label in the repository",
                {ISSUE_NUMBER: str(created.number)},
            )
        return created

    def _close_duplicates(self, issues: Sequence[Issue]) -> list[int]:
        """Close every open issue of the pipeline but the oldest, as its duplicate."""
        for duplicate in issues[1:]:
            self.api.close(duplicate.number, "not_planned", duplicate_body(duplicate.body, issues[0].number))
        return [duplicate.number for duplicate in issues[1:]]

    def _report(self, issue: Issue, message: str, closed: Sequence[int], reason: str) -> Report:
        if closed:
            message += f"; closed {', '.join(f'#{number}' for number in closed)} as duplicates"
        annotations = {ISSUE_NUMBER: str(issue.number)}
        if issue.html_url:
            annotations["issue-url"] = issue.html_url
        return Report(message, annotations, reason)

    # -- lookups ---------------------------------------------------------------------------------

    def _ours(self, issue: Issue) -> bool:
        """Whether GitHub shows ``issue`` as the pipeline's: in the configured repository, not a
        pull request, with the label and the pipeline's marker."""
        return (
            not issue.pull_request
            and issue.in_repository(self.api.owner, self.api.repo)
            and LABEL in issue.labels
            and self.subject.marker in issue.body
        )

    def _open_issues(self, known: Iterable[Issue]) -> list[Issue]:
        """The pipeline's open issues, oldest first, with ``known`` ones the list may not show yet."""
        listed, more = self.api.listed(state="open", label=LABEL, since=None, limit=MAX_OPEN_ISSUES)
        if more:
            raise PermanentError(
                FAULTS.reason("TooManyIssues"),
                f"more than {MAX_OPEN_ISSUES} open issues carry the label {LABEL} in "
                f"{self.api.owner}/{self.api.repo}: close some, so that the issue of {self.subject} "
                "is found and not opened twice",
            )
        issues = {issue.number: issue for issue in (*listed, *known) if issue.open and self._ours(issue)}
        return [issues[number] for number in sorted(issues)]

    def _recorded(self) -> list[Issue]:
        """The issue the record names, if GitHub confirms it is the pipeline's (else nothing)."""
        value = self.ctx.recorded(ISSUE_NUMBER)
        if not value:
            return []
        if not value.isdigit() or len(value) > 9:
            log.warning(
                "the record on %s names issue %r, which is no issue number: ignored",
                self.run.name,
                value[:40],
            )
            return []
        issue = self.api.get_here(int(value))
        if issue is None:
            return []
        if not self._ours(issue):
            log.warning(
                "the record on %s/%s names issue #%s, which is not an issue of %s in %s/%s: ignored",
                self.run.namespace,
                self.run.name,
                value,
                self.subject,
                self.api.owner,
                self.api.repo,
            )
            return []
        return [issue]

    def _reported_in(self, issues: Sequence[Issue], known: Iterable[Issue]) -> Issue | None:
        """The issue whose body or comments already carry this run state's key, if any: among the
        open ones and those closed since the run finished (a success may have closed it since)."""
        closed, _ = self.api.listed(
            state="closed", label=LABEL, since=self.since, limit=MAX_RECENTLY_CLOSED, newest=True
        )
        candidates = {issue.number: issue for issue in (*issues, *known, *closed) if self._ours(issue)}
        for issue in candidates.values():
            if carries_key(issue.body, self.key) or self._commented(issue):
                return issue
        return None

    def _commented(self, issue: Issue) -> bool:
        """Whether a comment since the run finished, by the issue's author, carries the key."""
        if self.since is not None and issue.updated_at is not None and issue.updated_at < self.since:
            return False  # nothing was written on it since: no need to read its comments
        comments = self.api.comments(issue.number, since=self.since, limit=MAX_COMMENTS)
        return any(c.author == issue.author and carries_key(c.body, self.key) for c in comments)

    def _latest_outcome(self, issue: Issue) -> str | None:
        """What the issue last recorded (``failed``/``passed``), from its newest comments (by its
        author, within ``MAX_COMMENTS``) or its body."""
        for page in self.api.newest_comments(issue.number, pages=MAX_COMMENTS // PER_PAGE):
            for comment in reversed(page):
                outcome = outcome_of(comment.body) if comment.author == issue.author else None
                if outcome is not None:
                    return outcome
        return outcome_of(issue.body)

    def _tasks(self) -> list[TaskOutcome]:
        children = self.ctx.child_runs() if self.run.kind == "PipelineRun" else []
        return unsuccessful_tasks(self.run, children)


def _since(run: Run) -> datetime | None:
    """When lookups start: the run's end (else its last transition, else its start), less the margin."""
    moment = run.completion_time or _transition(run) or run.start_time
    return moment - LOOKUP_MARGIN if moment is not None else None


def _transition(run: Run) -> datetime | None:
    stamp = run.condition.last_transition_time if run.condition else ""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
