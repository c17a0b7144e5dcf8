"""The functions-framework edge: turn a CloudEvent request into an ``Outcome`` and an HTTP answer.

Answers follow DESIGN.md §1: 2xx when handled or ignored on purpose, 503 (or 429 with
``Retry-After``) when redelivery may help, 400 with a JSON body for a malformed or non-Tekton
event. Answers leave only through ``flask.abort(Response)``, because functions-framework ignores
a CloudEvent function's return value and turns escaping exceptions into 500s, which Tekton's
sender does not retry.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

import flask
import functions_framework
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from common import logs, metrics, tracing
from common.errors import MalformedEventError, TemporaryError
from common.events import CloudEventLike, RunEvent, parse_event
from common.integration import Integration
from common.policy import load_policy
from common.redaction import redact
from common.runclient import RunClient
from common.runtime import Outcome, Processor, screen
from common.settings import DEFAULT_MAX_EVENT_BYTES, RuntimeSettings

log = logging.getLogger(__name__)

_client_override: RunClient | None = None
UNNAMED = "unnamed"
"""What requests refused before an integration is chosen count for (the dead-letter receiver's)."""


def use_run_client(client: RunClient | None) -> None:
    """Make every function in this process use ``client`` (the demo's and tests' run store)."""
    global _client_override  # noqa: PLW0603 -- one process-wide seam, by design
    _client_override = client


def default_client() -> RunClient:
    """The run client a function's ``Processor`` is built on: ``use_run_client``'s, else the cluster's."""
    if _client_override is not None:
        return _client_override
    from common import kube  # noqa: PLC0415 -- kubernetes is imported only where a cluster is used

    return kube.connect()


def client_override() -> RunClient | None:
    """The run client ``use_run_client`` set, if any."""
    return _client_override


class LazyProcessor:
    """Builds the ``Processor`` on the first event, so import stays cheap and env is read late.

    ``connect`` gives the run client (default: ``default_client``); the single Service's hands
    every integration one client whose reads one event's integrations share (``common.all``).
    A ``use_run_client`` change makes it build the ``Processor`` again.
    """

    def __init__(
        self, integration: Integration[Any, Any], connect: Callable[[], RunClient] = default_client
    ) -> None:
        self.integration = integration
        self._connect = connect
        self._processor: Processor[Any, Any] | None = None
        self._lock = threading.Lock()

    def get(self) -> Processor[Any, Any]:
        with self._lock:
            built = self._processor
            if built is not None and (_client_override is None or self._connect() is built.client):
                return built
            self._processor = Processor(self.integration, self._connect(), RuntimeSettings.from_env())
            return self._processor


def serve(integration: Integration[Any, Any]) -> Callable[[CloudEventLike], None]:
    """The functions-framework target for ``integration``: ``handle = serve(...)``."""
    prepare(integration.name)
    # A malformed policy (or a bad section for this integration) stops startup.
    load_policy().check(integration.name, integration.policy)
    lazy = LazyProcessor(integration)

    def handle(cloud_event: CloudEventLike) -> None:
        respond(lazy, cloud_event)

    return register(handle)


def prepare(name: str = UNNAMED) -> None:
    """Logging, error pages and ``GET /metrics``, once per process, before the first request;
    ``name`` is the integration that requests refused before any is chosen are counted for."""
    logs.configure()
    _install_error_pages(name)
    _install_metrics_page()


def register(handle: Callable[[CloudEventLike], None]) -> Callable[[CloudEventLike], None]:
    """Register ``handle`` as functions-framework's CloudEvent target ``handle``."""
    handle.__name__ = handle.__qualname__ = "handle"
    functions_framework.cloud_event(handle)  # registers the signature type under "handle"
    _settle()
    return handle


_settled = False


def _settle() -> None:
    """Put what the function's import created out of the cyclic collector's reach, once per process.

    functions-framework imports the function in gunicorn's master, then forks the worker. Those
    objects live as long as the process, yet every full collection in the worker would walk them
    all again (slowing the first event's own imports) and write to their headers (copying the
    master's pages). ``gc.freeze()`` right before the fork is what Python's documentation advises
    for pre-fork servers; it runs once, at the first registration (measured: a collection at this
    point finds a handful of unreachable objects, which stay).
    """
    global _settled  # noqa: PLW0603 -- once per process
    if not _settled:
        _settled = True
        gc.freeze()


def respond(lazy: LazyProcessor, cloud_event: CloudEventLike) -> NoReturn:
    """Handle one request for ``lazy``'s integration and answer it (through ``flask.abort``)."""
    name = lazy.integration.name
    began, began_ns = time.perf_counter(), time.time_ns()
    event = read_event(name, cloud_event, began, began_ns)
    outcome = handle_event(lazy, event, began, began_ns, parsed_ns=time.time_ns())
    body: dict[str, Any] = {
        "integration": name,
        "run": f"{event.run.namespace}/{event.run.name}",
        "outcome": outcome.kind,
        "detail": outcome.detail,
    }
    if outcome.reason:
        body["reason"] = outcome.reason
    answer(outcome.http_status, body, retry_headers(outcome))


def read_event(name: str, cloud_event: CloudEventLike, began: float, began_ns: int) -> RunEvent:
    """The request's run event; a malformed one is answered 400 here (counted and logged for ``name``)."""
    if flask.has_app_context():
        setattr(flask.g, _REACHED, True)
    try:
        return parse_event(cloud_event)
    except MalformedEventError as e:
        with tracing.event(name, None, began_ns=began_ns, parsed_ns=time.time_ns()) as span:
            span.ended("malformed", "NotATektonEvent", 400)
        metrics.event(name, "malformed", "NotATektonEvent", time.perf_counter() - began)
        log.warning(
            "refused malformed event: %s", e, extra=logs.fields(integration=name, outcome="malformed")
        )
        answer(400, {"error": "malformed event", "detail": str(e)})


def handle_event(
    lazy: LazyProcessor, event: RunEvent, began: float, began_ns: int, *, parsed_ns: int
) -> Outcome:
    """``lazy``'s integration's outcome for ``event``, traced, counted and logged (one line)."""
    integration = lazy.integration
    run = event.run
    with tracing.event(
        integration.name, run, began_ns=began_ns, parsed_ns=parsed_ns, event_type=event.type
    ) as span:
        outcome = _outcome(lazy, event)
        span.ended(outcome.kind, outcome.reason, outcome.http_status)
    seconds = time.perf_counter() - began
    metrics.event(integration.name, outcome.kind, outcome.reason, seconds)
    level = logging.INFO if outcome.kind in ("reported", "ignored") else logging.WARNING
    traced = {"trace_id": span.trace_id} if span.trace_id else {}
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
            duration_ms=round(seconds * 1000, 2),
            **traced,
        ),
    )
    return outcome


def retry_headers(outcome: Outcome) -> dict[str, str]:
    """``Retry-After`` (whole seconds, at least 1) for a 429."""
    if outcome.http_status == 429 and outcome.retry_after:
        return {"Retry-After": str(max(1, math.ceil(outcome.retry_after)))}
    return {}


def _outcome(lazy: LazyProcessor, event: RunEvent) -> Outcome:
    screened = screen(lazy.integration, event)  # ignored without a client: build none
    if screened is not None:
        return screened
    try:
        processor = lazy.get()
    except TemporaryError as e:
        return Outcome("retry", e.message, e.reason, e.retry_after)
    return processor.process(event)


def answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> NoReturn:
    text = redact(json.dumps(body))
    response = flask.Response(text, status=status, headers=headers, mimetype="application/json")
    flask.abort(response)


def _install_error_pages(name: str) -> None:
    """Replace functions-framework's error pages, which echo request headers and body, and make
    every failure to read a request a JSON 400 (never a 500, which Tekton's sender does not retry).

    Looked up at call time: ``functions_framework.errorhandler`` is a stand-in until
    ``create_app`` runs, and ``create_app`` runs this module's importer inside its app context.
    """
    if not flask.has_app_context():
        return
    app = flask.current_app
    app.config["MAX_CONTENT_LENGTH"] = _max_event_bytes()
    register = functions_framework.errorhandler

    def answer_error(error: Exception) -> Any:
        reason = "NotACloudEvent"
        if isinstance(error, HTTPException):
            if error.response is not None:
                return error.response
            if isinstance(error, RequestEntityTooLarge):
                detail = f"event larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
                reason = "EventTooLarge"
            elif error.code == 400:
                detail = "not a CloudEvent: binary mode needs ce-specversion, ce-type, ce-source, ce-id"
            else:
                return error
        elif getattr(flask.g, _REACHED, False):
            log.exception("unexpected error after the event was read")
            metrics.event(name, "retry", "InternalError")
            return flask.jsonify(error="internal error", detail="see the function's log"), 503
        else:
            detail = f"not a CloudEvent: {type(error).__name__}"
        metrics.event(name, "malformed", reason)
        return flask.jsonify(error="malformed event", detail=detail), 400

    for code_or_type in (400, 413, Exception):
        register(code_or_type)(answer_error)


def _max_event_bytes() -> int:
    """``TI_MAX_EVENT_BYTES``, as ``RuntimeSettings.from_env()`` reads it. Unset (and no ``_FILE``
    twin), it is the default, known without validating the model: a process's first validation
    builds pydantic's validators and looks for its plugins in every installed package's metadata
    (about 25 ms), which a function that only ever ignores events never needs."""
    variable = RuntimeSettings.variable("max_event_bytes")
    if not os.environ.get(variable, "").strip() and not os.environ.get(f"{variable}_FILE", "").strip():
        return DEFAULT_MAX_EVENT_BYTES
    return RuntimeSettings.from_env().max_event_bytes


def _install_metrics_page() -> None:
    """Answer ``GET /metrics`` with the process's metrics in Prometheus' text format.

    functions-framework routes only ``POST /`` and ``POST /<path>`` to a CloudEvent target. A
    rule for ``GET /metrics`` on the same app, added while ``create_app`` runs this module's
    importer in its app context, sits beside them: a POST to any path still reaches the target.
    """
    if not flask.has_app_context():
        return
    app = flask.current_app
    if METRICS_PATH in {rule.rule for rule in app.url_map.iter_rules()}:
        return

    def metrics_page() -> flask.Response:
        text, content_type = metrics.exposition(flask.request.headers.get("Accept", ""))
        return flask.Response(text, status=200, headers={"Content-Type": content_type})

    app.add_url_rule(METRICS_PATH, endpoint=_METRICS_ENDPOINT, view_func=metrics_page, methods=["GET"])


METRICS_PATH = "/metrics"
_METRICS_ENDPOINT = "tekton_integrations_metrics"
_REACHED = "tekton_integrations_event_read"
"""Set on ``flask.g`` once functions-framework has parsed a request into a CloudEvent."""
