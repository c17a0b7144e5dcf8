"""The GitHub function against a real kube-apiserver with Tekton's CRDs (realkube)."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from common import samples
from common.errors import ConflictError
from common.events import RunEvent, parse_run
from common.kube import KubeRunClient
from common.runclient import RunRef
from common.runtime import Processor
from common.settings import RuntimeSettings
from common.standins.github import GitHubStandIn
from common.status import IntegrationStatus
from functions.github.main import integration as github_integration
from tests.e2e.conftest import (
    V1,
    ServeFunction,
    create_run,
    event_for,
    get_run,
    post_event,
    set_status,
)

RECORD = "github.integrations.tekton.dev/status"
TOKEN = "ghp_e2e-test-token"


@pytest.fixture
def github() -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as standin:
        yield standin


@pytest.fixture
def github_url(serve_function: ServeFunction, github: GitHubStandIn) -> str:
    return serve_function("github", GITHUB_API_URL=github.url, GITHUB_TOKEN=TOKEN)


def record_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(obj["metadata"]["annotations"][RECORD])


def test_running_then_successful_on_a_real_api_server(
    api: client.ApiClient, namespace: str, github: GitHubStandIn, github_url: str
) -> None:
    running, successful = samples.load("pipelinerun-running"), samples.load("pipelinerun-successful")
    live = create_run(api, namespace, running)
    assert post_event(github_url, event_for(running, live)).status_code == 200
    (check_run,) = github.check_runs.values()
    assert check_run["status"] == "in_progress"

    live = set_status(api, namespace, successful)
    assert post_event(github_url, event_for(successful, live)).status_code == 200
    (check_run,) = github.check_runs.values()
    assert check_run["conclusion"] == "success"
    assert check_run["external_id"] == live["metadata"]["uid"]
    assert [(c.method, c.path) for c in github.calls_to(path="/repos/*/check-runs*")] == [
        ("GET", f"/repos/acme/widget-service/commits/{check_run['head_sha']}/check-runs"),
        ("POST", "/repos/acme/widget-service/check-runs"),
        ("GET", f"/repos/acme/widget-service/check-runs/{check_run['id']}"),
        ("PATCH", f"/repos/acme/widget-service/check-runs/{check_run['id']}"),
    ]

    stored = get_run(api, namespace, "PipelineRun", live["metadata"]["name"])
    record = record_of(stored)
    assert record["conditions"][0]["status"] == "True"
    assert record["annotations"]["check-run-id"] == str(check_run["id"])
    assert record["runUID"] == stored["metadata"]["uid"]
    assert stored["metadata"]["generation"] == 1, "annotation writes must not bump generation"
    assert "integrations" not in stored.get("status", {}), "the CRD schema prunes status.integrations"


def test_any_order_any_number_of_redeliveries_change_nothing(
    api: client.ApiClient, namespace: str, github: GitHubStandIn, github_url: str
) -> None:
    running, successful = samples.load("pipelinerun-running"), samples.load("pipelinerun-successful")
    live = create_run(api, namespace, running)
    post_event(github_url, event_for(running, live))
    live = set_status(api, namespace, successful)
    post_event(github_url, event_for(successful, live))
    name = live["metadata"]["name"]
    final = record_of(get_run(api, namespace, "PipelineRun", name))
    calls = len(github.calls)

    redeliveries = [running, successful, samples.load("pipelinerun-queued")] * 3
    random.Random(3).shuffle(redeliveries)
    for event in redeliveries:
        assert post_event(github_url, event_for(event, live)).status_code == 200

    assert len(github.check_runs) == 1
    assert len(github.calls) == calls
    assert record_of(get_run(api, namespace, "PipelineRun", name)) == final


def test_errors_get_the_right_answers(
    api: client.ApiClient, namespace: str, github: GitHubStandIn, github_url: str
) -> None:
    running = samples.load("pipelinerun-running")
    live = create_run(api, namespace, running)
    name = live["metadata"]["name"]

    malformed = event_for(running, live)
    malformed["data"] = {"pipelineRun": "nope"}
    answer = post_event(github_url, malformed)
    assert answer.status_code == 400
    assert "pipelineRun" in answer.json()["detail"]

    github.fail_next(503)
    assert post_event(github_url, event_for(running, live)).status_code == 503
    condition = record_of(get_run(api, namespace, "PipelineRun", name))["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("Unknown", "GitHubUnavailable")

    github.fail_next(404)
    answer = post_event(github_url, event_for(running, live))
    assert answer.status_code == 200
    condition = record_of(get_run(api, namespace, "PipelineRun", name))["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("False", "GitHubNotFound")
    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    assert any(e.reason == "IntegrationFailed" and e.involved_object.name == name for e in events)


def test_failed_before_start_is_reported_as_failed(
    api: client.ApiClient, namespace: str, github: GitHubStandIn, github_url: str
) -> None:
    failed = samples.load("pipelinerun-failed-before-start")
    live = create_run(api, namespace, failed)
    assert post_event(github_url, event_for(failed, live)).status_code == 200
    (check_run,) = github.check_runs.values()
    assert check_run["conclusion"] == "failure"
    assert check_run["output"]["title"] == "Failed: CouldntGetPipeline"


class InterleavingClient:
    """A ``KubeRunClient`` that lets another writer act just before this one's n-th patch."""

    def __init__(self, inner: KubeRunClient, before_patch: Any, at: int = 1) -> None:
        self.inner, self.before_patch, self.at, self.patches = inner, before_patch, at, 0

    def get(self, ref: RunRef) -> dict[str, Any]:
        return self.inner.get(ref)

    def patch(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        self.patches += 1
        if self.patches == self.at:
            self.before_patch()
        return self.inner.patch(ref, patch)

    def patch_status(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self.inner.patch_status(ref, patch)

    def record_event(self, ref: RunRef, uid: str, reason: str, message: str) -> None:
        self.inner.record_event(ref, uid, reason, message)


@pytest.mark.parametrize("at", [1, 2], ids=["before-claim", "before-record"])
def test_concurrent_writers_lose_nothing_and_stale_versions_are_retried(
    api: client.ApiClient, namespace: str, github: GitHubStandIn, monkeypatch: pytest.MonkeyPatch, at: int
) -> None:
    """Another controller's annotation, another integration's record and Tekton's status write all
    land between our read and our conditional write: ours gets 409, re-reads, and keeps theirs."""
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    running = samples.load("pipelinerun-running")
    live = create_run(api, namespace, running)
    name = live["metadata"]["name"]
    objects = client.CustomObjectsApi(api)
    slack_record = json.dumps({"name": "slack.integrations.tekton.dev", "runUID": live["metadata"]["uid"]})

    def concurrent_writers() -> None:
        objects.patch_namespaced_custom_object(
            *V1,
            namespace,
            "pipelineruns",
            name,
            {
                "metadata": {
                    "annotations": {
                        "example.com/owner": "team-a",
                        "slack.integrations.tekton.dev/status": slack_record,
                    }
                }
            },
        )
        set_status(api, namespace, samples.load("pipelinerun-started"))  # Tekton rewrites status

    kube = InterleavingClient(KubeRunClient(api), concurrent_writers, at=at)
    processor = Processor(github_integration, kube, RuntimeSettings())
    event_run = parse_run("PipelineRun", get_run(api, namespace, "PipelineRun", name))
    stale_version = event_run.resource_version

    outcome = processor.process(
        RunEvent(id="1", type="dev.tekton.event.pipelinerun.running.v1", phase="running", run=event_run)
    )

    assert outcome.kind == "reported", outcome
    stored = get_run(api, namespace, "PipelineRun", name)
    assert stored["metadata"]["resourceVersion"] != stale_version
    annotations = stored["metadata"]["annotations"]
    assert annotations["example.com/owner"] == "team-a"
    assert annotations["slack.integrations.tekton.dev/status"] == slack_record
    assert annotations["github.integrations.tekton.dev/owner"] == "acme"
    record = IntegrationStatus.model_validate_json(annotations[RECORD])
    assert record.condition.status == "True"
    assert len(github.check_runs) == 1, "a lost race must not create a second check run"


def test_a_stale_resource_version_gets_409_from_the_server(api: client.ApiClient, namespace: str) -> None:
    """The fact the store relies on (DESIGN.md §2), checked against the real server."""
    running = samples.load("pipelinerun-running")
    live = create_run(api, namespace, running)
    ref = RunRef("PipelineRun", namespace, live["metadata"]["name"])
    kube = KubeRunClient(api)
    set_status(api, namespace, samples.load("pipelinerun-successful"))  # Tekton moves on
    with pytest.raises(ConflictError):
        kube.patch(
            ref,
            {"metadata": {"resourceVersion": live["metadata"]["resourceVersion"], "annotations": {"a": "b"}}},
        )


def test_records_survive_tekton_replacing_status_and_inherited_records_are_ignored(
    api: client.ApiClient, namespace: str, github: GitHubStandIn, github_url: str
) -> None:
    running = samples.load("pipelinerun-running")
    live = create_run(api, namespace, running)
    post_event(github_url, event_for(running, live))
    set_status(api, namespace, samples.load("pipelinerun-successful"))  # wholesale status replace
    stored = get_run(api, namespace, "PipelineRun", live["metadata"]["name"])
    assert record_of(stored)["conditions"][0]["status"] == "True"

    # A child TaskRun created now inherits every annotation, the record included.
    child = samples.load("taskrun-running")
    child_obj = samples.run_object(child)[1]
    child_obj["metadata"]["annotations"][RECORD] = stored["metadata"]["annotations"][RECORD]
    child_obj["metadata"]["labels"].pop("tekton.dev/pipelineRun")  # report it as if standalone
    child_live = create_run(api, namespace, child)
    assert post_event(github_url, event_for(child, child_live)).status_code == 200
    child_record = record_of(get_run(api, namespace, "TaskRun", child_live["metadata"]["name"]))
    assert child_record["runUID"] == child_live["metadata"]["uid"]
    assert len(github.check_runs) == 2, "the inherited check-run-id was not reused for the child"


def test_status_integrations_is_mirrored_only_where_the_schema_keeps_it(
    api: client.ApiClient, namespace: str
) -> None:
    """realkube's Tekton CRDs prune status.integrations: the mirror learns that and stops trying."""
    running = samples.load("pipelinerun-running")
    live = create_run(api, namespace, running)
    kube = KubeRunClient(api)
    ref = RunRef("PipelineRun", namespace, live["metadata"]["name"])
    answer = kube.patch_status(ref, {"status": {"integrations": [{"name": "x"}]}})
    assert "integrations" not in answer["status"]
    assert set(itertools.chain(answer["status"])) >= {"conditions"}


def write_back(api: client.ApiClient, namespace: str, name: str, annotations: Mapping[str, str]) -> None:
    """Tekton's reconciler writing back its older copy of the run's annotations with a full PUT
    (``syncMetadata``). Worse than Tekton's union: keys missing from the copy are removed too."""
    objects = client.CustomObjectsApi(api)
    current = get_run(api, namespace, "PipelineRun", name)
    current["metadata"]["annotations"] = dict(annotations)
    objects.replace_namespaced_custom_object(*V1, namespace, "pipelineruns", name, current)


def replica(api: client.ApiClient, between_claim_and_record: Any) -> Processor[Any, Any]:
    """A replica in this process whose record write waits for ``between_claim_and_record``."""
    return Processor(
        github_integration,
        InterleavingClient(KubeRunClient(api), between_claim_and_record, at=2),
        RuntimeSettings(),
    )


def running_event(run: Mapping[str, Any]) -> RunEvent:
    return RunEvent(
        id="1",
        type="dev.tekton.event.pipelinerun.running.v1",
        phase="running",
        run=parse_run("PipelineRun", dict(run)),
    )


@pytest.mark.parametrize("redelivered", [False, True], ids=["alone", "redelivered-to-another-replica"])
def test_a_stale_write_back_between_claim_and_record_gives_one_check_run(  # noqa: PLR0917
    api: client.ApiClient,
    namespace: str,
    github: GitHubStandIn,
    github_url: str,
    monkeypatch: pytest.MonkeyPatch,
    redelivered: bool,
) -> None:
    """GitHub created the check run, then Tekton PUT the run with the annotations it read before
    our claim, removing the claim; meanwhile another replica may get the same event and, seeing
    no claim, report it. Still one check run, and the next state edits it."""
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    running, successful = samples.load("pipelinerun-running"), samples.load("pipelinerun-successful")
    live = create_run(api, namespace, running)
    name = live["metadata"]["name"]
    tekton_copy = dict(live["metadata"]["annotations"])  # read before the claim
    answers = []

    def tekton_writes_back() -> None:
        assert len(github.check_runs) == 1, "the check run exists before the record is written"
        write_back(api, namespace, name, tekton_copy)
        assert RECORD not in get_run(api, namespace, "PipelineRun", name)["metadata"]["annotations"]
        if redelivered:
            answers.append(post_event(github_url, event_for(running, live)).status_code)

    outcome = replica(api, tekton_writes_back).process(running_event(live))

    assert outcome.kind == "reported", outcome
    assert answers == ([200] if redelivered else [])
    (check_run,) = github.check_runs.values()
    record = record_of(get_run(api, namespace, "PipelineRun", name))
    assert record["conditions"][0]["status"] == "True"
    assert record["annotations"]["check-run-id"] == str(check_run["id"])

    live = set_status(api, namespace, successful)
    assert post_event(github_url, event_for(successful, live)).status_code == 200
    (check_run,) = github.check_runs.values()
    assert (check_run["status"], check_run["conclusion"]) == ("completed", "success")
    assert len(github.calls_to("POST", "/repos/*/check-runs")) == 1


def age_claim(api: client.ApiClient, namespace: str, name: str) -> None:
    """Time passes: the claim on the run was taken longer ago than a claim protects (120 s)."""
    record = record_of(get_run(api, namespace, "PipelineRun", name))
    record["claim"]["at"] = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        *V1, namespace, "pipelineruns", name, {"metadata": {"annotations": {RECORD: json.dumps(record)}}}
    )


@pytest.mark.parametrize("reverted_to", ["claim", "nothing"])
def test_a_stale_write_back_after_the_record_still_edits_the_one_check_run(  # noqa: PLR0917
    api: client.ApiClient,
    namespace: str,
    github: GitHubStandIn,
    github_url: str,
    monkeypatch: pytest.MonkeyPatch,
    reverted_to: str,
) -> None:
    """Tekton's older copy lands after the record and reverts it to our claim, or to no record at
    all; the next state's event finds the check run by ``external_id`` and edits it."""
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    running, successful = samples.load("pipelinerun-running"), samples.load("pipelinerun-successful")
    live = create_run(api, namespace, running)
    name = live["metadata"]["name"]
    tekton_copy = dict(live["metadata"]["annotations"])

    def tekton_reads() -> None:
        if reverted_to == "claim":
            tekton_copy.update(get_run(api, namespace, "PipelineRun", name)["metadata"]["annotations"])

    assert replica(api, tekton_reads).process(running_event(live)).kind == "reported"
    (check_run,) = github.check_runs.values()
    assert "check-run-id" in record_of(get_run(api, namespace, "PipelineRun", name))["annotations"]

    write_back(api, namespace, name, tekton_copy)
    revived = get_run(api, namespace, "PipelineRun", name)["metadata"]["annotations"].get(RECORD)
    if reverted_to == "claim":
        assert revived is not None
        assert json.loads(revived)["claim"] is not None
    else:
        assert revived is None
    live = set_status(api, namespace, successful)
    answer = post_event(github_url, event_for(successful, live))
    if reverted_to == "claim":  # a revived claim is waited out, then the state is reported
        assert (answer.status_code, answer.json()["reason"]) == (429, "Busy")
        age_claim(api, namespace, name)
        answer = post_event(github_url, event_for(successful, live))
    assert answer.status_code == 200

    (check_run,) = github.check_runs.values()
    assert (check_run["status"], check_run["conclusion"]) == ("completed", "success")
    assert len(github.calls_to("POST", "/repos/*/check-runs")) == 1
    record = record_of(get_run(api, namespace, "PipelineRun", name))
    assert (record["conditions"][0]["status"], record["annotations"]["check-run-id"]) == (
        "True",
        str(check_run["id"]),
    )
