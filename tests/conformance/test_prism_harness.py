"""The conformance harness itself: valid GitHub requests pass Prism, invalid ones fail loudly.

Without these, a Prism that accepted everything would make the tier a rubber stamp.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from github import Auth, Github, GithubException, GithubIntegration
from github.CheckRun import CheckRun
from github.Repository import Repository

from tests.conformance.prism import PrismGitHub
from tests.support.github_app import app_private_key

SHA = "9f1c2e7b4a6d8e0f1a2b3c4d5e6f708192a3b4c5"
APP_ID = 12345


def github_client(base_url: str, auth: Auth.Auth) -> Github:
    """PyGithub without its retries and write pacing (1 s between writes by default)."""
    return Github(
        base_url=base_url,
        auth=auth,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


@pytest.fixture
def gh(conformant_github: PrismGitHub) -> Iterator[Github]:
    """PyGithub pointed at Prism with a token."""
    client = github_client(conformant_github.url, Auth.Token("ghs_conformance"))
    yield client
    client.close()


@pytest.fixture
def repo(gh: Github) -> Repository:
    return gh.get_repo("acme/widget-service")


def started_check_run(repo: Repository) -> CheckRun:
    return repo.create_check_run(
        name="tekton/build-and-test",
        head_sha=SHA,
        status="in_progress",
        details_url="https://dashboard.example.org/#/namespaces/ci/pipelineruns/run-1",
        external_id="3b1e7c2a-0d0e-4a55-9a8e-5d2b8f1f4c11",
        output={"title": "Running", "summary": "build-and-test is running"},
    )


def test_valid_check_run_create_and_edit_pass(conformant_github: PrismGitHub, repo: Repository) -> None:
    check_run = started_check_run(repo)
    check_run.edit(
        conclusion="success",
        output={
            "title": "Succeeded",
            "summary": "All tasks passed",
            "text": "3 tasks",
            "annotations": [
                {
                    "path": "README.md",
                    "start_line": 1,
                    "end_line": 1,
                    "annotation_level": "notice",
                    "message": "looked fine",
                }
            ],
        },
    )

    assert (check_run.status, check_run.conclusion) == ("completed", "success")
    assert repo.get_check_run(check_run.id).output.annotations_count == 1
    assert [(call.method, call.status) for call in conformant_github.calls] == [
        ("GET", 200),
        ("POST", 201),
        ("PATCH", 200),
        ("GET", 200),
    ]
    assert conformant_github.violations() == []  # requests and the stand-in's answers conform


def test_valid_commit_status_create_passes(conformant_github: PrismGitHub, repo: Repository) -> None:
    status = repo.get_commit(SHA).create_status(
        state="pending",
        target_url="https://dashboard.example.org/#/namespaces/ci/pipelineruns/run-1",
        description="build-and-test is running",
        context="tekton/build-and-test",
    )

    assert status.state == "pending"
    assert [s["state"] for s in conformant_github.statuses] == ["pending"]
    assert conformant_github.violations() == []


def test_app_installation_lookup_and_token_pass(conformant_github: PrismGitHub) -> None:
    app_auth = Auth.AppAuth(APP_ID, app_private_key())
    integration = GithubIntegration(
        auth=app_auth,
        base_url=conformant_github.url,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    try:
        installation = integration.get_repo_installation("acme", "widget-service")
        token = integration.get_access_token(installation.id)
    finally:
        integration.close()
    client = github_client(conformant_github.url, app_auth.get_installation_auth(installation.id))
    try:
        client.get_repo("acme/widget-service").get_commit(SHA)
    finally:
        client.close()

    assert installation.id == 42
    assert token.token.startswith("ghs_")
    lookup, *_ = conformant_github.calls
    assert (lookup.method, lookup.path) == ("GET", "/repos/acme/widget-service/installation")
    assert (lookup.auth_scheme, lookup.credential) == ("Bearer", "jwt")
    assert lookup.jwt_claims is not None
    assert lookup.jwt_claims["iss"] == str(APP_ID)
    assert conformant_github.calls[-1].credential == "installation-token"
    assert conformant_github.violations() == []


def test_invalid_check_run_conclusion_is_refused_before_github(
    conformant_github: PrismGitHub, repo: Repository
) -> None:
    check_run = started_check_run(repo)
    calls_before = len(conformant_github.calls)

    with pytest.raises(GithubException) as refused:
        check_run.edit(conclusion="bogus")

    assert refused.value.status == 422
    (problem,) = refused.value.data["validation"]
    assert problem["location"] == ["body", "conclusion"]
    assert len(conformant_github.calls) == calls_before, "the invalid request reached the stand-in"
    (violation,) = conformant_github.take_violations()
    assert (violation.method, violation.severity, violation.code) == (
        "PATCH",
        "error",
        "UNPROCESSABLE_ENTITY",
    )
    assert violation.path == f"/repos/acme/widget-service/check-runs/{check_run.id}"


def test_invalid_commit_status_state_is_refused(conformant_github: PrismGitHub, repo: Repository) -> None:
    with pytest.raises(GithubException) as refused:
        repo.get_commit(SHA).create_status(state="great")

    assert refused.value.status == 422
    assert "state must be equal to one of the allowed values" in str(refused.value.data)
    assert not conformant_github.statuses
    assert [v.code for v in conformant_github.take_violations()] == ["UNPROCESSABLE_ENTITY"]


def test_check_run_output_without_summary_is_refused(
    conformant_github: PrismGitHub, repo: Repository
) -> None:
    with pytest.raises(GithubException) as refused:
        repo.create_check_run(name="tekton/x", head_sha=SHA, output={"title": "no summary"})

    assert refused.value.status == 422
    assert "must have required property 'summary'" in str(refused.value.data)
    assert not conformant_github.check_runs
    assert conformant_github.take_violations()


def test_a_path_github_does_not_have_is_refused(conformant_github: PrismGitHub, gh: Github) -> None:
    with pytest.raises(GithubException) as refused:
        gh.requester.requestJsonAndCheck("GET", "/repos/acme/widget-service/check-runz/1")

    assert refused.value.status == 404
    assert [v.code for v in conformant_github.take_violations()] == ["NO_PATH_MATCHED_ERROR"]


def test_enterprise_prefix_is_not_stripped_by_prism(conformant_github: PrismGitHub) -> None:
    """Prism matches paths literally: GHES-style clients must be pointed at the stand-in."""
    client = github_client(conformant_github.url + "/api/v3", Auth.Token("ghs_conformance"))
    try:
        with pytest.raises(GithubException) as refused:
            client.get_repo("acme/widget-service")
    finally:
        client.close()

    assert refused.value.status == 404
    assert [v.code for v in conformant_github.take_violations()] == ["NO_PATH_MATCHED_ERROR"]


def test_completed_without_conclusion_passes_prism_but_not_the_stand_in(
    conformant_github: PrismGitHub, repo: Repository
) -> None:
    """Prism does not enforce the create body's ``anyOf``; the stand-in answers 422 as GitHub."""
    with pytest.raises(GithubException) as refused:
        repo.create_check_run(name="tekton/x", head_sha=SHA, status="completed")

    assert refused.value.status == 422
    assert refused.value.data["message"] == "Validation Failed"
    assert conformant_github.calls[-1].status == 422  # it reached the stand-in
    assert [v.severity for v in conformant_github.take_violations()] == ["warning"]


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (503, {}),
        (429, {"Retry-After": "30"}),
        (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4102444800"}),
    ],
)
def test_scripted_faults_pass_through_prism_with_a_warning(
    conformant_github: PrismGitHub, repo: Repository, status: int, headers: dict[str, str]
) -> None:
    conformant_github.fail_next(status, headers=headers, path="/repos/*/check-runs")

    with pytest.raises(GithubException) as failed:
        started_check_run(repo)

    assert failed.value.status == status
    for name, value in headers.items():
        assert failed.value.headers is not None
        assert failed.value.headers[name.lower()] == value
    (warning,) = conformant_github.take_violations()
    assert (warning.method, warning.severity) == ("POST", "warning")
    assert "Unable to match the returned status code" in warning.message
