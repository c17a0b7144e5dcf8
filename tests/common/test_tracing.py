"""OpenTelemetry spans per event, joined to the trace Tekton keeps on the run; nothing when off."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from common import samples, tracing
from common.events import parse_run
from common.runclient import MemoryRunClient
from common.standins.github import GitHubStandIn
from tests.conftest import REPO, add_run, event_request, function_client
from tests.support.receiver import Receiver

TRACE_ID = "0f57e147e992b304d977436289d10628"
PARENT_SPAN_ID = "73d5909e31793992"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
TOKEN = "ghp_tracing-test-token-0123456789abcdef"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span the process makes, kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    yield exporter
    tracing.use_provider(None)
    provider.shutdown()


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as standin:
        monkeypatch.setenv("GITHUB_API_URL", standin.url)
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        yield standin


def annotated(sample: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
    _, obj = samples.run_object(sample)
    obj["metadata"].setdefault("annotations", {}).update(annotations)
    return sample


def by_name(finished: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in finished}


def test_a_pipelinerun_carrying_a_span_context_yields_spans_in_its_trace(
    kube: MemoryRunClient,
    github: GitHubStandIn,
    spans: InMemorySpanExporter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    running = annotated(
        samples.load("pipelinerun-running"),
        {"tekton.dev/pipelinerunSpanContext": json.dumps({"traceparent": TRACEPARENT})},
    )
    add_run(kube, running)
    headers, data = event_request(running)
    assert function_client("github").post("/", headers=headers, data=data).status_code == 200

    finished = spans.get_finished_spans()
    named = by_name(finished)
    # The claim on the event's own resourceVersion proves it live: no read of the run.
    assert {"handle event", "parse event", "claim", "call GitHub", "write record"} <= set(named)
    assert {format(span.context.trace_id, "032x") for span in finished} == {TRACE_ID}
    root = named["handle event"]
    assert root.parent is not None
    assert format(root.parent.span_id, "016x") == PARENT_SPAN_ID
    assert root.parent.is_remote
    for name in ("parse event", "claim", "call GitHub", "write record"):
        parent = named[name].parent
        assert parent is not None, name
        assert parent.span_id == root.context.span_id, name
    assert root.attributes is not None
    assert root.attributes["tekton_integrations.outcome"] == "reported"
    assert root.attributes["tekton.run.name"] == "build-and-test-run-x7k2p"
    parse = named["parse event"]
    assert root.start_time == parse.start_time
    assert parse.end_time is not None
    assert root.end_time is not None
    assert parse.end_time <= root.end_time
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    (logged,) = [line for line in lines if line.get("event_type")]
    assert logged["trace_id"] == TRACE_ID, "the event's log line names its trace"


def test_a_taskrun_carrying_its_span_context_yields_spans_in_its_trace(
    kube: MemoryRunClient, spans: InMemorySpanExporter
) -> None:
    child = annotated(
        samples.load("taskrun-running"),
        {"tekton.dev/taskrunSpanContext": json.dumps({"traceparent": TRACEPARENT, "tracestate": "k=v"})},
    )
    headers, data = event_request(child)
    answer = function_client("github").post("/", headers=headers, data=data)
    assert (answer.status_code, answer.json and answer.json["outcome"]) == (200, "ignored")
    finished = spans.get_finished_spans()
    assert {span.name for span in finished} == {"handle event", "parse event"}
    assert {format(span.context.trace_id, "032x") for span in finished} == {TRACE_ID}


def test_a_failed_service_call_is_an_error_span_in_the_runs_trace(
    kube: MemoryRunClient, github: GitHubStandIn, spans: InMemorySpanExporter
) -> None:
    running = annotated(
        samples.load("pipelinerun-running"),
        {"tekton.dev/pipelinerunSpanContext": json.dumps({"traceparent": TRACEPARENT})},
    )
    add_run(kube, running)
    github.fail_next(502, count=10)
    headers, data = event_request(running)
    assert function_client("github").post("/", headers=headers, data=data).status_code == 503
    named = by_name(spans.get_finished_spans())
    assert not named["call GitHub"].status.is_ok
    assert not named["handle event"].status.is_ok
    assert named["handle event"].attributes is not None
    assert named["handle event"].attributes["tekton_integrations.reason"] == "GitHubUnavailable"


@pytest.mark.parametrize(
    "span_context",
    ["", "not json", json.dumps(["00-x"]), json.dumps({"traceparent": "00-zz-yy-01"}), "{" * 2000],
)
def test_a_missing_or_unreadable_span_context_starts_a_new_trace(
    kube: MemoryRunClient, spans: InMemorySpanExporter, span_context: str
) -> None:
    sample = annotated(
        samples.load("pipelinerun-successful-no-integrations"),
        {"tekton.dev/pipelinerunSpanContext": span_context},
    )
    headers, data = event_request(sample)
    assert function_client("github").post("/", headers=headers, data=data).status_code == 200
    root = by_name(spans.get_finished_spans())["handle event"]
    assert root.parent is None
    assert format(root.context.trace_id, "032x") != TRACE_ID


def test_a_malformed_event_is_a_root_span_of_its_own(
    kube: MemoryRunClient, spans: InMemorySpanExporter
) -> None:
    headers, data = event_request(samples.load("pipelinerun-running"))
    headers["ce-type"] = "com.example.other"
    assert function_client("github").post("/", headers=headers, data=data).status_code == 400
    root = by_name(spans.get_finished_spans())["handle event"]
    assert root.parent is None
    assert root.attributes is not None
    assert root.attributes["tekton_integrations.outcome"] == "malformed"


def test_the_carrier_is_read_from_the_annotation_then_from_status() -> None:
    kind, obj = samples.run_object(samples.load("pipelinerun-running"))
    obj["status"]["spanContext"] = {"traceparent": TRACEPARENT, "other": "dropped"}
    assert tracing.carrier(parse_run(kind, obj)) == {"traceparent": TRACEPARENT}
    own = f"00-{'1' * 32}-{'2' * 16}-01"
    obj["metadata"]["annotations"]["tekton.dev/pipelinerunSpanContext"] = json.dumps({"traceparent": own})
    assert tracing.carrier(parse_run(kind, obj)) == {"traceparent": own}
    obj["metadata"]["annotations"]["tekton.dev/pipelinerunSpanContext"] = json.dumps({"traceparent": 1})
    assert tracing.carrier(parse_run(kind, obj)) == {"traceparent": TRACEPARENT}
    del obj["status"]["spanContext"]
    assert tracing.carrier(parse_run(kind, obj)) is None


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False),
    ],
)
def test_spans_are_exported_only_when_an_endpoint_is_configured(environ: dict[str, str], on: bool) -> None:
    assert tracing.configured(environ) is on


def test_spans_reach_the_configured_otlp_endpoint(
    kube: MemoryRunClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    sample = annotated(
        samples.load("pipelinerun-successful-no-integrations"),
        {"tekton.dev/pipelinerunSpanContext": json.dumps({"traceparent": TRACEPARENT})},
    )
    with Receiver() as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{collector.port}")
        monkeypatch.setenv("K_SERVICE", "github")
        tracing.use_provider(None)
        try:
            headers, data = event_request(sample)
            assert function_client("github").post("/", headers=headers, data=data).status_code == 200
        finally:
            tracing.use_provider(None)  # shuts the exporting provider down: its spans are sent
    (request,) = collector.requests
    assert (request.method, request.path) == ("POST", "/v1/traces")
    assert request.headers["content-type"] == "application/x-protobuf"
    exported = ExportTraceServiceRequest.FromString(request.body)
    (resource_spans,) = exported.resource_spans
    resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
    assert (resource["service.name"], resource["faas.name"]) == ("tekton-integrations", "github")
    sent = [span for scope in resource_spans.scope_spans for span in scope.spans]
    assert {span.name for span in sent} == {"handle event", "parse event"}
    assert {span.trace_id.hex() for span in sent} == {TRACE_ID}


PROBE = """
import json, sys
import functions_framework

def loaded():
    return sorted({name.split(".")[0] for name in sys.modules})

app = functions_framework.create_app(target="handle", source=sys.argv[1], signature_type="cloudevent")
modules = {"load": loaded()}
client = app.test_client()
headers, data = json.loads(sys.argv[2])
answers = [client.post("/", headers=headers, data=data.encode()).status_code]
modules["event"] = loaded()
answers.append(client.get("/metrics").status_code)
modules["scrape"] = loaded()
print(json.dumps({"modules": modules, "answers": answers}))
"""


def test_without_an_endpoint_no_opentelemetry_module_is_ever_imported_and_metrics_wait_for_a_scrape() -> None:
    """A fresh process, as functions-framework runs one: load, one event, one scrape."""
    headers, data = event_request(samples.load("pipelinerun-successful-no-integrations"))
    environ = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            str(REPO / "functions" / "github" / "main.py"),
            json.dumps([headers, data.decode()]),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environ,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["answers"] == [200, 200]
    modules = result["modules"]
    assert "opentelemetry" not in modules["scrape"]
    assert "prometheus_client" not in modules["event"], "an event never waits for the metrics library"
    assert "prometheus_client" in modules["scrape"]
