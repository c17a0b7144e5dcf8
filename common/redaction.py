"""The one redaction boundary: no credential leaves a function in text (DESIGN.md §4).

Owns knowing which credentials this process holds and masking them, and well-known token shapes,
in any text. It does not decide where text leaves: the HTTP edge, the record store, the log
formatter, the Kubernetes Event writer and the CLI's output each pass their text through
``redact`` (a service may echo a request's ``Authorization`` header in an error body, and that
body may end up in any of them).

- ``remember(secret)``: called by ``common.settings`` for every secret setting it reads, and by
  clients for credentials they obtain (e.g. a GitHub App installation token). Also remembers the
  forms a secret travels in: URL-encoded, and base64 inside HTTP Basic and SMTP AUTH.
- ``redact(text)``: every remembered secret and every well-known token shape replaced by
  ``[REDACTED]``.
"""

from __future__ import annotations

import base64
import re
import threading
from urllib.parse import quote

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 6
"""Shorter values (``true``, a port) are not masked: they would mangle ordinary text."""
MAX_REMEMBERED = 4096
"""Rotated installation tokens accumulate; the oldest are forgotten past this many."""

TOKEN_SHAPES = re.compile(
    "|".join(
        (
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            r"\bgh[pousr]_[A-Za-z0-9_]{16,}",  # GitHub tokens
            r"\bgithub_pat_[A-Za-z0-9_]{20,}",
            r"\bxox[abeposr]-[A-Za-z0-9-]{8,}",  # Slack tokens
            r"\bxapp-[A-Za-z0-9-]{8,}",
            r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+",
            r"\bglpat-[A-Za-z0-9_-]{16,}",  # GitLab
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",  # JWTs
            # Authorization header values
            r"\b(?:[Bb]earer|[Tt]oken|[Bb]asic|BEARER|TOKEN|BASIC)\s+"
            r"(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{16,}",
            r"(?<=[?&])(?:sig|signature|token|access_token|key|api_key|code)=[^&#\s\"']+",
        )
    ),
    re.DOTALL,
)

_lock = threading.Lock()
_secrets: dict[str, None] = {}
"""Insertion-ordered set of every form of every remembered secret."""
_pattern: re.Pattern[str] | None = None


def remember(secret: str | None, *, user: str | None = None) -> None:
    """Mask ``secret`` (and the forms it travels in) in everything redacted from now on.

    ``user``: the user name it is a password of, so HTTP Basic and SMTP AUTH PLAIN are masked too.
    """
    global _pattern  # noqa: PLW0603 -- one process-wide set, by design
    if not secret or len(secret.strip()) < MIN_SECRET_LENGTH:
        return
    secret = secret.strip()
    forms = {secret, quote(secret, safe=""), *secret.splitlines()}
    forms.add(base64.b64encode(secret.encode()).decode())  # SMTP AUTH LOGIN sends it alone
    if user:
        for joined in (f"{user}:{secret}", f"\0{user}\0{secret}", f"{user}\0{user}\0{secret}"):
            forms.add(base64.b64encode(joined.encode()).decode())
    new = [form for form in forms if len(form.strip()) >= MIN_SECRET_LENGTH and form not in _secrets]
    if not new:
        return
    with _lock:
        for form in new:
            _secrets[form.strip()] = None
        while len(_secrets) > MAX_REMEMBERED:
            del _secrets[next(iter(_secrets))]
        _pattern = None


def redact(text: str) -> str:
    """``text`` with every remembered secret and well-known token shape replaced by ``[REDACTED]``."""
    if not text:
        return text
    pattern = _secrets_pattern()
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return TOKEN_SHAPES.sub(MASK, text)


def _secrets_pattern() -> re.Pattern[str] | None:
    global _pattern  # noqa: PLW0603
    with _lock:
        if _pattern is None and _secrets:
            longest_first = sorted(_secrets, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(secret) for secret in longest_first))
        return _pattern
