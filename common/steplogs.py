"""The last lines of each failed step's log, redacted, for a message about a failed run.

Owns: which TaskRuns failed (a PipelineRun's failed children, the first ``MAX_FAILED_TASKS``; a
TaskRun itself), which step of each failed (the first in ``status.steps[]`` whose container exited
non-zero: v1 and v1beta1 alike), reading the end of its log through a ``LogSource``, the namespace
policy's cap, redaction (``common.redaction.redact_lines``), and fitting snippets into a service's
size limit (``as_markdown``, ``as_plain``). Integrations decide where snippets go; ``what_failed``
reads them once with the tasks that did not succeed, for a message's default text and its template.

Off unless a run asks: nothing is read when the configuration has no ``log_lines``
(``common.config.ShowsStepLogs``) or it is 0, the run did not fail, or the namespace's policy sets
``logLines: 0``. Logs come from the step's container through the Kubernetes API (``pods/log``
get, derived into the RBAC of integrations whose configuration has ``ShowsStepLogs``), or from
Tekton Results' log API when ``TEKTON_RESULTS_URL`` is set and the TaskRun names its log there
(the pod's log is read when Results has none). A log that cannot be read gives a ``StepLog`` whose
``note`` says why; only Kubernetes being unavailable raises (``TemporaryError``). docs/step-logs.md.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import quote

from pydantic import Field, SecretStr

from common import deadline, redaction
from common.config import ShowsStepLogs
from common.errors import IntegrationError, KubernetesUnavailableError, PermanentError, RunNotFoundError, clip
from common.events import Run, RunPhase
from common.integration import Context
from common.policy import load_policy
from common.runclient import ClusterAccess
from common.settings import ServiceSettings
from common.summary import TaskOutcome, child_references, unsuccessful_tasks

log = logging.getLogger(__name__)

MAX_FAILED_TASKS = 3
"""Failed TaskRuns of a PipelineRun whose logs are read, in the pipeline's order."""
FAILED = frozenset({RunPhase.FAILED, RunPhase.TIMED_OUT})
"""Runs whose logs are worth showing: a cancelled run (or task) did not fail on its own."""
MAX_LINE_CHARS = 500
"""Longer lines are cut: a snippet is for reading, not for a minified bundle."""
BYTES_PER_LINE = 2048
MAX_LOG_BYTES = 256 * 1024
"""What one step's read may bring: ``BYTES_PER_LINE`` per line asked for, at most this."""
MAX_RESULTS_BYTES = 8 * 1024 * 1024
"""Tekton Results gives a TaskRun's whole log (every step): a longer one is read from the pod."""
PIPELINE_TASK_LABEL = "tekton.dev/pipelineTask"
RESULTS_LOG_ANNOTATION = "results.tekton.dev/log"
"""Where Tekton Results' watcher names a run's log: ``<namespace>/results/<uid>/logs/<uid>``."""
RESULTS_LOG_NAME = re.compile(r"^[a-z0-9_-]{1,63}/results/[a-z0-9_-]{1,63}/logs/[a-z0-9_-]{1,63}$")
SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


@dataclass(frozen=True)
class StepLog:
    """The failed step of one failed TaskRun and the last lines of its log."""

    task: str
    """The pipeline task's name (a standalone TaskRun's own name)."""
    task_run: str
    step: str
    """The step's name (its container is ``step-<name>``); empty when no step exited with an error."""
    lines: tuple[str, ...]
    """The last lines, redacted: credentials and well-known token shapes masked."""
    omitted: bool
    """Earlier lines of the step were left out."""
    note: str | None = None
    """Why there are no lines ("the pod is gone"), when there are none."""


@dataclass(frozen=True)
class FailedStep:
    """Where a failed step's log is."""

    namespace: str
    task: str
    task_run: str
    step: str
    container: str
    pod: str | None
    annotations: Mapping[str, str]
    """The TaskRun's (Tekton Results names its log there)."""


class LogUnavailableError(Exception):
    """The step's log cannot be read; the message says why, in words for the run's authors."""


class LogSource(Protocol):
    """Where step logs are read from."""

    def tail(self, step: FailedStep, lines: int, limit_bytes: int) -> str:
        """The last ``lines`` lines of the step's log, at most ``limit_bytes`` bytes. Raises
        ``LogUnavailableError``, or ``TemporaryError`` when retrying later may help."""
        ...


class ResultsSettings(ServiceSettings):
    """Tekton Results, when its log API is to be used (read once; re-read when changed)."""

    prefix: ClassVar[str] = "TEKTON_RESULTS"
    service: ClassVar[str] = "TektonResults"

    url: str | None = Field(None, pattern=r"^https?://[^/?#]+")
    """``TEKTON_RESULTS_URL``: the Results API's base URL, e.g.
    ``https://tekton-results-api-service.tekton-pipelines.svc.cluster.local:8080``."""
    token: SecretStr | None = None
    """``TEKTON_RESULTS_TOKEN`` or ``TEKTON_RESULTS_TOKEN_FILE``: its bearer token; default, the
    function's ServiceAccount token."""
    ca_file: str | None = None
    """``TEKTON_RESULTS_CA_FILE``: the CA bundle its certificate is checked with; default, the system's."""


def failed_step_logs(ctx: Context[Any, Any], *, source: LogSource | None = None) -> list[StepLog]:
    """The failed step of each failed TaskRun (first ``MAX_FAILED_TASKS``), last N lines each,
    where N is the run's ``log-lines`` capped by the namespace policy's ``logLines``. ``[]``
    without any read when the configuration has no ``log_lines`` (or 0), the run did not fail, or
    the policy forbids it. Never raises for a missing pod or log (a ``StepLog`` with a note
    instead); Kubernetes being unavailable is a ``TemporaryError``."""
    wanted = lines_wanted(ctx)
    if not wanted:
        return []
    found = [_failed_step(task, run) for task, run in _failed_task_runs(ctx)]
    source = source or default_source(ctx.cluster)
    return [_read(source, step, wanted) if isinstance(step, FailedStep) else step for step in found]


@dataclass(frozen=True)
class Failure:
    """What a message shows of what went wrong in the run, read once for its default text and for
    an operator's template (``common.templates.render``'s ``children`` and ``step_logs``)."""

    children: list[Run] | None
    """The child TaskRuns, read for a finished run that did not succeed; ``None`` otherwise."""
    tasks: list[TaskOutcome]
    """The tasks that did not succeed (``common.summary.unsuccessful_tasks``); empty unless read."""
    step_logs: list[StepLog]
    """The failed steps' last lines (``failed_step_logs``)."""


def what_failed(ctx: Context[Any, Any]) -> Failure:
    """The run's child TaskRuns, its tasks that did not succeed and its failed steps' last lines,
    for a run that finished without succeeding; nothing read for any other."""
    run = ctx.run
    children = ctx.child_runs() if run.phase.is_done and run.phase is not RunPhase.SUCCEEDED else None
    tasks = unsuccessful_tasks(run, children) if children is not None else []
    return Failure(children, tasks, failed_step_logs(ctx))


def lines_wanted(ctx: Context[Any, Any]) -> int:
    """How many lines of each failed step to show: 0 reads nothing. Reads no log."""
    config = ctx.config
    if not isinstance(config, ShowsStepLogs) or config.log_lines <= 0 or ctx.run.phase not in FAILED:
        return 0
    cap = load_policy().for_namespace(ctx.run.namespace).log_lines_cap(ctx.integration)
    return config.log_lines if cap is None else min(cap, config.log_lines)


def default_source(cluster: ClusterAccess | None) -> LogSource:
    """The pods' logs, or Tekton Results' first where ``TEKTON_RESULTS_URL`` is set."""
    pods = PodLogSource(cluster)
    try:
        settings = ResultsSettings.load()
    except PermanentError as e:
        log.warning("step logs are read from the pods: %s", e.message)
        return pods
    return ResultsLogSource(settings, pods) if settings.url else pods


class PodLogSource:
    """The step container's log, through the Kubernetes API (``pods/log`` get)."""

    def __init__(self, cluster: ClusterAccess | None) -> None:
        self.cluster = cluster

    def tail(self, step: FailedStep, lines: int, limit_bytes: int) -> str:
        if self.cluster is None:
            raise LogUnavailableError("this function has no Kubernetes access to read logs with")
        if not step.pod:
            raise LogUnavailableError("the TaskRun has no pod")
        try:
            with deadline.suspended():  # the Kubernetes client's pool is shared; it keeps its own timeouts
                return self.cluster.pod_log(
                    step.namespace, step.pod, step.container, tail_lines=lines, limit_bytes=limit_bytes
                )
        except RunNotFoundError:
            raise LogUnavailableError(f"the pod {step.pod} is gone, and its log with it") from None
        except KubernetesUnavailableError:
            raise
        except IntegrationError as e:
            if e.reason == "KubernetesForbidden":
                raise LogUnavailableError(
                    "this function may not read pod logs (pods/log get): see docs/step-logs.md"
                ) from e
            raise LogUnavailableError(f"the log could not be read: {clip(e.message, 200)}") from e


class ResultsLogSource:
    """Tekton Results' log API (v1alpha2 ``GetLog``), for a TaskRun whose log it names; the
    ``fallback`` source for any other, and for a log Results cannot give (its note says why)."""

    def __init__(self, settings: ResultsSettings, fallback: LogSource) -> None:
        self.settings = settings
        self.fallback = fallback

    def tail(self, step: FailedStep, lines: int, limit_bytes: int) -> str:
        name = step.annotations.get(RESULTS_LOG_ANNOTATION, "")
        if not RESULTS_LOG_NAME.match(name):
            return self.fallback.tail(step, lines, limit_bytes)
        try:
            found = self._step_lines(name, step.step, lines)
        except LogUnavailableError as results:
            log.info(
                "Tekton Results gives no log of %s/%s (%s): reading its pod's",
                step.namespace,
                step.task_run,
                results,
            )
            try:
                return self.fallback.tail(step, lines, limit_bytes)
            except LogUnavailableError as pod:
                raise LogUnavailableError(f"{pod}; Tekton Results: {results}") from None
        return "".join(f"{line}\n" for line in found).encode()[-limit_bytes:].decode(errors="ignore")

    def _step_lines(self, name: str, step: str, lines: int) -> list[str]:
        """The last ``lines`` lines of ``step`` in the TaskRun's log, which Results keeps as
        ``tkn`` writes it: ``[<step>] <line>`` for each line of each step."""
        import urllib3  # noqa: PLC0415 -- only for a failed run's log, only when Results is configured

        url = f"{(self.settings.url or '').rstrip('/')}/apis/results.tekton.dev/v1alpha2/parents/"
        headers = {"Accept": "text/plain, */*"}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        pool = urllib3.PoolManager(
            ca_certs=self.settings.ca_file,
            timeout=urllib3.Timeout(total=self.settings.timeout_seconds),
            retries=False,
        )
        try:
            answer = pool.request(
                "GET", url + quote(name, safe="/"), headers=headers, preload_content=False, redirect=False
            )
            try:
                if answer.status != 200:
                    raise LogUnavailableError(_refusal(answer.status))
                return _tail_of_step(answer.stream(64 * 1024), f"[{step}] ", lines)
            finally:
                answer.release_conn()
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise LogUnavailableError(f"unreachable ({type(e).__name__})") from e
        finally:
            pool.clear()

    def _token(self) -> str | None:
        if self.settings.token is not None:
            return self.settings.token.get_secret_value()
        try:
            token = SERVICE_ACCOUNT_TOKEN.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        redaction.remember(token)
        return token or None


def _refusal(status: int) -> str:
    if status == 404:
        return "it keeps no such log"
    if status in (401, 403):
        return (
            f"refused ({status}): give the function's token get on results.tekton.dev logs "
            "(see docs/step-logs.md)"
        )
    return f"answered {status}"


def _tail_of_step(chunks: Iterable[bytes], prefix: str, lines: int) -> list[str]:
    """The last ``lines`` lines of ``chunks`` that start with ``prefix`` (removed); terminal
    colours around the prefix are ignored. More than ``MAX_RESULTS_BYTES`` is not read."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    kept: deque[str] = deque(maxlen=lines)
    partial = ""
    read = 0
    for chunk in chunks:
        read += len(chunk)
        if read > MAX_RESULTS_BYTES:  # its end is what matters, and it is out of reach
            raise LogUnavailableError(
                f"its log of the TaskRun is longer than {MAX_RESULTS_BYTES // 2**20} MiB"
            )
        text = partial + decoder.decode(chunk)
        *complete, partial = text.split("\n")
        kept.extend(_of_step(complete, prefix))
    kept.extend(_of_step([partial + decoder.decode(b"", final=True)], prefix))
    return list(kept)


def _of_step(lines: Iterable[str], prefix: str) -> Iterable[str]:
    for line in lines:
        plain = redaction.ANSI_ESCAPES.sub("", line)
        if plain.startswith(prefix):
            yield plain[len(prefix) :]


def _failed_task_runs(ctx: Context[Any, Any]) -> list[tuple[str, Run]]:
    """(pipeline task, TaskRun) of each failed TaskRun whose log to show, in the pipeline's order."""
    run = ctx.run
    if run.kind == "TaskRun":
        return [(run.labels.get(PIPELINE_TASK_LABEL) or run.name, run)]
    if run.kind != "PipelineRun":
        return []
    task_of = {name: task for task, name in child_references(run)}
    failed = [child for child in ctx.child_runs() if child.phase in FAILED][:MAX_FAILED_TASKS]
    return [
        (task_of.get(child.name) or child.labels.get(PIPELINE_TASK_LABEL) or child.name, child)
        for child in failed
    ]


def _failed_step(task: str, run: Run) -> FailedStep | StepLog:
    """Where the first step of ``run`` that exited non-zero logged, or a ``StepLog`` saying that
    none did (a pod that never started, a timeout before the first step)."""
    status = run.raw.get("status") or {}
    steps = status.get("steps") if isinstance(status, Mapping) else None
    for item in steps if isinstance(steps, list) else []:
        terminated = item.get("terminated") if isinstance(item, Mapping) else None
        code = terminated.get("exitCode") if isinstance(terminated, Mapping) else None
        if isinstance(code, int) and code != 0:
            name = str(item.get("name") or "")
            pod = status.get("podName")
            return FailedStep(
                namespace=run.namespace,
                task=task,
                task_run=run.name,
                step=name,
                container=str(item.get("container") or f"step-{name}"),
                pod=pod if isinstance(pod, str) and pod else None,
                annotations=run.annotations,
            )
    reason = run.condition.reason if run.condition else ""
    note = "no step exited with an error" + (f" (the TaskRun's reason: {reason})" if reason else "")
    return StepLog(task, run.name, "", (), omitted=False, note=note)


def _read(source: LogSource, step: FailedStep, wanted: int) -> StepLog:
    """The last ``wanted`` lines of the step's log. One more is asked for: if it comes, earlier
    lines were left out. A read cut at ``limit_bytes`` loses its first, partial line."""
    limit_bytes = min(MAX_LOG_BYTES, (wanted + 1) * BYTES_PER_LINE)
    try:
        text = source.tail(step, wanted + 1, limit_bytes)
    except LogUnavailableError as e:
        return StepLog(step.task, step.task_run, step.step, (), omitted=False, note=str(e))
    raw = text.split("\n")  # not splitlines: a "\r" redraws a line, it does not end one
    if raw[-1] == "":
        raw.pop()
    cut = len(text.encode()) >= limit_bytes
    if cut and raw:
        raw = raw[1:]
    shown = [clip(line, MAX_LINE_CHARS) for line in redaction.redact_lines(raw)][-wanted:]
    note = None if shown else "the step wrote nothing to its log"
    return StepLog(step.task, step.task_run, step.step, tuple(shown), cut or len(raw) > wanted, note)


# -- presentation -----------------------------------------------------------------------------


def as_markdown(logs: Sequence[StepLog], limit: int) -> str:
    """Each step headed, its lines in a fenced block, all within ``limit`` characters: the oldest
    lines go first (the header then says "last N lines"), then whole steps (counted at the end)."""
    return _fit(logs, limit, _markdown)


def as_plain(logs: Sequence[StepLog], limit: int) -> str:
    """As ``as_markdown``, in plain text (an e-mail's): lines indented under each heading."""
    return _fit(logs, limit, _plain)


Render = Callable[[StepLog, Sequence[str], bool], str]


def _fit(logs: Sequence[StepLog], limit: int, render: Render) -> str:
    shown = [list(item.lines) for item in logs]
    parts = [render(item, lines, item.omitted) for item, lines in zip(logs, shown, strict=True)]
    kept = len(logs)
    while True:
        text = _joined(parts[:kept], len(logs) - kept)
        if len(text) <= limit or not kept:
            return text if len(text) <= limit else ""
        longest = max(range(kept), key=lambda i: len(shown[i]))
        if len(shown[longest]) > 1 or (kept == 1 and shown[0]):
            # the oldest lines of the longest snippet, down to the next longest (to one line each)
            floor = max([1 if kept > 1 else 0, *(len(shown[i]) for i in range(kept) if i != longest)])
            _drop_oldest(shown[longest], len(text) - limit, floor)
            parts[longest] = render(logs[longest], shown[longest], True)
        else:  # one line each is still too long: whole steps, the last first
            kept -= 1


def _drop_oldest(lines: list[str], excess: int, floor: int) -> None:
    """Remove the oldest lines, at least one, until ``excess`` characters or ``floor`` lines are left."""
    removed = len(lines.pop(0)) + 1
    while lines and removed < excess and len(lines) > floor:
        removed += len(lines.pop(0)) + 1


def _joined(parts: Sequence[str], left_out: int) -> str:
    more = f"… and {left_out} more failed step{'s' if left_out > 1 else ''}, not shown" if left_out else ""
    return "\n\n".join([*parts, more] if more else parts)


def _heading(item: StepLog, count: int, omitted: bool, code: Callable[[str], str]) -> str:
    where = f"task {code(item.task)}" if item.task != item.task_run else f"TaskRun {code(item.task_run)}"
    if item.step:
        where += f", step {code(item.step)}"
    if item.task != item.task_run:
        where += f" (TaskRun {code(item.task_run)})"
    if not count:
        note = (item.note or "its lines were left out to stay within the message's size").rstrip(".")
        return f"{where[0].upper()}{where[1:]}: {note}."
    lines = f"last {count} line{'s' if count > 1 else ''}" if omitted else "its log"
    return f"{where[0].upper()}{where[1:]}, {lines}:"


def _markdown(item: StepLog, lines: Sequence[str], omitted: bool) -> str:
    heading = _heading(item, len(lines), omitted, lambda name: f"`{name}`")
    if not lines:
        return heading
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join([heading, fence, *lines, fence])


def _plain(item: StepLog, lines: Sequence[str], omitted: bool) -> str:
    heading = _heading(item, len(lines), omitted, lambda name: name)
    return "\n".join([heading, *(f"    {line}" for line in lines)])
