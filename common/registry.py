"""The registry: which integrations this installation has, and their declarations.

Owns discovery; the only list of integrations there is. Two sources:

- folders ``functions/<name>/main.py`` of the installed ``functions`` package, whose module
  defines ``integration``;
- installed distributions' entry points in the group ``tekton_integrations.integrations``, each
  naming an ``Integration`` object (``pager = "acme_pager.main:integration"``), so a separate
  package adds an integration without touching this repository. The entry point's name is the
  integration's name.

``names()`` lists both without importing any integration (importing one pulls in its service's
client library; a function must not pay for the others'). ``load(name)`` imports one and never
raises: a broken module is reported with the reason, so the CLI can still explain the others.
Entry points are read (``importlib.metadata`` reads every installed distribution's metadata:
tens of milliseconds) only for a name that no folder holds, or when every name is asked for.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import re
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import clip
from common.integration import Integration

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENTRY_POINT_GROUP = "tekton_integrations.integrations"
TARGET_ENV = "TI_INTEGRATION"
"""Names the integration the generic functions-framework target ``common/target.py`` serves."""
NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
"""An integration name: a DNS label, so it can prefix an annotation and name a Service."""
FOLDER = re.compile(r"^[a-z0-9]([a-z0-9_]{0,61}[a-z0-9])?$")
"""A folder of ``functions/``: a Python package name. ``github_issues`` is ``github-issues``."""


def name_of(folder: str) -> str:
    """The integration a folder of ``functions/`` holds: its name, ``_`` read as ``-``."""
    return folder.replace("_", "-")


def folder_of(name: str) -> str:
    """The folder of ``functions/`` that holds integration ``name``."""
    return name.replace("-", "_")


_lock = threading.Lock()


@dataclass(frozen=True)
class Loaded:
    """An integration name and its declaration, or why there is none."""

    name: str
    integration: Integration[Any, Any] | None
    problem: str | None = None


def functions_root() -> Path | None:
    """The folder of the installed ``functions`` package, if there is one."""
    try:
        import functions  # noqa: PLC0415 -- resolved where the package is installed
    except ImportError:
        return None
    return Path(next(iter(functions.__path__)))


def folders() -> list[str]:
    """Integrations held by folders of the ``functions`` package (those with a ``main.py``), by name."""
    root = functions_root()
    if root is None:
        return []
    return sorted(name_of(p.parent.name) for p in root.glob("*/main.py") if FOLDER.match(p.parent.name))


def in_folder(name: str) -> bool:
    """Whether a folder of ``functions/`` holds integration ``name`` (no listing, no metadata)."""
    root = functions_root()
    folder = folder_of(name)
    return root is not None and bool(FOLDER.match(folder)) and (root / folder / "main.py").is_file()


def installed(name: str) -> bool:
    """Whether this installation has integration ``name``: a folder, else an entry point."""
    return in_folder(name) or name in _entry_points()


@cache
def _entry_points() -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points  # noqa: PLC0415 -- slow: only when a folder does not do

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP) if NAME.match(ep.name)}


def names() -> list[str]:
    """Every integration name this installation has, without importing any of them."""
    return sorted({*folders(), *_entry_points()})


@cache
def load(name: str) -> Loaded:
    """The declaration of integration ``name``; never raises."""
    if in_folder(name):
        folder = folder_of(name)
        return _from_module(name, f"functions.{folder}.main", f"functions/{folder}/main.py")
    entry = _entry_points().get(name)
    if entry is None:
        return Loaded(name, None, unknown(name))
    where = f"entry point {name} = {entry.value}"
    try:
        with _lock:
            declared = entry.load()
    except Exception as e:  # a broken package must not stop the others
        return Loaded(name, None, f"{where} failed to load: {type(e).__name__}: {clip(str(e), 200)}")
    if not isinstance(declared, Integration):
        return Loaded(name, None, f"{where} is not an Integration")
    return Loaded(name, dataclasses.replace(declared, name=name))


def declarations() -> list[Integration[Any, Any]]:
    """Every integration that loads (importing each)."""
    return [loaded.integration for name in names() if (loaded := load(name)).integration is not None]


def available() -> list[str]:
    """Names of the integrations that load."""
    return [integration.name for integration in declarations()]


def closest(name: str) -> str | None:
    """The installed integration a misspelt name most likely meant."""
    matches = difflib.get_close_matches(name, names(), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown(name: str) -> str:
    return (
        f"no integration named {name!r} in this installation (no functions/{folder_of(name)}/main.py, "
        f"no {ENTRY_POINT_GROUP} entry point)"
    )


def _from_module(name: str, module_name: str, where: str) -> Loaded:
    try:
        with _lock:
            module = importlib.import_module(module_name)
    except Exception as e:  # a broken function must not stop the CLI from explaining the others
        return Loaded(name, None, f"{where} failed to import: {type(e).__name__}: {clip(str(e), 200)}")
    declared = getattr(module, "integration", None)
    if not isinstance(declared, Integration):
        return Loaded(name, None, f"{where} defines no `integration`: it is not an integration")
    return Loaded(name, declared)
