"""The rollup check run: every run on a commit that names it contributes to one check run."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from common import samples
from common.coordination import SHARED_ID
from common.runclient import MemoryRunClient, RunRef
from common.standins.github import GitHubStandIn, JsonObject
from tests.conftest import Deliver, add_run, advance, body, function_client
from tests.support.shared_runs import (
    FINAL,
    OTHER_SHA,
    SHA,
    after_first_list,
    deliver_racing,
    finished_twice,
    github_annotations,
    leases,
    live,
    run_event,
)

ROLLUP = "tekton/all"
RECORD = "github.integrations.tekton.dev/status"


def rollups(github: GitHubStandIn, name: str = ROLLUP) -> list[JsonObject]:
    with github.lock:
        return [dict(check) for check in github.check_runs.values() if check["name"] == name]


def record(kube: MemoryRunClient, ref: RunRef) -> dict[str, Any]:
    return json.loads(kube.runs[ref]["metadata"]["annotations"][RECORD])


def in_rollup(sample: str, name: str, **extra: str) -> dict[str, Any]:
    return run_event(sample, name, github_annotations(rollup=ROLLUP, **extra))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_three_runs_delivered_concurrently_with_duplicates_leave_one_rollup_in_its_final_state(
    kube: MemoryRunClient, github: GitHubStandIn, seed: int
) -> None:
    events = finished_twice(kube, in_rollup, seed)
    deliver_racing(kube, "github", events)

    (rollup,) = rollups(github)
    assert (rollup["status"], rollup["conclusion"]) == ("completed", "failure")
    assert rollup["output"]["title"] == "3 runs: 2 succeeded, 1 failed"
    for name in FINAL:
        assert f"`{name}`" in rollup["output"]["summary"]
    assert [verb for verb, _ in kube.calls].count("create leases") == 3, "all three raced to create it"
    (lease,) = leases(kube)
    assert lease["metadata"]["annotations"][SHARED_ID] == str(rollup["id"])
    assert len([c for c in github.check_runs.values() if c["name"] != ROLLUP]) == 3, "each run's own"


def test_the_rollup_is_in_progress_while_any_run_runs_and_lists_each_with_its_link(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org")
    client = function_client("github")
    refs = {name: add_run(kube, in_rollup("pipelinerun-running", name)) for name in ("build", "lint")}
    deliver(client, live(kube, refs["build"], in_rollup("pipelinerun-running", "build")))
    (rollup,) = rollups(github)
    assert rollup["status"] == "in_progress"
    assert rollup["output"]["title"] == "2 runs: 2 running"
    assert (
        "[`lint`](https://dashboard.example.org/#/namespaces/ci/pipelineruns/lint)"
        in rollup["output"]["summary"]
    )

    advance(kube, refs["build"], in_rollup("pipelinerun-successful", "build"))
    deliver(client, live(kube, refs["build"], in_rollup("pipelinerun-successful", "build")))
    (rollup,) = rollups(github)
    assert (rollup["status"], rollup["output"]["title"]) == ("in_progress", "2 runs: 1 running, 1 succeeded")

    advance(kube, refs["lint"], in_rollup("pipelinerun-successful", "lint"))
    deliver(client, live(kube, refs["lint"], in_rollup("pipelinerun-successful", "lint")))
    (rollup,) = rollups(github)
    assert (rollup["status"], rollup["conclusion"]) == ("completed", "success")
    assert record(kube, refs["lint"])["annotations"]["rollup-check-run-id"] == str(rollup["id"])


def test_concurrent_finishes_converge_on_the_final_state(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    """One delivery lists the runs while the other run still runs, and writes after the other's
    delivery wrote the finished rollup: it looks again after writing, and writes the final state."""
    client = function_client("github")
    refs = {name: add_run(kube, in_rollup("pipelinerun-running", name)) for name in ("build", "lint")}
    deliver(client, live(kube, refs["build"], in_rollup("pipelinerun-running", "build")))
    for name in ("build", "lint"):
        advance(kube, refs[name], in_rollup("pipelinerun-successful", name))
    advance(kube, refs["lint"], in_rollup("pipelinerun-running", "lint"))  # lint finishes later

    held, release = threading.Event(), threading.Event()

    def hold_build() -> None:  # build's delivery has listed the PipelineRuns: lint runs
        if threading.current_thread().name == "build":
            held.set()
            assert release.wait(timeout=30)

    stop = after_first_list(kube, "PipelineRun", hold_build)
    build = threading.Thread(
        target=deliver,
        args=(
            function_client("github"),
            live(kube, refs["build"], in_rollup("pipelinerun-successful", "build")),
        ),
        name="build",
    )
    build.start()
    assert held.wait(timeout=30)
    advance(kube, refs["lint"], in_rollup("pipelinerun-successful", "lint"))
    deliver(client, live(kube, refs["lint"], in_rollup("pipelinerun-successful", "lint")))
    (rollup,) = rollups(github)
    assert rollup["conclusion"] == "success", "lint's delivery saw both finished"
    release.set()
    stop()
    build.join(timeout=30)

    (rollup,) = rollups(github)
    assert (rollup["status"], rollup["conclusion"]) == ("completed", "success")
    assert rollup["output"]["title"] == "2 runs: 2 succeeded"
    edits = [c.body["status"] for c in github.calls_to("PATCH", f"/repos/*/check-runs/{rollup['id']}")]
    assert edits[-2:] == ["in_progress", "completed"], "the stale write was followed by the final one"


@pytest.mark.parametrize("crash_at", ["lease", "record"])
def test_a_crash_between_the_github_call_and_the_record_still_leaves_one_rollup(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, crash_at: str
) -> None:
    """The first delivery creates the rollup, then crashes: before the rollup's id is recorded on
    its Lease (``lease``), or before the run's own record is written (``record``). Redeliveries and
    the other run find the rollup and edit it."""
    client = function_client("github")
    refs = {name: add_run(kube, in_rollup("pipelinerun-running", name)) for name in ("build", "lint")}
    writes: list[str] = []

    class CrashError(Exception):
        pass

    def crash(verb: str, ref: RunRef) -> None:
        if verb == "patch" and ref == refs["build"]:
            writes.append(verb)  # on the run: the claim before the call, then the record after it
        if (crash_at == "lease" and verb == "patch leases") or (crash_at == "record" and len(writes) == 2):
            kube.before_request = None
            raise CrashError(verb)

    kube.before_request = crash
    running = in_rollup("pipelinerun-running", "build")
    assert deliver(client, live(kube, refs["build"], running)).status_code in (429, 503)
    assert kube.before_request is None, "the delivery crashed"
    (rollup,) = rollups(github)

    # Redelivered (answered 429 while the crashed delivery's claim on the run is fresh), and lint's.
    assert deliver(client, live(kube, refs["build"], running)).status_code in (200, 429)
    assert (
        deliver(client, live(kube, refs["lint"], in_rollup("pipelinerun-running", "lint"))).status_code == 200
    )
    advance(kube, refs["lint"], in_rollup("pipelinerun-failed", "lint"))
    assert (
        deliver(client, live(kube, refs["lint"], in_rollup("pipelinerun-failed", "lint"))).status_code == 200
    )

    (edited,) = rollups(github)
    assert edited["id"] == rollup["id"]
    assert (edited["status"], edited["output"]["title"]) == ("in_progress", "2 runs: 1 running, 1 failed")


def test_a_run_that_joins_a_finished_rollup_opens_the_next_one(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    """GitHub never moves a completed check run back to in_progress: a re-run on the commit opens
    a new rollup check run of the same name, which GitHub shows (and required checks follow)."""
    client = function_client("github")
    first = add_run(kube, in_rollup("pipelinerun-running", "build"))
    advance(kube, first, in_rollup("pipelinerun-failed", "build"))
    deliver(client, live(kube, first, in_rollup("pipelinerun-failed", "build")))
    (finished,) = rollups(github)
    assert finished["conclusion"] == "failure"

    rerun = add_run(kube, in_rollup("pipelinerun-running", "build-rerun"))
    deliver(client, live(kube, rerun, in_rollup("pipelinerun-running", "build-rerun")))
    advance(kube, rerun, in_rollup("pipelinerun-successful", "build-rerun"))
    deliver(client, live(kube, rerun, in_rollup("pipelinerun-successful", "build-rerun")))

    old, new = sorted(rollups(github), key=lambda check: int(check["id"]))
    assert old == finished, "the finished one is left as it was"
    assert new["external_id"].endswith(":2")
    assert (new["status"], new["conclusion"]) == ("completed", "failure"), "build still failed"
    assert new["output"]["title"] == "2 runs: 1 succeeded, 1 failed"


@pytest.mark.parametrize(
    "case",
    [
        ({"rollup-skipped": "success"}, "success", "Skipped (counts as success)"),
        ({}, "cancelled", "🚫 Skipped"),
    ],
    ids=["rollup-skipped-success", "default"],
)
def test_a_run_cancelled_before_it_ran_counts_as_success_only_when_it_says_so(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver, case: tuple[dict[str, str], str, str]
) -> None:
    skipped, conclusion, shown = case
    client = function_client("github")
    done = add_run(kube, in_rollup("pipelinerun-successful", "build"))
    cancelled = in_rollup("pipelinerun-cancelled", "docs", **skipped)
    _, obj = samples.run_object(cancelled)
    obj["metadata"]["annotations"]["github.integrations.tekton.dev/sha"] = SHA
    del obj["status"]["childReferences"]  # no task ever started
    never_ran = add_run(kube, cancelled)
    deliver(client, live(kube, done, in_rollup("pipelinerun-successful", "build")))
    deliver(client, live(kube, never_ran, cancelled))
    (rollup,) = rollups(github)
    assert rollup["conclusion"] == conclusion
    assert shown in rollup["output"]["summary"]


def test_only_runs_on_the_same_commit_repository_and_rollup_count(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    client = function_client("github")
    mine = add_run(kube, in_rollup("pipelinerun-successful", "build"))
    for name, given in {
        "other-commit": github_annotations(rollup=ROLLUP, sha=OTHER_SHA),
        "other-repo": github_annotations(rollup=ROLLUP, repo="other"),
        "other-rollup": github_annotations(rollup="tekton/other"),
        "no-rollup": github_annotations(),
    }.items():
        add_run(kube, run_event("pipelinerun-failed", name, given))
    assert (
        body(deliver(client, live(kube, mine, in_rollup("pipelinerun-successful", "build"))))["outcome"]
        == "reported"
    )
    (rollup,) = rollups(github)
    assert (rollup["conclusion"], rollup["output"]["title"]) == ("success", "1 run: 1 succeeded")


def test_the_lease_is_owned_by_the_run_that_created_it(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    """So Tekton's pruning of the run collects it."""
    ref = add_run(kube, in_rollup("pipelinerun-running", "build"))
    deliver(function_client("github"), live(kube, ref, in_rollup("pipelinerun-running", "build")))
    (lease,) = leases(kube)
    uid = kube.runs[ref]["metadata"]["uid"]
    assert lease["metadata"]["ownerReferences"] == [
        {"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "name": "build", "uid": uid}
    ]
    assert lease["metadata"]["name"].startswith("ti-github-")
    assert lease["spec"]["holderIdentity"].startswith("build/")
    assert lease["spec"]["leaseDurationSeconds"] == 25


def test_with_commit_statuses_the_rollup_is_one_status_context(
    kube: MemoryRunClient, github: GitHubStandIn, deliver: Deliver
) -> None:
    """A token cannot create check runs (GitHub lets only Apps): runs in ``mode: status`` get the
    rollup as the commit status of that context."""
    client = function_client("github")
    refs = {
        name: add_run(kube, in_rollup("pipelinerun-running", name, mode="status"))
        for name in ("build", "lint")
    }
    deliver(client, live(kube, refs["build"], in_rollup("pipelinerun-running", "build", mode="status")))
    for name, final in (("build", "pipelinerun-successful"), ("lint", "pipelinerun-failed")):
        advance(kube, refs[name], in_rollup(final, name, mode="status"))
        deliver(client, live(kube, refs[name], in_rollup(final, name, mode="status")))

    shown = [(s["state"], s["description"]) for s in github.statuses if s["context"] == ROLLUP]
    assert shown[0] == ("pending", "2 runs: 2 running")
    assert shown[-1] == ("failure", "2 runs: 1 succeeded, 1 failed")
    assert not rollups(github), "no check run"
