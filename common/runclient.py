"""How the runtime reads and patches runs, and an in-memory run store with API-server semantics.

``RunClient`` is the seam: ``common.kube.KubeRunClient`` talks to a real API server;
``MemoryRunClient`` keeps runs in a dict for the no-cluster demo and the unit tests. The memory
store copies what the design relies on (DESIGN.md §2): JSON merge patches, ``resourceVersion``
preconditions answered by ``ConflictError``, a new ``resourceVersion`` (unique in the store, as
etcd's revisions are) on every write and none on a refused one, ``generation`` untouched by
metadata writes, and ``status.integrations`` pruned unless the schema keeps it.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from common.errors import ConflictError, RunNotFoundError
from common.events import RunKind


@dataclass(frozen=True)
class RunRef:
    """Which run: kind, namespace and name."""

    kind: RunKind
    namespace: str
    name: str

    @property
    def resource(self) -> str:
        return self.kind.lower() + "s"

    def __str__(self) -> str:
        return f"{self.resource}/{self.namespace}/{self.name}"


@runtime_checkable
class RunClient(Protocol):
    """Reads and patches Tekton runs. Errors: ``RunNotFoundError``, ``ConflictError``,
    ``KubernetesUnavailableError``; permission problems are ``PermanentError``."""

    def get(self, ref: RunRef) -> dict[str, Any]:
        """The run as the API server has it now (tekton.dev/v1)."""
        ...

    def patch(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch to the run; a ``metadata.resourceVersion`` makes it conditional."""
        ...

    def patch_status(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch through the status subresource."""
        ...

    def record_event(self, ref: RunRef, uid: str, reason: str, message: str) -> None:
        """Attach a Warning Kubernetes Event to the run (best effort)."""
        ...


@runtime_checkable
class ClusterAccess(Protocol):
    """What some integrations need besides their run: other runs, a failed step's log, and
    objects to coordinate through (a Lease with a deterministic name is a claim across runs).

    Errors as for ``RunClient``; ``create_object`` raises ``ConflictError`` when the name is taken.
    """

    def list_runs(
        self, kind: RunKind, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Runs of ``kind`` in ``namespace`` (every namespace when ``None``) as tekton.dev JSON."""
        ...

    def pod_log(self, namespace: str, pod: str, container: str, *, tail_lines: int, limit_bytes: int) -> str:
        """The last ``tail_lines`` lines of a container's log (``pods/log`` get), at most
        ``limit_bytes`` bytes."""
        ...

    def get_object(
        self, api_version: str, resource: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """One object as JSON, ``None`` when it does not exist."""
        ...

    def create_object(
        self, api_version: str, resource: str, namespace: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Create an object; ``ConflictError`` when one of that name exists."""
        ...

    def patch_object(
        self, api_version: str, resource: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """JSON merge patch; a ``metadata.resourceVersion`` makes it conditional (``ConflictError``)."""
        ...


def matches_selector(labels: Mapping[str, str], selector: str | None) -> bool:
    """Whether ``labels`` match a Kubernetes equality-based label selector (``a=b,c!=d,e,!f``)."""
    for term in filter(None, (part.strip() for part in (selector or "").split(","))):
        if "!=" in term:
            key, value = (side.strip() for side in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (side.strip() for side in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, ``None`` deletes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class MemoryRunClient:
    """An in-memory ``RunClient`` with the API server's write semantics. Thread-safe.

    ``calls`` counts requests by verb; ``before_request`` lets tests interleave a concurrent
    writer or raise an error at a chosen request. It also implements ``ClusterAccess``: other
    objects are kept in ``objects`` and containers' logs are read from ``pod_logs``.
    """

    def __init__(self, *, keeps_status_integrations: bool = False) -> None:
        self.keeps_status_integrations = keeps_status_integrations
        self.runs: dict[RunRef, dict[str, Any]] = {}
        self.events: list[tuple[RunRef, str, str]] = []
        self.calls: list[tuple[str, RunRef]] = []
        self.before_request: Callable[[str, RunRef], None] | None = None
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        """Other objects by (API version, resource, namespace, name)."""
        self.pod_logs: dict[tuple[str, str, str], str] = {}
        """Container logs by (namespace, pod, container)."""
        self._lock = threading.RLock()
        self._version = 1000

    def add(self, kind: RunKind, obj: Mapping[str, Any]) -> RunRef:
        """Store ``obj`` as a run (as ``kubectl create`` would) and return its reference."""
        with self._lock:
            stored = copy.deepcopy(dict(obj))
            metadata = stored.setdefault("metadata", {})
            metadata.setdefault("uid", str(uuid.uuid4()))
            metadata.setdefault("generation", 1)
            ref = RunRef(kind, metadata["namespace"], metadata["name"])
            self.runs[ref] = stored
            self._bump(stored)
            return ref

    def get(self, ref: RunRef) -> dict[str, Any]:
        with self._lock:
            self._request("get", ref)
            return copy.deepcopy(self._find(ref))

    def patch(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._request("patch", ref)
            current = self._find(ref)
            self._check_precondition(current, patch)
            allowed = {"metadata": patch.get("metadata", {})}
            return self._store(ref, current, merge_patch(current, allowed))

    def patch_status(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._request("patch_status", ref)
            current = self._find(ref)
            self._check_precondition(current, patch)
            status_patch = dict(patch.get("status") or {})
            if not self.keeps_status_integrations:
                status_patch.pop("integrations", None)
            return self._store(ref, current, merge_patch(current, {"status": status_patch}))

    def record_event(self, ref: RunRef, uid: str, reason: str, message: str) -> None:
        with self._lock:
            self._request("record_event", ref)
            self.events.append((ref, reason, message))

    def list_runs(
        self, kind: RunKind, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            self._request("list", RunRef(kind, namespace or "", ""))
            return [
                copy.deepcopy(run)
                for ref, run in self.runs.items()
                if ref.kind == kind
                and namespace in (None, ref.namespace)
                and matches_selector(run["metadata"].get("labels") or {}, label_selector)
            ]

    def pod_log(self, namespace: str, pod: str, container: str, *, tail_lines: int, limit_bytes: int) -> str:
        with self._lock:
            self._request("pod_log", RunRef("TaskRun", namespace, pod))
            try:
                text = self.pod_logs[(namespace, pod, container)]
            except KeyError:
                raise RunNotFoundError(f"pods/{namespace}/{pod} container {container}") from None
        lines = text.splitlines(keepends=True)[-tail_lines:] if tail_lines > 0 else []
        return "".join(lines).encode()[-limit_bytes:].decode(errors="ignore")

    def get_object(
        self, api_version: str, resource: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        with self._lock:
            self._request(f"get {resource}", RunRef("TaskRun", namespace or "", name))
            found = self.objects.get((api_version, resource, namespace or "", name))
            return copy.deepcopy(found) if found is not None else None

    def create_object(
        self, api_version: str, resource: str, namespace: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        with self._lock:
            name = str(body["metadata"]["name"])
            self._request(f"create {resource}", RunRef("TaskRun", namespace, name))
            key = (api_version, resource, namespace, name)
            if key in self.objects:
                raise ConflictError(f"{resource} {namespace}/{name} already exists")
            stored = copy.deepcopy(dict(body))
            stored["metadata"] = {**stored["metadata"], "namespace": namespace, "uid": str(uuid.uuid4())}
            self._bump(stored)
            self.objects[key] = stored
            return copy.deepcopy(stored)

    def patch_object(
        self, api_version: str, resource: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        with self._lock:
            self._request(f"patch {resource}", RunRef("TaskRun", namespace, name))
            key = (api_version, resource, namespace, name)
            current = self.objects.get(key)
            if current is None:
                raise RunNotFoundError(f"{resource} {namespace}/{name} not found")
            self._check_precondition(current, patch)
            updated = merge_patch(current, patch)
            updated["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            if updated != current:
                self._bump(updated)
                self.objects[key] = updated
            return copy.deepcopy(updated)

    def replace_status(self, ref: RunRef, status: Mapping[str, Any]) -> None:
        """What Tekton's controller does: PUT a whole new status, dropping anything else there."""
        with self._lock:
            current = self._find(ref)
            current["status"] = copy.deepcopy(dict(status))
            self._bump(current)

    def replace_annotations(self, ref: RunRef, annotations: Mapping[str, str]) -> None:
        """What Tekton's ``syncMetadata`` does with an older copy: PUT the whole annotation map
        (a new ``resourceVersion``), reverting any value written since that copy was read."""
        with self._lock:
            current = self._find(ref)
            current["metadata"]["annotations"] = dict(annotations)
            self._bump(current)

    def _request(self, verb: str, ref: RunRef) -> None:
        self.calls.append((verb, ref))
        if self.before_request is not None:
            self.before_request(verb, ref)

    def _find(self, ref: RunRef) -> dict[str, Any]:
        try:
            return self.runs[ref]
        except KeyError:
            raise RunNotFoundError(str(ref)) from None

    @staticmethod
    def _check_precondition(current: Mapping[str, Any], patch: Mapping[str, Any]) -> None:
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            raise ConflictError(f"resourceVersion {wanted} is stale")

    def _store(self, ref: RunRef, current: dict[str, Any], updated: dict[str, Any]) -> dict[str, Any]:
        """Keep ``updated``; like the API server, a patch that changes nothing writes nothing (the
        ``resourceVersion`` stays)."""
        updated["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if updated != current:
            self.runs[ref] = updated
            self._bump(updated)
        return copy.deepcopy(updated)

    def _bump(self, obj: dict[str, Any]) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
