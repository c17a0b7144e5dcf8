"""Requests to one Kubernetes API server over urllib3: the transport under ``common.kube``.

Owns the connection: TLS as the ``Login`` says (one ``ssl.SSLContext``, built when the server is
set up, a client key from a ``-data`` field loaded through a private temporary file that is
removed at once), the ``Authorization``, ``Impersonate-*`` and other headers of every request,
timeouts, one retry of a connection that failed (and of a read that failed, for a GET), the
proxy (the kubeconfig's ``proxy-url``, else ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` unless
``NO_PROXY`` covers the server, as the ``kubernetes`` library decided), and connection pools kept
per thread: ``common.deadline`` shuts down the connections a thread made when that thread's
deadline passes, so no other thread may be using them.

A non-2xx answer raises ``ApiError``; urllib3's and the socket's errors pass through, for
``common.kube`` to translate. Only a login that cannot be used (its TLS settings, a proxy other
than http or https) is refused here, as ``KubernetesUnavailableError``, when the server is set
up. It knows nothing of runs.
"""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlencode, urlsplit

import urllib3

from common.errors import KubernetesUnavailableError
from common.kube_config import Login, Pem

REQUEST_TIMEOUT = (3.0, 10.0)
"""(connect, read) seconds: a slow API server answers 503 to the sender rather than hang."""
RETRIES = urllib3.Retry(total=1, redirect=False)
"""One more attempt after a connection error (and after a read error, for a GET); the API server's
redirects are not followed."""
USER_AGENT = "tekton-integrations"
MAX_ERROR_BODY = 4096
"""Bytes of an error answer kept to find the server's message in."""


class ApiError(Exception):
    """The API server answered with a non-2xx status: ``status``, ``reason`` and ``message``
    (the ``message`` of the server's ``Status`` JSON, if it sent one). No header is kept."""

    def __init__(self, status: int, reason: str | None, body: bytes) -> None:
        self.status = status
        self.reason = reason or ""
        self.message = _status_message(body[:MAX_ERROR_BODY])
        super().__init__(f"{status} {self.reason}: {self.message}")


class ApiServer:
    """One API server reached with one ``Login``; safe to share between threads."""

    def __init__(self, login: Login) -> None:
        self.login = login
        self.proxy = login.proxy or _environment_proxy(urlsplit(login.server))
        """The proxy requests go through, if any."""
        if self.proxy and urlsplit(self.proxy).scheme not in ("http", "https"):
            raise KubernetesUnavailableError(
                f"no Kubernetes configuration: the proxy for {login.server} is not an http or https "
                f"proxy ({urlsplit(self.proxy).scheme or 'no scheme'}); only those are supported"
            )
        self._tls = _tls_context(login) if urlsplit(login.server).scheme == "https" else None
        self._timeout = urllib3.Timeout(connect=REQUEST_TIMEOUT[0], read=REQUEST_TIMEOUT[1])
        self._local = threading.local()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str | int]] = (),
        body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> bytes:
        """The answer's body; ``ApiError`` for a non-2xx answer."""
        headers = urllib3.HTTPHeaderDict({"Accept": accept, "User-Agent": USER_AGENT})
        authorization = self.login.authorization.header() if self.login.authorization else None
        if authorization:
            headers["Authorization"] = authorization
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        # add(), not item assignment: Impersonate-Group is sent once per group
        for name, value in self.login.impersonation.headers() if self.login.impersonation else ():
            headers.add(name, value)
        for name, value in self.login.headers:
            headers.add(name, value)
        url = self.login.server + path + (f"?{urlencode(query)}" if query else "")
        answer = self._pool().request(
            method, url, body=data, headers=headers, timeout=self._timeout, retries=RETRIES
        )
        if not 200 <= answer.status < 300:
            raise ApiError(answer.status, answer.reason, answer.data)
        return answer.data

    def _pool(self) -> urllib3.PoolManager:
        """This thread's pool (one connection: a thread makes one request at a time)."""
        pool: urllib3.PoolManager | None = getattr(self._local, "pool", None)
        if pool is None:
            options: dict[str, Any] = {"num_pools": 1, "maxsize": 1}
            if self._tls is not None:
                options["ssl_context"] = self._tls
                if self.login.tls_server_name:
                    options["server_hostname"] = self.login.tls_server_name
            proxy = self.proxy
            pool = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
            self._local.pool = pool
        return pool


def _environment_proxy(server: SplitResult) -> str | None:
    """The proxy the environment names for the server's scheme, unless ``NO_PROXY`` covers the
    server: ``*``, its host or a parent domain, ``host:port``, or an IP network holding its address."""
    proxy = _variable(f"{server.scheme}_proxy") or _variable("all_proxy")
    if not proxy or not server.hostname:
        return None
    host, netloc = server.hostname.lower(), server.netloc.lower()
    address = None
    with suppress(ValueError):
        address = ipaddress.ip_address(host)
    for rule in (part.strip().lower() for part in (_variable("no_proxy") or "").split(",")):
        if rule == "*":
            return None
        if address is not None:
            with suppress(ValueError):
                if address in ipaddress.ip_network(rule, strict=False):
                    return None
        domain = rule.lstrip(".")
        if domain and any(name == domain or name.endswith(f".{domain}") for name in (host, netloc)):
            return None
    return proxy


def _variable(name: str) -> str | None:
    """``name`` from the environment, lower case first (as curl and urllib read proxies)."""
    return os.environ.get(name) or os.environ.get(name.upper()) or None


def _tls_context(login: Login) -> ssl.SSLContext:
    """Verification against the login's CA (else the system's), and its client certificate."""
    try:
        if not login.verify:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif isinstance(login.ca, bytes):
            context = ssl.create_default_context(cadata=login.ca.decode("ascii"))
        else:
            context = ssl.create_default_context(cafile=login.ca)
        if login.client_certificate is not None:
            with _files(login.client_certificate, login.client_key) as (certificate, key):
                context.load_cert_chain(certificate, key)
    except (OSError, ValueError) as e:
        raise KubernetesUnavailableError(
            f"no Kubernetes configuration: the TLS settings of {login.server} cannot be used: "
            f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}"
        ) from e
    return context


@contextmanager
def _files(certificate: Pem, key: Pem | None) -> Iterator[tuple[Path, Path | None]]:
    """PEM as files for ``load_cert_chain`` (it reads only files): PEM text goes to a private
    temporary folder (mode 0700, files 0600) that is removed as soon as it has been loaded."""
    if not isinstance(certificate, bytes) and not isinstance(key, bytes):
        yield certificate, key
        return
    with tempfile.TemporaryDirectory(prefix="kube-login-") as folder:

        def written(pem: Pem, name: str) -> Path:
            if not isinstance(pem, bytes):
                return pem
            path = Path(folder) / name
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
            return path

        yield written(certificate, "certificate.pem"), written(key, "key.pem") if key is not None else None


def _status_message(body: bytes) -> str:
    try:
        found = json.loads(body or b"")
    except ValueError:
        return ""
    return str(found.get("message", "")) if isinstance(found, dict) else ""
