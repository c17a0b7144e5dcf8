"""GitHub clients: a token, or a GitHub App whose installation is looked up per repository.

Secrets come from the environment or mounted files (DESIGN.md §5), never from annotations.
PyGithub's own retry loop, which sleeps through rate limits for minutes, is replaced by a short
bounded one that only retries connections that never reached GitHub; everything else is answered
to the sender, who redelivers.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from github import Auth, Github, GithubIntegration
from urllib3.util.retry import Retry

from common import PermanentError
from common.secrets import read_secret, read_secret_file, unmounted

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_TIMEOUT_SECONDS = 10
TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
"""Installation tokens live an hour; one is replaced this long before it expires."""


def bounded_retry() -> Retry:
    """Retry only failed connections (nothing was sent), twice, quickly; never sleep on a status."""
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


@dataclass(frozen=True)
class GitHubSettings:
    api_url: str
    timeout: int
    """Seconds per request (``GITHUB_TIMEOUT_SECONDS``); PyGithub takes whole seconds."""
    token: str | None
    app_id: str | None
    app_private_key: str | None

    @classmethod
    def from_env(cls) -> GitHubSettings:
        key_file = os.environ.get("GITHUB_APP_PRIVATE_KEY_FILE")
        return cls(
            api_url=(os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/"),
            timeout=_timeout(os.environ.get("GITHUB_TIMEOUT_SECONDS")),
            token=read_secret("GITHUB_TOKEN"),
            app_id=os.environ.get("GITHUB_APP_ID") or None,
            app_private_key=read_secret_file(key_file) if key_file else None,
        )


def _timeout(value: str | None) -> int:
    """Whole seconds (PyGithub's unit), 1 to 60; anything else is a configuration error."""
    if not value:
        return DEFAULT_TIMEOUT_SECONDS
    if not value.isdigit() or not 1 <= int(value) <= 60:
        raise PermanentError(
            "GitHubNotConfigured", f"GITHUB_TIMEOUT_SECONDS must be whole seconds from 1 to 60, not {value!r}"
        )
    return int(value)


class GitHubClients:
    """Hands out a ``Github`` client for a repository, caching App installations and tokens."""

    def __init__(self, settings: GitHubSettings, clock: type[datetime] = datetime) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._installations: dict[tuple[str, str], int] = {}
        self._tokens: dict[int, tuple[str, datetime]] = {}
        self._clients: dict[str, Github] = {}
        self._app: GithubIntegration | None = None
        if settings.app_id and settings.app_private_key:
            self._app = GithubIntegration(
                auth=Auth.AppAuth(settings.app_id, settings.app_private_key),
                base_url=settings.api_url,
                timeout=settings.timeout,
                retry=bounded_retry(),
                seconds_between_requests=None,
                seconds_between_writes=None,
            )
        elif not settings.token:
            raise PermanentError(
                "GitHubNotConfigured",
                "the GitHub function has no credentials: set GITHUB_TOKEN(_FILE), or "
                "GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY_FILE"
                + unmounted("GITHUB_TOKEN_FILE", "GITHUB_APP_PRIVATE_KEY_FILE"),
            )

    def for_repo(self, owner: str, repo: str) -> Github:
        token = self._installation_token(owner, repo) if self._app else self.settings.token
        assert token is not None
        with self._lock:
            if token not in self._clients:
                self._clients[token] = Github(
                    auth=Auth.Token(token),
                    base_url=self.settings.api_url,
                    timeout=self.settings.timeout,
                    retry=bounded_retry(),
                    seconds_between_requests=None,
                    seconds_between_writes=None,
                    lazy=True,
                )
            return self._clients[token]

    def forget_installation(self, owner: str, repo: str) -> None:
        """Drop a cached installation (the App was uninstalled or moved)."""
        with self._lock:
            self._installations.pop((owner, repo), None)

    def _installation_token(self, owner: str, repo: str) -> str:
        assert self._app is not None
        with self._lock:
            installation = self._installations.get((owner, repo))
        if installation is None:
            installation = self._app.get_repo_installation(owner, repo).id
            with self._lock:
                self._installations[(owner, repo)] = installation
        now = self._clock.now(UTC)
        with self._lock:
            cached = self._tokens.get(installation)
        if cached is not None and cached[1] - TOKEN_REFRESH_MARGIN > now:
            return cached[0]
        grant = self._app.get_access_token(installation)
        expires = grant.expires_at
        with self._lock:
            stale = self._tokens.get(installation)
            self._tokens[installation] = (grant.token, expires)
            if stale is not None:
                self._clients.pop(stale[0], None)
        return grant.token
