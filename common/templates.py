"""Operators' message templates: a named Jinja2 template renders the main text of a message.

Owns finding the template a run selects, the namespace policy's say on it, the documented context
(docs/templates.md), rendering in a sandbox within bounds, and falling back to the default
message when anything goes wrong. It sends nothing: each integration puts ``render(...).text``
where its message's main text goes, and ``with_fallback`` records a fallback on the run.

- **Where templates are.** The files of the ConfigMap ``tekton-integrations-templates``, mounted
  at ``$TI_TEMPLATES_DIR`` (default ``/etc/tekton-integrations/templates``). Template ``NAME``
  for target ``T`` is the key ``NAME.T.j2``, else ``NAME.j2`` (any target). A file is read again
  when it changes (the kubelet swaps a mounted ConfigMap's files): a ``stat`` or two per render, no
  Kubernetes request.
- **Sandbox.** ``jinja2.sandbox.ImmutableSandboxedEnvironment`` with ``StrictUndefined``: no
  attribute starting with ``_`` (``{{ ''.__class__ }}`` is a ``SecurityError``), no method that
  changes a list or dict, ranges of at most 100 000 items, no ``*``/``**`` that would make a
  huge value (repetitions of at most 100 000 items, integers of at most 4096 bits), no
  ``lipsum``. Values (not the operator's own text) are escaped for the target where it reads
  markup: Slack's ``&<>`` entities, Google Chat's HTML, Teams' Markdown.
- **Bounds.** At most ``Target.limit`` characters of output and ``RENDER_SECONDS`` of rendering
  (a trace function stops a template's own loops; the Kubernetes reads its context needs come
  before, outside the bound).
- **Redaction.** Everything rendered passes ``common.redaction.redact``.

Jinja2 is imported with the first run that selects a template (Flask has it loaded already in a
function; the CLI pays for it only in ``render``).
"""

from __future__ import annotations

import html
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from common.errors import clip
from common.events import Run
from common.integration import Context, Report
from common.policy import load_policy
from common.redaction import redact
from common.summary import child_references, format_duration, headline, unsuccessful_tasks

if TYPE_CHECKING:
    from jinja2 import Environment, Template

    from common.steplogs import StepLog

log = logging.getLogger(__name__)

TEMPLATES_DIR_ENV = "TI_TEMPLATES_DIR"
DEFAULT_TEMPLATES_DIR = "/etc/tekton-integrations/templates"
CONFIG_MAP = "tekton-integrations-templates"
SUFFIX = ".j2"
RENDER_SECONDS = 1.0
"""The most a template may take to render (the context's Kubernetes reads are not counted)."""
MAX_POWER_BITS = 4096
"""The largest integer ``**`` may make in a template."""
MAX_NOTE_DETAIL = 300
"""Characters of a failure's own words kept in the note the record shows."""

TEMPLATE_NOT_FOUND = "TemplateNotFound"
TEMPLATE_NOT_ALLOWED = "TemplateNotAllowed"
TEMPLATE_FAILED = "TemplateFailed"

EXPENSIVE = {"tasks": "children", "failed_tasks": "children", "step_logs": "step_logs"}
"""Context variables that cost Kubernetes reads: loaded only for a template that uses them."""
HIDDEN_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
"""Left out of ``run.annotations``: the whole object as applied, parameters and all."""


@dataclass(frozen=True)
class Rendered:
    text: str
    """The template's output, or the default message."""
    fallback_reason: str | None
    """``TemplateNotFound``, ``TemplateNotAllowed`` or ``TemplateFailed``; ``None`` if it rendered
    or no template was asked for."""
    note: str
    """``""``, or what went wrong, for the record: ``template 'short' failed (...): ...``."""


@dataclass(frozen=True)
class Message:
    """What an integration sends for the run's current state, built without sending it: the same
    function builds it for ``report`` and for ``tekton-integrations render``."""

    rendered: Rendered
    """The main text, as the template (or the default) gave it."""
    payload: Mapping[str, Any]
    """The request the service receives (JSON-able), e.g. Slack's ``text``, ``blocks``, ``attachments``."""


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MARKDOWN = str.maketrans({char: f"\\{char}" for char in "\\*_[]`~<>#"})


@dataclass(frozen=True)
class Target:
    """Where a message goes: how long its main text may be, and how values are escaped in it."""

    limit: int
    escape: Callable[[str], str] | None = None


TARGETS: Mapping[str, Target] = {
    "slack": Target(40_000, _slack_escape),  # Slack's limit for a message's text
    "teams": Target(20_000, lambda text: text.translate(_MARKDOWN)),  # the card's ~28 KB, with room
    "googlechat": Target(20_000, lambda text: html.escape(text, quote=False)),  # 32,000 bytes a message
    "email": Target(100_000),
    "github": Target(65_535),  # a check run's summary
}

_directory: ContextVar[Path | None] = ContextVar("templates_directory", default=None)


def templates_dir() -> Path:
    """Where the templates are: ``reading_from``'s directory, else ``$TI_TEMPLATES_DIR``, else the default."""
    chosen = _directory.get()
    return chosen if chosen is not None else Path(os.environ.get(TEMPLATES_DIR_ENV) or DEFAULT_TEMPLATES_DIR)


@contextmanager
def reading_from(directory: Path) -> Iterator[None]:
    """Read templates from ``directory`` within the block (the CLI's ``--templates-dir``)."""
    token = _directory.set(directory)
    try:
        yield
    finally:
        _directory.reset(token)


def render(
    ctx: Context[Any, Any],
    target: str,
    default: Callable[[], str],
    *,
    children: Sequence[Run] | None = None,
    step_logs: Sequence[StepLog] | None = None,
) -> Rendered:
    """The main text of the message for ``target`` (a key of ``TARGETS``): the run's template
    rendered, or ``default()`` when the run asks for none or the template cannot be used.

    ``children`` and ``step_logs``: what the caller has read already (``ctx.child_runs()``,
    ``common.steplogs.failed_step_logs(ctx)``), so nothing is read twice; else they are read
    when, and only when, the template uses them. Kubernetes being unavailable then propagates
    (``TemporaryError``): nothing was sent yet.
    """
    name: str | None = getattr(ctx.config, "template", None)
    if not name:
        return Rendered(default(), None, "")
    if not load_policy().for_namespace(ctx.run.namespace).allows_template(ctx.integration, name):
        why = f"is not allowed in namespace {ctx.run.namespace!r} by the policy ({ctx.integration}.templates)"
        return _fallback(ctx, name, default, TEMPLATE_NOT_ALLOWED, why)
    root, bounds = templates_dir(), TARGETS[target]
    try:
        found = _loader(root, target).find(name, target)
    except _NotFoundError as e:
        return _fallback(ctx, name, default, TEMPLATE_NOT_FOUND, f"was not found ({e})")
    except Exception as e:  # a syntax error, an unreadable file: the operator's to fix
        return _fallback(ctx, name, default, TEMPLATE_FAILED, f"failed ({_describe(e)})")
    values = _context(ctx, target, found.uses, children, step_logs)
    try:
        text = _bounded(found.template, values, bounds.limit)
    except Exception as e:  # whatever a template does wrong, the default message is sent
        return _fallback(ctx, name, default, TEMPLATE_FAILED, f"failed ({_describe(e)})")
    return Rendered(redact(text), None, "")


def template_text(ctx: Context[Any, Any], rendered: Rendered) -> str | None:
    """The template's output when the run's template rendered; ``None`` when the message is the
    default one (no template asked for, or it fell back)."""
    asked = getattr(ctx.config, "template", None)
    return rendered.text if asked and rendered.fallback_reason is None else None


def with_fallback(report: Report, rendered: Rendered) -> Report:
    """The report to return: unchanged when the template rendered (or none was asked for); else
    with the fallback's reason and its note appended. The condition stays True: a message was sent."""
    if rendered.fallback_reason is None:
        return report
    return replace(report, message=f"{report.message}; {rendered.note}", reason=rendered.fallback_reason)


def _fallback(
    ctx: Context[Any, Any], name: str, default: Callable[[], str], reason: str, why: str
) -> Rendered:
    note = redact(f"template {name!r} {why}: the default message was used")
    log.warning("%s/%s, %s: %s", ctx.run.namespace, ctx.run.name, ctx.integration, note)
    return Rendered(default(), reason, note)


def _describe(error: BaseException) -> str:
    """``SecurityError: access to attribute '__class__' of 'str' object is unsafe.``, with the line
    of a syntax error."""
    line = getattr(error, "lineno", None)
    where = f"line {line}: " if isinstance(line, int) and getattr(error, "source", None) is not None else ""
    words = str(error) or "no details"
    return clip(f"{type(error).__name__}: {where}{words}", MAX_NOTE_DETAIL)


# --- The context (docs/templates.md) ---------------------------------------------------------------


def _context(
    ctx: Context[Any, Any],
    target: str,
    uses: frozenset[str],
    children: Sequence[Run] | None,
    step_logs: Sequence[StepLog] | None,
) -> dict[str, Any]:
    run, runtime = ctx.run, ctx.runtime
    values: dict[str, Any] = {
        "integration": ctx.integration,
        "target": target,
        "run": _run_facts(run),
        "links": {"run_url": ctx.run_url},
        "record": _record(ctx),
    }
    if uses & {"tasks", "failed_tasks"}:
        kids = list(children) if children is not None else ctx.child_runs()
        task_of = {name: task for task, name in child_references(run)}
        values["tasks"] = [_task(child, task_of, runtime.run_url(child)) for child in kids]
        values["failed_tasks"] = [
            {"name": t.task, "task_run": t.run_name, "reason": t.reason, "message": t.message}
            for t in unsuccessful_tasks(run, kids)
        ]
    if "step_logs" in uses:
        if step_logs is None:
            from common.steplogs import failed_step_logs  # noqa: PLC0415 -- only for a template using them

            step_logs = failed_step_logs(ctx)
        values["step_logs"] = [
            {
                "task": log.task,
                "task_run": log.task_run,
                "step": log.step,
                "lines": list(log.lines),
                "text": "\n".join(log.lines),
                "omitted": log.omitted,
                "note": log.note,
            }
            for log in step_logs
        ]
    return values


def _state(run: Run) -> dict[str, str]:
    """``phase``, ``headline`` and the ``Succeeded`` condition's ``status``, ``reason``, ``message``."""
    condition = run.condition
    return {
        "phase": run.phase.value,
        "headline": headline(run),
        "status": condition.status if condition else "",
        "reason": condition.reason if condition else "",
        "message": condition.message if condition else "",
    }


def _run_facts(run: Run) -> dict[str, Any]:
    return {
        "kind": run.kind,
        "namespace": run.namespace,
        "name": run.name,
        "uid": run.uid,
        "definition": run.definition,
        **_state(run),
        "start_time": run.start_time.isoformat() if run.start_time else None,
        "completion_time": run.completion_time.isoformat() if run.completion_time else None,
        "duration": format_duration(run.duration_seconds),
        "duration_seconds": run.duration_seconds,
        "results": dict(run.results),
        "labels": dict(run.labels),
        "annotations": {
            key: value
            for key, value in run.annotations.items()
            if key not in HIDDEN_ANNOTATIONS and not key.endswith(".integrations.tekton.dev/status")
        },
    }


def _task(child: Run, task_of: Mapping[str, str], link: str | None) -> dict[str, Any]:
    return {
        "name": task_of.get(child.name, child.labels.get("tekton.dev/pipelineTask", child.name)),
        "task_run": child.name,
        "definition": child.definition,
        **_state(child),
        "duration": format_duration(child.duration_seconds),
        "link": link,
    }


def _record(ctx: Context[Any, Any]) -> dict[str, Any] | None:
    """The integration's previous record (untrusted, shown only); its signature left out."""
    if ctx.record is None:
        return None
    condition = ctx.record.condition
    return {
        "status": condition.status,
        "reason": condition.reason,
        "message": condition.message,
        "ids": {key: value for key, value in ctx.record.annotations.items() if key != "sig"},
    }


# --- Finding and compiling templates -----------------------------------------------------------------


class _NotFoundError(Exception):
    """No file holds the template for the target."""


Signature = tuple[int, int, int, int]


def _signature(path: Path) -> Signature:
    stat = os.stat(path)  # follows the ConfigMap's ..data symlink, so an update is seen
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_dev)


@dataclass(frozen=True)
class _Found:
    template: Template
    uses: frozenset[str]
    """The context variables it reads (every expensive one when it includes other templates)."""


class _Loader:
    """The templates of one directory for one target: a Jinja loader whose files are re-read when
    they change, and what each template uses of the context."""

    def __init__(self, root: Path, target: str) -> None:
        self.root = root
        self.environment = _sandbox(self, target)
        self._lock = threading.Lock()
        self._uses: dict[str, frozenset[str]] = {}

    def find(self, name: str, target: str) -> _Found:
        """Template ``name`` for ``target``: ``NAME.TARGET.j2``, else ``NAME.j2``."""
        from jinja2 import TemplateNotFound  # noqa: PLC0415 -- loaded with the first template

        keys = (f"{name}.{target}{SUFFIX}", f"{name}{SUFFIX}")
        for key in keys:
            try:
                template = self.environment.get_template(key)
            except TemplateNotFound:
                continue
            with self._lock:
                return _Found(template, self._uses[key])
        raise _NotFoundError(f"no key {' or '.join(keys)} in {self.root}, the ConfigMap {CONFIG_MAP}")

    def get_source(self, environment: Environment, key: str) -> tuple[str, str, Callable[[], bool]]:
        """Jinja's loader protocol: the file's text, its path, and whether it is still current."""
        from jinja2 import TemplateNotFound, meta  # noqa: PLC0415

        if not _is_key(key):
            raise TemplateNotFound(key)
        path = self.root / key
        try:
            signature = _signature(path)
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise TemplateNotFound(key) from None
        tree = environment.parse(text, key, str(path))
        includes = any(True for _ in meta.find_referenced_templates(tree))
        uses = frozenset(EXPENSIVE) if includes else frozenset(meta.find_undeclared_variables(tree))
        with self._lock:
            self._uses[key] = uses

        def current() -> bool:
            try:
                return _signature(path) == signature
            except OSError:
                return False

        return text, str(path), current


def _is_key(key: str) -> bool:
    """A ConfigMap key (``[-._a-zA-Z0-9]+``), never hidden: so never a path out of the directory."""
    return (
        bool(key)
        and not key.startswith(".")
        and all(c.isascii() and (c.isalnum() or c in "-._") for c in key)
    )


_loaders: dict[tuple[Path, str], _Loader] = {}
_loaders_lock = threading.Lock()


def _loader(root: Path, target: str) -> _Loader:
    with _loaders_lock:
        found = _loaders.get((root, target))
        if found is None:
            found = _loaders[(root, target)] = _Loader(root, target)
        return found


def _sandbox(loader: _Loader, target: str) -> Environment:
    from jinja2 import BaseLoader, StrictUndefined  # noqa: PLC0415 -- loaded with the first template

    class _Files(BaseLoader):
        def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
            return loader.get_source(environment, template)

    escape = TARGETS[target].escape
    environment = _sandbox_class()(
        loader=_Files(),
        undefined=StrictUndefined,
        autoescape=False,
        auto_reload=True,
        finalize=(lambda value: escape(str(value))) if escape else None,
        keep_trailing_newline=False,
    )
    environment.globals.pop("lipsum", None)  # paragraphs of filler text, as many as asked
    return environment


@cache
def _sandbox_class() -> type[Environment]:
    """``ImmutableSandboxedEnvironment`` that also refuses ``*`` and ``**`` making huge values."""
    from jinja2.exceptions import SecurityError  # noqa: PLC0415
    from jinja2.runtime import Context as JinjaContext  # noqa: PLC0415
    from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment  # noqa: PLC0415

    class Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: JinjaContext, operator: str, left: Any, right: Any) -> Any:
            limit = MAX_RANGE
            if (
                operator == "**"
                and isinstance(left, int)
                and isinstance(right, int)
                and left.bit_length() * abs(right) > MAX_POWER_BITS
            ):
                raise SecurityError(f"a power of more than {MAX_POWER_BITS} bits is not allowed")
            if operator == "*" and any(
                isinstance(sized, str | list | tuple)
                and isinstance(times, int)
                and len(sized) * times > MAX_RANGE
                for sized, times in ((left, right), (right, left))
            ):
                raise SecurityError(f"a repetition longer than {limit} is not allowed")
            return super().call_binop(context, operator, left, right)

    return Sandbox


# --- Rendering within bounds ---------------------------------------------------------------------------


class TemplateTooLongError(Exception):
    """The template wrote more than its target takes."""


class TemplateEmptyError(Exception):
    """The template wrote nothing: no service takes an empty message."""


class TemplateTooSlowError(Exception):
    """The template ran longer than ``RENDER_SECONDS``."""


def _bounded(template: Template, values: dict[str, Any], limit: int) -> str:
    """Render ``template``, stopping it past ``limit`` characters or ``RENDER_SECONDS``."""
    stopwatch = _Stopwatch(template.filename or "", time.monotonic() + RENDER_SECONDS)
    parts: list[str] = []
    size = 0
    previous = sys.gettrace()
    sys.settrace(stopwatch.call)
    try:
        for part in template.generate(values):
            size += len(part)
            if size > limit:
                raise TemplateTooLongError(f"the template wrote more than {limit} characters")
            parts.append(part)
    finally:
        sys.settrace(previous)
    stopwatch.check()
    text = "".join(parts).strip()
    if not text:
        raise TemplateEmptyError("the template wrote nothing (only white space)")
    return text


@dataclass(frozen=True)
class _Stopwatch:
    """A trace function that follows only the template's own code (its loops are where time goes)."""

    folder: str
    deadline: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", os.path.dirname(self.folder))

    def call(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        return self.line if os.path.dirname(frame.f_code.co_filename) == self.folder else None

    def line(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        self.check()
        return self.line

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateTooSlowError(f"the template ran longer than {RENDER_SECONDS:g} s")
