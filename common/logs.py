"""Structured logging: one JSON object per line, the shape log pipelines (Cloud Logging, Loki) parse.

Every log record of the process passes the redaction boundary (``common.redaction``) as it is
made, message and traceback, so that no handler (ours, the server's, a test's) ever sees a
credential a service echoed, nor a client library's warning that quotes a URL with a token; the
JSON line is redacted again as it is written.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from typing import Any

from common.redaction import redact

_EXTRA = "fields"
_OURS = ("common", "functions")
_factory_lock = threading.Lock()
_redacting = False


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
        return redact(json.dumps(entry, default=str))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the call (test capture, reloaders)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def _redact_records() -> None:
    """Make every log record carry its redacted text from the start, once per process."""
    global _redacting  # noqa: PLW0603 -- the record factory is process-wide
    with _factory_lock:
        if _redacting:
            return
        _redacting = True
    make = logging.getLogRecordFactory()
    formatter = logging.Formatter()

    def redacted(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info:
            record.exc_text = redact(formatter.formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(redacted)


def configure() -> None:
    """Send the ``common`` and ``functions`` loggers to stderr as JSON, once."""
    _redact_records()
    for name in _OURS:
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
