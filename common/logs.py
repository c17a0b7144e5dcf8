"""Structured logging: one JSON object per line, the shape log pipelines (Cloud Logging, Loki) parse."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

_EXTRA = "fields"


class JsonFormatter(logging.Formatter):
    """Formats a record as ``{"severity", "logger", "message", **fields}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, _EXTRA, {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the call (test capture, reloaders)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def configure() -> None:
    """Send the ``common`` and ``functions`` loggers to stderr as JSON, once."""
    for name in ("common", "functions"):
        logger = logging.getLogger(name)
        if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            continue
        handler = _StderrHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = True


def fields(**values: Any) -> dict[str, Any]:
    """``extra=`` for a log call: these key/values become top-level JSON fields."""
    return {_EXTRA: values}
