"""GitHub credentials: a token, or a GitHub App whose installation is looked up per repository.

Secrets come from the environment or mounted files (``GitHubSettings``), never from annotations.
``GitHubClients`` hands out a ``rest.Repo`` sent with the right credential: the token, or an
installation token, obtained with an App JWT (signed by PyJWT, imported only when an App signs)
and cached until shortly before it expires. Installation tokens and JWTs are handed to the
redaction boundary as they are made. ``rest`` (urllib3) is imported by the first report.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from pydantic import SecretStr

from common import ServiceSettings
from common.redaction import remember

if TYPE_CHECKING:
    from functions.github.rest import Api, Repo

DEFAULT_API_URL = "https://api.github.com"
TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
"""Installation tokens live an hour; one is replaced this long before it expires."""
JWT_BACKDATE_SECONDS = 60
JWT_LIFETIME_SECONDS = 540
"""An App JWT is issued a minute in the past (clock drift) and valid ten minutes in all, GitHub's most."""


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


class GitHubClients:
    """Hands out an authenticated ``Repo``, caching App installations and installation tokens.

    Shared by every thread; connections are pooled per thread (``rest.Connections``).
    """

    def __init__(self, settings: GitHubSettings, clock: type[datetime] = datetime) -> None:
        if not (settings.app_id and settings.app_private_key) and not settings.token:
            raise settings.not_configured(
                "the GitHub function has no credentials: set GITHUB_TOKEN(_FILE), or "
                "GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY_FILE",
                "token",
                "app_private_key",
            )
        from functions.github.rest import Connections  # noqa: PLC0415 -- urllib3 with the first report

        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._installations: dict[tuple[str, str], int] = {}
        self._tokens: dict[int, tuple[str, datetime]] = {}
        self._connections = Connections(settings.timeout_seconds)

    @property
    def is_app(self) -> bool:
        return bool(self.settings.app_id and self.settings.app_private_key)

    def repo(self, owner: str, name: str) -> Repo:
        """``owner/name``, sent with the token or the App's installation token for it."""
        from functions.github.rest import Repo  # noqa: PLC0415 -- urllib3 with the first report

        if self.is_app:
            token = self._installation_token(owner, name)
        else:
            assert self.settings.token is not None
            token = self.settings.token.get_secret_value()
        return Repo(self._api(f"token {token}"), owner, name)

    def forget_installation(self, owner: str, repo: str) -> None:
        """Drop a cached installation (the App was uninstalled or moved)."""
        with self._lock:
            self._installations.pop((owner, repo), None)

    def _api(self, authorization: str) -> Api:
        from functions.github.rest import Api  # noqa: PLC0415 -- urllib3 with the first report

        return Api(self.settings.base_url, authorization, self._connections)

    def _installation_token(self, owner: str, repo: str) -> str:
        with self._lock:
            installation = self._installations.get((owner, repo))
        app: Api | None = None
        if installation is None:
            app = self._api(f"Bearer {self._app_jwt()}")
            found = app.request("GET", f"/repos/{owner}/{repo}/installation").object()
            installation = int(found["id"])
            with self._lock:
                self._installations[(owner, repo)] = installation
        now = self._clock.now(UTC)
        with self._lock:
            cached = self._tokens.get(installation)
        if cached is not None and cached[1] - TOKEN_REFRESH_MARGIN > now:
            return cached[0]
        app = app or self._api(f"Bearer {self._app_jwt()}")
        grant = app.request("POST", f"/app/installations/{installation}/access_tokens").object()
        token, expires = str(grant["token"]), _moment(str(grant["expires_at"]))
        remember(token)
        with self._lock:
            self._tokens[installation] = (token, expires)
        return token

    def _app_jwt(self) -> str:
        """A JWT that authenticates as the App (RS256 over its id), valid ten minutes."""
        import jwt  # noqa: PLC0415 -- PyJWT and cryptography only when an App signs

        assert self.settings.app_id is not None
        assert self.settings.app_private_key is not None
        now = int(time.time())
        claims = {
            "iat": now - JWT_BACKDATE_SECONDS,
            "exp": now + JWT_LIFETIME_SECONDS,
            "iss": self.settings.app_id,
        }
        signed = jwt.encode(claims, self.settings.app_private_key.get_secret_value(), algorithm="RS256")
        remember(signed)
        return signed


def _moment(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
