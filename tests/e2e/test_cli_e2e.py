"""The ``tekton-integrations`` CLI against a real kube-apiserver (realkube) and a served github function.

Shows issue 6's "Must show" points: ``status --repo --sha`` lists exactly a commit's runs with their
conditions (and ``-o json`` parses); ``explain`` names a bad key and its fix; ``resync --dry-run``
lists exactly the runs that need it and a second resync makes no external call; ``send`` produces
the same record as Tekton's own event.

And issue 13's, with the CLI run as a subprocess as a user's shell runs it: a run under a misspelt
prefix (``githib``) is a warning for ``resync -A`` and is listed, marked, by ``status --repo --sha``;
a match in another namespace is pointed out; records and Events carry the human message; the
kubectl conventions (options before or after the command, ``--kubeconfig``, ``--context``,
``-l``, ``-o name``, ``--no-headers``, ``-w``), impersonation from the kubeconfig, and the exit codes.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
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
from tests.e2e.conftest import V1, ServeFunction, create_run, event_for, get_run, post_event, set_status

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

    # Issue 13: the runtime wrote the record and the Event with the words explain uses.
    record = runs.record("bad-1")
    assert record is not None
    message = record["conditions"][0]["message"]
    assert "sha: 'main' does not have the expected form: use the full commit SHA" in message
    assert "should match pattern" not in message
    events = client.CoreV1Api(runs.api).list_namespaced_event(namespace).items
    (failed,) = [e for e in events if e.reason == "IntegrationFailed"]
    assert failed.message is not None
    assert "use the full commit SHA" in failed.message
    assert "pattern" not in failed.message

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


# -- issue 13: the CLI as a subprocess -------------------------------------------------------------


def command() -> list[str]:
    """The console script beside this interpreter (as pip installed it), else ``python -m``."""
    script = Path(sys.executable).parent / "tekton-integrations"
    return [str(script)] if script.exists() else [sys.executable, "-m", "common.cli"]


def shell(
    kubeconfig: Path, *argv: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``tekton-integrations ARGV`` with ``KUBECONFIG`` set, as a user's shell runs it."""
    return subprocess.run(
        [*command(), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "KUBECONFIG": str(kubeconfig), "NO_COLOR": "1", **(env or {})},
        check=False,
    )


def fresh_sha() -> str:
    """A commit no other test's run names: realkube is shared by every test."""
    return secrets.token_hex(20)


def make_run(
    api: client.ApiClient,
    namespace: str,
    name: str,
    state: str,
    annotations: Mapping[str, str | None],
    *,
    labels: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A PipelineRun made from a sample, with these annotations (``None`` removes), labels and params."""
    sample = samples.load(state)
    _, obj = samples.run_object(sample)
    obj["metadata"]["name"] = name
    notes = obj["metadata"]["annotations"]
    for key, value in {"slack.integrations.tekton.dev/channel": None, **annotations}.items():
        if value is None:
            notes.pop(key, None)
        else:
            notes[key] = value
    obj["metadata"].setdefault("labels", {}).update(labels or {})
    body = samples.v1_object(sample, namespace)
    body["spec"]["params"] = [{"name": k, "value": v} for k, v in (params or {}).items()]
    client.CustomObjectsApi(api).create_namespaced_custom_object(*V1, namespace, "pipelineruns", body)
    return set_status(api, namespace, sample)


@pytest.fixture
def other_namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"e2e-{secrets.token_hex(4)}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


TYPO = "githib.integrations.tekton.dev/"


def test_a_misspelt_prefix_is_a_warning_for_resync_and_a_marked_match_for_status(
    kubeconfig: Path, runs: Runs, other_namespace: str, github_url: str, tmp_path: Path
) -> None:
    api, namespace = runs.api, runs.namespace
    sha, case = fresh_sha(), secrets.token_hex(4)
    labels = {"e2e-case": case}
    typo = {TYPO + "owner": "acme", TYPO + "repo": "widget", TYPO + "sha": sha}
    dropped = dict.fromkeys(PREFIX + key for key in ("owner", "repo", "sha", "commit"))
    make_run(
        api,
        namespace,
        "typo",
        "pipelinerun-successful",
        {**dropped, **typo},
        labels=labels,
        params={"revision": sha},
    )
    make_run(
        api,
        other_namespace,
        "elsewhere",
        "pipelinerun-successful",
        {PREFIX + "repo": "widget", PREFIX + "sha": sha},
        labels=labels,
    )

    for argv in (
        ["resync", "-A", "--dry-run", "-l", f"e2e-case={case}"],
        ["resync", "-A", "-l", f"e2e-case={case}", "--url", f"github={github_url}"],
    ):
        done = shell(kubeconfig, *argv)
        assert done.returncode == ExitCode.OK, done.stderr
        assert f"warning: pipelinerun/typo in namespace {namespace}: githib.integrations.tekton.dev/..." in (
            done.stderr
        )
        assert "names no installed integration (did you mean github.integrations.tekton.dev?)" in done.stderr
        assert "pipelinerun/typo" not in done.stdout

    done = shell(kubeconfig, "status", "--repo", "acme/widget", "--sha", sha[:7], "-n", namespace)
    assert done.returncode == ExitCode.OK, done.stderr
    (row,) = [line for line in done.stdout.splitlines() if "pipelinerun/typo" in line and " githib " in line]
    assert "UnknownIntegration" in row
    assert row.endswith("annotation githib.* (unknown), param revision")
    assert "warning: pipelinerun/typo" in done.stderr
    assert "other namespaces" not in done.stderr, "-n is the user's choice: nothing else is looked at"

    # Without -n, the context's namespace: the match in the other namespace is pointed out.
    in_context = with_context(kubeconfig, tmp_path, namespace)
    done = shell(in_context, "status", "--repo", "acme/widget", "--sha", sha[:7])
    assert done.returncode == ExitCode.OK, done.stderr
    assert "pipelinerun/typo" in done.stdout
    assert f"note: 1 more run in other namespaces matches ({other_namespace}: 1): use -A to list them." in (
        done.stderr
    )

    # The context's namespace (default) has none: the other namespaces are named, not "no build".
    done = shell(kubeconfig, "status", "--sha", sha)
    assert done.returncode == ExitCode.NO_MATCH
    assert "in namespace default." in done.stderr
    counts = sorted([f"{namespace}: 1", f"{other_namespace}: 1"])
    assert f"But 2 runs in other namespaces match ({', '.join(counts)})" in done.stderr
    assert "No build was started" not in done.stderr

    listed = shell(kubeconfig, "status", "-A", "--sha", sha, "-o", "json")
    assert {item["name"] for item in json.loads(listed.stdout)["items"]} == {"typo", "elsewhere"}


def test_options_before_or_after_the_command_and_kubectl_outputs(
    kubeconfig: Path, runs: Runs, github_url: str, tmp_path: Path
) -> None:
    api, namespace = runs.api, runs.namespace
    sha = fresh_sha()
    runs.create("one", "pipelinerun-successful", sha=sha)
    runs.deliver(github_url, "one", "pipelinerun-successful")
    runs.create("two", "pipelinerun-failed", sha=sha)
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        *V1, namespace, "pipelineruns", "two", {"metadata": {"labels": {"tier": "nightly"}}}
    )
    names = {"pipelinerun.tekton.dev/one", "pipelinerun.tekton.dev/two"}
    for argv in (
        ["-n", namespace, "-o", "name", "status", "--sha", sha],
        ["status", "--sha", sha, "-n", namespace, "-o", "name"],
        ["-o", "name", "status", "-n", namespace, "--sha", sha],
    ):
        done = shell(kubeconfig, *argv)
        assert done.returncode == ExitCode.OK, (argv, done.stderr)
        assert set(done.stdout.split()) == names

    done = shell(kubeconfig, "status", "-n", namespace, "-l", "tier=nightly", "--no-headers")
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["pipelinerun/two"]

    # --kubeconfig and --context: a context whose namespace is the test's.
    config_file = with_context(kubeconfig, tmp_path, namespace, current=False)
    done = shell(
        kubeconfig.parent / "absent",
        "--kubeconfig",
        str(config_file),
        "--context",
        "mine",
        "status",
        "--sha",
        sha,
        "-o",
        "name",
    )
    assert done.returncode == ExitCode.OK, done.stderr
    assert set(done.stdout.split()) == names
    done = shell(
        kubeconfig.parent / "absent", "status", "--context", "nope", "--kubeconfig", str(config_file)
    )
    assert done.returncode == ExitCode.NO_CLUSTER
    assert "nope" in done.stderr

    # explain takes what -o name prints.
    done = shell(kubeconfig, "explain", "pipelinerun.tekton.dev/one", "-n", namespace)
    assert done.returncode == ExitCode.OK, done.stderr
    assert "record:  True Reported" in done.stdout


def with_context(kubeconfig: Path, tmp_path: Path, namespace: str, *, current: bool = True) -> Path:
    """realkube's kubeconfig plus a context ``mine`` on namespace ``namespace`` (the current one if asked)."""
    document = yaml.safe_load(kubeconfig.read_text())
    active = next(c for c in document["contexts"] if c["name"] == document["current-context"])
    document["contexts"].append({"name": "mine", "context": {**active["context"], "namespace": namespace}})
    if current:
        document["current-context"] = "mine"
    path = tmp_path / f"kubeconfig-{namespace}-{current}"
    path.write_text(yaml.safe_dump(document))
    return path


def test_exit_codes_on_a_real_cluster(kubeconfig: Path, namespace: str, runs: Runs, github_url: str) -> None:
    sha = fresh_sha()
    runs.create("there", "pipelinerun-successful", sha=sha)
    assert shell(kubeconfig, "status", "-n", namespace, "--sha", sha).returncode == ExitCode.OK
    assert shell(kubeconfig, "status", "-n", namespace, "--sha", fresh_sha()).returncode == ExitCode.NO_MATCH
    assert shell(kubeconfig, "explain", "gone", "-n", namespace).returncode == ExitCode.RUN_NOT_FOUND
    assert shell(kubeconfig, "status", "-n", namespace, "--bogus").returncode == ExitCode.USAGE
    unreachable = shell(kubeconfig, "send", "there", "-n", namespace, "--url", "http://127.0.0.1:1/")
    assert unreachable.returncode == ExitCode.ERROR
    nobody = shell(kubeconfig, "status", "-n", namespace, "--as", f"system:serviceaccount:{namespace}:nobody")
    assert nobody.returncode == ExitCode.FORBIDDEN
    assert f"acting as system:serviceaccount:{namespace}:nobody" in nobody.stderr


def impersonating_kubeconfig(kubeconfig: Path, tmp_path: Path, **user: Any) -> Path:
    """realkube's kubeconfig with ``as``/``as-groups`` added to its user."""
    document = yaml.safe_load(kubeconfig.read_text())
    document["users"][0]["user"].update(user)
    path = tmp_path / "impersonating-kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return path


def test_kubeconfig_impersonation_is_honoured(
    kubeconfig: Path, namespace: str, runs: Runs, tmp_path: Path
) -> None:
    sha = fresh_sha()
    runs.create("seen", "pipelinerun-successful", sha=sha)
    as_nobody = impersonating_kubeconfig(
        kubeconfig, tmp_path, **{"as": f"system:serviceaccount:{namespace}:nobody"}
    )
    done = shell(as_nobody, "status", "-n", namespace, "--sha", sha)
    assert done.returncode == ExitCode.FORBIDDEN, "the admin token was used without its as:"
    assert f'User "system:serviceaccount:{namespace}:nobody" cannot list' in done.stderr

    # Every Impersonate-Group header is sent: as a member of system:masters, nobody may list.
    as_admins = impersonating_kubeconfig(
        kubeconfig, tmp_path, **{"as": "someone", "as-groups": ["some-team", "system:masters"]}
    )
    done = shell(as_admins, "status", "-n", namespace, "--sha", sha, "-o", "name")
    assert done.returncode == ExitCode.OK, done.stderr
    assert done.stdout.split() == ["pipelinerun.tekton.dev/seen"]


def test_watch_prints_an_update_and_stops_by_itself(
    kubeconfig: Path, namespace: str, runs: Runs, github_url: str
) -> None:
    sha = fresh_sha()
    runs.create("watched", "pipelinerun-running", sha=sha)
    watch = subprocess.Popen(
        [
            *command(),
            "status",
            "-n",
            namespace,
            "--sha",
            sha,
            "-w",
            "--watch-timeout",
            "60s",
            "--watch-interval",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig), "NO_COLOR": "1"},
    )
    assert watch.stdout is not None
    try:
        assert watch.stdout.readline().split()[:2] == ["RUN", "STATE"]
        first = watch.stdout.readline().split()
        assert first[:5] == ["pipelinerun/watched", "Running", "github", "-", "NoRecord"]
        runs.deliver(github_url, "watched", "pipelinerun-running")  # the function records it meanwhile
        updates = []
        for line in watch.stdout:  # each change is printed at the next poll; ends with the watch
            updates.append(line.split()[:5])
            if updates[-1][3:] == ["True", "Reported"]:
                break
        # Perhaps first the function's claim (Unknown Reporting), then its record.
        assert updates[-1] == ["pipelinerun/watched", "Running", "github", "True", "Reported"]
    finally:
        watch.terminate()
        watch.wait(timeout=30)
        watch.stdout.close()
        assert watch.stderr is not None
        watch.stderr.close()


def test_watch_timeout_ends_the_watch(kubeconfig: Path, namespace: str, runs: Runs) -> None:
    sha = fresh_sha()
    runs.create("still", "pipelinerun-running", sha=sha)
    done = shell(
        kubeconfig,
        "status",
        "-n",
        namespace,
        "--sha",
        sha,
        "-w",
        "--watch-timeout",
        "1s",
        "--watch-interval",
        "0.2",
        timeout=60,
    )
    assert done.returncode == ExitCode.OK
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["RUN", "pipelinerun/still"]
