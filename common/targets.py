"""Send one POST to a URL taken from a user's annotation, safely. Shared by the URL-based integrations.

Owns URL checks, applying address safety (``common.addresses``), the HTTP exchange and reading
its answer through the shared fault table; not payloads, signatures, records or policy files.
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
6. ``Timeouts(total)``, the integration's ``<PREFIX>_TIMEOUT_SECONDS``: connecting to an address
   takes at most min(5 s, total) and each read at most the total. The total itself, which a
   receiver dripping its answer a byte at a time would otherwise stretch, is kept by the runtime
   around ``report`` (``common.deadline``), which also treats what a cut-off exchange returned
   as a timeout: ``http.client`` takes a status line or header block ended by a closed
   connection for a complete answer;
7. proxies from the environment are not used.

Answers are classified by ``FAULTS`` (``common.faults``: 5xx, 408, 425 and 429 temporary, with
``Retry-After``; 3xx and other 4xx permanent); the reasons are ``TargetRejected``,
``TargetUnavailable``, ``TargetRateLimited``, ``TargetRedirected``, ``TargetTimeout`` and
``TargetUnreachable``, plus this module's own ``TargetTLSError`` and ``TargetUnresolvable``.
The receiver's body excerpt is redacted as it is read: a receiver or a proxy may echo the
request's headers.

API: ``post`` returns the ``Response`` whatever its status; ``deliver`` also raises for any answer
but 2xx. Both raise ``TargetNotAllowedError`` when nothing was sent, else the shared
``PermanentError``/``TemporaryError``; ``deliver``'s errors carry the record annotation
``last-http-status`` (the answer's status, ``none`` without an answer).
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from time import monotonic
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from common.addresses import IPAddress, refusal
from common.errors import IntegrationError, PermanentError, TargetNotAllowedError, TemporaryError, clip
from common.faults import Faults
from common.policy import NetworkPolicy
from common.redaction import redact

if TYPE_CHECKING:  # urllib3 is imported by the first delivery: an ignored run never needs it
    import urllib3
    from urllib3.exceptions import HTTPError

USER_AGENT = "tekton-integrations/0.1"
MAX_CONNECT_TIMEOUT = 5.0
"""Seconds to connect to one address, at most (never more than the total)."""
MAX_ADDRESSES = 3
"""Resolved addresses tried in turn while connections fail (nothing was sent to the earlier ones)."""
MAX_EXCERPT_BYTES = 2048
"""Bytes of a response body read, for error messages; the rest is never read."""
MAX_URL_LENGTH = 2048
LAST_HTTP_STATUS = "last-http-status"
"""The record annotation ``deliver``'s errors carry: the target's HTTP status, or ``none``."""

FAULTS = Faults(
    "Target",
    {
        400: "the receiver refused the request as malformed",
        401: "the receiver refused the request's authentication: check the key it verifies with",
        403: "the receiver forbids the request: check the receiver's configuration",
        404: "the receiver has no such URL: check the annotation",
        410: "the receiver's URL is gone: check the annotation",
        413: "the receiver refused the body as too large",
        422: "the receiver could not process the body",
    },
    reasons={},
)
"""Every 4xx is ``TargetRejected``: receivers are not one service whose codes mean one thing."""
TLS_ERROR = FAULTS.reason("TLSError")
UNRESOLVABLE = FAULTS.reason("Unresolvable")

_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")


@dataclass(frozen=True)
class Timeouts:
    """The total deadline of one exchange, in seconds (an integration's ``timeout_seconds``)."""

    total: float

    @property
    def connect(self) -> float:
        return min(MAX_CONNECT_TIMEOUT, self.total)

    @property
    def read(self) -> float:
        """Each read; the total still bounds a receiver that answers a byte at a time."""
        return self.total


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
    """The target's answer: status, reason phrase, lower-cased headers, the body's first bytes (redacted)."""

    status: int
    reason: str
    headers: Mapping[str, str]
    excerpt: str


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
    timeouts: Timeouts,
    service: str = "target",
) -> Response:
    """POST ``body`` to ``url`` after ``check``; the answer is returned whatever its status.

    ``service`` names the target in messages (``webhook receiver``).
    """
    from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError  # noqa: PLC0415

    target, addresses = check(url, network)
    request_headers = {"User-Agent": USER_AGENT, **headers, "Host": target.host_header}
    failure: HTTPError | None = None
    give_up = monotonic() + timeouts.total
    for address in addresses[:MAX_ADDRESSES]:
        if failure is not None and monotonic() >= give_up:
            break  # no new connection once the total has passed: nothing would cut it off
        try:
            return _exchange(target, address, body, request_headers, timeouts)
        except (NewConnectionError, ConnectTimeoutError) as e:
            failure = e  # no connection, nothing sent: the next address may work
        except HTTPError as e:
            failure = e
            break
    assert failure is not None
    raise _transport_error(failure, _what(service, target), timeouts) from failure


def deliver(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    network: NetworkPolicy,
    *,
    timeouts: Timeouts,
    service: str = "target",
) -> Response:
    """``post``, then raise for any answer but 2xx; every error carries ``last-http-status``."""
    try:
        response = post(url, body, headers, network, timeouts=timeouts, service=service)
    except IntegrationError as e:
        e.annotations.setdefault(LAST_HTTP_STATUS, "none")
        raise
    error = classify(response, _what(service, TargetURL.parse(url)))
    if error is not None:
        error.annotations[LAST_HTTP_STATUS] = str(response.status)
        raise error
    return response


def classify(response: Response, what: str) -> IntegrationError | None:
    """``None`` for 2xx, else the shared table's error for the answer to ``what``."""
    if 200 <= response.status < 300:
        return None
    return FAULTS.for_status(response.status, response.headers, what=what, detail=response.excerpt)


def host_of(url: str) -> str | None:
    """The normalized host of an acceptable URL, for a policy check by name; ``None`` otherwise."""
    try:
        return TargetURL.parse(url).host
    except TargetNotAllowedError:
        return None


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
            raise PermanentError(UNRESOLVABLE, message) from e
        raise TemporaryError(UNRESOLVABLE, message) from e
    except (OSError, UnicodeError) as e:
        raise TemporaryError(UNRESOLVABLE, f"cannot resolve {target.host}: {type(e).__name__}") from e
    if not addresses:
        raise PermanentError(UNRESOLVABLE, f"{target.host} has no addresses")
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
    import urllib3  # noqa: PLC0415 -- with the first delivery

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


def _what(service: str, target: TargetURL) -> str:
    """How messages name the call: never the path or query, which may hold tokens."""
    return f"the POST to the {service} at {target.origin}"


def _exchange(
    target: TargetURL, address: IPAddress, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
) -> Response:
    pool = _pool(target, address, timeouts)
    try:
        answer = pool.urlopen(
            "POST",
            target.request_target,
            body=body,
            headers=dict(headers),
            retries=False,
            redirect=False,
            assert_same_host=False,
            preload_content=False,
            decode_content=False,
        )
        try:
            excerpt = answer.read(MAX_EXCERPT_BYTES)
        finally:
            answer.close()
    finally:
        pool.close()
    return Response(
        status=answer.status,
        reason=answer.reason or "",
        headers={key.lower(): value for key, value in answer.headers.items()},
        excerpt=redact(excerpt.decode("utf-8", "replace")),
    )


def _transport_error(error: HTTPError, what: str, timeouts: Timeouts) -> IntegrationError:
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError, SSLError  # noqa: PLC0415

    if isinstance(error, SSLError):
        return PermanentError(TLS_ERROR, f"TLS failed for {what}: {_cause(error)}")
    if isinstance(error, NewConnectionError):  # a subclass of ConnectTimeoutError, yet no timeout
        return FAULTS.unreachable(what, _innermost(error))
    if isinstance(error, ConnectTimeoutError):
        return FAULTS.timeout(what, timeouts.connect)
    if isinstance(error, ReadTimeoutError):
        return FAULTS.timeout(what, timeouts.read)
    return FAULTS.unreachable(what, _innermost(error))


def _innermost(error: BaseException) -> BaseException:
    """The operating system's error under urllib3's wrappers (``ConnectionRefusedError``...)."""
    while error.__context__ is not None and not isinstance(error, OSError | ssl.SSLError):
        error = error.__context__
    return error


def _cause(error: BaseException) -> str:
    """The innermost reason, without urllib3's object reprs (which name pools and addresses)."""
    error = _innermost(error)
    if isinstance(error, ssl.SSLCertVerificationError):
        return str(error.verify_message)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return clip(type(error).__name__ + (f": {error}" if str(error) else ""), 200)
