"""Turn a Tekton CloudEvent, or a run object read from Kubernetes, into a typed view of the run.

Pure: no I/O. Tekton sends the run converted to v1beta1; Kubernetes reads give v1. Both shapes
map to the same ``Run``. Only what integrations need is lifted out; ``Run.raw`` keeps the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from common.errors import MalformedEventError

RunKind = Literal["PipelineRun", "TaskRun", "CustomRun"]

EVENT_TYPE = re.compile(
    r"^dev\.tekton\.event\.(?P<kind>pipelinerun|taskrun|customrun)"
    r"\.(?P<phase>queued|started|running|unknown|successful|failed)\.v1$"
)
KINDS: Mapping[str, tuple[RunKind, str]] = {
    "pipelinerun": ("PipelineRun", "pipelineRun"),
    "taskrun": ("TaskRun", "taskRun"),
    "customrun": ("CustomRun", "customRun"),
}
PARENT_PIPELINERUN_LABEL = "tekton.dev/pipelineRun"
CANCELLED_REASONS = frozenset({"Cancelled", "PipelineRunCancelled", "TaskRunCancelled", "CustomRunCancelled"})


class RunPhase(StrEnum):
    """Where a run is, as a person would say it. Derived from the ``Succeeded`` condition only."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed-out"

    @property
    def is_done(self) -> bool:
        return self not in (RunPhase.QUEUED, RunPhase.RUNNING)


@dataclass(frozen=True)
class Condition:
    """The run's ``Succeeded`` condition."""

    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str = ""


@dataclass(frozen=True)
class Run:
    """A PipelineRun, TaskRun or CustomRun, whatever API version it was read in."""

    kind: RunKind
    namespace: str
    name: str
    uid: str
    generation: int
    resource_version: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    condition: Condition | None
    start_time: datetime | None
    completion_time: datetime | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def parent_pipelinerun(self) -> str | None:
        """Name of the PipelineRun this TaskRun belongs to, if it is a child."""
        return self.labels.get(PARENT_PIPELINERUN_LABEL) if self.kind != "PipelineRun" else None

    @property
    def phase(self) -> RunPhase:
        condition = self.condition
        if condition is None:
            return RunPhase.QUEUED
        if condition.status == "Unknown":
            return RunPhase.RUNNING
        if condition.status == "True":
            return RunPhase.SUCCEEDED
        if condition.reason in CANCELLED_REASONS or condition.reason.endswith("Cancelled"):
            return RunPhase.CANCELLED
        if condition.reason.endswith("Timeout") or condition.reason.endswith("TimedOut"):
            return RunPhase.TIMED_OUT
        return RunPhase.FAILED

    @property
    def state(self) -> tuple[str, str]:
        """The ``Succeeded`` condition's (status, reason): what a side effect is keyed on."""
        if self.condition is None:
            return ("None", "")
        return (self.condition.status, self.condition.reason)

    @property
    def definition(self) -> str:
        """The Pipeline or Task this run executes, falling back to the run's own name."""
        label = {"PipelineRun": "tekton.dev/pipeline", "TaskRun": "tekton.dev/task"}.get(self.kind)
        if label and self.labels.get(label):
            return self.labels[label]
        spec = self.raw.get("spec") or {}
        ref = spec.get("pipelineRef") or spec.get("taskRef") or spec.get("customRef") or {}
        name = ref.get("name") if isinstance(ref, Mapping) else None
        return name if isinstance(name, str) and name else self.name

    @property
    def duration_seconds(self) -> float | None:
        if self.start_time is None or self.completion_time is None:
            return None
        return max(0.0, (self.completion_time - self.start_time).total_seconds())

    @property
    def results(self) -> Mapping[str, Any]:
        """Results by name: v1 ``results``, v1beta1 ``pipelineResults``/``taskResults``."""
        status = self.raw.get("status") or {}
        for key in ("results", "pipelineResults", "taskResults"):
            items = status.get(key)
            if isinstance(items, list):
                return {
                    str(item["name"]): item.get("value")
                    for item in items
                    if isinstance(item, Mapping) and "name" in item
                }
        return {}

    @property
    def resource(self) -> str:
        """The plural resource name, as in URLs and RBAC rules."""
        return self.kind.lower() + "s"


@dataclass(frozen=True)
class RunEvent:
    """A parsed Tekton CloudEvent."""

    id: str
    type: str
    phase: str
    run: Run
    attributes: Mapping[str, str] = field(default_factory=dict)
    """Every CloudEvent attribute, extensions included (e.g. Knative's ``knativeerrordest``)."""


class CloudEventLike(Protocol):
    """What we need of ``cloudevents.http.CloudEvent``, so tests and tools can pass their own."""

    def get_attributes(self) -> Mapping[str, Any]: ...

    def get_data(self) -> Any: ...


def parse_event(event: CloudEventLike) -> RunEvent:
    """Validate a CloudEvent as a Tekton run event and return its typed view.

    Raises ``MalformedEventError`` with a message that says what is wrong.
    """
    attributes = event.get_attributes()
    event_type = str(attributes.get("type", ""))
    match = EVENT_TYPE.match(event_type)
    if match is None:
        raise MalformedEventError(
            f"not a Tekton run event: type {event_type[:200]!r} is not "
            "dev.tekton.event.<pipelinerun|taskrun|customrun>.<state>.v1"
        )
    kind, body_key = KINDS[match["kind"]]
    data = event.get_data()
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise MalformedEventError(f"event data is not JSON: {e}") from e
    if not isinstance(data, Mapping) or not isinstance(data.get(body_key), Mapping):
        raise MalformedEventError(f"event data must be an object with a {body_key!r} object")
    return RunEvent(
        id=str(attributes.get("id", "")),
        type=event_type,
        phase=match["phase"],
        run=parse_run(kind, data[body_key]),
        attributes={str(key): str(value) for key, value in attributes.items()},
    )


def parse_run(kind: RunKind, obj: Mapping[str, Any]) -> Run:
    """Build a ``Run`` from a v1 or v1beta1 object. Raises ``MalformedEventError``."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        raise MalformedEventError(f"{kind} has no metadata object")
    identity = {key: metadata.get(key) for key in ("namespace", "name", "uid")}
    missing = [key for key, value in identity.items() if not isinstance(value, str) or not value]
    if missing:
        raise MalformedEventError(f"{kind} metadata lacks {', '.join(missing)}")
    status = obj.get("status") or {}
    if not isinstance(status, Mapping):
        raise MalformedEventError(f"{kind} status must be an object")
    return Run(
        kind=kind,
        namespace=str(identity["namespace"]),
        name=str(identity["name"]),
        uid=str(identity["uid"]),
        generation=_integer(metadata.get("generation"), "metadata.generation"),
        resource_version=str(metadata.get("resourceVersion") or ""),
        labels=_string_map(metadata.get("labels"), "metadata.labels"),
        annotations=_string_map(metadata.get("annotations"), "metadata.annotations"),
        condition=_succeeded_condition(status.get("conditions")),
        start_time=_timestamp(status.get("startTime"), "status.startTime"),
        completion_time=_timestamp(status.get("completionTime"), "status.completionTime"),
        raw=obj,
    )


def _integer(value: Any, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEventError(f"{where} must be an integer")
    return value


def _string_map(value: Any, where: str) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise MalformedEventError(f"{where} must map strings to strings")
    return dict(value)


def _timestamp(value: Any, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise MalformedEventError(f"{where} must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise MalformedEventError(f"{where} is not an RFC 3339 time: {value[:40]!r}") from e
    if parsed.tzinfo is None:
        raise MalformedEventError(f"{where} lacks a time zone: {value[:40]!r}")
    return parsed


def _succeeded_condition(conditions: Any) -> Condition | None:
    if conditions is None:
        return None
    if not isinstance(conditions, list):
        raise MalformedEventError("status.conditions must be a list")
    for item in conditions:
        if isinstance(item, Mapping) and item.get("type") == "Succeeded":
            status = item.get("status")
            if status not in ("True", "False", "Unknown"):
                raise MalformedEventError("the Succeeded condition's status must be True, False or Unknown")
            return Condition(
                status=status,
                reason=str(item.get("reason") or ""),
                message=str(item.get("message") or ""),
                last_transition_time=str(item.get("lastTransitionTime") or ""),
            )
    return None
