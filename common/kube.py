"""The only module that imports ``kubernetes``: a ``RunClient`` for a real API server.

Connects with the in-cluster service account, else ``KUBECONFIG``. Runs are read and patched as
``tekton.dev/<TEKTON_API_VERSION>`` (default ``v1``, Tekton's storage version, so no conversion
webhook is involved). Every ``ApiException`` and transport error becomes one of ``common.errors``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from common.errors import (
    ConflictError,
    KubernetesUnavailableError,
    PermanentError,
    RunNotFoundError,
    TemporaryError,
    clip,
)
from common.events import RunKind
from common.runclient import RunRef

log = logging.getLogger(__name__)

GROUP = "tekton.dev"
REQUEST_TIMEOUT = (3.0, 10.0)
"""(connect, read) seconds: a slow API server answers 503 to the sender rather than hang."""
LIST_PAGE = 250
"""Runs read per list request; larger namespaces are read page by page (``continue`` tokens)."""
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class KubeRunClient:
    """``RunClient`` backed by the Kubernetes API."""

    def __init__(self, api_client: client.ApiClient, *, version: str = "v1") -> None:
        self._api_client = api_client
        self._objects = client.CustomObjectsApi(api_client)
        self._version = version

    @functools.cached_property
    def _core(self) -> client.CoreV1Api:
        """Built on first use: ``CoreV1Api`` imports ~250 model modules (0.5-0.8 s and 20 MB on a
        2-CPU machine, see BENCHMARKS.md), and a function needs it only for an Event on a failure."""
        return client.CoreV1Api(self._api_client)

    @property
    def server(self) -> str:
        """The API server's URL, for messages."""
        return str(self._api_client.configuration.host)

    def get(self, ref: RunRef) -> dict[str, Any]:
        with _translated(ref):
            return cast(
                dict[str, Any],
                self._objects.get_namespaced_custom_object(
                    GROUP,
                    self._version,
                    ref.namespace,
                    ref.resource,
                    ref.name,
                    _request_timeout=REQUEST_TIMEOUT,
                ),
            )

    def patch(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        with _translated(ref):
            return cast(
                dict[str, Any],
                self._objects.patch_namespaced_custom_object(
                    GROUP,
                    self._version,
                    ref.namespace,
                    ref.resource,
                    ref.name,
                    dict(patch),
                    _request_timeout=REQUEST_TIMEOUT,
                    _content_type="application/merge-patch+json",
                ),
            )

    def patch_status(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        with _translated(ref):
            return cast(
                dict[str, Any],
                self._objects.patch_namespaced_custom_object_status(
                    GROUP,
                    self._version,
                    ref.namespace,
                    ref.resource,
                    ref.name,
                    dict(patch),
                    _request_timeout=REQUEST_TIMEOUT,
                    _content_type="application/merge-patch+json",
                ),
            )

    def record_event(self, ref: RunRef, uid: str, reason: str, message: str) -> None:
        now = datetime.now(UTC)
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
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
        }
        try:
            with _translated(ref):
                self._core.create_namespaced_event(
                    ref.namespace,
                    body,  # type: ignore[arg-type]  # the client accepts plain dicts
                    _request_timeout=REQUEST_TIMEOUT,
                )
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
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            options: dict[str, Any] = {"limit": LIST_PAGE, "_request_timeout": REQUEST_TIMEOUT}
            if label_selector:
                options["label_selector"] = label_selector
            if token:
                options["_continue"] = token
            try:
                with _translated(where):
                    if namespace:
                        answer = self._objects.list_namespaced_custom_object(
                            GROUP, self._version, namespace, plural, **options
                        )
                    else:
                        answer = self._objects.list_cluster_custom_object(
                            GROUP, self._version, plural, **options
                        )
                page = cast(dict[str, Any], answer)
            except RunNotFoundError as e:
                raise PermanentError(
                    "TektonNotInstalled", f"the cluster does not serve {plural}.{GROUP}/{self._version}"
                ) from e
            items += [item for item in page.get("items") or [] if isinstance(item, dict)]
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def list_events(self, ref: RunRef, uid: str) -> list[dict[str, Any]]:
        """The run's Kubernetes Events (core/v1 JSON, camelCase), oldest first.

        Events about an earlier run with the same name (another UID) are left out.
        """
        selector = f"involvedObject.kind={ref.kind},involvedObject.name={ref.name}"
        with _translated(f"events of {ref}"):
            answer = self._core.list_namespaced_event(
                ref.namespace, field_selector=selector, _request_timeout=REQUEST_TIMEOUT
            )
        events = [
            cast(dict[str, Any], self._core.api_client.sanitize_for_serialization(item))
            for item in answer.items or []
        ]
        events = [e for e in events if (e.get("involvedObject") or {}).get("uid") in (None, "", uid)]
        return sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))

    def read_config_map(self, namespace: str, label_selector: str, key: str) -> str | None:
        """``key`` of the newest ConfigMap in ``namespace`` matching ``label_selector``, if any.

        Kustomize suffixes generated ConfigMap names with a hash, so they are found by label.
        """
        with _translated(f"configmaps in namespace {namespace}"):
            answer = self._core.list_namespaced_config_map(
                namespace, label_selector=label_selector, _request_timeout=REQUEST_TIMEOUT
            )
        found = [
            cast(dict[str, Any], self._core.api_client.sanitize_for_serialization(item))
            for item in answer.items or []
        ]
        found = [item for item in found if key in (item.get("data") or {})]
        if not found:
            return None
        newest = max(found, key=lambda item: str((item.get("metadata") or {}).get("creationTimestamp") or ""))
        return str(newest["data"][key])


def connect(context: str | None = None) -> KubeRunClient:
    """A client from the in-cluster service account, else from ``KUBECONFIG``/``~/.kube/config``.

    With ``context``, that kubeconfig context is used and the in-cluster account is not tried.
    """
    configuration = client.Configuration()
    try:
        if context is not None:
            raise ConfigException("a kubeconfig context was asked for")
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException:
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=_kubeconfig_file(), context=context, client_configuration=configuration
            )
        except (ConfigException, OSError) as e:
            raise KubernetesUnavailableError(f"no Kubernetes configuration: {e}") from e
    configuration.retries = 1
    version = os.environ.get("TEKTON_API_VERSION", "v1")
    return KubeRunClient(client.ApiClient(configuration), version=version)


def current_namespace(context: str | None = None) -> str:
    """The namespace ``kubectl`` would use: the kubeconfig context's, else the pod's, else ``default``."""
    if context is None and SERVICE_ACCOUNT_NAMESPACE.is_file() and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip() or "default"
    try:
        contexts, active = config.list_kube_config_contexts(config_file=_kubeconfig_file())  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as e:
        raise KubernetesUnavailableError(f"no Kubernetes configuration: {e}") from e
    chosen = active if context is None else next((c for c in contexts if c.get("name") == context), None)
    if chosen is None:
        raise KubernetesUnavailableError(
            f"no Kubernetes configuration: context {context!r} is not in the kubeconfig"
        )
    return str((chosen.get("context") or {}).get("namespace") or "default")


def _kubeconfig_file() -> str:
    """``$KUBECONFIG`` as it is now (the client library reads it once, at import time)."""
    return os.environ.get("KUBECONFIG") or "~/.kube/config"


@contextmanager
def _translated(ref: RunRef | str) -> Iterator[None]:
    """Turn ``kubernetes`` and ``urllib3`` exceptions into ``common.errors`` types."""
    try:
        yield
    except ApiException as e:
        status = int(e.status or 0)
        detail = clip(f"{status} {e.reason}: {_api_message(e)}", 400)
        if status == 404:
            raise RunNotFoundError(f"{ref} not found") from e
        if status == 409:
            raise ConflictError(f"{ref}: {detail}") from e
        if status in (401, 403):
            # Our own deployment is misconfigured (RBAC, token): redelivery after a fix recovers.
            raise TemporaryError(
                "KubernetesForbidden", f"Kubernetes refused access to {ref}: {detail}"
            ) from e
        if status == 429 or status >= 500 or status == 0:
            raise KubernetesUnavailableError(f"Kubernetes answered {detail} for {ref}") from e
        raise PermanentError("KubernetesRejected", f"Kubernetes rejected the write to {ref}: {detail}") from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise KubernetesUnavailableError(f"Kubernetes API unreachable: {type(e).__name__}") from e


def _api_message(e: ApiException) -> str:
    try:
        body = json.loads(e.body or "")
    except (TypeError, ValueError):
        return ""
    return str(body.get("message", "")) if isinstance(body, dict) else ""
