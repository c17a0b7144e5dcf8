"""Check mail addresses taken from annotations and the environment before they reach a header.

Pure. Recipients must be plain ``local@domain.tld`` addresses (dot-atom local part, ASCII host
name with at least one dot): no display names, quoted strings, comments or line breaks, so an
annotation cannot smuggle in another header or recipient.
"""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.policy import SMTP

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+")
MAX_ADDRESS = 254


def recipient(value: str) -> str:
    """``value`` as a recipient address with a lower-case domain; ``ValueError`` if it is not one."""
    if len(value) > MAX_ADDRESS or not _ADDRESS.fullmatch(value):
        raise ValueError(f"{value[:80]!r} is not a plain address such as team@example.org")
    local, _, domain = value.rpartition("@")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValueError(f"{value[:80]!r} is not a plain address such as team@example.org")
    return f"{local}@{domain.lower()}"


def recipients(values: list[str]) -> list[str]:
    """Each address checked, duplicates dropped, order kept."""
    return list(dict.fromkeys(recipient(value) for value in values))


def domain(address: str) -> str:
    return address.rpartition("@")[2]


def sender(value: str) -> str:
    """A ``From`` value, ``ci@example.org`` or ``Tekton CI <ci@example.org>``; ``ValueError`` if not."""
    if any(char in value for char in "\r\n\0"):
        raise ValueError("must be a single line")
    try:
        parsed = SMTP.header_factory("From", value)
    except (HeaderParseError, IndexError, ValueError) as e:
        raise ValueError(f"{value[:80]!r} is not an address") from e
    addresses: tuple[Address, ...] = getattr(parsed, "addresses", ())
    if len(addresses) != 1 or not addresses[0].domain or parsed.defects:
        raise ValueError(f"{value[:80]!r} must be exactly one address")
    return str(addresses[0])
