"""An in-memory cluster for the CLI: ``MemoryRunClient`` plus the listing ``common.cli`` needs.

Implements ``common.cli.session.Cluster`` with the API server's behaviour that matters here:
namespaced and cluster-wide lists, equality label selectors, Events recorded on a run (those
the runtime writes through ``record_event`` and any a test adds), ConfigMaps found by label, and
any other object by API version, resource, namespace and name (``objects``, for ``doctor``;
Secrets come back with their keys and blank values, as ``common.kube`` returns them).
``before_request`` (from ``MemoryRunClient``) sees ``list`` requests too, so a test can answer
one with an error (403, unreachable); ``get_object``/``list_objects`` requests carry the resource
as the ref's name (``objects/secrets``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from common import samples
from common.events import RunKind
from common.runclient import MemoryRunClient, RunRef

COMPONENT = "tekton-integrations"


class FakeCluster(MemoryRunClient):
    def __init__(self) -> None:
        super().__init__()
        self.config_maps: list[dict[str, Any]] = []
        self.other_events: list[tuple[RunRef, dict[str, Any]]] = []
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        """(apiVersion, resource, namespace or "", name) -> object."""

    def put(self, api_version: str, resource: str, obj: dict[str, Any]) -> None:
        """Store ``obj`` (its namespace and name from its metadata)."""
        meta = obj["metadata"]
        self.objects[(api_version, resource, meta.get("namespace") or "", meta["name"])] = copy.deepcopy(obj)

    def remove(self, api_version: str, resource: str, namespace: str | None, name: str) -> None:
        del self.objects[(api_version, resource, namespace or "", name)]

    def get_object(
        self, api_version: str, resource: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        with self._lock:
            self._request("get_object", RunRef("PipelineRun", namespace or "", f"objects/{resource}"))
            found = self.objects.get((api_version, resource, namespace or "", name))
            return _blanked(resource, found) if found is not None else None

    def list_objects(
        self, api_version: str, resource: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            self._request("list_objects", RunRef("PipelineRun", namespace or "", f"objects/{resource}"))
            listed = [
                _blanked(resource, obj)
                for (version, kind, ns, _), obj in self.objects.items()
                if (version, kind) == (api_version, resource) and namespace in (None, ns)
            ]
            if (api_version, resource) == ("v1", "namespaces") and not listed:
                names = sorted({ref.namespace for ref in self.runs})
                listed = [{"metadata": {"name": name}} for name in names]
            return listed

    def list_runs(
        self, kind: RunKind, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            self._request("list", RunRef(kind, namespace or "", ""))
            wanted = _selector(label_selector)
            return [
                copy.deepcopy(obj)
                for ref, obj in self.runs.items()
                if ref.kind == kind
                and namespace in (None, ref.namespace)
                and all((obj["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
            ]

    def list_events(self, ref: RunRef, uid: str) -> list[dict[str, Any]]:
        with self._lock:
            self._request("list_events", ref)
            recorded = [
                {
                    "reason": reason,
                    "message": message,
                    "type": "Warning",
                    "count": 1,
                    "source": {"component": COMPONENT},
                    "lastTimestamp": "2026-03-14T09:29:00Z",
                    "involvedObject": {"kind": ref.kind, "name": ref.name, "uid": uid},
                }
                for event_ref, reason, message in self.events
                if event_ref == ref
            ]
            return recorded + [copy.deepcopy(e) for r, e in self.other_events if r == ref]

    def read_config_map(self, namespace: str, label_selector: str, key: str) -> str | None:
        with self._lock:
            self._request("read_config_map", RunRef("PipelineRun", namespace, ""))
            wanted = _selector(label_selector)
            for config_map in self.config_maps:
                metadata = config_map["metadata"]
                labels = metadata.get("labels") or {}
                if metadata["namespace"] == namespace and all(labels.get(k) == v for k, v in wanted.items()):
                    data = config_map.get("data") or {}
                    if key in data:
                        return str(data[key])
            return None

    def add_sample(
        self,
        name: str,
        *,
        run_name: str | None = None,
        namespace: str = "ci",
        annotations: Mapping[str, str | None] | None = None,
        v1: bool = True,
    ) -> RunRef:
        """Store a sample's run as the API server holds it: a fresh UID, v1 ``results``."""
        kind, obj = samples.run_object(samples.load(name))
        metadata = obj["metadata"]
        metadata.pop("uid", None)
        metadata["namespace"] = namespace
        if run_name:
            metadata["name"] = run_name
        notes = metadata.setdefault("annotations", {})
        for key, value in (annotations or {}).items():
            if value is None:
                notes.pop(key, None)
            else:
                notes[key] = value
        if v1:
            obj = {"apiVersion": "tekton.dev/v1", "kind": kind, **obj}
            status = obj.get("status") or {}
            for old in ("pipelineResults", "taskResults"):
                if old in status:
                    status["results"] = status.pop(old)
        return self.add(kind, obj)

    def advance(self, ref: RunRef, sample: str) -> None:
        """Move the run to the sample's state, as Tekton's controller does (whole status)."""
        _, obj = samples.run_object(samples.load(sample))
        status = obj.get("status") or {}
        for old in ("pipelineResults", "taskResults"):
            if old in status:
                status["results"] = status.pop(old)
        self.replace_status(ref, status)

    def uid(self, ref: RunRef) -> str:
        return str(self.runs[ref]["metadata"]["uid"])


def _blanked(resource: str, obj: dict[str, Any]) -> dict[str, Any]:
    found = copy.deepcopy(obj)
    if resource == "secrets":
        found["data"] = dict.fromkeys(
            [*(found.pop("data", None) or {}), *(found.pop("stringData", None) or {})], ""
        )
    return found


def _selector(text: str | None) -> dict[str, str]:
    pairs = [part.split("=", 1) for part in (text or "").split(",") if part]
    return {k.strip(): v.strip() for k, v in pairs}
