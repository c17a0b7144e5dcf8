"""``tekton-integrations health`` on realkube, as a subprocess, from records the served github function
wrote: successes and failures across runs in two namespaces give the right last failure per
destination (issue 13's "Must show").

realkube is shared by every test, so the runs carry a label of this test's own and ``health`` is
asked with ``-l``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client

from common.cli import ExitCode
from common.standins.github import GitHubStandIn
from tests.e2e.conftest import V1, ServeFunction, event_for, post_event
from tests.e2e.test_cli_e2e import PREFIX, TOKEN, make_run, shell

FAILED, SUCCESSFUL = "pipelinerun-failed", "pipelinerun-successful"


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as standin:
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        yield standin


@pytest.fixture
def second_namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"e2e-{secrets.token_hex(4)}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


class Reported:
    """Runs made and reported through the served github function, each finishing at a time of its own."""

    def __init__(self, api: client.ApiClient, url: str, github: GitHubStandIn, case: str) -> None:
        self.api, self.url, self.github, self.case = api, url, github, case
        self.start = datetime.now(UTC) - timedelta(hours=2)
        self.count = 0

    def run(
        self, namespace: str, name: str, repo: str, state: str, fault: int | None = None
    ) -> dict[str, Any]:
        self.count += 1
        make_run(self.api, namespace, name, state, {PREFIX + "repo": repo}, labels={"e2e-case": self.case})
        objects = client.CustomObjectsApi(self.api)
        live = cast(
            dict[str, Any], objects.get_namespaced_custom_object(*V1, namespace, "pipelineruns", name)
        )
        finished = self.start + timedelta(minutes=10 * self.count)  # in the order the runs are made
        live["status"]["completionTime"] = finished.strftime("%Y-%m-%dT%H:%M:%SZ")
        live = cast(
            dict[str, Any],
            objects.replace_namespaced_custom_object_status(*V1, namespace, "pipelineruns", name, live),
        )
        if fault is not None:
            self.github.fail_next(fault, path="/repos/*/check-runs*")
        from common import samples

        sample = samples.load(state)
        sample["data"]["pipelineRun"]["metadata"]["name"] = name
        assert post_event(self.url, event_for(sample, live)).status_code == 200
        return live


@pytest.fixture
def github_url(serve_function: ServeFunction, github: GitHubStandIn) -> str:
    return serve_function("github", GITHUB_API_URL=github.url, GITHUB_TOKEN=TOKEN)


@pytest.fixture
def made(api: client.ApiClient, github_url: str, github: GitHubStandIn) -> Reported:
    return Reported(api, github_url, github, secrets.token_hex(4))


def test_the_last_failure_per_destination_across_runs_and_namespaces(
    kubeconfig: Path, namespace: str, second_namespace: str, made: Reported
) -> None:
    case = made.case
    made.run(namespace, "w-1", "widget", SUCCESSFUL)
    made.run(namespace, "g-1", "gadget", FAILED, fault=401)  # the token stopped working...
    made.run(second_namespace, "w-2", "widget", FAILED)
    made.run(second_namespace, "g-2", "gadget", SUCCESSFUL)
    made.run(second_namespace, "g-3", "gadget", FAILED, fault=404)  # ... then the App was removed
    made.run(namespace, "w-3", "widget", SUCCESSFUL)

    done = shell(kubeconfig, "health", "-l", f"e2e-case={case}", "--integration", "github", "-o", "json")
    assert done.returncode == ExitCode.OK, done.stderr
    (github_health,) = json.loads(done.stdout)["integrations"]
    assert (github_health["succeeded"], github_health["failed"]) == (4, 2)
    assert github_health["lastFailure"]["reason"] == "GitHubNotFound"
    destinations = {d["destination"]: d for d in github_health["destinations"]}
    assert set(destinations) == {"acme/widget", "acme/gadget"}
    gadget, widget = destinations["acme/gadget"], destinations["acme/widget"]
    assert (gadget["succeeded"], gadget["failed"], gadget["latest"]) == (1, 2, "failed")
    assert gadget["lastFailure"]["reason"] == "GitHubNotFound"
    assert gadget["lastFailure"]["run"] == f"pipelinerun/{second_namespace}/g-3"
    assert gadget["lastSuccess"]["run"] == f"pipelinerun/{second_namespace}/g-2"
    assert (widget["succeeded"], widget["failed"], widget["latest"]) == (3, 0, "succeeded")
    assert widget["lastFailure"] is None
    assert widget["lastSuccess"]["run"] == f"pipelinerun/{namespace}/w-3"

    table = shell(kubeconfig, "health", "-l", f"e2e-case={case}", "--integration", "github", "--no-headers")
    rows = {tuple(line.split()[:2]): line.split() for line in table.stdout.splitlines()}
    assert rows[("github", "acme/gadget")][2] == "failed"
    assert rows[("github", "acme/gadget")][-1] == "GitHubNotFound"
    assert rows[("github", "acme/widget")][-1] == "-"

    narrowed = shell(kubeconfig, "health", "-n", namespace, "-l", f"e2e-case={case}", "-o", "json")
    (only_here,) = [i for i in json.loads(narrowed.stdout)["integrations"] if i["name"] == "github"]
    assert only_here["lastFailure"]["reason"] == "GitHubUnauthorized"
