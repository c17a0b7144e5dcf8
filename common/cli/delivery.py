"""POST a Tekton event to a function URL in binary mode, as Tekton's sender does, and read the answer.

Standard library only (``urllib.request``); no retries: the caller prints the answer and decides.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from common.cli.errors import CliError, ExitCode
from common.cli.tekton_events import TektonEvent

TIMEOUT_SECONDS = 60.0
"""Longer than a function's own in-process retries, shorter than a Knative request timeout."""


@dataclass(frozen=True)
class Answer:
    """A function's HTTP answer: status, JSON body (or text), and ``Retry-After`` if any."""

    status: int
    body: Any
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def outcome(self) -> str:
        """The runtime's ``outcome`` (reported, failed, retry, ignored), else ``HTTP <status>``."""
        if isinstance(self.body, dict) and isinstance(self.body.get("outcome"), str):
            return str(self.body["outcome"])
        return f"HTTP {self.status}"

    @property
    def detail(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("detail") or self.body.get("error") or "")
        return str(self.body or "")[:300]

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"status": self.status, "body": self.body}
        if self.retry_after:
            answer["retryAfter"] = self.retry_after
        return answer


def check_url(url: str) -> str:
    """An ``http``/``https`` URL with a host, else a usage error."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"{url!r} is not an http(s) URL", ExitCode.USAGE)
    return url


def url_argument(text: str) -> str:
    """``check_url`` for argparse, which reports ``ArgumentTypeError`` as a usage error."""
    try:
        return check_url(text)
    except CliError as e:
        raise argparse.ArgumentTypeError(e.message) from e


def post(url: str, event: TektonEvent, timeout: float = TIMEOUT_SECONDS) -> Answer:
    """Send ``event``; any HTTP status is an ``Answer``, a transport failure is a ``CliError``."""
    request = urllib.request.Request(  # noqa: S310 -- check_url allows only http and https
        check_url(url), data=json.dumps(event.data).encode(), headers=dict(event.headers), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 -- as above
            return _answer(response.status, response.read(), response.headers.get("Retry-After"))
    except urllib.error.HTTPError as e:
        with e:
            return _answer(e.code, e.read(), e.headers.get("Retry-After"))
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise CliError(f"could not POST to {url}: {reason}", ExitCode.ERROR) from e


def _answer(status: int, raw: bytes, retry_after: str | None) -> Answer:
    text = raw.decode("utf-8", "replace")
    try:
        body: Any = json.loads(text) if text.strip() else None
    except ValueError:
        body = text
    return Answer(status, body, retry_after)
