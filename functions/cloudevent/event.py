"""The CloudEvent sent about a run: attributes derived from the run's state, data the RunNotification.

Pure. Every attribute depends only on the run's state and the ``id`` it is given (``ctx.key()``,
deterministic per run UID, integration and state), so a retried delivery is the same event, which
is how CloudEvents consumers recognise duplicates. Attributes: docs/cloudevent.md.
"""

from __future__ import annotations

from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from common import Run
from common.notification import run_notification

TYPE_PREFIX = "dev.tekton.integrations"
TYPE_VERSION = "v1alpha1"


def event_type(run: Run) -> str:
    """``dev.tekton.integrations.<pipelinerun|taskrun|customrun>.<phase>.v1alpha1``."""
    return f"{TYPE_PREFIX}.{run.kind.lower()}.{run.phase.value}.{TYPE_VERSION}"


def run_event(run: Run, run_url: str | None, event_id: str) -> CloudEvent:
    attributes: dict[str, str] = {
        "id": event_id,
        "type": event_type(run),
        "source": f"/apis/tekton.dev/v1/namespaces/{run.namespace}/{run.resource}/{run.name}",
        "subject": run.name,
        "datacontenttype": "application/json",
    }
    happened = run.condition.last_transition_time if run.condition else ""
    happened = happened or str((run.raw.get("metadata") or {}).get("creationTimestamp") or "")
    if happened:
        attributes["time"] = happened
    return CloudEvent(attributes, run_notification(run, run_url))


def binary_request(run: Run, run_url: str | None, event_id: str) -> tuple[dict[str, str], bytes]:
    """Headers (``ce-*`` and Content-Type) and body of the event in binary content mode."""
    headers, body = to_binary(run_event(run, run_url, event_id))
    return dict(headers), body
