"""The runtime's Kubernetes client: ``KubeRunClient``, a ``RunClient`` and ``ClusterAccess``.

Connects with the in-cluster service account, else ``KUBECONFIG`` (or an explicit kubeconfig
path and context, for the CLI), as ``common.kube_config`` reads them; requests go through
``common.kube_api`` (urllib3, connection pools per thread). The generated ``kubernetes`` client is
not used: every request is a path and a JSON body. Runs are read and patched as
``tekton.dev/<TEKTON_API_VERSION>`` (default ``v1``, Tekton's storage version, so no conversion
webhook is involved). Every non-2xx answer and transport error becomes one of ``common.errors``.

For the CLI it also honours a kubeconfig user's impersonation (``as``, ``as-groups``, ``as-uid``,
``as-user-extra``) and reads any object by API version, resource and name (``doctor`` checks the
installation with it). A Secret read that way keeps its keys but never its values.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

import urllib3

from common import kube_config
from common.errors import (
    ConflictError,
    KubernetesUnavailableError,
    PermanentError,
    RunNotFoundError,
    TemporaryError,
    clip,
)
from common.events import RunKind
from common.kube_api import ApiError, ApiServer
from common.kube_config import Impersonation
from common.runclient import RunRef

__all__ = ["GROUP", "LIST_PAGE", "Impersonation", "KubeRunClient", "api_path", "connect", "current_namespace"]

log = logging.getLogger(__name__)

GROUP = "tekton.dev"
LIST_PAGE = 250
"""Objects read per list request; larger lists are read page by page (``continue`` tokens)."""
LOG_READ_LIMIT = 1 << 20
"""Bytes of a log tail read at most: the API server's ``limitBytes`` keeps the *first* bytes of
the tail, so more is read and the last ``limit_bytes`` are kept."""
MERGE_PATCH = "application/merge-patch+json"


class LibraryClient(Protocol):
    """A ``kubernetes.client.ApiClient``: its ``configuration`` and ``default_headers`` are used."""

    configuration: Any
    default_headers: dict[str, str]


def api_path(api_version: str, resource: str, namespace: str | None = None, name: str | None = None) -> str:
    """``/api/v1/namespaces/ns/secrets/x``, ``/apis/serving.knative.dev/v1/services``..."""
    path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespace:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{resource}"
    if name:
        path += f"/{quote(name, safe='')}"
    return path


class KubeRunClient:
    """``RunClient`` and ``ClusterAccess`` backed by the Kubernetes API.

    ``api`` is an ``ApiServer``, or a ``kubernetes`` ``ApiClient`` whose login (any the library
    supports) and default headers are used as they are.
    """

    def __init__(self, api: ApiServer | LibraryClient, *, version: str = "v1") -> None:
        if not isinstance(api, ApiServer):
            api = ApiServer(kube_config.from_library(api.configuration, headers=api.default_headers))
        self._api = api
        self._version = version

    @property
    def server(self) -> str:
        """The API server's URL, for messages."""
        return self._api.login.server

    @property
    def impersonating(self) -> Impersonation | None:
        """Who the requests act as, when the kubeconfig or the command line says so."""
        found = self._api.login.impersonation
        return found if found is not None and found.user else None

    # -- runs ---------------------------------------------------------------------------------

    def get(self, ref: RunRef) -> dict[str, Any]:
        with _translated(ref):
            return _json(self._api.request("GET", self._run_path(ref)))

    def patch(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        with _translated(ref):
            return _json(
                self._api.request("PATCH", self._run_path(ref), body=patch, content_type=MERGE_PATCH)
            )

    def patch_status(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        with _translated(ref):
            return _json(
                self._api.request(
                    "PATCH", self._run_path(ref) + "/status", body=patch, content_type=MERGE_PATCH
                )
            )

    def record_event(self, ref: RunRef, uid: str, reason: str, message: str) -> None:
        """POST a core/v1 Warning Event about the run; a refusal is logged, never raised."""
        now = datetime.now(UTC).isoformat()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{self._version}",
                "kind": ref.kind,
                "name": ref.name,
                "namespace": ref.namespace,
                "uid": uid,
            },
            "reason": reason,
            "message": clip(message),
            "type": "Warning",
            "source": {"component": "tekton-integrations"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            with _translated(ref):
                self._api.request("POST", api_path("v1", "events", ref.namespace), body=body)
        except (TemporaryError, PermanentError, RunNotFoundError, ConflictError) as e:
            log.warning("could not record Kubernetes Event %s on %s: %s", reason, ref, e)

    def list_runs(
        self, kind: RunKind, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Every run of ``kind`` in ``namespace`` (all namespaces when ``None``), page by page.

        A 404 means the cluster does not serve ``tekton.dev/<version>`` runs: ``PermanentError``
        ``TektonNotInstalled``.
        """
        plural = kind.lower() + "s"
        where = f"{plural}.{GROUP}/{self._version} in " + (
            f"namespace {namespace}" if namespace else "all namespaces"
        )
        query = [("labelSelector", label_selector)] if label_selector else []
        try:
            return list(self._list(api_path(f"{GROUP}/{self._version}", plural, namespace), query, where))
        except RunNotFoundError as e:
            raise PermanentError(
                "TektonNotInstalled", f"the cluster does not serve {plural}.{GROUP}/{self._version}"
            ) from e

    # -- other objects ------------------------------------------------------------------------

    def pod_log(self, namespace: str, pod: str, container: str, *, tail_lines: int, limit_bytes: int) -> str:
        """The last ``tail_lines`` lines of a container's log, cut to its last ``limit_bytes`` bytes."""
        query: list[tuple[str, str | int]] = [
            ("container", container),
            ("tailLines", tail_lines),
            ("limitBytes", max(limit_bytes, LOG_READ_LIMIT)),
        ]
        with _translated(f"the log of container {container} of pod {namespace}/{pod}"):
            text = self._api.request(
                "GET", api_path("v1", "pods", namespace, pod) + "/log", query=query, accept="text/plain, */*"
            )
        return text[-limit_bytes:].decode(errors="ignore") if limit_bytes > 0 else ""

    def get_object(
        self, api_version: str, resource: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """Any object as JSON, ``None`` when it does not exist. A Secret's values are blanked."""
        where = f"{resource}/{name}" + (f" in namespace {namespace}" if namespace else "")
        try:
            with _translated(where):
                found = _json(self._api.request("GET", api_path(api_version, resource, namespace, name)))
        except RunNotFoundError:
            return None
        return _without_secret_values(resource, found)

    def list_objects(
        self, api_version: str, resource: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Every object of a resource in ``namespace`` (every namespace when ``None``), page by page.

        A resource the cluster does not serve (its CRD is not installed) lists as empty.
        """
        where = f"{resource}.{api_version} in " + (
            f"namespace {namespace}" if namespace else "all namespaces"
        )
        try:
            found = list(self._list(api_path(api_version, resource, namespace), [], where))
        except RunNotFoundError:
            return []
        return [_without_secret_values(resource, item) for item in found]

    def create_object(
        self, api_version: str, resource: str, namespace: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Create an object in ``namespace``; ``ConflictError`` when one of that name exists."""
        name = (body.get("metadata") or {}).get("name")
        with _translated(f"{resource}/{name} in namespace {namespace}"):
            return _json(self._api.request("POST", api_path(api_version, resource, namespace), body=body))

    def patch_object(
        self, api_version: str, resource: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """JSON merge patch; a ``metadata.resourceVersion`` in it makes it conditional (``ConflictError``)."""
        with _translated(f"{resource}/{name} in namespace {namespace}"):
            return _json(
                self._api.request(
                    "PATCH",
                    api_path(api_version, resource, namespace, name),
                    body=patch,
                    content_type=MERGE_PATCH,
                )
            )

    # -- for the CLI --------------------------------------------------------------------------

    def list_events(self, ref: RunRef, uid: str) -> list[dict[str, Any]]:
        """The run's Kubernetes Events (core/v1 JSON), oldest first.

        Events about an earlier run with the same name (another UID) are left out.
        """
        selector = f"involvedObject.kind={ref.kind},involvedObject.name={ref.name}"
        events = self._list(
            api_path("v1", "events", ref.namespace), [("fieldSelector", selector)], f"events of {ref}"
        )
        kept = [e for e in events if (e.get("involvedObject") or {}).get("uid") in (None, "", uid)]
        return sorted(kept, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))

    def read_config_map(self, namespace: str, label_selector: str, key: str) -> str | None:
        """``key`` of the newest ConfigMap in ``namespace`` matching ``label_selector``, if any.

        Kustomize suffixes generated ConfigMap names with a hash, so they are found by label.
        """
        found = [
            item
            for item in self._list(
                api_path("v1", "configmaps", namespace),
                [("labelSelector", label_selector)],
                f"configmaps in namespace {namespace}",
            )
            if key in (item.get("data") or {})
        ]
        if not found:
            return None
        newest = max(found, key=lambda item: str((item.get("metadata") or {}).get("creationTimestamp") or ""))
        return str(newest["data"][key])

    def _run_path(self, ref: RunRef) -> str:
        return api_path(f"{GROUP}/{self._version}", ref.resource, ref.namespace, ref.name)

    def _list(self, path: str, query: Sequence[tuple[str, str]], where: str) -> Iterator[dict[str, Any]]:
        """Every item of a list, page by page (``limit`` and ``continue``)."""
        token: str | None = None
        while True:
            options: list[tuple[str, str | int]] = [*query, ("limit", LIST_PAGE)]
            if token:
                options.append(("continue", token))
            with _translated(where):
                page = _json(self._api.request("GET", path, query=options))
            yield from (item for item in page.get("items") or [] if isinstance(item, dict))
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return


def connect(
    context: str | None = None,
    *,
    kubeconfig: str | None = None,
    impersonate: Impersonation | None = None,
) -> KubeRunClient:
    """A client from the in-cluster service account, else from ``KUBECONFIG``/``~/.kube/config``.

    With ``context`` or ``kubeconfig``, that kubeconfig (and context) is used and the in-cluster
    account is not tried. The kubeconfig user's impersonation is honoured; ``impersonate`` (the
    CLI's ``--as``) replaces it.
    """
    login = kube_config.in_cluster() if context is None and kubeconfig is None else None
    if login is None:
        login = kube_config.KubeConfig.load(kube_config.kubeconfig_paths(kubeconfig)).login(context)
    if impersonate is not None and impersonate.user:
        login = replace(login, impersonation=impersonate)
    return KubeRunClient(ApiServer(login), version=os.environ.get("TEKTON_API_VERSION", "v1"))


def current_namespace(context: str | None = None, *, kubeconfig: str | None = None) -> str:
    """The namespace ``kubectl`` would use: the kubeconfig context's, else the pod's, else ``default``."""
    if context is None and kubeconfig is None and (found := kube_config.in_cluster_namespace()):
        return found
    return kube_config.KubeConfig.load(kube_config.kubeconfig_paths(kubeconfig)).namespace(context)


def _json(data: bytes) -> dict[str, Any]:
    try:
        found = json.loads(data or b"{}")
    except ValueError as e:
        raise KubernetesUnavailableError("Kubernetes answered with something that is not JSON") from e
    return found if isinstance(found, dict) else {}


def _without_secret_values(resource: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A Secret with its keys kept and every value blanked: no credential leaves this module."""
    if resource != "secrets":
        return obj
    kept = {k: v for k, v in obj.items() if k not in ("data", "stringData")}
    keys = [*(obj.get("data") or {}), *(obj.get("stringData") or {})]
    kept["data"] = dict.fromkeys(keys, "")
    metadata = dict(kept.get("metadata") or {})
    notes = dict(metadata.get("annotations") or {})
    notes.pop("kubectl.kubernetes.io/last-applied-configuration", None)  # may quote the values
    metadata["annotations"] = notes
    kept["metadata"] = metadata
    return kept


@contextmanager
def _translated(ref: RunRef | str) -> Iterator[None]:
    """Turn the API server's answers and transport errors into ``common.errors`` types."""
    try:
        yield
    except ApiError as e:
        detail = clip(f"{e.status} {e.reason}: {e.message}", 400)
        if e.status == 404:
            raise RunNotFoundError(f"{ref} not found") from e
        if e.status == 409:
            raise ConflictError(f"{ref}: {detail}") from e
        if e.status in (401, 403):
            # Our own deployment is misconfigured (RBAC, token): redelivery after a fix recovers.
            raise TemporaryError(
                "KubernetesForbidden", f"Kubernetes refused access to {ref}: {detail}"
            ) from e
        if e.status == 429 or e.status >= 500:
            raise KubernetesUnavailableError(f"Kubernetes answered {detail} for {ref}") from e
        raise PermanentError("KubernetesRejected", f"Kubernetes rejected the write to {ref}: {detail}") from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise KubernetesUnavailableError(f"Kubernetes API unreachable: {type(e).__name__}") from e
