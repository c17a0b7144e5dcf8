"""Every request the github-issues function sends is one GitHub's OpenAPI description accepts,
and the issues stand-in's answers are ones it describes.

Prism (proxy mode, ``--errors``) sits between the function and the issues stand-in
(``tests/support/standins/github_issues.py``): a request that breaks the description is refused
with 422 and fails the test. The tier's shared Prism (``prism_github``) fronts the demo's
stand-in, which has no issues, so this module starts its own (about ten seconds, once).

What Prism 5.14.2 checks here, found by sending it wrong requests: paths and methods, the query
parameters of both lists (``state``, ``labels``, ``sort``, ``direction``, ``since`` as a date-time,
``per_page``, ``page``) and the comment's body. It does not check the bodies of ``issues/create``
and ``issues/update`` (a wrong ``state_reason`` reaches the stand-in, which refuses it as GitHub
does), nor the issue answers' schema; the function's unit tests assert those fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from common import samples
from common.runclient import MemoryRunClient, RunRef
from functions.github_issues import issues
from tests.conformance.prism import Prism, PrismGitHub, missing_tools, spec_path
from tests.conftest import Deliver, add_run, body, function_client
from tests.support.standins.github_issues import GitHubIssuesStandIn
from tests.support.tiers import unavailable

PREFIX = "github-issues.integrations.tekton.dev/"
ISSUES = "/repos/acme/widget-service/issues"


@pytest.fixture(scope="module")
def prism_issues() -> Iterator[PrismGitHub]:
    """Prism in front of one issues stand-in, for this module (it reads the description once)."""
    spec = spec_path()
    reason = missing_tools(spec)
    if reason is not None:
        unavailable(f"Prism conformance tier: {reason}")
    with GitHubIssuesStandIn() as standin, Prism(spec, upstream=standin.url) as prism:
        standin.public_url = prism.url  # answers' URLs (and Link headers) point at Prism
        yield PrismGitHub(prism, standin)


@pytest.fixture
def through_prism(prism_issues: PrismGitHub, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrismGitHub]:
    """A clean stand-in behind Prism; the test fails if Prism refused anything."""
    prism_issues.reset()
    monkeypatch.setenv("GITHUB_API_URL", prism_issues.url)
    monkeypatch.setenv("GITHUB_TOKEN", "conformance-issues-credential-0123456789")
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org")
    yield prism_issues
    refused = prism_issues.violations()
    prism_issues.reset()
    if refused:
        listing = "\n".join(f"  {violation}" for violation in refused)
        pytest.fail(f"Prism found requests or answers that GitHub's API does not describe:\n{listing}")


def run_of(kube: MemoryRunClient, sample: str, name: str, **keys: str) -> dict[str, Any]:
    event = samples.load(sample)
    _, obj = samples.run_object(event)
    obj["metadata"]["name"], obj["metadata"]["uid"] = name, f"uid-{name}"
    settings = {"owner": "acme", "repo": "widget-service", **keys}
    obj["metadata"]["annotations"] = {PREFIX + key: value for key, value in settings.items()}
    add_run(kube, event)
    return event


def standin(github: PrismGitHub) -> GitHubIssuesStandIn:
    assert isinstance(github.standin, GitHubIssuesStandIn)
    return github.standin


def test_open_comment_and_close_conform(
    kube: MemoryRunClient, deliver: Deliver, through_prism: PrismGitHub
) -> None:
    client = function_client("github-issues")
    events = [
        run_of(kube, "pipelinerun-failed", "build-1"),
        run_of(kube, "pipelinerun-failed", "build-2"),
        run_of(kube, "pipelinerun-successful", "build-3"),
    ]
    for event in events:
        assert body(deliver(client, event))["outcome"] == "reported"

    (issue,) = standin(through_prism).issues()
    assert issue["state"] == "closed"
    assert len(standin(through_prism).comments(issue["number"])) == 2
    assert [(c.method, c.path) for c in through_prism.calls] == [
        ("GET", ISSUES),  # open
        ("GET", ISSUES),  # closed since the run ended
        ("POST", ISSUES),
        ("GET", ISSUES),  # open, after opening
        ("GET", ISSUES),  # open
        ("GET", ISSUES),  # closed since the run ended
        ("GET", f"{ISSUES}/1/comments"),
        ("POST", f"{ISSUES}/1/comments"),
        ("GET", ISSUES),  # open
        ("GET", f"{ISSUES}/1/comments"),
        ("POST", f"{ISSUES}/1/comments"),
        ("PATCH", f"{ISSUES}/1"),
    ]


def test_leaving_open_duplicates_and_a_recorded_number_conform(
    kube: MemoryRunClient, deliver: Deliver, through_prism: PrismGitHub
) -> None:
    """The other requests: the newest comments by their last page, closing a duplicate with a new
    body, and reading a recorded issue by number (sent without the client library)."""
    github = standin(through_prism)
    marker = "<!-- tekton-integrations: pipeline=ci/build-and-test -->"
    for _ in range(2):
        github.add_issue(
            "acme/widget-service",
            "tekton: ci/build-and-test is failing",
            marker,
            ("tekton-pipeline-failure",),
        )
    for n in range(150):  # two pages of comments: the newest are on the last
        github.add_comment("acme/widget-service", 1, f"comment {n}")
    client = function_client("github-issues")
    fixed = run_of(kube, "pipelinerun-successful", "build-1", close="false")
    failed = run_of(kube, "pipelinerun-failed", "build-2")
    recorded = _record_naming(failed, "1")  # as a retry after a failed comment would carry it
    kube.patch(
        RunRef("PipelineRun", "ci", "build-2"), {"metadata": {"annotations": {PREFIX + "status": recorded}}}
    )
    for event in (fixed, failed):
        assert body(deliver(client, event))["outcome"] == "reported"

    assert [i["state"] for i in github.issues()] == ["open", "closed"]
    assert ("GET", f"{ISSUES}/1") in [(c.method, c.path) for c in through_prism.calls]
    assert any(c.method == "GET" and c.query.get("page") == ["2"] for c in through_prism.calls)


def _record_naming(event: dict[str, Any], number: str) -> str:
    _, obj = samples.run_object(event)
    return json.dumps(
        {
            "name": "github-issues.integrations.tekton.dev",
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Succeeded",
                    "status": "Unknown",
                    "reason": "GitHubUnavailable",
                    "message": "",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
            "annotations": {"issue-number": number},
            "runUID": obj["metadata"]["uid"],
            "runState": {"status": "Unknown", "reason": "Running"},
        }
    )


def test_a_request_github_would_refuse_is_caught(
    kube: MemoryRunClient, deliver: Deliver, prism_issues: PrismGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tier is not a rubber stamp: a ``since`` that is no RFC 3339 date-time is refused."""
    prism_issues.reset()
    monkeypatch.setenv("GITHUB_API_URL", prism_issues.url)
    monkeypatch.setenv("GITHUB_TOKEN", "conformance-issues-credential-0123456789")
    monkeypatch.setattr(issues, "_timestamp", lambda moment: moment.strftime("%d/%m/%Y"))
    failed = run_of(kube, "pipelinerun-failed", "build-1")

    assert body(deliver(function_client("github-issues"), failed))["reason"] == "GitHubRejected"
    refused = prism_issues.take_violations()
    assert [(v.method, v.path, v.code) for v in refused] == [("GET", ISSUES, "UNPROCESSABLE_ENTITY")]
    assert not standin(prism_issues).issues()
