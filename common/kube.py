"""The only module that imports ``kubernetes``: a ``RunClient`` for a real API server.

Connects with the in-cluster service account, else ``KUBECONFIG`` (or an explicit kubeconfig
path and context, for the CLI). Runs are read and patched as ``tekton.dev/<TEKTON_API_VERSION>``
(default ``v1``, Tekton's storage version, so no conversion webhook is involved). Every
``ApiException`` and transport error becomes one of ``common.errors``.

For the CLI it also honours a kubeconfig user's impersonation (``as``, ``as-groups``,
``as-uid``, ``as-user-extra``; the client library ignores them, so the ``Impersonate-*`` headers
are added here) and reads any object by API version, resource and name (``doctor`` checks the
installation with it). A Secret read that way keeps its keys but never its values.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import KubeConfigMerger

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


@dataclass(frozen=True)
class Impersonation:
    """Who the requests act as (``kubectl --as``): sent as ``Impersonate-*`` headers."""

    user: str | None = None
    groups: tuple[str, ...] = ()
    uid: str | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def headers(self) -> list[tuple[str, str]]:
        if not self.user:
            return []
        found = [("Impersonate-User", self.user)]
        found += [("Impersonate-Group", group) for group in self.groups]
        if self.uid:
            found.append(("Impersonate-Uid", self.uid))
        found += [(f"Impersonate-Extra-{quote(key, safe='')}", value) for key, value in self.extra]
        return found

    def describe(self) -> str:
        groups = f" (groups {', '.join(self.groups)})" if self.groups else ""
        return f"{self.user}{groups}"


class _ImpersonatingApiClient(client.ApiClient):
    """An ``ApiClient`` that adds the ``Impersonate-*`` headers to every request.

    ``default_headers`` cannot do it: it is a dict, and ``Impersonate-Group`` is repeated once per
    group. urllib3's ``HTTPHeaderDict`` sends every value of a repeated header.
    """

    def __init__(self, configuration: client.Configuration, impersonation: Impersonation) -> None:
        super().__init__(configuration)
        self.impersonation = impersonation

    def call_api(  # type: ignore[no-untyped-def]  # the generated client's own signature
        self, method, url, header_params=None, *args, **kwargs
    ):
        headers = urllib3.HTTPHeaderDict(header_params or {})
        for name, value in self.impersonation.headers():
            headers.add(name, value)
        return super().call_api(method, url, headers, *args, **kwargs)


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

    @property
    def impersonating(self) -> Impersonation | None:
        """Who the requests act as, when the kubeconfig or the command line says so."""
        found = getattr(self._api_client, "impersonation", None)
        return found if isinstance(found, Impersonation) and found.user else None

    def get_object(
        self, api_version: str, resource: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """Any object as JSON, ``None`` when it does not exist. A Secret's values are blanked."""
        where = f"{resource}/{name}" + (f" in namespace {namespace}" if namespace else "")
        try:
            with _translated(where):
                found = self._get_json(api_path(api_version, resource, namespace, name))
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
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            query: list[tuple[str, Any]] = [("limit", LIST_PAGE)] + ([("continue", token)] if token else [])
            try:
                with _translated(where):
                    page = self._get_json(api_path(api_version, resource, namespace), query)
            except RunNotFoundError:
                return []
            items += [
                _without_secret_values(resource, item)
                for item in page.get("items") or []
                if isinstance(item, dict)
            ]
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def _get_json(self, path: str, query: list[tuple[str, Any]] | None = None) -> dict[str, Any]:
        """GET ``path`` with the client's authentication; ``ApiException`` for a non-2xx answer."""
        serialized = self._api_client.param_serialize(
            method="GET",
            resource_path=path,
            query_params=query or [],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response: Any = self._api_client.call_api(*serialized, _request_timeout=REQUEST_TIMEOUT)
        response.read()
        if not 200 <= int(response.status) < 300:
            raise ApiException(http_resp=response)
        found = json.loads(response.data or b"{}")
        return found if isinstance(found, dict) else {}

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
        # A plain dict POSTed through the ApiClient, like the run reads: the generated ``CoreV1Api``
        # (about 250 model modules, 0.5 s and 20 MB, see BENCHMARKS.md) is not loaded for it.
        request = self._api_client.param_serialize(
            method="POST",
            resource_path=api_path("v1", "events", ref.namespace),
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            with _translated(ref):
                response: Any = self._api_client.call_api(*request, _request_timeout=REQUEST_TIMEOUT)
                response.read()
                if not 200 <= int(response.status) < 300:
                    raise ApiException(http_resp=response)
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
    configuration = client.Configuration()
    acting: Impersonation | None = None
    try:
        if context is not None or kubeconfig is not None:
            raise ConfigException("a kubeconfig was asked for")
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException:
        path = _kubeconfig_file(kubeconfig)
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path, context=context, client_configuration=configuration
            )
            acting = _kubeconfig_impersonation(path, context)
        except (ConfigException, OSError) as e:
            raise KubernetesUnavailableError(f"no Kubernetes configuration: {e}") from e
    if impersonate is not None and impersonate.user:
        acting = impersonate
    configuration.retries = 1
    version = os.environ.get("TEKTON_API_VERSION", "v1")
    api = _ImpersonatingApiClient(configuration, acting) if acting else client.ApiClient(configuration)
    return KubeRunClient(api, version=version)


def current_namespace(context: str | None = None, *, kubeconfig: str | None = None) -> str:
    """The namespace ``kubectl`` would use: the kubeconfig context's, else the pod's, else ``default``."""
    if (
        context is None
        and kubeconfig is None
        and SERVICE_ACCOUNT_NAMESPACE.is_file()
        and os.environ.get("KUBERNETES_SERVICE_HOST")
    ):
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip() or "default"
    chosen = _context(_kubeconfig_file(kubeconfig), context)
    return str((chosen.get("context") or {}).get("namespace") or "default")


def _context(path: str, context: str | None) -> dict[str, Any]:
    try:
        contexts, active = config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as e:
        raise KubernetesUnavailableError(f"no Kubernetes configuration: {e}") from e
    chosen = active if context is None else next((c for c in contexts if c.get("name") == context), None)
    if chosen is None:
        raise KubernetesUnavailableError(
            f"no Kubernetes configuration: context {context!r} is not in the kubeconfig"
        )
    return cast(dict[str, Any], chosen)


def _kubeconfig_impersonation(path: str, context: str | None) -> Impersonation | None:
    """The ``as``, ``as-groups``, ``as-uid`` and ``as-user-extra`` of the context's user, if any."""
    user_name = (_context(path, context).get("context") or {}).get("user")
    merged = KubeConfigMerger(os.path.expanduser(path)).config  # type: ignore[no-untyped-call]
    users = [getattr(u, "value", u) for u in merged.value.get("users") or []]
    found = next((u.get("user") or {} for u in users if u.get("name") == user_name), {})
    user: dict[str, Any] = dict(getattr(found, "value", found))
    name = user.get("as")
    if not name:
        if user.get("as-groups"):
            raise KubernetesUnavailableError(
                f"the kubeconfig user {user_name!r} sets as-groups without as: "
                "Kubernetes impersonates groups only together with a user"
            )
        return None
    extra = user.get("as-user-extra") or {}
    return Impersonation(
        user=str(name),
        groups=tuple(str(g) for g in user.get("as-groups") or ()),
        uid=str(user["as-uid"]) if user.get("as-uid") else None,
        extra=tuple(
            (str(key), str(value))
            for key, values in extra.items()
            for value in (values if isinstance(values, list) else [values])
        ),
    )


def _kubeconfig_file(explicit: str | None = None) -> str:
    """``--kubeconfig``, else ``$KUBECONFIG`` as it is now (the client library reads it once, at
    import time), else ``~/.kube/config``."""
    return explicit or os.environ.get("KUBECONFIG") or "~/.kube/config"


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
