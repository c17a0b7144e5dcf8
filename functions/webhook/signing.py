"""Sign webhook bodies: HMAC-SHA256 over ``timestamp + "." + body``, with a per-namespace secret.

The secret is the file ``$WEBHOOK_SECRET_DIR/<namespace>``, else ``$WEBHOOK_SECRET_DIR/default``
(a Secret mounted as a directory, one key per namespace). It is read on every delivery, so a
rotated Secret takes effect without a restart, and never logged or recorded. How receivers
verify: docs/webhook.md.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import Path

from common import PermanentError

DEFAULT_SECRET_DIR = "/var/run/secrets/tekton-integrations/webhook"  # noqa: S105 -- a directory, not a secret
SIGNATURE_HEADER = "X-Tekton-Integrations-Signature-256"
TIMESTAMP_HEADER = "X-Tekton-Integrations-Timestamp"
DELIVERY_HEADER = "X-Tekton-Integrations-Delivery"
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def secret_for(namespace: str) -> bytes:
    """The signing secret for ``namespace``; ``PermanentError`` when none is mounted."""
    directory = Path(os.environ.get("WEBHOOK_SECRET_DIR") or DEFAULT_SECRET_DIR)
    names = [namespace, "default"] if _NAMESPACE.match(namespace) else ["default"]
    for name in names:
        try:
            secret = (directory / name).read_bytes().strip()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
        if secret:
            return secret
    raise PermanentError(
        "WebhookSecretMissing",
        f"no signing secret for namespace {namespace!r}: mount a file named {namespace} or default "
        "in the function's WEBHOOK_SECRET_DIR; nothing was sent",
    )


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Tekton-Integrations-Signature-256`` value: ``sha256=<hex>``."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: bytes, body: bytes, delivery: str, timestamp: int) -> dict[str, str]:
    """Every header of a webhook request except Host and User-Agent."""
    stamp = str(timestamp)
    return {
        "Content-Type": "application/json",
        DELIVERY_HEADER: delivery,
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: signature(secret, stamp, body),
    }
