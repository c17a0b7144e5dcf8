"""The rollup check run against a real kube-apiserver: the runs are listed and the Lease that
claims the rollup's creation is created for real, with the function's own Kubernetes client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
import requests
from kubernetes import client

from common.coordination import SHARED_ID
from common.standins.github import GitHubStandIn
from tests.e2e.conftest import ServeFunction, create_run, event_for, post_event, set_status
from tests.support.receiver import post_together
from tests.support.shared_runs import github_annotations, run_event

TOKEN = "ghp_e2e-test-token"
ROLLUP = "tekton/all"
FINAL = {"build": "pipelinerun-successful", "lint": "pipelinerun-failed", "docs": "pipelinerun-successful"}


@pytest.fixture
def github() -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as standin:
        yield standin


def in_rollup(sample: str, name: str) -> dict[str, Any]:
    return run_event(sample, name, github_annotations(rollup=ROLLUP))


def deliver_until_settled(url: str, events: list[dict[str, Any]]) -> None:
    """Deliver all at once; deliver again what was answered 429 or 503, as the sender does."""
    for _ in range(len(events) + 1):
        answered = post_together(lambda event: post_event(url, event), events)
        events = [event for event, answer in answered if _again(answer)]
        if not events:
            return
    raise AssertionError("deliveries kept being asked to come back")


def _again(answer: requests.Response) -> bool:
    return answer.status_code in (429, 503)


def test_three_runs_share_one_rollup_claimed_with_a_real_lease(
    api: client.ApiClient, namespace: str, github: GitHubStandIn, serve_function: ServeFunction
) -> None:
    url = serve_function("github", GITHUB_API_URL=github.url, GITHUB_TOKEN=TOKEN)
    live = {name: create_run(api, namespace, in_rollup("pipelinerun-running", name)) for name in FINAL}
    deliver_until_settled(
        url, [event_for(in_rollup("pipelinerun-running", n), run) for n, run in live.items()]
    )
    (rollup,) = [check for check in github.check_runs.values() if check["name"] == ROLLUP]
    assert (rollup["status"], rollup["output"]["title"]) == ("in_progress", "3 runs: 3 running")

    finals = []
    for name, final in FINAL.items():
        live[name] = set_status(api, namespace, in_rollup(final, name))
        finals += [event_for(in_rollup(final, name), live[name])] * 2
    deliver_until_settled(url, finals)

    (rollup,) = [check for check in github.check_runs.values() if check["name"] == ROLLUP]
    assert (rollup["status"], rollup["conclusion"]) == ("completed", "failure")
    assert rollup["output"]["title"] == "3 runs: 2 succeeded, 1 failed"
    listed = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "coordination.k8s.io", "v1", namespace, "leases"
    )
    (lease,) = cast(dict[str, Any], listed)["items"]
    assert lease["metadata"]["annotations"][SHARED_ID] == str(rollup["id"])
    (owner,) = lease["metadata"]["ownerReferences"]
    assert owner["uid"] in {run["metadata"]["uid"] for run in live.values()}
    assert (owner["kind"], owner["apiVersion"]) == ("PipelineRun", "tekton.dev/v1")
    assert lease["spec"]["holderIdentity"].startswith(f"{owner['name']}/")
