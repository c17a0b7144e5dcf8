"""The ``RunNotification`` payload that webhook bodies and CloudEvent data carry.

Pure. The schema is documented in docs/webhook.md ("Payload"); its versioning policy there too:
fields are only added within ``integrations.tekton.dev/v1alpha1``; removing, renaming or changing
the meaning of a field bumps ``apiVersion``. The payload depends only on the run's state, never
on the time it is sent, so a redelivery carries the same bytes. The id a delivery carries is
``Context.key()`` (``common.integration``), deterministic per (run UID, integration, state).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from common.events import Run

API_VERSION = "integrations.tekton.dev/v1alpha1"
KIND = "RunNotification"


def run_notification(run: Run, run_url: str | None) -> dict[str, Any]:
    """The payload for ``run`` in its current state; ``run_url`` is its Dashboard link, if any."""
    condition = run.condition
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "run": {
            "kind": run.kind,
            "namespace": run.namespace,
            "name": run.name,
            "uid": run.uid,
            "definition": run.definition,
        },
        "state": {
            "phase": run.phase.value,
            "status": condition.status if condition else None,
            "reason": condition.reason if condition else "",
            "message": condition.message if condition else "",
            "lastTransitionTime": (condition.last_transition_time or None) if condition else None,
        },
        "timing": {
            "startTime": _timestamp(run.start_time),
            "completionTime": _timestamp(run.completion_time),
            "durationSeconds": run.duration_seconds,
        },
        "results": dict(run.results),
        "url": run_url,
    }


def encode(payload: dict[str, Any]) -> bytes:
    """Compact, key-ordered JSON: the exact bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


def _timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
