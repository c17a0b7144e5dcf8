"""Read credentials from the environment or from mounted files, never from annotations."""

from __future__ import annotations

import os
from pathlib import Path


def read_secret(variable: str) -> str | None:
    """``$VARIABLE``, else the stripped contents of the file named by ``$VARIABLE_FILE``.

    A named file that does not exist counts as unset: Secrets are mounted as optional, so a
    function without its credentials records that it is not configured instead of failing.
    """
    if value := os.environ.get(variable):
        return value.strip()
    if path := os.environ.get(f"{variable}_FILE"):
        return read_secret_file(path)
    return None


def read_secret_file(path: str) -> str | None:
    """The stripped contents of ``path``, or ``None`` when there is no such file."""
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def unmounted(*variables: str) -> str:
    """`` (X_FILE names /p, which does not exist)`` for each ``*_FILE`` variable naming a missing
    file, to append to a "not configured" message; empty when none does."""
    missing = [
        f"{name} names {path}, which does not exist"
        for name in variables
        if (path := os.environ.get(name)) and not Path(path).exists()
    ]
    return f" ({'; '.join(missing)})" if missing else ""
