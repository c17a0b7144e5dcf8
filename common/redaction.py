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
  ``[REDACTED]``: GitHub, GitLab and Slack tokens, Slack webhook URLs, AWS access key ids and
  secret access keys (by their name), JWTs, private key blocks, ``Authorization`` values and
  credentials in URL query strings.
- ``redact_lines(lines)``: a log's tail made fit to show (``common.steplogs``): terminal escapes
  stripped, and a private key masked whole although its lines are split, or begin before the tail.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Sequence
from urllib.parse import quote

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 6
"""Shorter values (``true``, a port) are not masked: they would mangle ordinary text."""
MAX_REMEMBERED = 4096
"""Rotated installation tokens accumulate; the oldest are forgotten past this many."""

_PEM_BODY = r"(?:[ \t]*[A-Za-z0-9+/=]{16,}[ \t]*\r?\n)*(?:[ \t]*[A-Za-z0-9+/=]+[ \t]*\r?\n)?"
"""Lines of a key's body before its last line: full ones, then the last, shorter one."""
TOKEN_SHAPES = re.compile(
    "|".join(
        (
            # a private key block, or what a text holds of it: to its end, or from its start
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            rf"(?m:^{_PEM_BODY}[^\n]*?-----END [A-Z0-9 ]*PRIVATE KEY-----)",
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
LABELLED_SECRETS = re.compile(
    # (the label, kept)(the value, masked)
    r"((?i:aws_secret_access_key|aws-secret-access-key|secretaccesskey)[\"']?\s*[:=]\s*[\"']?)"
    r"([A-Za-z0-9/+=]{20,})"
    r"|((?i:proxy-authorization|authorization)[\"']?\s*[:=]\s*[\"']?)"
    r"((?:(?i:bearer|basic|token)\s+)?[A-Za-z0-9._~+/=-]{8,})"
)
"""Secrets recognisable by the name before them: ``aws_secret_access_key = ...``, ``Authorization: ...``."""
PEM_ARMOR = re.compile(r"-----(?:BEGIN|END) [A-Z0-9 ]+-----")
"""A PEM block's first or last line: the same in every key, so never remembered as a secret (masking
it would hide the block from ``TOKEN_SHAPES``, and another key's body would show)."""
PEM_BODY = re.compile(r"^[A-Za-z0-9+/]{64}$")
"""A full line of a PEM block's body (RFC 7468: 64 characters a line)."""
ANSI_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
"""Terminal escape sequences (colours, cursor moves, titles) in a program's output."""

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
    lines = (line for line in secret.splitlines() if not PEM_ARMOR.fullmatch(line.strip()))
    forms = {secret, quote(secret, safe=""), *lines}
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
    text = LABELLED_SECRETS.sub(_keep_label, text)
    return TOKEN_SHAPES.sub(MASK, text)


def redact_lines(lines: Sequence[str]) -> list[str]:
    """A program's output lines (a log's tail), made fit to show: terminal escapes and control
    characters removed, a line redrawn with ``\\r`` as its last drawing, then ``redact``ed as one
    text, so a private key spread over lines is masked whole, also where the tail begins inside
    it. Lines of a key's body alone (a tail inside the key: neither its first nor its last line)
    are masked too; a masked block counts as one line."""
    text = "\n".join(_printable(line) for line in lines)
    shown = redact(text).split("\n") if text else []
    return [MASK if _is_key_body(line) else line for line in shown]


def _printable(line: str) -> str:
    line = ANSI_ESCAPES.sub("", line).rstrip("\r\n")
    line = line.rsplit("\r", 1)[-1]  # a progress bar redrawn in place: what the terminal last showed
    return "".join(c for c in line if c == "\t" or c.isprintable())


def _is_key_body(line: str) -> bool:
    """A 64-character base64 line with both cases and a digit: not hex (digests), not a word."""
    return bool(
        PEM_BODY.match(line)
        and any(c.isupper() for c in line)
        and any(c.islower() for c in line)
        and any(c.isdigit() for c in line)
    )


def _keep_label(match: re.Match[str]) -> str:
    label = match.group(1) if match.group(1) is not None else match.group(3)
    return f"{label}{MASK}"


def _secrets_pattern() -> re.Pattern[str] | None:
    global _pattern  # noqa: PLW0603
    with _lock:
        if _pattern is None and _secrets:
            longest_first = sorted(_secrets, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(secret) for secret in longest_first))
        return _pattern
