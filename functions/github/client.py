"""GitHub clients: a token, or a GitHub App whose installation is looked up per repository.

Secrets come from the environment or mounted files (``GitHubSettings``), never from annotations.
PyGithub's own retry loop, which sleeps through rate limits for minutes, is replaced by a short
bounded one that only retries connections that never reached GitHub; everything else is answered
to the sender, who redelivers. Installation tokens are handed to the redaction boundary as they
are obtained.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import threading
import types
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import SecretStr

from common import ServiceSettings
from common.redaction import remember

if TYPE_CHECKING:  # PyGithub is imported when the first client is built, by the first report
    from github import Auth, Github, GithubIntegration
    from urllib3.util.retry import Retry


class _ImportedOnUse(types.ModuleType):
    """Stands in for a module until one of its attributes is read, then imports the module."""

    def __getattr__(self, attribute: str) -> Any:
        return getattr(_import_now(self.__name__), attribute)


_importing = threading.RLock()


def _import_now(name: str) -> types.ModuleType:
    with _importing:
        if isinstance(sys.modules.get(name), _ImportedOnUse):
            del sys.modules[name]
        return importlib.import_module(name)


def defer_unused_dependencies() -> None:
    """Leave what PyGithub imports for features this runtime does not use unimported until used.

    PyGithub's package imports ``github.Auth``, which imports ``jwt`` (PyJWT, and with it
    ``cryptography``: about 9 MB and 20-50 ms) for one call, ``jwt.encode``, which signs a GitHub
    App's JWT; and ``github.PublicKey``, which imports ``nacl`` (PyNaCl, 1.4 MB) to encrypt Actions
    secrets. Until something reads one of their attributes, ``sys.modules`` holds a stand-in that
    carries the real module's spec; the first read imports the real module, which replaces the
    stand-in, and is answered from it. A token never signs anything; an App signs on its first token.
    """
    for name in DEFERRED_MODULES:
        if name in sys.modules:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except ImportError:
            spec = None
        if spec is None:
            continue  # not installed: PyGithub's own import reports it
        with _importing:
            if name not in sys.modules:
                stand_in = _ImportedOnUse(name)
                stand_in.__spec__ = spec
                sys.modules[name] = stand_in
                parent, _, child = name.rpartition(".")
                if parent:  # as the import system does: ``import nacl.public`` reads nacl.public
                    setattr(sys.modules[parent], child, stand_in)


DEFERRED_MODULES = ("jwt", "nacl.encoding", "nacl.public")
"""Imported by PyGithub at import time, used by none of the calls made here (see above)."""
defer_unused_dependencies()

DEFAULT_API_URL = "https://api.github.com"
TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
"""Installation tokens live an hour; one is replaced this long before it expires."""


class GitHubSettings(ServiceSettings):
    """``GITHUB_*``: a token, or an App's id and private key; the API's URL and the deadline."""

    prefix: ClassVar[str] = "GITHUB"
    service: ClassVar[str] = "GitHub"

    api_url: str = DEFAULT_API_URL
    """``GITHUB_API_URL``; GitHub Enterprise: ``https://HOST/api/v3``."""
    token: SecretStr | None = None
    """``GITHUB_TOKEN`` or ``GITHUB_TOKEN_FILE``."""
    app_id: str | None = None
    """``GITHUB_APP_ID``, with ``GITHUB_APP_PRIVATE_KEY_FILE``."""
    app_private_key: SecretStr | None = None

    @property
    def base_url(self) -> str:
        return self.api_url.rstrip("/")

    @property
    def request_timeout(self) -> int:
        """PyGithub's per-request timeout in its unit, whole seconds (the runtime keeps the total)."""
        return max(1, math.ceil(self.timeout_seconds))


def bounded_retry() -> Retry:
    """Retry only failed connections (nothing was sent), twice, quickly; never sleep on a status."""
    from urllib3.util.retry import Retry  # noqa: PLC0415 -- with the first client

    return Retry(
        total=2,
        connect=2,
        read=0,
        status=0,
        other=0,
        redirect=0,
        backoff_factor=0.2,
        respect_retry_after_header=False,
        raise_on_status=False,
    )


class GitHubClients:
    """Hands out a ``Github`` client for a repository, caching App installations and tokens.

    The ``Github`` clients are kept per thread and token: a connection pool is only ever used by
    the thread that made it (``common.deadline`` cuts a thread's connections off at its deadline).
    """

    def __init__(self, settings: GitHubSettings, clock: type[datetime] = datetime) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._installations: dict[tuple[str, str], int] = {}
        self._tokens: dict[int, tuple[str, datetime]] = {}
        self._local = threading.local()
        self._app_auth: Auth.AppAuth | None = None
        if settings.app_id and settings.app_private_key:
            from github import Auth  # noqa: PLC0415 -- PyGithub only once a run is reported

            self._app_auth = Auth.AppAuth(settings.app_id, settings.app_private_key.get_secret_value())
        elif not settings.token:
            raise settings.not_configured(
                "the GitHub function has no credentials: set GITHUB_TOKEN(_FILE), or "
                "GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY_FILE",
                "token",
                "app_private_key",
            )

    def for_repo(self, owner: str, repo: str) -> Github:
        from github import Auth, Github  # noqa: PLC0415 -- PyGithub only once a run is reported

        if self._app_auth is not None:
            token = self._installation_token(owner, repo)
        else:
            assert self.settings.token is not None
            token = self.settings.token.get_secret_value()
        clients: dict[str, Github] = self._local.__dict__.setdefault("clients", {})
        if token not in clients:
            clients.clear()  # a new installation token replaces the expired one's client
            clients[token] = Github(
                auth=Auth.Token(token),
                base_url=self.settings.base_url,
                timeout=self.settings.request_timeout,
                retry=bounded_retry(),
                seconds_between_requests=None,
                seconds_between_writes=None,
                per_page=100,  # a commit's check runs are looked through in as few pages as GitHub allows
                lazy=True,
            )
        return clients[token]

    def forget_installation(self, owner: str, repo: str) -> None:
        """Drop a cached installation (the App was uninstalled or moved)."""
        with self._lock:
            self._installations.pop((owner, repo), None)

    def _app(self) -> GithubIntegration:
        """The App's client for this thread."""
        from github import GithubIntegration  # noqa: PLC0415 -- App auth only

        app: GithubIntegration | None = getattr(self._local, "app", None)
        if app is None:
            assert self._app_auth is not None
            app = self._local.app = GithubIntegration(
                auth=self._app_auth,
                base_url=self.settings.base_url,
                timeout=self.settings.request_timeout,
                retry=bounded_retry(),
                seconds_between_requests=None,
                seconds_between_writes=None,
            )
        return app

    def _installation_token(self, owner: str, repo: str) -> str:
        app = self._app()
        with self._lock:
            installation = self._installations.get((owner, repo))
        if installation is None:
            installation = app.get_repo_installation(owner, repo).id
            with self._lock:
                self._installations[(owner, repo)] = installation
        now = self._clock.now(UTC)
        with self._lock:
            cached = self._tokens.get(installation)
        if cached is not None and cached[1] - TOKEN_REFRESH_MARGIN > now:
            return cached[0]
        grant = app.get_access_token(installation)
        remember(grant.token)
        with self._lock:
            self._tokens[installation] = (grant.token, grant.expires_at)
        return grant.token
