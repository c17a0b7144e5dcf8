"""OpenTelemetry spans for each event, joined to the Tekton run's trace; off unless configured.

Owns whether a process traces, its tracer, and how a run's span context is read. Per event:
``handle event`` (the root, answered with its outcome), ``parse event``, and what the runtime
wraps in ``span``: ``read run``, ``claim``, ``call <service>``, ``write record``.

Tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is
set and ``OTEL_SDK_DISABLED`` is not ``true``: spans then go to that collector over OTLP
http/protobuf, batched by a background thread, configured by the SDK's own ``OTEL_*`` variables
(``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_HEADERS``...). The decision
is taken on the first event; until then, and whenever tracing is off, no OpenTelemetry module is
imported and every call here returns a shared no-op.

The parent of an event's spans is the run's own span context, as Tekton's controllers write it
(TEP-0124): the annotation ``tekton.dev/pipelinerunSpanContext`` on a PipelineRun,
``tekton.dev/taskrunSpanContext`` on a TaskRun (both a JSON map of W3C trace-context fields,
``{"traceparent": "00-<trace>-<span>-01"}``), else ``status.spanContext`` (the same map, where
newer Tekton keeps it). A missing or unreadable one starts a new trace; it never fails an event.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from common.events import Run

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
SPAN_CONTEXT_ANNOTATIONS: Mapping[str, str] = {
    "PipelineRun": "tekton.dev/pipelinerunSpanContext",
    "TaskRun": "tekton.dev/taskrunSpanContext",
}
CARRIER_FIELDS = ("traceparent", "tracestate")
MAX_CARRIER_CHARS = 1024
"""Tekton refuses to write a larger span context; a larger annotation is not one of its."""
DEFAULT_SERVICE_NAME = "tekton-integrations"
TRACER_NAME = "tekton-integrations"


class EventSpan:
    """The root span of one event, told how the event ended."""

    def __init__(self, span: Span | None) -> None:
        self._span = span

    def ended(self, outcome: str, reason: str, http_status: int) -> None:
        span = self._span
        if span is None:
            return
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415 -- only when tracing

        span.set_attributes(
            {
                "tekton_integrations.outcome": outcome,
                "tekton_integrations.reason": reason,
                "http.response.status_code": http_status,
            }
        )
        if http_status >= 400 or outcome in ("failed", "retry"):
            span.set_status(Status(StatusCode.ERROR, reason or outcome))

    @property
    def trace_id(self) -> str | None:
        """The trace's id as 32 hex digits, for the event's log line; ``None`` when not traced
        (tracing off, or the trace sampled out)."""
        if self._span is None:
            return None
        context = self._span.get_span_context()
        return format(context.trace_id, "032x") if context.is_valid and context.trace_flags.sampled else None


_NO_SPAN = EventSpan(None)
_NO_EVENT: AbstractContextManager[EventSpan] = nullcontext(_NO_SPAN)
_NOTHING: AbstractContextManager[None] = nullcontext()


class _Undecided:
    """Tracing not yet decided: the environment is read on the first event."""


_UNDECIDED = _Undecided()
_tracer: Tracer | _Undecided | None = _UNDECIDED
_exporting: TracerProvider | None = None
"""The provider made from the environment, if any: ``use_provider`` shuts it down."""
_lock = threading.Lock()


def use_provider(provider: TracerProvider | None) -> None:
    """Trace with ``provider`` (tests: an in-memory exporter); ``None``: decide from the
    environment again on the next event. A provider made from the environment is shut down
    first, which exports the spans it still holds."""
    global _tracer, _exporting  # noqa: PLW0603 -- one process-wide tracer, by design
    with _lock:
        previous, _exporting = _exporting, None
        _tracer = _UNDECIDED if provider is None else provider.get_tracer(TRACER_NAME)
    if previous is not None:
        previous.shutdown()


def configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for spans to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def _get() -> Tracer | None:
    global _tracer, _exporting  # noqa: PLW0603 -- decided once per process
    tracer = _tracer
    if not isinstance(tracer, _Undecided):
        return tracer
    with _lock:
        if isinstance(_tracer, _Undecided):
            _exporting = _exporting_provider() if configured() else None
            _tracer = _exporting.get_tracer(TRACER_NAME) if _exporting is not None else None
        return _tracer


def _exporting_provider() -> TracerProvider:
    """A provider that batches spans to the OTLP http/protobuf endpoint the environment names."""
    # Imported here only: 30-50 ms and 4 MB that a process without a collector never pays.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    resource = Resource.create()
    ours: dict[str, str] = {}
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        ours["service.name"] = DEFAULT_SERVICE_NAME
    if os.environ.get("K_SERVICE"):  # Knative names the Service the pod serves
        ours["faas.name"] = os.environ["K_SERVICE"]
    provider = TracerProvider(resource=resource.merge(Resource(ours)))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def enabled() -> bool:
    return _get() is not None


def carrier(run: Run) -> dict[str, str] | None:
    """The W3C trace-context fields of ``run``'s span context, if it carries a readable one."""
    annotation = SPAN_CONTEXT_ANNOTATIONS.get(run.kind, "")
    text = run.annotations.get(annotation, "")
    status = run.raw.get("status")
    for raw in (
        _json(text) if 0 < len(text) <= MAX_CARRIER_CHARS else None,
        status.get("spanContext") if isinstance(status, Mapping) else None,
    ):
        if isinstance(raw, Mapping) and isinstance(raw.get("traceparent"), str):
            return {key: raw[key] for key in CARRIER_FIELDS if isinstance(raw.get(key), str)}
    return None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _parent(run: Run | None) -> Context | None:
    fields = carrier(run) if run is not None else None
    if fields is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415 -- only when tracing
        TraceContextTextMapPropagator,
    )

    return TraceContextTextMapPropagator().extract(fields)  # an invalid one yields a new trace


def event(
    integration: str, run: Run | None, *, began_ns: int, parsed_ns: int, event_type: str = ""
) -> AbstractContextManager[EventSpan]:
    """The root span of one event, from ``began_ns`` (when the request was read; ``time.time_ns``),
    with its ``parse event`` child, which ended at ``parsed_ns``; a child of ``run``'s span
    context. Spans started inside the block are its children."""
    tracer = _get()
    if tracer is None:
        return _NO_EVENT
    return _event(tracer, integration, run, began_ns=began_ns, parsed_ns=parsed_ns, event_type=event_type)


@contextmanager
def _event(
    tracer: Tracer, integration: str, run: Run | None, *, began_ns: int, parsed_ns: int, event_type: str
) -> Iterator[EventSpan]:
    from opentelemetry.trace import SpanKind  # noqa: PLC0415 -- only when tracing

    attributes: dict[str, str] = {"tekton_integrations.integration": integration}
    if event_type:
        attributes["cloudevents.event_type"] = event_type
    if run is not None:
        attributes.update(
            {
                "tekton.run.kind": run.kind,
                "tekton.run.namespace": run.namespace,
                "tekton.run.name": run.name,
                "tekton.run.uid": run.uid,
            }
        )
    with tracer.start_as_current_span(
        "handle event",
        context=_parent(run),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        start_time=began_ns,
    ) as root:
        tracer.start_span("parse event", start_time=began_ns).end(end_time=parsed_ns)
        yield EventSpan(root)


def span(name: str, **attributes: str) -> AbstractContextManager[Any]:
    """A child span of the current one around the block (an error leaving it is recorded on it)."""
    tracer = _get()
    if tracer is None:
        return _NOTHING
    return tracer.start_as_current_span(name, attributes=attributes)
