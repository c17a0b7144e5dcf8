"""Google Chat's fault hints, and its special cases, read from Google's error body.

Google APIs answer errors as ``{"error": {"code": 404, "message": "...", "status": "NOT_FOUND"}}``,
``status`` being a canonical ``google.rpc.Code`` name (HTTP 400 INVALID_ARGUMENT, 401
UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND, 409 ALREADY_EXISTS or ABORTED, 429
RESOURCE_EXHAUSTED, 5xx INTERNAL/UNAVAILABLE/DEADLINE_EXCEEDED). HTTP status, ``Retry-After`` and
transport failures go through the shared table (``common.faults``); what is left here:

- 409 ``ALREADY_EXISTS`` to a create with a ``messageId``: the message exists, which is the point
  of a deterministic id (``functions.googlechat.client`` treats it as done, not as an error);
- 409 ``ABORTED``: a concurrency conflict on Google's side, worth retrying;
- ``RESOURCE_EXHAUSTED`` is a rate limit whatever the HTTP status says.

A hint never repeats the webhook URL (it is a credential); it names the setting where it lives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from common import Faults, TemporaryError
from common.errors import IntegrationError, clip
from common.faults import retry_after

SPACES_DIR = "GOOGLECHAT_SPACES_DIR"
_REPLACE = f"create a new incoming webhook in the space and put its URL in the space's file in {SPACES_DIR}"

FAULTS = Faults(
    "Google Chat",
    {
        400: f"Google Chat refused the message; if it says the API key is not valid, the webhook URL in "
        f"{SPACES_DIR} is damaged: copy it again from the space's Apps & integrations > Webhooks",
        401: f"Google Chat did not accept the webhook's credentials (its key or token): {_REPLACE}",
        403: "Google Chat does not let this webhook post in the space: incoming webhooks may be turned "
        f"off for the space or its organizational unit (ask a Workspace admin), or {_REPLACE}",
        404: f"Google Chat has no such space or webhook (deleted?): {_REPLACE}",
    },
)


@dataclass(frozen=True)
class GoogleError:
    """What Google said: the canonical ``status`` name (empty for a body that is not Google's)
    and its ``message`` (or the first characters of a proxy's page)."""

    status: str
    message: str

    @property
    def detail(self) -> str:
        return f"{self.status}: {self.message}" if self.status else self.message


def parse_error(text: str) -> GoogleError:
    """Google's ``{"error": {...}}`` body, or the text itself when it is anything else."""
    try:
        body = json.loads(text)
    except ValueError:
        return GoogleError("", clip(" ".join(text.split()), 300))
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return GoogleError("", clip(" ".join(text.split()), 300))
    return GoogleError(str(error.get("status") or ""), str(error.get("message") or ""))


def already_exists(status: int, error: GoogleError) -> bool:
    """Chat refusing a second message with the same ``messageId``."""
    return status == 409 and error.status == "ALREADY_EXISTS"


def classify(status: int, headers: Mapping[str, str], error: GoogleError, *, what: str) -> IntegrationError:
    """The runtime error for Google Chat answering ``status`` to ``what`` (``post ... to space 'ci'``)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    if status == 409 and error.status == "ABORTED":
        return TemporaryError(
            FAULTS.reason("Unavailable"),
            f"Google Chat aborted {what} (ABORTED, a conflict on its side); it is retried",
            retry_after(lowered),
        )
    rate_limited = error.status == "RESOURCE_EXHAUSTED"
    return FAULTS.for_status(status, lowered, what=what, detail=error.detail, rate_limited=rate_limited)
