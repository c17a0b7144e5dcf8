"""Settings: one way to read a function's configuration from its environment and mounted files.

Owns reading, validating and caching settings; not what they mean. Each field of a
``ServiceSettings`` subclass is read from ``<PREFIX>_<FIELD>`` (or the full variable name given as
the field's alias), else from the file that ``<VARIABLE>_FILE`` names (a mounted Secret), and the
whole model is validated once. It is read again only when a variable or a named file changes, so a
rotated Secret is picked up without a restart and an unchanged one costs a few ``stat`` calls.

- A file that is named but missing, unreadable, a directory or empty counts as unset, and the
  reason is kept: ``require`` and ``not_configured`` name the path in the permanent
  ``<Service>NotConfigured`` error a run records (Secrets are mounted optional).
- A value that does not validate is that same error, naming the variable.
- Every ``SecretStr`` field's value is handed to ``common.redaction`` as it is read.

``RuntimeSettings`` holds what every function shares (``TEKTON_DASHBOARD_URL``, ...).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError

from common import redaction
from common.errors import PermanentError, clip
from common.events import Run

SECRET_DIRECTORY = "tekton-integrations:secret-directory"  # noqa: S105 -- a marker, not a secret
"""Marks a field whose value is the directory a Secret is mounted at (see ``SecretDirectory``)."""
SecretDirectory = Annotated[str, SECRET_DIRECTORY]
"""A setting naming the directory where the function's Secret is mounted, one file per key
(e.g. one signing key per namespace); the manifests mount the Secret there."""
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 30.0
"""Well inside the sender's window: Knative's request timeout for the Services is 60 s."""
DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024
"""Above etcd's 1.5 MiB object limit with room for the v1beta1 conversion; larger is not Tekton."""


class ServiceSettings(BaseModel):
    """Base for a function's settings. Subclasses set ``prefix`` and ``service`` and add fields."""

    # defer_build: a model's validator is built when it first validates, not when a function
    # that may only ever ignore events is imported. Field docstrings are documentation, read by
    # ``common.manifests`` from the source; collecting them here would cost every cold start.
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True)

    prefix: ClassVar[str] = "TI"
    service: ClassVar[str] = "Integration"
    """Names the service in reasons (``<service>NotConfigured``) and messages."""

    timeout_seconds: float = Field(DEFAULT_TIMEOUT_SECONDS, gt=0, le=MAX_TIMEOUT_SECONDS)
    """``<PREFIX>_TIMEOUT_SECONDS``: the total deadline of the service calls for one event."""

    _unreadable: dict[str, str] = PrivateAttr(default_factory=dict)

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable a field is read from."""
        alias = cls.model_fields[name].alias
        return alias or f"{cls.prefix}_{name.upper()}"

    @classmethod
    def load(cls) -> Self:
        """The settings as the environment and mounted files say now (cached while unchanged)."""
        signature = tuple(_signature(cls.variable(name)) for name in cls.model_fields)
        key = (cls, signature)
        with _lock:
            cached = _cache.get(key)
        if cached is not None:
            return cached  # type: ignore[return-value]  # keyed on the class
        values: dict[str, str] = {}
        unreadable: dict[str, str] = {}
        for name in cls.model_fields:
            variable = cls.variable(name)
            value, problem = _read(variable)
            if value is not None:
                values[name] = value
            elif problem:
                unreadable[name] = problem
        try:
            settings = cls.model_validate(values)
        except ValidationError as e:
            raise PermanentError(f"{cls.service}NotConfigured", cls._describe(e)) from None
        settings._unreadable.update(unreadable)
        settings._remember_secrets()
        with _lock:
            if len(_cache) > 64:
                _cache.clear()
            _cache[key] = settings
        return settings

    def unreadable(self, name: str) -> str | None:
        """Why a field that names a file is unset (``X_FILE names /p, which does not exist``)."""
        return self._unreadable.get(name)

    def not_configured(self, message: str, *names: str) -> PermanentError:
        """``<Service>NotConfigured`` with ``message`` and the files behind ``names`` that were unreadable."""
        problems = [problem for name in names if (problem := self.unreadable(name))]
        if problems:
            message += f" ({'; '.join(problems)})"
        return PermanentError(f"{self.service}NotConfigured", message)

    def require(self, *names: str) -> None:
        """Raise ``not_configured`` unless every field in ``names`` is set."""
        missing = [name for name in names if getattr(self, name) in (None, "")]
        if missing:
            variables = " and ".join(f"{self.variable(name)}(_FILE)" for name in missing)
            raise self.not_configured(f"the {self.service} function needs {variables}", *missing)

    def _remember_secrets(self) -> None:
        username = getattr(self, "username", None)
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                redaction.remember(
                    value.get_secret_value(), user=username if isinstance(username, str) else None
                )

    @classmethod
    def _describe(cls, error: ValidationError) -> str:
        problems = []
        for item in error.errors():
            location = item.get("loc") or ("?",)
            name = str(location[0])
            variable = cls.variable(name) if name in cls.model_fields else name
            problems.append(f"{variable}: {str(item.get('msg', 'invalid')).removeprefix('Value error, ')}")
        return clip(f"the {cls.service} function's settings are invalid: {'; '.join(problems)}", 500)


class NoSettings(ServiceSettings):
    """For an integration that calls no service of its own."""


class RuntimeSettings(ServiceSettings):
    """What every function shares."""

    prefix: ClassVar[str] = "TI"
    service: ClassVar[str] = "Runtime"

    dashboard_url: str | None = Field(None, alias="TEKTON_DASHBOARD_URL")
    """Base of links to runs on the Tekton Dashboard."""
    max_event_bytes: int = Field(DEFAULT_MAX_EVENT_BYTES, gt=0)
    """``TI_MAX_EVENT_BYTES``: larger requests are refused with 400."""
    status_integrations: Literal["auto", "always", "never"] = "auto"
    """``TI_STATUS_INTEGRATIONS``: when records are mirrored into ``status.integrations``
    (``common.store.MirrorMode``)."""

    def run_url(self, run: Run) -> str | None:
        """``<dashboard>/#/namespaces/<ns>/<resource>/<name>``, the Dashboard's hash route."""
        if not self.dashboard_url:
            return None
        base = self.dashboard_url.rstrip("/")
        return f"{base}/#/namespaces/{quote(run.namespace)}/{run.resource}/{quote(run.name)}"

    @classmethod
    def from_env(cls) -> RuntimeSettings:
        """``load``, or the defaults when the environment is invalid (the runtime must still answer)."""
        try:
            return cls.load()
        except PermanentError:
            return cls()


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
Built = TypeVar("Built")


class PerSettings(Generic[SettingsT, Built]):
    """One object built from the current settings (a client with its caches: tokens, ids), kept
    while the settings stay the same and built again when a variable or a mounted secret changes.

    ``per_thread``: one per thread, for a client with a connection pool: a connection is only ever
    used by the thread that made it (``common.deadline`` cuts a thread's connections off).
    """

    def __init__(self, build: Callable[[SettingsT], Built], *, per_thread: bool = False) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._shared: tuple[SettingsT, Built] | None = None
        self._local = threading.local() if per_thread else None

    def __call__(self, settings: SettingsT) -> Built:
        if self._local is not None:
            built: tuple[SettingsT, Built] | None = getattr(self._local, "built", None)
            if built is None or built[0] != settings:
                built = self._local.built = (settings, self._build(settings))
            return built[1]
        with self._lock:
            if self._shared is None or self._shared[0] != settings:
                self._shared = (settings, self._build(settings))
            return self._shared[1]


_lock = threading.Lock()
_cache: dict[tuple[type[ServiceSettings], tuple[Any, ...]], ServiceSettings] = {}


def _signature(variable: str) -> tuple[Any, ...]:
    value = os.environ.get(variable)
    path = os.environ.get(f"{variable}_FILE")
    if value or not path:
        return (value, path)
    try:
        stat = os.stat(path)  # follows a mounted Secret's ..data symlink, so a rotation is seen
    except OSError as e:
        return (value, path, e.errno)
    return (value, path, stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_dev)


def _read(variable: str) -> tuple[str | None, str | None]:
    """``$VARIABLE``, else the stripped contents of ``$VARIABLE_FILE``; else why not (or ``None``)."""
    if value := os.environ.get(variable, "").strip():
        return value, None
    path = os.environ.get(f"{variable}_FILE", "").strip()
    if not path:
        return None, None
    where = f"{variable}_FILE names {path}"
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None, f"{where}, which does not exist (is the Secret mounted?)"
    except IsADirectoryError:
        return None, f"{where}, which is a directory, not a file"
    except (OSError, UnicodeDecodeError) as e:
        return None, f"{where}, which cannot be read ({getattr(e, 'strerror', None) or type(e).__name__})"
    if not text:
        return None, f"{where}, which is empty"
    return text, None
