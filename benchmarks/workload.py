"""The benchmark's runs and events: many distinct runs derived from the samples in ``common/samples``.

Run ``i`` of a sample keeps the sample's content and gets its own name (``<name>-b<i>``), UID
(a UUID5 of the name) and commit (a SHA-1 of the name: each run reports on a commit of its own, so
GitHub's check runs for one commit stay few, as they are), so the served harness
(``benchmarks/served_github.py``) and the load generator derive the same runs without talking to
each other.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from common import samples
from common.runclient import MemoryRunClient, RunRef

RUNNING = "pipelinerun-running"
SUCCESSFUL = "pipelinerun-successful"
IGNORED = "pipelinerun-successful-no-integrations"
"""A run without any integration annotations: every function ignores it without an API call."""

SHA_ANNOTATION = "github.integrations.tekton.dev/sha"
Request = tuple[dict[str, str], bytes]
"""Binary-mode CloudEvent headers and body, as Tekton sends them."""


def run_event(sample: str, index: int, *, namespace: str | None = None) -> dict[str, Any]:
    """The sample event, addressed to benchmark run ``index`` (same index, same run)."""
    event = samples.load(sample)
    _, obj = samples.run_object(event)
    metadata = obj["metadata"]
    name = f"{metadata['name']}-b{index:05d}"
    metadata["name"] = name
    metadata["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tekton-integrations-benchmark/{name}"))
    if namespace is not None:
        metadata["namespace"] = namespace
    annotations = metadata.get("annotations") or {}
    if SHA_ANNOTATION in annotations:
        annotations[SHA_ANNOTATION] = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()
    event["headers"]["ce-id"] = str(uuid.uuid4())
    event["headers"]["ce-subject"] = name
    event["headers"]["ce-source"] = f"/apis///namespaces/{metadata['namespace']}//{name}"
    return event


def request_of(event: Mapping[str, Any]) -> Request:
    return dict(event["headers"]), json.dumps(event["data"]).encode()


def populate(store: MemoryRunClient, count: int, sample: str = RUNNING) -> list[RunRef]:
    """Create runs ``0..count-1`` of ``sample`` in ``store``, as the API server would hold them."""
    refs = []
    for index in range(count):
        kind, obj = samples.run_object(run_event(sample, index))
        refs.append(store.add(kind, obj))
    return refs


def advance(store: MemoryRunClient, ref: RunRef, sample: str, index: int) -> None:
    """Move stored run ``index`` to the state of ``sample`` (what Tekton's controller does)."""
    _, obj = samples.run_object(run_event(sample, index))
    store.replace_status(ref, obj.get("status") or {})
