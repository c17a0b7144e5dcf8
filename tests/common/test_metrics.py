"""``GET /metrics``: Prometheus' text format on a served function, counters that move with events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from common import Faults, metrics, samples
from common.errors import ConflictError
from common.events import parse_run
from common.runclient import MemoryRunClient, RunRef
from common.standins.github import GitHubStandIn
from common.status import new_record
from common.store import StatusStore
from tests.common.test_runtime import Recorder, event, processor, with_echo
from tests.conftest import add_run, advance, event_request, function_client

TOKEN = "ghp_metrics-test-token-0123456789abcdef"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

LABELS = {"integration", "outcome", "reason", "service", "result", "resource", "write", "le"}
"""Every label our metrics have: none of them names a run."""


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as standin:
        monkeypatch.setenv("GITHUB_API_URL", standin.url)
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        yield standin


def scrape(client: FlaskClient, accept: str | None = None) -> Samples:
    answer = client.get("/metrics", headers={"Accept": accept} if accept else {})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.get_data(as_text=True))
        for sample in family.samples
    }


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return (name, frozenset(labels.items()))


def value(scraped: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 for a series not yet created (a counter before its first event)."""
    return scraped.get(key(name, **labels), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_a_served_function_answers_get_metrics_and_its_counters_move_with_the_events_sent(
    kube: MemoryRunClient, github: GitHubStandIn
) -> None:
    client = function_client("github")
    running, ignored = (
        samples.load("pipelinerun-running"),
        samples.load("pipelinerun-successful-no-integrations"),
    )
    add_run(kube, running)
    before = scrape(client)

    for sample in (running, running, ignored):  # reported, then a duplicate (ignored), then not opted in
        headers, data = event_request(sample)
        assert client.post("/", headers=headers, data=data).status_code == 200
    assert client.post("/", headers={"Content-Type": "application/json"}, data=b"{}").status_code == 400
    not_tekton = {**headers, "ce-type": "com.example.other"}
    assert client.post("/", headers=not_tekton, data=data).status_code == 400
    after = scrape(client)

    events = "tekton_integrations_events_total"
    assert moved(before, after, events, integration="github", outcome="reported", reason="Reported") == 1
    assert moved(before, after, events, integration="github", outcome="ignored", reason="") == 2
    for reason in ("NotACloudEvent", "NotATektonEvent"):
        assert moved(before, after, events, integration="github", outcome="malformed", reason=reason) == 1
    calls = "tekton_integrations_service_call_duration_seconds_count"
    assert moved(before, after, calls, integration="github", service="GitHub", result="ok") == 1
    durations = "tekton_integrations_event_duration_seconds_count"
    assert moved(before, after, durations, integration="github", outcome="ignored") == 2
    assert value(after, "process_resident_memory_bytes") > 0, "the process collector is served too"


def test_openmetrics_is_answered_to_a_scraper_that_asks_for_it(kube: MemoryRunClient) -> None:
    answer = function_client("github").get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/openmetrics-text")
    assert answer.get_data(as_text=True).endswith("# EOF\n")


def test_the_metrics_page_leaves_cloudevents_and_error_pages_alone(
    kube: MemoryRunClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = function_client("github")
    headers, data = event_request(samples.load("pipelinerun-successful-no-integrations"))
    assert client.post("/", headers=headers, data=data).status_code == 200
    answer = client.post("/metrics", headers=headers, data=data)
    assert (answer.status_code, answer.json and answer.json["outcome"]) == (200, "ignored"), (
        "a POST to any path still reaches the function"
    )
    assert client.post("/metrics", data=b"{}").status_code == client.post("/", data=b"{}").status_code
    assert client.get("/").status_code == 405
    assert client.get("/other").status_code == 405
    monkeypatch.setenv("TI_MAX_EVENT_BYTES", "1024")
    oversized = function_client("github").post("/", headers=headers, data=b" " * 4096)
    assert (oversized.status_code, oversized.mimetype) == (400, "application/json")


def test_the_rate_limit_budget_github_reports_is_a_gauge(
    kube: MemoryRunClient, github: GitHubStandIn
) -> None:
    running = samples.load("pipelinerun-running")
    add_run(kube, running)
    github.fail_next(
        403,
        headers={
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "1893456000",
            "X-RateLimit-Resource": "core",
        },
    )
    client = function_client("github")
    headers, data = event_request(running)
    answer = client.post("/", headers=headers, data=data)
    assert (answer.status_code, answer.json and answer.json["reason"]) == (429, "GitHubRateLimited")
    scraped = scrape(client)
    assert scraped[key("tekton_integrations_rate_limit_remaining", service="GitHub", resource="core")] == 0
    assert scraped[key("tekton_integrations_rate_limit_limit", service="GitHub", resource="core")] == 5000
    reset = "tekton_integrations_rate_limit_reset_timestamp_seconds"
    assert scraped[key(reset, service="GitHub", resource="core")] == 1893456000
    temporary = "tekton_integrations_service_call_duration_seconds_count"
    assert value(scraped, temporary, integration="github", service="GitHub", result="temporary") >= 1


def test_an_answer_that_is_not_an_error_updates_the_budget_when_seen() -> None:
    client = function_client("github")
    Faults("GitLab").seen({"RateLimit-Limit": "600, 600;w=60", "RateLimit-Remaining": "598"})
    scraped = scrape(client)
    assert value(scraped, "tekton_integrations_rate_limit_remaining", service="GitLab", resource="") == 598
    assert value(scraped, "tekton_integrations_rate_limit_limit", service="GitLab", resource="") == 600
    Faults("Quiet").seen({"Content-Type": "application/json"})
    assert not any(
        name.startswith("tekton_integrations_rate_limit") and ("service", "Quiet") in labels
        for name, labels in scrape(client)
    )


def test_write_conflicts_and_claim_waits_are_counted(kube: MemoryRunClient) -> None:
    client = function_client("github")  # only scraped: the runtime's counters are process-wide
    running = with_echo(samples.load("pipelinerun-running"))
    successful = with_echo(samples.load("pipelinerun-successful"))
    ref = add_run(kube, running)
    patches = 0

    def conflict_on_the_claim_then_on_the_record(verb: str, _: RunRef) -> None:
        # Patch 1 is the claim on the event's own resourceVersion: refused, the event is not live,
        # which is no conflict on a version read. Patches 2 and 4: the claim and the record on the
        # run as read.
        nonlocal patches
        if verb == "patch":
            patches += 1
            if patches in (1, 2, 4):
                raise ConflictError("stale")

    before = scrape(client)
    kube.before_request = conflict_on_the_claim_then_on_the_record
    assert processor(kube, Recorder(), claim=True).process(event(running)).kind == "reported"
    kube.before_request = None

    advance(kube, ref, successful)
    run = parse_run(ref.kind, kube.runs[ref])
    claim = new_record(
        "echo", run, "Unknown", "Reporting", "", previous=None, claim=True, now=datetime.now(UTC)
    )
    StatusStore(kube, "echo").write(run, claim)  # another delivery is reporting this state
    assert processor(kube, Recorder(), claim=True).process(event(successful)).reason == "Busy"
    after = scrape(client)

    conflicts = "tekton_integrations_record_write_conflicts_total"
    assert moved(before, after, conflicts, integration="echo", write="claim") == 1
    assert moved(before, after, conflicts, integration="echo", write="record") == 1
    assert moved(before, after, "tekton_integrations_claim_waits_total", integration="echo") == 1
    events = "tekton_integrations_events_total"
    assert moved(before, after, events, integration="echo", outcome="retry", reason="Busy") == 0, (
        "events are counted where they are answered (common.http), not by the runtime"
    )


def test_no_label_names_a_run(kube: MemoryRunClient, github: GitHubStandIn) -> None:
    client = function_client("github")
    running = samples.load("pipelinerun-running")
    add_run(kube, running)
    headers, data = event_request(running)
    client.post("/", headers=headers, data=data)
    run = running["data"]["pipelineRun"]["metadata"]
    identifying = {run["name"], run["namespace"], run["uid"]}
    ours = [
        (name, dict(labels)) for name, labels in scrape(client) if name.startswith("tekton_integrations_")
    ]
    assert ours
    for name, labels in ours:
        assert set(labels) <= LABELS, name
        assert not identifying & set(labels.values()), name


def test_histograms_are_cumulative_with_a_sum_and_a_count(kube: MemoryRunClient) -> None:
    for seconds in (0.003, 0.005, 0.02, 100.0):
        metrics.event("histogram-test", "ignored", "", seconds)
    scraped = scrape(function_client("github"))
    name = "tekton_integrations_event_duration_seconds"
    labels = {"integration": "histogram-test", "outcome": "ignored"}
    buckets = {
        le: scraped[key(f"{name}_bucket", **labels, le=le)]
        for le in ("0.005", "0.01", "0.025", "60.0", "+Inf")
    }
    assert buckets == {"0.005": 2, "0.01": 2, "0.025": 3, "60.0": 3, "+Inf": 4}
    assert scraped[key(f"{name}_count", **labels)] == 4
    assert scraped[key(f"{name}_sum", **labels)] == pytest.approx(100.028)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("GitHubNotFound", "GitHubNotFound"),
        ("", ""),
        ("ci/build-x7k2p", "Other"),
        ("a b", "Other"),
        ("x" * 80, "Other"),
    ],
)
def test_label_values_that_are_not_plain_words_are_folded(given: str, kept: str) -> None:
    assert metrics.label(given) == kept


def test_the_github_budget_comes_from_every_answer_not_only_errors(
    kube: MemoryRunClient, github: GitHubStandIn
) -> None:
    """GitHub reports the rate-limit budget on every answer: a successful event updates the gauge."""
    client = function_client("github")
    event = samples.load("pipelinerun-running")
    add_run(kube, event)
    headers, data = event_request(event)
    assert client.post("/", headers=headers, data=data).status_code == 200
    scraped = scrape(client)

    core = {("service", "GitHub"), ("resource", "core")}  # the stand-in's budget, as GitHub's

    def github_series(metric: str) -> list[float]:
        return [v for (name, labels), v in scraped.items() if name == metric and core <= labels]

    assert github_series("tekton_integrations_rate_limit_remaining") == [4999.0]
    assert github_series("tekton_integrations_rate_limit_limit") == [5000.0]
