"""Send one POST to a URL taken from a user's annotation, safely. Shared by webhook and cloudevent.

Owns URL checks, applying address safety (``common.addresses``) and the HTTP exchange; not
payloads, signatures or records.
Before any byte leaves (DESIGN.md §4):

1. the URL must be ``http`` or ``https`` with a host and no credentials; ``http`` only where the
   namespace's policy sets ``allowHttp``; the host must match the policy's ``hosts``;
2. the host is resolved **once** (``resolve``, the seam tests replace) and **every** address must
   be allowed: a name with one refused address is refused, whatever else it resolves to;
3. loopback, link-local, private, cluster-service, reserved... addresses are refused unless the
   policy allows them (``common.addresses`` says which and why);
4. the connection goes to the validated address itself (DNS rebinding cannot swap it), while the
   ``Host`` header, TLS SNI and certificate verification use the host name;
5. redirects are never followed: a 3xx is an answer, reported as ``TargetRedirected``;
6. connect and read timeouts are bounded (``TI_TARGET_CONNECT_TIMEOUT``, ``TI_TARGET_READ_TIMEOUT``);
   proxies from the environment are not used.

API: ``post`` returns the ``Response`` whatever its status; ``deliver`` also turns a non-2xx
answer into the runtime's errors. Both raise ``TargetNotAllowedError`` when nothing was sent,
``TargetRejectedError`` (permanent) or ``TargetUnavailableError`` (temporary); the last two carry
``http_status`` (``None`` when there was no HTTP answer).
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from ipaddress import ip_address
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError, SSLError

from common.addresses import IPAddress, refusal
from common.errors import PermanentError, TargetNotAllowedError, TemporaryError, clip
from common.policy import NetworkPolicy

USER_AGENT = "tekton-integrations/0.1"
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 10.0
MAX_ADDRESSES = 3
"""Resolved addresses tried in turn while connections fail (nothing was sent to the earlier ones)."""
MAX_EXCERPT_BYTES = 2048
"""Bytes of a response body read, for error messages; the rest is never read."""
MAX_RETRY_AFTER = 3600.0
MAX_URL_LENGTH = 2048

_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")


class TargetRejectedError(PermanentError):
    """The target answered, or failed, in a way retrying will not fix (4xx, 3xx, TLS, no such host)."""

    def __init__(self, reason: str, message: str, http_status: int | None = None) -> None:
        super().__init__(reason, message)
        self.http_status = http_status


class TargetUnavailableError(TemporaryError):
    """Retrying later may work (5xx, 429, 408, timeouts, refused connections)."""

    def __init__(
        self, reason: str, message: str, http_status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(reason, message, retry_after)
        self.http_status = http_status


@dataclass(frozen=True)
class Timeouts:
    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT

    @classmethod
    def from_env(cls) -> Timeouts:
        """``TI_TARGET_CONNECT_TIMEOUT`` and ``TI_TARGET_READ_TIMEOUT``, in seconds, each capped at 30."""
        return cls(
            connect=min(30.0, float(os.environ.get("TI_TARGET_CONNECT_TIMEOUT") or DEFAULT_CONNECT_TIMEOUT)),
            read=min(30.0, float(os.environ.get("TI_TARGET_READ_TIMEOUT") or DEFAULT_READ_TIMEOUT)),
        )


@dataclass(frozen=True)
class TargetURL:
    """A checked ``http(s)`` URL: IDNA host in lower case without a trailing dot, explicit port."""

    scheme: str
    host: str
    port: int
    request_target: str
    """Path and query, as sent on the request line."""

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"http": 80, "https": 443}[self.scheme]
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def origin(self) -> str:
        """``https://host[:port]``: how messages name the target (paths and queries may hold tokens)."""
        return f"{self.scheme}://{self.host_header}"

    @property
    def without_query(self) -> str:
        """The URL without its query string, for records (``target`` annotations)."""
        return self.origin + self.request_target.split("?", 1)[0]

    @classmethod
    def parse(cls, url: str) -> TargetURL:
        """Check the URL's shape; raise ``TargetNotAllowedError`` saying what is wrong with it."""
        if len(url) > MAX_URL_LENGTH or _UNSAFE_CHARACTERS.search(url):
            raise TargetNotAllowedError("the URL is too long or holds spaces, control characters or '\\'")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            raise TargetNotAllowedError(f"not a valid URL: {e}") from e
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise TargetNotAllowedError(f"only http and https URLs are allowed, not {scheme or 'no'} scheme")
        if parts.username is not None or parts.password is not None:
            raise TargetNotAllowedError(
                "credentials in the URL are not allowed (annotations are readable by anyone who can "
                "read the run); receivers authenticate requests by their signature"
            )
        host = _normalize_host(parts.hostname or "")
        path = parts.path or "/"
        return cls(
            scheme=scheme,
            host=host,
            port=port or (443 if scheme == "https" else 80),
            request_target=path + (f"?{parts.query}" if parts.query else ""),
        )


@dataclass(frozen=True)
class Response:
    """The target's answer: status, reason phrase, lower-cased headers, the body's first bytes."""

    status: int
    reason: str
    headers: Mapping[str, str]
    excerpt: str

    @property
    def retry_after(self) -> float | None:
        """``Retry-After`` in seconds (delta or HTTP date), within [1, 3600]; ``None`` if absent."""
        value = self.headers.get("retry-after", "").strip()
        if not value:
            return None
        if value.isdigit():
            seconds = float(value)
        else:
            try:
                seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):
                return None
        return min(MAX_RETRY_AFTER, max(1.0, seconds))


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order. Tests replace this function."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ip_address(str(sockaddr[0]))
        if address not in addresses:
            addresses.append(address)
    return addresses


def check(url: str, network: NetworkPolicy) -> tuple[TargetURL, list[IPAddress]]:
    """Everything done before connecting: the URL, the policy, and the addresses to connect to."""
    target = TargetURL.parse(url)
    if target.scheme == "http" and not network.allow_http:
        raise TargetNotAllowedError(
            f"{target.origin}: plain http is not allowed, use https (or set {network.setting('allowHttp')})"
        )
    if not network.allows_host(target.host):
        allowed = ", ".join(network.hosts or ()) or "nothing"
        raise TargetNotAllowedError(
            f'namespace "{network.namespace}" may not target {network.integration} host {target.host!r}: '
            f"not matched by {network.setting('hosts')} ({allowed})"
        )
    addresses = _addresses(target)
    for address in addresses:
        refused = refusal(address, network)
        if refused is not None:
            resolved = "" if target.host == str(address) else f" ({target.host} resolves to {address})"
            hint = (
                f". An operator can allow it with {network.setting(refused.setting)}"
                if refused.setting
                else ""
            )
            raise TargetNotAllowedError(
                f"{target.origin}: refused {refused.why}{resolved}; nothing was sent{hint}"
            )
    return target, addresses


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    network: NetworkPolicy,
    *,
    service: str = "target",
    timeouts: Timeouts | None = None,
) -> Response:
    """POST ``body`` to ``url`` after ``check``; the answer is returned whatever its status."""
    target, addresses = check(url, network)
    timeouts = timeouts or Timeouts.from_env()
    request_headers = {"User-Agent": USER_AGENT, **headers, "Host": target.host_header}
    failure: HTTPError | None = None
    for address in addresses[:MAX_ADDRESSES]:
        pool = _pool(target, address, timeouts)
        try:
            answer = pool.urlopen(
                "POST",
                target.request_target,
                body=body,
                headers=request_headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
            )
        except (NewConnectionError, ConnectTimeoutError) as e:
            failure = e  # no connection, nothing sent: the next address may work
            pool.close()
            continue
        except HTTPError as e:
            pool.close()
            raise _transport_error(e, target, service) from e
        try:
            excerpt = answer.read(MAX_EXCERPT_BYTES)
        except HTTPError as e:
            raise _transport_error(e, target, service) from e
        finally:
            answer.close()
            pool.close()
        return Response(
            status=answer.status,
            reason=answer.reason or "",
            headers={key.lower(): value for key, value in answer.headers.items()},
            excerpt=excerpt.decode("utf-8", "replace"),
        )
    assert failure is not None
    raise _transport_error(failure, target, service) from failure


def deliver(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    network: NetworkPolicy,
    *,
    service: str = "target",
    timeouts: Timeouts | None = None,
) -> Response:
    """``post``, then raise for any answer but 2xx. ``service`` names the target in messages."""
    response = post(url, body, headers, network, service=service, timeouts=timeouts)
    error = classify(response, f"the {service} at {TargetURL.parse(url).origin}")
    if error is not None:
        raise error
    return response


def classify(response: Response, who: str) -> TargetRejectedError | TargetUnavailableError | None:
    """``None`` for 2xx; temporary for 5xx, 429 and 408; permanent for redirects and other 4xx."""
    status = response.status
    if 200 <= status < 300:
        return None
    said = f"{who} answered {status} {response.reason}".rstrip()
    detail = _printable(response.excerpt)
    if detail:
        said += f": {detail}"
    if status == 429:
        return TargetUnavailableError("TargetRateLimited", said, status, response.retry_after)
    if status >= 500 or status == 408:
        return TargetUnavailableError("TargetUnavailable", said, status, response.retry_after)
    if 300 <= status < 400:
        location = clip(response.headers.get("location", "?"), 200)
        return TargetRejectedError(
            "TargetRedirected",
            f"{who} redirected to {location} ({status}); redirects are not followed: "
            "set the annotation to the final URL",
            status,
        )
    return TargetRejectedError("TargetRejected", said, status)


def host_of(url: str) -> str | None:
    """The normalized host of an acceptable URL, for a policy check by name; ``None`` otherwise."""
    try:
        return TargetURL.parse(url).host
    except TargetNotAllowedError:
        return None


def http_status_of(error: BaseException) -> int | None:
    """The HTTP status an error from ``post``/``deliver`` came with, if any."""
    status = getattr(error, "http_status", None)
    return status if isinstance(status, int) else None


def _normalize_host(host: str) -> str:
    host = host.rstrip(".").lower()
    if not host:
        raise TargetNotAllowedError("the URL has no host")
    try:
        return str(ip_address(host))
    except ValueError:
        pass
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError as e:
        raise TargetNotAllowedError(f"{host!r} is not a valid host name") from e
    if not _HOST_NAME.match(host) or len(host) > 253:
        raise TargetNotAllowedError(f"{host!r} is not a valid host name")
    return host


def _addresses(target: TargetURL) -> list[IPAddress]:
    try:
        return [ip_address(target.host)]  # a literal: nothing to resolve
    except ValueError:
        pass
    try:
        addresses = resolve(target.host, target.port)
    except socket.gaierror as e:
        message = f"cannot resolve {target.host}: {e.strerror}"
        if e.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            raise TargetRejectedError("TargetUnresolvable", message) from e
        raise TargetUnavailableError("TargetUnresolvable", message) from e
    except (OSError, UnicodeError) as e:
        raise TargetUnavailableError("TargetUnresolvable", f"cannot resolve {target.host}: {e}") from e
    if not addresses:
        raise TargetRejectedError("TargetUnresolvable", f"{target.host} has no addresses")
    return addresses


_contexts: dict[tuple[str, str], ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def _tls_context() -> ssl.SSLContext:
    """The system trust store (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured), built once per setting."""
    key = (os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""))
    with _contexts_lock:
        if key not in _contexts:
            _contexts[key] = ssl.create_default_context()
        return _contexts[key]


def _pool(target: TargetURL, address: IPAddress, timeouts: Timeouts) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(connect=timeouts.connect, read=timeouts.read)
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            str(address),
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            server_hostname=target.host,  # SNI and certificate checks use the name, not the address
            ssl_context=_tls_context(),
        )
    return urllib3.HTTPConnectionPool(str(address), target.port, timeout=timeout, retries=False, maxsize=1)


def _transport_error(
    error: HTTPError, target: TargetURL, service: str
) -> TargetRejectedError | TargetUnavailableError:
    who = f"the {service} at {target.origin}"
    if isinstance(error, SSLError):
        return TargetRejectedError("TargetTLSError", f"TLS with {who} failed: {_cause(error)}")
    if isinstance(error, NewConnectionError):
        return TargetUnavailableError("TargetUnreachable", f"cannot connect to {who}: {_cause(error)}")
    if isinstance(error, ConnectTimeoutError | ReadTimeoutError):
        return TargetUnavailableError("TargetTimeout", f"{who} did not answer in time")
    return TargetUnavailableError("TargetUnreachable", f"the connection to {who} failed: {_cause(error)}")


def _cause(error: BaseException) -> str:
    """The innermost reason, without urllib3's object reprs (which name pools and addresses)."""
    while error.__context__ is not None and not isinstance(error, OSError | ssl.SSLError):
        error = error.__context__
    if isinstance(error, ssl.SSLCertVerificationError):
        return str(error.verify_message)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return clip(type(error).__name__ + (f": {error}" if str(error) else ""), 200)


def _printable(text: str) -> str:
    return clip(" ".join(text.split()), 200)
