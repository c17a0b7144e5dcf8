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


def v1_object(sample: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The sample's run as a user would create it in ``tekton.dev/v1``: identity, labels and
    annotations, and a minimal spec (no status: that is written like Tekton does, see ``v1_status``)."""
    kind, obj = run_object(sample)
    metadata = obj["metadata"]
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": kind,
        "metadata": {
            "name": metadata["name"],
            "namespace": namespace,
            "labels": dict(metadata.get("labels") or {}),
            "annotations": dict(metadata.get("annotations") or {}),
        },
        "spec": {"pipelineRef": {"name": "build-and-test"}}
        if kind == "PipelineRun"
        else {"taskRef": {"name": "git-clone"}},
    }


def v1_status(kind: RunKind, status: dict[str, Any]) -> dict[str, Any]:
    """A sample's v1beta1 status as Tekton stores it in v1 (results renamed, resolved specs dropped)."""
    converted = copy.deepcopy(status)
    for old in ("pipelineResults", "taskResults"):
        if old in converted:
            converted["results"] = converted.pop(old)
    for dropped in ("pipelineSpec", "taskSpec", "provenance", "steps"):
        converted.pop(dropped, None)
    if kind == "TaskRun":
        converted.setdefault("podName", "")
    return converted


def addressed_to(sample: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """A copy of the sample event about the ``live`` run: its namespace, uid, resourceVersion,
    generation, labels and annotations (records included), as Tekton's events controller would send
    it. One resourceVersion is one object: a sample in another state than ``live`` is an event about
    another version of the run, so it carries an older resourceVersion (a late or repeated event)."""
    event = copy.deepcopy(sample)
    _, obj = run_object(event)
    for key in ("namespace", "uid", "resourceVersion", "generation"):
        obj["metadata"][key] = live["metadata"][key]
    for key in ("labels", "annotations"):
        if key in live["metadata"]:
            obj["metadata"][key] = copy.deepcopy(live["metadata"][key])
    if _succeeded(obj) != _succeeded(live):
        obj["metadata"]["resourceVersion"] = "1"
    return event


def _succeeded(obj: dict[str, Any]) -> tuple[Any, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    found = next((c for c in conditions if isinstance(c, dict) and c.get("type") == "Succeeded"), {})
    return found.get("status"), found.get("reason")
