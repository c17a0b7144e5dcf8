"""Read credentials from the environment or from mounted files, never from annotations."""

from __future__ import annotations

import os
from pathlib import Path


def read_secret(variable: str) -> str | None:
    """``$VARIABLE``, else the stripped contents of the file named by ``$VARIABLE_FILE``."""
    if value := os.environ.get(variable):
        return value.strip()
    if path := os.environ.get(f"{variable}_FILE"):
        return Path(path).read_text(encoding="utf-8").strip()
    return None
