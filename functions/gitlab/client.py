"""The GitLab client: one instance (``GITLAB_URL``), one token, bounded calls.

Secrets come from ``GITLAB_TOKEN`` or the file named by ``GITLAB_TOKEN_FILE``, read on each call so
a rotated file takes effect. The token is only ever sent to ``GITLAB_URL``: a run's ``url``
annotation may name that instance but never another one, and redirects are not followed
(requests would carry the ``PRIVATE-TOKEN`` header along). python-gitlab's retries and its
sleeps through rate limits are off: a 429 or a 5xx with ``Retry-After`` is handed back to the
sender, who redelivers.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import gitlab
import requests

from common import PermanentError, TargetNotAllowedError
from common.secrets import read_secret
from functions.gitlab.errors import RedirectRefusedError, ThrottledError

DEFAULT_URL = "https://gitlab.com"
TIMEOUT_SECONDS = 10.0
MAX_RETRY_AFTER = 3600.0
DEFAULT_RETRY_AFTER = 60.0


def normalize_url(url: str) -> str:
    """``https://gitlab.example.com``: lower-case scheme and host, no default port, no ``/api/v4``."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    default_port = {"http": 80, "https": 443}.get(scheme)
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    path = parts.path.rstrip("/").removesuffix("/api/v4").rstrip("/")
    return f"{scheme}://{host}{port}{path}"


@dataclass(frozen=True)
class GitLabSettings:
    url: str
    token: str

    @classmethod
    def from_env(cls) -> GitLabSettings:
        try:
            token = read_secret("GITLAB_TOKEN")
        except OSError as e:  # the Secret is optional in the deployment: not mounted yet
            raise PermanentError("GitLabNotConfigured", f"cannot read GITLAB_TOKEN_FILE: {e.strerror}") from e
        if not token:
            raise PermanentError(
                "GitLabNotConfigured",
                "the GitLab function has no token: set GITLAB_TOKEN or GITLAB_TOKEN_FILE",
            )
        return cls(url=normalize_url(os.environ.get("GITLAB_URL") or DEFAULT_URL), token=token)

    def check_instance(self, requested: str | None) -> None:
        """Refuse a run whose ``url`` annotation names another instance than ``GITLAB_URL``."""
        if requested is not None and normalize_url(requested) != self.url:
            raise TargetNotAllowedError(
                f"gitlab.integrations.tekton.dev/url {normalize_url(requested)} is not the GitLab instance "
                f"this function serves ({self.url}); its token is only sent there"
            )


_clients: dict[GitLabSettings, gitlab.Gitlab] = {}
_lock = threading.Lock()


def client(settings: GitLabSettings) -> gitlab.Gitlab:
    """A ``Gitlab`` client for ``settings``, kept while the token stays the same."""
    with _lock:
        if settings not in _clients:
            _clients.clear()  # one instance, one live token: drop a rotated one's client
            session = requests.Session()
            session.hooks["response"].append(_refuse_redirects_and_throttling)
            _clients[settings] = gitlab.Gitlab(
                settings.url,
                private_token=settings.token,
                timeout=TIMEOUT_SECONDS,
                retry_transient_errors=False,
                session=session,
            )
        return _clients[settings]


def post_status(settings: GitLabSettings, project: str, sha: str, fields: dict[str, str]) -> None:
    """``POST /projects/:id/statuses/:sha``; ``project`` is a numeric id or a path (URL-encoded here)."""
    handle = client(settings).projects.get(int(project) if project.isdigit() else project, lazy=True)
    handle.commits.get(sha, lazy=True).statuses.create(
        fields, obey_rate_limit=False, retry_transient_errors=False, max_retries=0
    )


def _refuse_redirects_and_throttling(response: requests.Response, *_: Any, **__: Any) -> None:
    status = response.status_code
    if response.is_redirect:
        response.close()
        raise RedirectRefusedError(status, response.headers.get("Location", ""))
    if status == 429 or (status >= 500 and "Retry-After" in response.headers):
        response.close()
        raise ThrottledError(status, retry_after(response.headers))


def retry_after(headers: Any) -> float:
    """Seconds from ``Retry-After`` (seconds or HTTP date) or ``RateLimit-Reset``, bounded."""
    value = str(headers.get("Retry-After") or "").strip()
    wait: float | None = None
    if value.isdigit():
        wait = float(value)
    elif value:
        try:
            wait = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            wait = None
    reset = str(headers.get("RateLimit-Reset") or "").strip()
    if wait is None and reset.isdigit():
        wait = float(reset) - time.time()
    return min(MAX_RETRY_AFTER, max(1.0, DEFAULT_RETRY_AFTER if wait is None else wait))
