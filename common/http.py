"""The functions-framework edge: turn a CloudEvent request into an ``Outcome`` and an HTTP answer.

Answers follow DESIGN.md §1: 2xx when handled or ignored on purpose, 503 (or 429 with
``Retry-After``) when redelivery may help, 400 with a JSON body for a malformed or non-Tekton
event. Answers leave only through ``flask.abort(Response)``, because functions-framework ignores
a CloudEvent function's return value and turns escaping exceptions into 500s, which Tekton's
sender does not retry.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

import flask
import functions_framework
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from common import logs
from common.errors import MalformedEventError, TemporaryError
from common.events import CloudEventLike, parse_event
from common.integration import Integration
from common.policy import load_policy
from common.redaction import redact
from common.runclient import RunClient
from common.runtime import Outcome, Processor, screen
from common.settings import RuntimeSettings

log = logging.getLogger(__name__)

_client_override: RunClient | None = None


def use_run_client(client: RunClient | None) -> None:
    """Make every function in this process use ``client`` (the demo's and tests' run store)."""
    global _client_override  # noqa: PLW0603 -- one process-wide seam, by design
    _client_override = client


def _default_client() -> RunClient:
    if _client_override is not None:
        return _client_override
    from common import kube  # noqa: PLC0415 -- kubernetes is imported only where a cluster is used

    return kube.connect()


class LazyProcessor:
    """Builds the ``Processor`` on the first event, so import stays cheap and env is read late."""

    def __init__(self, integration: Integration[Any, Any]) -> None:
        self.integration = integration
        self._processor: Processor[Any, Any] | None = None
        self._lock = threading.Lock()

    def get(self) -> Processor[Any, Any]:
        with self._lock:
            if self._processor is None or (
                _client_override is not None and self._processor.client is not _client_override
            ):
                self._processor = Processor(self.integration, _default_client(), RuntimeSettings.from_env())
            return self._processor


def serve(integration: Integration[Any, Any]) -> Callable[[CloudEventLike], None]:
    """The functions-framework target for ``integration``: ``handle = serve(...)``."""
    prepare()
    # A malformed policy (or a bad section for this integration) stops startup.
    load_policy().check(integration.name, integration.policy)
    lazy = LazyProcessor(integration)

    def handle(cloud_event: CloudEventLike) -> None:
        respond(lazy, cloud_event)

    return register(handle)


def prepare() -> None:
    """Logging and error pages, once per process, before the first request."""
    logs.configure()
    _install_error_pages()


def register(handle: Callable[[CloudEventLike], None]) -> Callable[[CloudEventLike], None]:
    """Register ``handle`` as functions-framework's CloudEvent target ``handle``."""
    handle.__name__ = handle.__qualname__ = "handle"
    functions_framework.cloud_event(handle)  # registers the signature type under "handle"
    return handle


def respond(lazy: LazyProcessor, cloud_event: CloudEventLike) -> NoReturn:
    """Handle one request for ``lazy``'s integration and answer it (through ``flask.abort``)."""
    integration = lazy.integration
    started = time.perf_counter()
    if flask.has_app_context():
        setattr(flask.g, _REACHED, True)
    try:
        event = parse_event(cloud_event)
    except MalformedEventError as e:
        log.warning(
            "refused malformed event: %s",
            e,
            extra=logs.fields(integration=integration.name, outcome="malformed"),
        )
        answer(400, {"error": "malformed event", "detail": str(e)})
    screened = screen(integration, event)  # ignored without a client: build none
    if screened is not None:
        outcome = screened
    else:
        try:
            processor = lazy.get()
        except TemporaryError as e:
            outcome = Outcome("retry", e.message, e.reason, e.retry_after)
        else:
            outcome = processor.process(event)
    run = event.run
    level = logging.INFO if outcome.kind in ("reported", "ignored") else logging.WARNING
    log.log(
        level,
        "%s %s/%s: %s",
        outcome.kind,
        run.namespace,
        run.name,
        outcome.detail,
        extra=logs.fields(
            integration=integration.name,
            event_type=event.type,
            event_id=event.id,
            kind=run.kind,
            namespace=run.namespace,
            name=run.name,
            uid=run.uid,
            outcome=outcome.kind,
            reason=outcome.reason,
            http_status=outcome.http_status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        ),
    )
    body: dict[str, Any] = {
        "integration": integration.name,
        "run": f"{run.namespace}/{run.name}",
        "outcome": outcome.kind,
        "detail": outcome.detail,
    }
    if outcome.reason:
        body["reason"] = outcome.reason
    headers = {}
    if outcome.http_status == 429 and outcome.retry_after:
        headers["Retry-After"] = str(max(1, math.ceil(outcome.retry_after)))
    answer(outcome.http_status, body, headers)


def answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> NoReturn:
    text = redact(json.dumps(body))
    response = flask.Response(text, status=status, headers=headers, mimetype="application/json")
    flask.abort(response)


def _install_error_pages() -> None:
    """Replace functions-framework's error pages, which echo request headers and body, and make
    every failure to read a request a JSON 400 (never a 500, which Tekton's sender does not retry).

    Looked up at call time: ``functions_framework.errorhandler`` is a stand-in until
    ``create_app`` runs, and ``create_app`` runs this module's importer inside its app context.
    """
    if not flask.has_app_context():
        return
    app = flask.current_app
    app.config["MAX_CONTENT_LENGTH"] = RuntimeSettings.from_env().max_event_bytes
    register = functions_framework.errorhandler

    def answer_error(error: Exception) -> Any:
        if isinstance(error, HTTPException):
            if error.response is not None:
                return error.response
            if isinstance(error, RequestEntityTooLarge):
                detail = f"event larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
            elif error.code == 400:
                detail = "not a CloudEvent: binary mode needs ce-specversion, ce-type, ce-source, ce-id"
            else:
                return error
        elif getattr(flask.g, _REACHED, False):
            log.exception("unexpected error after the event was read")
            return flask.jsonify(error="internal error", detail="see the function's log"), 503
        else:
            detail = f"not a CloudEvent: {type(error).__name__}"
        return flask.jsonify(error="malformed event", detail=detail), 400

    for code_or_type in (400, 413, Exception):
        register(code_or_type)(answer_error)


_REACHED = "tekton_integrations_event_read"
"""Set on ``flask.g`` once functions-framework has parsed a request into a CloudEvent."""
