"""Webhook settings and signing: HMAC-SHA256 over ``timestamp + "." + body``, with a per-namespace key.

The key is the file ``$WEBHOOK_SECRET_DIR/<namespace>``, else ``$WEBHOOK_SECRET_DIR/default``
(a Secret mounted as a directory, one key per namespace). It is read on every delivery, so a
rotated Secret takes effect without a restart; every key read is handed to the redaction
boundary, so a receiver that echoes it back never gets it into an answer, record, log line or
Event. How receivers verify: docs/webhook.md.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from common import PermanentError, ServiceSettings
from common.redaction import remember
from common.settings import SecretDirectory

DEFAULT_SECRET_DIR = "/var/run/secrets/tekton-integrations/webhook"  # noqa: S105 -- a directory, not a secret
SIGNATURE_HEADER = "X-Tekton-Integrations-Signature-256"
TIMESTAMP_HEADER = "X-Tekton-Integrations-Timestamp"
DELIVERY_HEADER = "X-Tekton-Integrations-Delivery"
FALLBACK_KEY = "default"
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class WebhookSettings(ServiceSettings):
    """``WEBHOOK_*``: where the signing keys are mounted, and the total deadline of a delivery."""

    prefix: ClassVar[str] = "WEBHOOK"
    service: ClassVar[str] = "Webhook"

    secret_dir: SecretDirectory = Field(DEFAULT_SECRET_DIR, examples=["default"])
    """``WEBHOOK_SECRET_DIR``: one file per namespace, named after it, plus ``default``."""


def signing_key(settings: WebhookSettings, namespace: str) -> bytes:
    """The key that signs ``namespace``'s requests; ``<Service>NotConfigured`` when there is none.

    Only a namespace file that does not exist falls back to ``default``: an empty or unreadable
    one is a mistake to fix, never a reason to sign with another tenant's key.
    """
    directory = Path(settings.secret_dir)
    names = dict.fromkeys([namespace, FALLBACK_KEY] if _NAMESPACE.match(namespace) else [FALLBACK_KEY])
    for name in names:
        path = directory / name
        try:
            key = path.read_bytes().strip()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise _missing(
                settings, namespace, f"{path} cannot be read ({e.strerror or type(e).__name__})"
            ) from e
        if not key:
            raise _missing(settings, namespace, f"{path} is empty")
        remember(key.decode("utf-8", "replace"))  # as a receiver's echo of it would be decoded
        return key
    raise _missing(settings, namespace, "no file " + " or ".join(str(directory / name) for name in names))


def _missing(settings: WebhookSettings, namespace: str, why: str) -> PermanentError:
    return settings.not_configured(
        f"no signing key for namespace {namespace!r}: {why}; mount a file named after the namespace, "
        f"or {FALLBACK_KEY}, in {settings.variable('secret_dir')}. Nothing was sent"
    )


def signature(key: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Tekton-Integrations-Signature-256`` value: ``sha256=<hex>``."""
    digest = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(key: bytes, body: bytes, delivery: str, timestamp: int) -> dict[str, str]:
    """Every header of a webhook request except Host and User-Agent."""
    stamp = str(timestamp)
    return {
        "Content-Type": "application/json",
        DELIVERY_HEADER: delivery,
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: signature(key, stamp, body),
    }
