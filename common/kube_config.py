"""Where the Kubernetes API server is and how to log in to it: ``Login``.

Owns reading credentials without the ``kubernetes`` library in the common cases:

- the pod's service account (``KUBERNETES_SERVICE_HOST``/``PORT``, its CA, and its token, read
  again whenever the kubelet rotates the file);
- kubeconfig files: ``KUBECONFIG`` may name several, merged as kubectl merges them (the first file
  to define a cluster, user or context by name wins, and the first to set ``current-context``);
  relative paths are relative to the file that holds them. From the context (the current one or
  a chosen one): the cluster's ``server``, ``certificate-authority(-data)``,
  ``insecure-skip-tls-verify``, ``tls-server-name`` and ``proxy-url``; the user's ``token`` or
  ``tokenFile`` (the file wins, as in client-go), ``client-certificate(-data)`` and
  ``client-key(-data)``, and impersonation (``as``, ``as-groups``, ``as-uid``, ``as-user-extra``);
  the namespace.

A user who logs in any other way (an ``exec`` plugin, an ``auth-provider``, a password) is handed
to the ``kubernetes`` library's loader, imported only then, and the credentials it obtains are
used as they are, refreshed by its own hook (kopf's pluggable logins do the same). PyYAML is
imported only when a kubeconfig is read. Nothing here makes a request: ``common.kube_api`` does.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from common.errors import KubernetesUnavailableError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where the kubelet mounts a pod's service account: ``token``, ``ca.crt``, ``namespace``."""
DEFAULT_KUBECONFIG = "~/.kube/config"
PLUGIN_LOGINS = ("exec", "auth-provider", "username", "password")
"""User fields only the ``kubernetes`` library's loader handles."""

Pem = Path | bytes
"""A PEM file, or PEM text itself (from a ``-data`` field)."""


class Authorization(Protocol):
    """What goes into each request's ``Authorization`` header (``None``: nothing)."""

    def header(self) -> str | None: ...


@dataclass(frozen=True)
class BearerToken:
    """A token written in the kubeconfig."""

    token: str = field(repr=False)

    def header(self) -> str:
        return f"Bearer {self.token}"


class TokenFile:
    """A token in a file, read again whenever the file changes: the kubelet rotates a service
    account's projected token (by swapping a symlink), and ``tokenFile`` may be rotated too."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._token = ""

    def header(self) -> str | None:
        try:
            found = self.path.stat()
            with self._lock:
                key = (found.st_ino, found.st_mtime_ns, found.st_size)
                if key != self._seen:
                    self._token = self.path.read_text(encoding="utf-8").strip()
                    self._seen = key
                return f"Bearer {self._token}" if self._token else None
        except OSError as e:
            raise KubernetesUnavailableError(f"cannot read the token file {self.path}: {e.strerror}") from e

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r})"


class LibraryAuthorization:
    """The ``Authorization`` the ``kubernetes`` library's loader set up: its refresh hook runs an
    exec plugin again (or renews an auth-provider's token) when the credential expires."""

    def __init__(self, configuration: Any) -> None:
        self._configuration = configuration
        self._lock = threading.Lock()

    def header(self) -> str | None:
        try:
            with self._lock:
                found = self._configuration.auth_settings().get("BearerToken") or {}
        except Exception as e:  # whatever a login plugin raises
            raise KubernetesUnavailableError(
                f"the kubeconfig's login plugin failed: {type(e).__name__}"
            ) from e
        value = found.get("value")
        return str(value) if value else None

    def __repr__(self) -> str:
        return "LibraryAuthorization()"


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


@dataclass(frozen=True)
class Login:
    """One API server and how to authenticate to it."""

    server: str
    """``https://host:port``, without a trailing slash."""
    authorization: Authorization | None = None
    ca: Pem | None = None
    """The CA the server's certificate must chain to; ``None``: the system's CAs."""
    verify: bool = True
    """``False`` for ``insecure-skip-tls-verify``."""
    tls_server_name: str | None = None
    """The name the server's certificate is checked against (and sent as SNI) instead of its host."""
    client_certificate: Pem | None = None
    client_key: Pem | None = field(default=None, repr=False)
    proxy: str | None = None
    impersonation: Impersonation | None = None
    headers: tuple[tuple[str, str], ...] = ()
    """Sent with every request (a ``kubernetes`` ``ApiClient``'s default headers)."""


def in_cluster() -> Login | None:
    """The pod's service account; ``None`` outside a pod (no service variables, token or CA)."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT")
    token, ca = SERVICE_ACCOUNT / "token", SERVICE_ACCOUNT / "ca.crt"
    if not host or not port or not token.is_file() or not ca.is_file():
        return None
    bracketed = f"[{host}]" if ":" in host else host  # an IPv6 address
    return Login(f"https://{bracketed}:{port}", TokenFile(token), ca=ca)


def in_cluster_namespace() -> str | None:
    """The pod's namespace, when running in one with a service account."""
    found = SERVICE_ACCOUNT / "namespace"
    if not os.environ.get("KUBERNETES_SERVICE_HOST") or not found.is_file():
        return None
    return found.read_text(encoding="utf-8").strip() or "default"


def kubeconfig_paths(explicit: str | None = None) -> str:
    """``--kubeconfig``, else ``$KUBECONFIG`` as it is now, else ``~/.kube/config``."""
    return explicit or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG


@dataclass(frozen=True)
class _Entry:
    """A named cluster, user or context, and the folder of the file that defined it."""

    body: Mapping[str, Any]
    folder: Path


@dataclass(frozen=True)
class KubeConfig:
    """Kubeconfig files merged as kubectl merges them."""

    paths: str
    clusters: Mapping[str, _Entry]
    users: Mapping[str, _Entry]
    contexts: Mapping[str, _Entry]
    current_context: str | None

    @classmethod
    def load(cls, paths: str) -> KubeConfig:
        """Read every existing file ``paths`` names (separated by ``os.pathsep``)."""
        import yaml  # noqa: PLC0415 -- only a kubeconfig needs YAML; a pod's service account does not

        found = [Path(p).expanduser() for p in paths.split(os.pathsep) if p]
        found = [path for path in found if path.is_file()]
        if not found:
            raise KubernetesUnavailableError(f"no Kubernetes configuration: no kubeconfig file at {paths}")
        named: dict[str, dict[str, _Entry]] = {"clusters": {}, "users": {}, "contexts": {}}
        current: str | None = None
        for path in found:
            try:
                document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as e:
                raise KubernetesUnavailableError(
                    f"no Kubernetes configuration: cannot read {path}: {type(e).__name__}"
                ) from e
            if not isinstance(document, dict):
                raise KubernetesUnavailableError(f"no Kubernetes configuration: {path} is not a kubeconfig")
            for section, entries in named.items():
                body_key = section[:-1]  # clusters -> cluster
                for item in document.get(section) or []:
                    if isinstance(item, dict) and item.get("name") is not None:
                        body = item.get(body_key)
                        entries.setdefault(
                            str(item["name"]),
                            _Entry(body if isinstance(body, dict) else {}, path.absolute().parent),
                        )
            current = current or document.get("current-context") or None
        return cls(paths, named["clusters"], named["users"], named["contexts"], current)

    def context(self, name: str | None) -> tuple[str, Mapping[str, Any]]:
        """The chosen context (``name``, else the current one): its name and body."""
        chosen = name or self.current_context
        if not chosen:
            raise KubernetesUnavailableError(
                "no Kubernetes configuration: the kubeconfig sets no current-context"
            )
        if chosen not in self.contexts:
            raise KubernetesUnavailableError(
                f"no Kubernetes configuration: context {chosen!r} is not in the kubeconfig"
            )
        return chosen, self.contexts[chosen].body

    def namespace(self, context: str | None) -> str:
        return str(self.context(context)[1].get("namespace") or "default")

    def login(self, context: str | None) -> Login:
        """How to reach and log in to the context's cluster as its user."""
        name, body = self.context(context)
        cluster = self.clusters.get(str(body.get("cluster")))
        if cluster is None or not cluster.body.get("server"):
            raise KubernetesUnavailableError(
                f"no Kubernetes configuration: context {name!r} names no cluster with a server"
            )
        user_name = str(body.get("user") or "")
        user = self.users.get(user_name) or _Entry({}, cluster.folder)
        acting = _impersonation(user_name, user.body)
        if any(key in user.body for key in PLUGIN_LOGINS):
            return replace(_library_login(self.paths, name), impersonation=acting)
        server = cluster.body
        return Login(
            str(server["server"]).rstrip("/"),
            _authorization(user),
            ca=_pem(cluster, "certificate-authority"),
            verify=not server.get("insecure-skip-tls-verify"),
            tls_server_name=server.get("tls-server-name") or None,
            client_certificate=_pem(user, "client-certificate"),
            client_key=_pem(user, "client-key"),
            proxy=server.get("proxy-url") or None,
            impersonation=acting,
        )


def from_library(configuration: Any, *, headers: Mapping[str, str] | None = None) -> Login:
    """The login a ``kubernetes.client.Configuration`` describes (filled by the library's loader,
    or by hand); ``headers``: an ``ApiClient``'s default headers, sent with every request."""
    kept = tuple((k, str(v)) for k, v in (headers or {}).items() if k.lower() != "user-agent")

    def path(value: Any) -> Path | None:
        return Path(value) if value else None

    return Login(
        str(configuration.host).rstrip("/"),
        LibraryAuthorization(configuration),
        ca=path(configuration.ssl_ca_cert),
        verify=bool(configuration.verify_ssl),
        tls_server_name=getattr(configuration, "tls_server_name", None) or None,
        client_certificate=path(configuration.cert_file),
        client_key=path(configuration.key_file),
        proxy=configuration.proxy or None,
        headers=kept,
    )


def _library_login(paths: str, context: str) -> Login:
    """Log in through the ``kubernetes`` library's loader (exec plugins, auth-providers, passwords)."""
    try:
        from kubernetes import client, config  # noqa: PLC0415 -- only these logins need the library
    except ImportError as e:
        raise KubernetesUnavailableError(
            f"no Kubernetes configuration: context {context!r} logs in through a plugin or a password, "
            "which needs the kubernetes package (pip install kubernetes)"
        ) from e
    configuration = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=paths, context=context, client_configuration=configuration, persist_config=False
        )
    except Exception as e:  # the loader's ConfigException, or whatever its plugin raised
        raise KubernetesUnavailableError(f"no Kubernetes configuration: {e}") from e
    return from_library(configuration)


def _authorization(user: _Entry) -> Authorization | None:
    if user.body.get("tokenFile"):
        return TokenFile(_path(user, str(user.body["tokenFile"])))
    if user.body.get("token"):
        return BearerToken(str(user.body["token"]))
    return None


def _pem(entry: _Entry, key: str) -> Pem | None:
    """``<key>-data`` (base64 PEM) if set, else the file ``<key>`` names."""
    data = entry.body.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=True)
        except binascii.Error as e:
            raise KubernetesUnavailableError(
                f"no Kubernetes configuration: {key}-data in the kubeconfig is not base64"
            ) from e
    named = entry.body.get(key)
    return _path(entry, str(named)) if named else None


def _path(entry: _Entry, value: str) -> Path:
    return entry.folder / Path(value).expanduser()


def _impersonation(user_name: str, user: Mapping[str, Any]) -> Impersonation | None:
    """The ``as``, ``as-groups``, ``as-uid`` and ``as-user-extra`` of the context's user, if any."""
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
