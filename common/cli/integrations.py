"""Which integrations a run names, and the function modules that implement them.

A run names an integration by carrying any ``<name>.integrations.tekton.dev/<key>`` annotation.
The implementation is ``functions/<name>/main.py``'s ``integration``, imported lazily (importing
a function pulls in its service's client library). A name with no importable module, or whose
module fails to import, is reported with the reason instead of stopping the command.
"""

from __future__ import annotations

import difflib
import importlib
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from common.config import DOMAIN, RECORD_KEY
from common.errors import clip
from common.runtime import Integration

_KEY = re.compile(rf"^(?P<name>[a-z0-9]([a-z0-9-]{{0,61}}[a-z0-9])?)\.{re.escape(DOMAIN)}/(?P<key>.+)$")
_lock = threading.Lock()


def names_on(annotations: Mapping[str, str], *, configured_only: bool = False) -> list[str]:
    """Integration names the annotations mention, sorted; only those with settings if asked."""
    found = set()
    for key in annotations:
        match = _KEY.match(key)
        if match and not (configured_only and match["key"] == RECORD_KEY):
            found.add(match["name"])
    return sorted(found)


@dataclass(frozen=True)
class Loaded:
    """An integration name and its implementation, or why there is none."""

    name: str
    integration: Integration[Any] | None
    problem: str | None = None


def function_folders() -> list[str]:
    """Folders of the ``functions`` package that hold a ``main.py``."""
    import functions  # noqa: PLC0415 -- resolved where the package is installed

    root = Path(next(iter(functions.__path__)))
    return sorted(p.parent.name for p in root.glob("*/main.py") if not p.parent.name.startswith("_"))


@cache
def load(name: str) -> Loaded:
    """Import ``functions.<name>.main`` and take its ``integration``; never raises."""
    module_name = f"functions.{name}.main"
    if name not in function_folders():
        return Loaded(name, None, _unknown(name))
    try:
        with _lock:
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name in (module_name, module_name.rsplit(".", 1)[0]):
            return Loaded(name, None, _unknown(name))
        return Loaded(name, None, f"functions/{name}/main.py cannot be imported: {clip(str(e), 200)}")
    except Exception as e:  # a broken function must not stop the CLI from explaining the others
        return Loaded(
            name, None, f"functions/{name}/main.py failed to import: {type(e).__name__}: {clip(str(e), 200)}"
        )
    integration = getattr(module, "integration", None)
    if not isinstance(integration, Integration):
        return Loaded(
            name, None, f"functions/{name}/main.py defines no `integration`: it is not an integration"
        )
    return Loaded(name, integration)


def available() -> list[str]:
    """Names of the integrations this installation implements."""
    return [name for name in function_folders() if load(name).integration is not None]


def closest(name: str) -> str | None:
    """The available integration a misspelt name most likely meant."""
    matches = difflib.get_close_matches(name, available(), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _unknown(name: str) -> str:
    return f"no integration named {name!r} in this installation (no functions/{name}/main.py)"
