"""Sample Tekton CloudEvents, as Tekton sends them (copied from the project's reference set).

Each file is ``{"headers": {...}, "data": {...}}``: the binary-mode HTTP headers and the body.
Used by the no-cluster demo, ``tekton-integrations send`` and the tests.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from common.events import RunKind


def names() -> list[str]:
    """Sample names, e.g. ``pipelinerun-running``."""
    return sorted(
        entry.name.removesuffix(".json")
        for entry in resources.files(__package__).iterdir()
        if entry.name.endswith(".json")
    )


@cache
def _load(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def load(name: str) -> dict[str, Any]:
    """A fresh copy of the sample ``name`` (``headers`` and ``data``)."""
    return copy.deepcopy(_load(name))


_KINDS: dict[str, RunKind] = {"pipelineRun": "PipelineRun", "taskRun": "TaskRun", "customRun": "CustomRun"}


def run_object(sample: dict[str, Any]) -> tuple[RunKind, dict[str, Any]]:
    """The run kind and object a sample event carries."""
    ((key, obj),) = sample["data"].items()
    return _KINDS[key], obj
