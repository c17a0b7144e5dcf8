"""The only module that imports ``kubernetes``: a ``RunClient`` for a real API server.

Connects with the in-cluster service account, else ``KUBECONFIG``. Runs are read and patched as
``tekton.dev/<TEKTON_API_VERSION>`` (default ``v1``, Tekton's storage version, so no conversion
webhook is involved). Every ``ApiException`` and transport error becomes one of ``common.errors``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
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
from common.runclient import RunRef

log = logging.getLogger(__name__)

GROUP = "tekton.dev"
REQUEST_TIMEOUT = (3.0, 10.0)
"""(connect, read) seconds: a slow API server answers 503 to the sender rather than hang."""


class KubeRunClient:
    """``RunClient`` backed by the Kubernetes API."""

    def __init__(self, api_client: client.ApiClient, *, version: str = "v1") -> None:
        self._objects = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._version = version

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


def connect() -> KubeRunClient:
    """A client from the in-cluster service account, else from ``KUBECONFIG``/``~/.kube/config``."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException:
        try:
            config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except (ConfigException, OSError) as e:
            raise KubernetesUnavailableError(f"no Kubernetes configuration: {e}") from e
    configuration.retries = 1
    version = os.environ.get("TEKTON_API_VERSION", "v1")
    return KubeRunClient(client.ApiClient(configuration), version=version)


@contextmanager
def _translated(ref: RunRef) -> Iterator[None]:
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
