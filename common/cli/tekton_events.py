"""The CloudEvent Tekton's events controller would send for a run (DESIGN.md §1, tekton/README.md §1-2).

Pure: no I/O. Builds binary-mode headers and the JSON body ``{"pipelineRun": {...}}`` from a run
object: a v1 object read from the cluster is converted to the v1beta1 shape Tekton sends (no
``apiVersion``/``kind``, ``status.results`` as ``pipelineResults``/``taskResults``, v1-only spec
fields renamed); the event type follows the ``Succeeded`` condition exactly as Tekton chooses it.
Also reads an event back from a file: a sample (``{"headers", "data"}``), a bare body, or a run
object as ``kubectl get -o yaml`` prints it.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.events import KINDS, RunKind

BODY_KEYS: Mapping[RunKind, str] = dict(KINDS.values())
_KIND_BY_BODY_KEY: Mapping[str, RunKind] = {key: kind for kind, key in KINDS.values()}
_RESULTS = {"PipelineRun": "pipelineResults", "TaskRun": "taskResults"}


@dataclass(frozen=True)
class TektonEvent:
    """A binary-mode CloudEvent: ``ce-*`` headers and the JSON body. Usable as ``CloudEventLike``."""

    headers: Mapping[str, str]
    data: Mapping[str, Any]

    @property
    def type(self) -> str:
        return self.headers["ce-type"]

    @property
    def kind(self) -> RunKind:
        ((key, _),) = self.data.items()
        return _KIND_BY_BODY_KEY[key]

    @property
    def run_object(self) -> Mapping[str, Any]:
        ((_, obj),) = self.data.items()
        return obj  # type: ignore[no-any-return]

    def get_attributes(self) -> Mapping[str, Any]:
        return {
            key.removeprefix("ce-"): value for key, value in self.headers.items() if key.startswith("ce-")
        }

    def get_data(self) -> Any:
        return self.data

    def as_document(self) -> dict[str, Any]:
        """``{"headers": ..., "data": ...}``, the samples' format, which ``send --file`` reads back."""
        return {"headers": dict(self.headers), "data": copy.deepcopy(dict(self.data))}


def event_type(kind: RunKind, obj: Mapping[str, Any]) -> str:
    """``dev.tekton.event.<kind>.<state>.v1`` from the object's ``Succeeded`` condition."""
    condition = next(
        (
            c
            for c in (obj.get("status") or {}).get("conditions") or []
            if isinstance(c, Mapping) and c.get("type") == "Succeeded"
        ),
        None,
    )
    status = condition.get("status") if condition else None
    reason = str(condition.get("reason") or "") if condition else ""
    if kind == "CustomRun":
        state = {None: "started", "True": "successful", "False": "failed"}.get(status, "running")
    elif status is None:
        state = "queued"
    elif status == "True":
        state = "successful"
    elif status == "False":
        state = "failed"
    else:
        state = {"Started": "started", "Running": "running"}.get(reason, "unknown")
    return f"dev.tekton.event.{kind.lower()}.{state}.v1"


def to_v1beta1(kind: RunKind, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object as the events controller puts it in the body: v1beta1, no apiVersion/kind."""
    converted = copy.deepcopy(dict(obj))
    api_version = str(converted.pop("apiVersion", ""))
    converted.pop("kind", None)
    if not api_version.endswith("/v1"):
        return converted  # already v1beta1 (a Tekton event's body, or a v1beta1 read)
    spec = converted.get("spec")
    if isinstance(spec, dict):
        _spec_to_v1beta1(kind, spec)
    status = converted.get("status")
    if isinstance(status, dict) and kind in _RESULTS and "results" in status:
        status[_RESULTS[kind]] = status.pop("results")
    return converted


def _spec_to_v1beta1(kind: RunKind, spec: dict[str, Any]) -> None:
    if kind == "PipelineRun":
        template = spec.pop("taskRunTemplate", None)
        if isinstance(template, Mapping):
            for key in ("serviceAccountName", "podTemplate"):
                if key in template:
                    spec[key] = template[key]
        for task_spec in spec.get("taskRunSpecs") or []:
            if isinstance(task_spec, dict):
                _rename(task_spec, "serviceAccountName", "taskServiceAccountName")
                _rename(task_spec, "podTemplate", "taskPodTemplate")
    elif kind == "TaskRun":
        _rename(spec, "stepSpecs", "stepOverrides")
        _rename(spec, "sidecarSpecs", "sidecarOverrides")


def _rename(obj: dict[str, Any], old: str, new: str) -> None:
    if old in obj:
        obj[new] = obj.pop(old)


def event_for_run(
    kind: RunKind, obj: Mapping[str, Any], now: datetime, event_id: str | None = None
) -> TektonEvent:
    """The event Tekton would send now for ``obj`` (a v1 or v1beta1 run object)."""
    body = to_v1beta1(kind, obj)
    metadata = body.get("metadata") or {}
    name, namespace = str(metadata.get("name", "")), str(metadata.get("namespace", ""))
    headers = {
        "ce-specversion": "1.0",
        "ce-type": event_type(kind, body),
        "ce-source": f"/apis///namespaces/{namespace}//{name}",  # what Tekton really sends (README §2)
        "ce-subject": name,
        "ce-id": event_id or str(uuid.uuid4()),
        "ce-time": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "content-type": "application/json",
    }
    return TektonEvent(headers, {BODY_KEYS[kind]: body})


def event_from_document(document: Any, now: datetime) -> TektonEvent:
    """An event from a file's contents: a sample event, a bare event body, or a run object.

    The type is recomputed from the run's condition and the id is fresh, as on a real resend.
    Raises ``ValueError`` saying what was expected.
    """
    if not isinstance(document, Mapping):
        raise ValueError("expected a JSON/YAML object")
    if isinstance(document.get("data"), Mapping) and isinstance(document.get("headers"), Mapping):
        document = document["data"]
    bodies = [key for key in _KIND_BY_BODY_KEY if isinstance(document.get(key), Mapping)]
    if len(bodies) == 1 and len(document) == 1:
        return event_for_run(_KIND_BY_BODY_KEY[bodies[0]], document[bodies[0]], now)
    kind = document.get("kind")
    if kind in BODY_KEYS and isinstance(document.get("metadata"), Mapping):
        return event_for_run(kind, document, now)
    raise ValueError(
        "expected a Tekton event ({headers, data}), an event body ({pipelineRun: ...} or "
        "{taskRun: ...}), or a PipelineRun/TaskRun object with apiVersion and kind"
    )
