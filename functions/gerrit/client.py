"""The Gerrit client: one server (``GERRIT_URL``), one account, bounded requests per event.

Settings come from ``GerritSettings`` (``GERRIT_URL``, ``GERRIT_USERNAME``, ``GERRIT_PASSWORD`` or
``GERRIT_PASSWORD_FILE``, ``GERRIT_ALLOWED_VOTES``, ``GERRIT_TIMEOUT_SECONDS``), never from
annotations. Requests go to ``<GERRIT_URL>/a/...`` with HTTP basic authentication (Gerrit's
authenticated REST API), so the credentials are only ever sent to ``GERRIT_URL``: redirects are
not followed, and a redirect is recorded as ``GerritRedirected``.

Gerrit starts every JSON answer with ``)]}'`` (a guard against cross-site script inclusion);
``parse`` strips it. Errors are plain text, quoted (redacted and cut) in the record. Nothing here
retries or sleeps: a rate limit or a 5xx goes back to the sender with its ``Retry-After``.

One ``requests.Session`` per thread (``PerSettings(per_thread=True)``): its connections are the
thread's, which ``common.deadline`` cuts off when the event's deadline passes.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Annotated, Any, ClassVar
from urllib.parse import quote, urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr

from common import ServiceSettings, TemporaryError
from common.errors import IntegrationError
from common.settings import PerSettings
from functions.gerrit.errors import FAULTS

if TYPE_CHECKING:  # requests is imported by the first call to Gerrit
    import requests
from functions.gerrit.votes import DEFAULT_ALLOWED, AllowedVotes, parse_allowed

XSSI = ")]}'"


def normalize_url(url: str) -> str:
    """``https://review.example.com[/prefix]``: lower-case scheme and host, no default port, no
    trailing ``/`` or ``/a``; no user, query or fragment."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        raise ValueError("must be an http(s) URL such as https://review.example.com")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(
            "must hold no user, password, query or fragment (credentials have their own settings)"
        )
    default_port = {"http": 80, "https": 443}[scheme]
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    host = f"[{host}]" if ":" in host else host
    path = parts.path.rstrip("/").removesuffix("/a").rstrip("/")
    return f"{scheme}://{host}{port}{path}"


ServerUrl = Annotated[str, AfterValidator(normalize_url)]


class GerritSettings(ServiceSettings):
    """``GERRIT_*``: the server, the account's HTTP credentials, the votes allowed, the deadline."""

    prefix: ClassVar[str] = "GERRIT"
    service: ClassVar[str] = "Gerrit"

    url: ServerUrl | None = None
    """``GERRIT_URL``: the server's base URL (with its path prefix, if any), e.g.
    ``https://review.example.com``."""
    username: str | None = None
    """``GERRIT_USERNAME``: the account's user name for HTTP authentication."""
    password: SecretStr | None = None
    """``GERRIT_PASSWORD`` or ``GERRIT_PASSWORD_FILE``: the account's HTTP password (Settings >
    HTTP Credentials), or an access token where the server uses them."""
    allowed_votes: Annotated[AllowedVotes, BeforeValidator(parse_allowed)] = Field(
        DEFAULT_ALLOWED, validate_default=True
    )
    """``GERRIT_ALLOWED_VOTES``: the votes runs may cast, e.g. ``Verified=-1..+1,Code-Review=0..0``;
    ``none`` for messages only."""

    def checked(self) -> tuple[str, str, str]:
        """The URL, user name and password; ``GerritNotConfigured`` naming what is missing."""
        self.require("url", "username", "password")
        assert self.url is not None
        assert self.username is not None
        assert self.password is not None
        return self.url, self.username, self.password.get_secret_value()


def _session(settings: GerritSettings) -> requests.Session:
    import requests  # noqa: PLC0415 -- only for a run that calls Gerrit

    _, username, password = settings.checked()
    session = requests.Session()
    session.auth = (username, password)
    session.headers["Accept"] = "application/json"
    return session


sessions = PerSettings(_session, per_thread=True)
"""A session per thread, rebuilt when the settings (a rotated password) change."""


class AccountIds:
    """The numeric id of the account the settings name (``GET /a/accounts/self``), learnt once."""

    def __init__(self, _: GerritSettings) -> None:
        self._lock = threading.Lock()
        self._id: int | None = None

    def get(self, settings: GerritSettings) -> int:
        with self._lock:
            if self._id is not None:
                return self._id
        found = get(settings, "/accounts/self", what="look up the Gerrit account GERRIT_USERNAME names")
        account = found.get("_account_id") if isinstance(found, dict) else None
        if not isinstance(account, int):
            raise TemporaryError(
                FAULTS.reason("Unavailable"), "Gerrit's answer to /a/accounts/self has no _account_id"
            )
        with self._lock:
            self._id = account
        return account


account_ids = PerSettings(AccountIds)


def change_path(project: str, number: int | str) -> str:
    """``/changes/<project>~<number>``, the project URL-encoded: Gerrit's unambiguous change id."""
    return f"/changes/{quote(project, safe='')}~{number}"


def get(settings: GerritSettings, path: str, *, what: str, params: dict[str, Any] | None = None) -> Any:
    """``GET <GERRIT_URL>/a<path>``: the JSON answer, or the runtime's error for any other."""
    return _call(settings, "GET", path, what=what, params=params)


def post(settings: GerritSettings, path: str, body: dict[str, Any], *, what: str) -> Any:
    """``POST <GERRIT_URL>/a<path>`` with a JSON body; ``GerritAnswerError`` for a 4xx, so the caller
    can read Gerrit's words (e.g. a restricted label) before classifying it."""
    return _call(settings, "POST", path, what=what, body=body, raw_refusals=True)


class GerritAnswerError(Exception):
    """Gerrit refused a request with a 4xx; ``detail`` is its plain-text reason."""

    def __init__(self, status: int, headers: dict[str, str], detail: str, what: str) -> None:
        super().__init__(f"Gerrit answered {status} to {what}")
        self.status = status
        self.headers = headers
        self.detail = detail
        self.what = what

    def classified(self) -> IntegrationError:
        return FAULTS.for_status(self.status, self.headers, what=self.what, detail=self.detail)


def _call(
    settings: GerritSettings,
    method: str,
    path: str,
    *,
    what: str,
    params: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
    raw_refusals: bool = False,
) -> Any:
    import requests  # noqa: PLC0415 -- imported already by the session

    url, _, _ = settings.checked()
    try:
        answer = sessions(settings).request(
            method,
            f"{url}/a{path}",
            params=params,
            json=body,
            timeout=settings.timeout_seconds,
            allow_redirects=False,  # the credentials never travel to another address
        )
    except requests.Timeout as e:
        raise FAULTS.timeout(what, settings.timeout_seconds) from e
    except requests.RequestException as e:
        raise FAULTS.unreachable(what, e) from e
    text = answer.content.decode("utf-8", "replace")
    headers = dict(answer.headers)
    if 200 <= answer.status_code < 300:
        return parse(text, what)
    detail = "" if answer.is_redirect else text
    if raw_refusals and 400 <= answer.status_code < 500 and answer.status_code not in (408, 425, 429):
        raise GerritAnswerError(answer.status_code, headers, detail, what)
    raise FAULTS.for_status(answer.status_code, headers, what=what, detail=detail)


def parse(text: str, what: str) -> Any:
    """A JSON answer without Gerrit's ``)]}'`` line; an empty one (``204``) is ``None``."""
    body = text.lstrip("\ufeff")
    if body.startswith(XSSI):
        body = body[len(XSSI) :]
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError as e:
        raise TemporaryError(FAULTS.reason("Unavailable"), f"unreadable answer from Gerrit to {what}") from e
