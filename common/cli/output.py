"""How the CLI writes: colours (only on a terminal, never with ``NO_COLOR``), tables, ages, JSON/YAML.

Owns presentation only; no command logic and no cluster access. Everything the CLI prints goes
through ``RedactingStream``, the CLI's side of the redaction boundary.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO, cast

import yaml

from common.redaction import redact

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}
_CONDITION_COLOURS = {"True": "green", "False": "red", "Unknown": "yellow"}


def wants_colour(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Colour only when writing to a terminal and ``NO_COLOR`` is unset or empty (no-color.org)."""
    if env.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@dataclass(frozen=True)
class Style:
    """ANSI styling that is a no-op when colours are off."""

    enabled: bool = False

    def paint(self, text: str, colour: str | None) -> str:
        if not self.enabled or not colour or not text:
            return text
        return f"\x1b[{_CODES[colour]}m{text}\x1b[0m"

    def bold(self, text: str) -> str:
        return self.paint(text, "bold")

    def dim(self, text: str) -> str:
        return self.paint(text, "dim")


def condition_colour(status: str) -> str | None:
    """Green for ``True``, red for ``False``, yellow for ``Unknown``, dim for no record."""
    return _CONDITION_COLOURS.get(status, "dim")


@dataclass(frozen=True)
class Cell:
    """One table cell: its text and, optionally, a colour name applied after alignment."""

    text: str
    colour: str | None = None


def _cells(rows: Sequence[Sequence[Cell | str]]) -> list[list[Cell]]:
    return [[c if isinstance(c, Cell) else Cell(c) for c in row] for row in rows]


def widths_of(headers: Sequence[str], rows: Sequence[Sequence[Cell | str]]) -> list[int]:
    """Each column's width: its longest header or cell."""
    widths = [len(h) for h in headers]
    for row in _cells(rows):
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell.text))
    return widths


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell | str]],
    style: Style,
    *,
    show_headers: bool = True,
    widths: Sequence[int] | None = None,
) -> str:
    """Columns aligned like ``kubectl get``: upper-case headers, three spaces between columns.

    ``show_headers=False`` is ``--no-headers``; ``widths`` keeps the columns of an earlier print
    (``status -w`` prints more rows under its first table), widened where a cell needs it.
    """
    cells = _cells(rows)
    found = widths_of(headers, rows)
    if widths is not None:
        found = [max(a, b) for a, b in zip(found, widths, strict=True)]
    lines = []
    if show_headers:
        lines.append("   ".join(h.ljust(w) for h, w in zip(headers, found, strict=True)).rstrip())
    for row in cells:
        parts = [
            style.paint(cell.text, cell.colour) + " " * (width - len(cell.text))
            for cell, width in zip(row, found, strict=True)
        ]
        lines.append("   ".join(parts).rstrip())
    return "\n".join(lines)


def format_age(since: datetime | None, now: datetime) -> str:
    """``45s``, ``12m``, ``5h``, ``3d``, as ``kubectl`` shows ages; ``-`` when unknown."""
    if since is None:
        return "-"
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp as Kubernetes writes it, or ``None``."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def dump(data: Any, fmt: str) -> str:
    """``data`` as JSON (indented) or YAML (block style, keys in the order given)."""
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True).rstrip()
    return json.dumps(data, indent=2, ensure_ascii=False)


class RedactingStream(io.TextIOBase):
    """A text stream that passes everything written to it through the redaction boundary: what
    the CLI prints (records, Events, service answers) may quote a credential."""

    def __init__(self, target: TextIO) -> None:
        self.target = target

    def write(self, text: str) -> int:
        self.target.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()


def redacting(stream: TextIO) -> TextIO:
    """``stream``, with everything written to it redacted."""
    return cast(TextIO, RedactingStream(stream))
