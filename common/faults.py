"""One fault table: a service's HTTP answer or transport failure becomes a permanent or temporary error.

Owns the mapping every integration shares (DESIGN.md §1): 408, 425, 429 and 5xx are temporary,
other 4xx and redirects permanent; rate-limit headers (``Retry-After`` as seconds or a date,
``X-RateLimit-Reset``/``RateLimit-Reset`` when nothing is left) give the wait passed back to the
sender, within one cap; timeouts and refused connections are temporary. Reasons are named after
the service: ``<Service>Unauthorized``, ``<Service>RateLimited``, ``<Service>Timeout``, ...

An integration declares only its ``Faults`` (the service's name and a hint per status, saying
what the user should do) and its real special cases, e.g. GitHub's secondary rate limits arrive
as 403 (``rate_limited=True``) and Slack's as ``ok: false`` with a code. It makes no call.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from common import metrics
from common.errors import IntegrationError, PermanentError, TemporaryError, clip
from common.redaction import redact

MAX_RETRY_AFTER = 3600.0
"""Longest wait passed on to the sender; a later reset is checked again on redelivery."""
DEFAULT_RATE_LIMIT_WAIT = 60.0
"""Wait passed on when a service rate-limits without saying for how long."""
MAX_DETAIL = 300
"""Characters of a service's own error text kept in a message."""
TEMPORARY_STATUSES = frozenset({408, 425, 429})

_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}


@dataclass(frozen=True)
class Faults:
    """How one service's failures read: its name and, per HTTP status, what the user should do."""

    service: str
    """``GitHub``: prefixes every reason (``GitHubNotFound``) and names the service in messages."""
    hints: Mapping[int, str] = field(default_factory=dict)
    reasons: Mapping[int, str] = field(default_factory=lambda: dict(_REASONS))
    """Reason suffix per status; any other 4xx is ``Rejected``."""

    def reason(self, suffix: str) -> str:
        return f"{self.service.replace(' ', '')}{suffix}"

    def for_status(
        self,
        status: int,
        headers: Mapping[str, str] | None = None,
        *,
        what: str,
        detail: str = "",
        rate_limited: bool = False,
    ) -> IntegrationError:
        """The error for an HTTP answer ``status`` to ``what`` (e.g. ``create check run on acme/w``).

        ``detail`` is the service's own text (redacted and cut here); ``rate_limited`` marks an
        answer the service documents as a rate limit although its status is not 429.
        """
        lowered = {key.lower(): value for key, value in (headers or {}).items()}
        metrics.rate_limit(self.service, lowered)
        said = clip(redact(" ".join(detail.split())), MAX_DETAIL)
        if status == 429 or rate_limited:
            wait = retry_after(lowered, rate_limit=True) or DEFAULT_RATE_LIMIT_WAIT
            return TemporaryError(
                self.reason("RateLimited"),
                f"{self.service} rate-limited {what}; retry in {wait:.0f}s",
                wait,
            )
        if status >= 500 or status in TEMPORARY_STATUSES:
            return TemporaryError(
                self.reason("Unavailable"),
                f"{self.service} answered {status} to {what}" + (f": {said}" if said else ""),
                retry_after(lowered),
            )
        if 300 <= status < 400:
            location = clip(redact(lowered.get("location", "?")), 200)
            return PermanentError(
                self.reason("Redirected"),
                f"{self.service} redirected {what} to {location} ({status}); redirects are not "
                "followed, so credentials never travel elsewhere: configure the final address",
            )
        hint = self.hints.get(status, f"{self.service} refused the request")
        message = f"{what}: {status} {hint}" + (f" ({said})" if said else "")
        return PermanentError(self.reason(self.reasons.get(status, "Rejected")), message)

    def seen(self, headers: Mapping[str, str]) -> None:
        """Note the rate-limit budget an answer reports (``X-RateLimit-Remaining``/``-Limit``),
        for an answer that is not an error: ``for_status`` notes those of every error itself."""
        metrics.rate_limit(self.service, {key.lower(): value for key, value in headers.items()})

    def timeout(self, what: str, seconds: float | None = None) -> TemporaryError:
        within = f" within {seconds:g}s" if seconds else " in time"
        return TemporaryError(self.reason("Timeout"), f"{self.service} did not answer {what}{within}")

    def unreachable(self, what: str, error: BaseException) -> TemporaryError:
        """A request that got no answer; only the exception's type is kept (never a URL)."""
        if isinstance(error, TimeoutError):
            return self.timeout(what)
        return TemporaryError(
            self.reason("Unreachable"), f"could not reach {self.service} to {what}: {type(error).__name__}"
        )

    def not_configured(self, message: str) -> PermanentError:
        return PermanentError(self.reason("NotConfigured"), message)


def retry_after(
    headers: Mapping[str, str], *, rate_limit: bool = False, now: float | None = None
) -> float | None:
    """Seconds to wait, from lower-cased ``headers``, within [1, ``MAX_RETRY_AFTER``]; ``None`` if unsaid.

    ``Retry-After`` (seconds or an HTTP date) wins. For a rate limit, a reset time counts only
    when nothing is left (``X-RateLimit-Remaining: 0``): GitHub sends the reset on every answer,
    and waiting for it after a secondary limit would wait up to an hour for nothing.
    """
    now = time.time() if now is None else now
    value = headers.get("retry-after", "").strip()
    wait: float | None = None
    if value.isdigit():
        wait = float(value)
    elif value:
        try:
            wait = (parsedate_to_datetime(value) - datetime.fromtimestamp(now, UTC)).total_seconds()
        except (TypeError, ValueError):
            wait = None
    if wait is None and rate_limit:
        remaining = headers.get("x-ratelimit-remaining", headers.get("ratelimit-remaining", ""))
        reset = headers.get("x-ratelimit-reset", headers.get("ratelimit-reset", "")).strip()
        if remaining.strip() == "0" and reset.isdigit():
            moment = float(reset)
            wait = moment - now if moment > 10**9 else moment  # epoch seconds, or a delta
    if wait is None:
        return None
    return min(MAX_RETRY_AFTER, max(1.0, wait))
