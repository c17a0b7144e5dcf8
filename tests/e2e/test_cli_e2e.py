"""The ``tekton-integrations`` CLI against a real kube-apiserver (realkube) and a served github function.

Shows issue 6's "Must show" points: ``status --repo --sha`` lists exactly a commit's runs with their
conditions (and ``-o json`` parses); ``explain`` names a bad key and its fix; ``resync --dry-run``
lists exactly the runs that need it and a second resync makes no external call; ``send`` produces
the same record as Tekton's own event.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from common import kube, samples
from common.cli import ExitCode, main
from common.cli.session import Connection, Connector, kube_connector
from common.kube import KubeRunClient
from common.standins.github import GitHubStandIn
from tests.e2e.conftest import ServeFunction, create_run, event_for, get_run, post_event, set_status

PREFIX = "github.integrations.tekton.dev/"
RECORD = PREFIX + "status"
TOKEN = "ghp_cli-e2e-token"
SHA = "1b6e9c3f0a2d4b5c6d7e8f90a1b2c3d4e5f60718"
OTHER_SHA = "77aa9c3f0a2d4b5c6d7e8f90a1b2c3d4e5f60718"


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubStandIn]:
    """A loopback GitHub for the served function and for resync's in-process deliveries."""
    with GitHubStandIn() as standin:
        monkeypatch.setenv("GITHUB_API_URL", standin.url)
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        yield standin


@pytest.fixture
def github_url(serve_function: ServeFunction, github: GitHubStandIn) -> str:
    return serve_function("github", GITHUB_API_URL=github.url, GITHUB_TOKEN=TOKEN)


@pytest.fixture
def cli(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs the CLI in-process with realkube's kubeconfig, as a user's shell would."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))

    def run(*argv: str, connector: Connector | None = None) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), out=out, err=err, env={}, connector=connector or kube_connector)
        return code, out.getvalue(), err.getvalue()

    return run


class Runs:
    """Runs on realkube made from samples: renamed, re-annotated, moved through states."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.annotations: dict[str, dict[str, str | None]] = {}

    def sample(self, name: str, state: str) -> dict[str, Any]:
        sample = samples.load(state)
        _, obj = samples.run_object(sample)
        obj["metadata"]["name"] = name
        notes = obj["metadata"]["annotations"]
        for key, value in {"slack.integrations.tekton.dev/channel": None, **self.annotations[name]}.items():
            if value is None:
                notes.pop(key, None)
            else:
                notes[key] = value
        return sample

    def create(self, name: str, state: str, **annotations: str | None) -> dict[str, Any]:
        self.annotations[name] = {PREFIX + key.replace("_", "-"): value for key, value in annotations.items()}
        return create_run(self.api, self.namespace, self.sample(name, state))

    def advance(self, name: str, state: str) -> dict[str, Any]:
        return set_status(self.api, self.namespace, self.sample(name, state))

    def deliver(self, url: str, name: str, state: str) -> None:
        live = get_run(self.api, self.namespace, "PipelineRun", name)
        assert post_event(url, event_for(self.sample(name, state), live)).status_code == 200

    def record(self, name: str) -> dict[str, Any] | None:
        value = get_run(self.api, self.namespace, "PipelineRun", name)["metadata"]["annotations"].get(RECORD)
        return json.loads(value) if value else None


@pytest.fixture
def runs(api: client.ApiClient, namespace: str) -> Runs:
    return Runs(api, namespace)


def test_status_lists_exactly_the_runs_for_a_commit(
    cli: Any, runs: Runs, namespace: str, github: GitHubStandIn, github_url: str
) -> None:
    runs.create("build-1", "pipelinerun-running", repo="widget", sha=SHA)
    runs.deliver(github_url, "build-1", "pipelinerun-running")
    runs.advance("build-1", "pipelinerun-successful")
    runs.deliver(github_url, "build-1", "pipelinerun-successful")
    runs.create("build-2", "pipelinerun-failed", repo="widget", sha=SHA)
    github.fail_next(404)
    runs.deliver(github_url, "build-2", "pipelinerun-failed")
    runs.create("build-3", "pipelinerun-successful", repo="widget", sha=OTHER_SHA)
    runs.deliver(github_url, "build-3", "pipelinerun-successful")
    runs.create("build-4", "pipelinerun-successful", repo="gadget", sha=SHA)

    code, out, _ = cli("status", "--repo", "acme/widget", "--sha", SHA, "-n", namespace)

    assert code == ExitCode.OK
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert set(rows) == {"pipelinerun/build-1", "pipelinerun/build-2"}
    assert rows["pipelinerun/build-1"][1:5] == ["Succeeded", "github", "True", "Reported"]
    assert rows["pipelinerun/build-1"][6].startswith("check-run-id=")
    assert rows["pipelinerun/build-2"][1:5] == ["Failed", "github", "False", "GitHubNotFound"]

    code, out, _ = cli("status", "--repo", "acme/widget", "--sha", SHA[:8], "-n", namespace, "-o", "json")
    items = json.loads(out)["items"]
    assert {(i["name"], i["integrations"][0]["condition"]) for i in items} == {
        ("build-1", "True"),
        ("build-2", "False"),
    }

    code, _, err = cli("status", "--repo", "acme/widget", "--sha", "0" * 40, "-n", namespace)
    assert code == ExitCode.NO_MATCH
    assert "No run found for commit 000000000000 of acme/widget" in err


def test_explain_names_the_bad_key_and_the_fix(cli: Any, runs: Runs, namespace: str, github_url: str) -> None:
    runs.create("bad-1", "pipelinerun-running", sha="main", contxt="ci")
    runs.deliver(github_url, "bad-1", "pipelinerun-running")

    code, out, _ = cli("explain", "pipelinerun/bad-1", "-n", namespace)

    assert code == ExitCode.OK
    assert "✗ github.integrations.tekton.dev/sha = 'main': does not have the expected form" in out
    assert "fix: use the full commit SHA" in out
    assert "✗ github.integrations.tekton.dev/contxt = 'ci': unknown key" in out
    assert "fix: rename it to github.integrations.tekton.dev/context" in out
    assert "record:  False InvalidConfiguration" in out
    assert "IntegrationFailed: github: InvalidConfiguration: github.integrations.tekton.dev/sha" in out
    assert "next step: Fix the annotations above" in out

    code, _, err = cli("explain", "gone", "-n", namespace)
    assert code == ExitCode.RUN_NOT_FOUND
    assert f"no pipelinerun or taskrun named 'gone' in namespace {namespace}" in err


def test_resync_lists_exactly_what_needs_it_and_a_second_run_calls_nothing(
    cli: Any, runs: Runs, namespace: str, github: GitHubStandIn, github_url: str
) -> None:
    runs.create("lost", "pipelinerun-successful", sha=SHA)  # every event lost
    runs.create("late", "pipelinerun-running", sha=SHA)
    runs.deliver(github_url, "late", "pipelinerun-running")
    runs.advance("late", "pipelinerun-successful")  # its final event lost
    runs.create("done", "pipelinerun-running", sha=SHA)
    runs.deliver(github_url, "done", "pipelinerun-running")
    runs.advance("done", "pipelinerun-successful")
    runs.deliver(github_url, "done", "pipelinerun-successful")
    runs.create("going", "pipelinerun-running", sha=SHA)  # not finished: its events will come

    code, out, _ = cli("resync", "--dry-run", "-n", namespace)
    assert code == ExitCode.OK
    listed = {line.split()[0]: line.split()[2] for line in out.splitlines()[1:]}
    assert listed == {"pipelinerun/lost": "NoRecord", "pipelinerun/late": "NotFinal"}

    code, out, _ = cli("resync", "-n", namespace)
    assert code == ExitCode.OK, out
    assert out.count("reported: check run") == 2
    for name in ("lost", "late"):
        record = runs.record(name)
        assert record is not None
        assert (record["conditions"][0]["status"], record["runState"]["status"]) == ("True", "True")
    calls = len(github.calls)

    code, out, _ = cli("resync", "-n", namespace)
    assert code == ExitCode.OK
    assert out.startswith("Nothing to resync")
    assert len(github.calls) == calls, "a second resync made an external call"


def test_resync_to_a_function_url(cli: Any, runs: Runs, namespace: str, github_url: str) -> None:
    runs.create("lost", "pipelinerun-failed", sha=SHA)
    code, out, _ = cli("resync", "-n", namespace, "--url", f"github={github_url}")
    assert code == ExitCode.OK, out
    assert "reported: check run" in out
    record = runs.record("lost")
    assert record is not None
    assert record["conditions"][0]["status"] == "True"


def test_send_produces_the_same_record_as_a_real_event(
    cli: Any, runs: Runs, namespace: str, github: GitHubStandIn, github_url: str
) -> None:
    runs.create("by-tekton", "pipelinerun-running", sha=SHA)
    runs.create("by-cli", "pipelinerun-running", sha=SHA)
    for state in ("pipelinerun-running", "pipelinerun-successful"):
        if state != "pipelinerun-running":
            runs.advance("by-tekton", state)
            runs.advance("by-cli", state)
        runs.deliver(github_url, "by-tekton", state)
        code, out, _ = cli("send", "pipelinerun/by-cli", "-n", namespace, "--url", github_url)
        assert code == ExitCode.OK, out
        assert "-> 200 reported" in out

    assert normalised(runs.record("by-cli")) == normalised(runs.record("by-tekton"))
    assert sorted(c["conclusion"] for c in github.check_runs.values()) == ["success", "success"]


def normalised(record: dict[str, Any] | None) -> dict[str, Any]:
    assert record is not None
    record = dict(record)
    record.pop("runUID")
    record["annotations"] = {k: v for k, v in record["annotations"].items() if k != "check-run-id"}
    condition = dict(record["conditions"][0])
    condition.pop("lastTransitionTime")
    condition["message"] = condition["message"].split("(")[0]
    record["conditions"] = [condition]
    return record


def test_no_permission_is_exit_code_6(cli: Any, kubeconfig: Path, namespace: str) -> None:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    api = client.ApiClient(configuration)
    api.set_default_header("Impersonate-User", f"system:serviceaccount:{namespace}:nobody")

    def as_nobody(_: str | None) -> Connection:
        return Connection(KubeRunClient(api), namespace)

    code, _, err = cli("status", "-n", namespace, connector=as_nobody)
    assert code == ExitCode.FORBIDDEN
    assert "cannot list resource" in err
    assert "kubectl auth can-i list pipelineruns" in err


def test_listing_follows_continue_tokens(
    cli: Any, runs: Runs, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube, "LIST_PAGE", 1)
    for name in ("page-1", "page-2", "page-3"):
        runs.create(name, "pipelinerun-queued", sha=SHA)
    code, out, _ = cli("status", "-n", namespace, "--sha", SHA)
    assert code == ExitCode.OK
    assert sorted(line.split()[0] for line in out.splitlines()[1:]) == [
        "pipelinerun/page-1",
        "pipelinerun/page-2",
        "pipelinerun/page-3",
    ]


def test_the_cronjobs_service_account_can_resync_every_namespace(
    cli: Any, api: client.ApiClient, kubeconfig: Path, namespace: str, runs: Runs
) -> None:
    """The RBAC in knative/resync/resync-cronjob.yaml, applied for real, is enough for ``resync -A``."""
    runs.create("lost", "pipelinerun-successful", sha=SHA)
    manifest = Path(__file__).resolve().parents[2] / "knative" / "resync" / "resync-cronjob.yaml"
    objects = {doc["kind"]: doc for doc in yaml.safe_load_all(manifest.read_text()) if doc}
    rbac = client.RbacAuthorizationV1Api(api)
    role, binding = objects["ClusterRole"], objects["ClusterRoleBinding"]
    role["metadata"]["name"] = binding["roleRef"]["name"] = binding["metadata"]["name"] = (
        f"resync-{namespace}"
    )
    binding["subjects"][0]["namespace"] = namespace
    rbac.create_cluster_role(role)
    rbac.create_cluster_role_binding(binding)
    try:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        as_resync = client.ApiClient(configuration)
        as_resync.set_default_header("Impersonate-User", f"system:serviceaccount:{namespace}:resync")

        def connector(_: str | None) -> Connection:
            return Connection(KubeRunClient(as_resync), namespace)

        code, out, err = cli("resync", "--dry-run", "-A", connector=connector)
        assert code == ExitCode.OK, err
        assert any(line.split()[:2] == [namespace, "pipelinerun/lost"] for line in out.splitlines())
        code, _, err = cli("explain", "lost", "-n", namespace, connector=connector)
        assert code == ExitCode.FORBIDDEN, "list only: it cannot even get a run"
    finally:
        rbac.delete_cluster_role_binding(binding["metadata"]["name"])
        rbac.delete_cluster_role(role["metadata"]["name"])
