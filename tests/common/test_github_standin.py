"""The loopback GitHub stand-in, driven with PyGithub as the integrations drive it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import (
    Auth,
    Github,
    GithubException,
    GithubIntegration,
    RateLimitExceededException,
    UnknownObjectException,
)
from github.Repository import Repository

from common.standins.github import GitHubStandIn

SHA = "9f1c2e7b4a6d8e0f1a2b3c4d5e6f708192a3b4c5"
TOKEN = "ghp_standin-test-token"


def github_client(base_url: str, auth: Auth.Auth | None = None, **options: float | None) -> Github:
    """PyGithub without retries or write pacing unless a test asks for them."""
    settings: dict[str, float | None] = {
        "seconds_between_requests": None,
        "seconds_between_writes": None,
    }
    settings.update(options)
    return Github(
        base_url=base_url,
        auth=auth if auth is not None else Auth.Token(TOKEN),
        retry=None,
        seconds_between_requests=settings["seconds_between_requests"],
        seconds_between_writes=settings["seconds_between_writes"],
    )


@cache
def app_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def standin() -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as running:
        yield running


@pytest.fixture
def gh(standin: GitHubStandIn) -> Iterator[Github]:
    client = github_client(standin.url)
    yield client
    client.close()


@pytest.fixture
def repo(gh: Github) -> Repository:
    return gh.get_repo("acme/widget-service")


def test_check_run_is_created_then_edited_in_place(standin: GitHubStandIn, repo: Repository) -> None:
    created = repo.create_check_run(
        name="tekton/build-and-test",
        head_sha=SHA,
        status="in_progress",
        external_id="run-uid",
        output={"title": "Running", "summary": "build-and-test is running"},
    )
    created.edit(conclusion="failure", output={"title": "Failed", "summary": "2 tasks failed"})

    (stored,) = standin.check_runs.values()
    assert stored["id"] == created.id
    assert (stored["status"], stored["conclusion"]) == ("completed", "failure")
    assert stored["completed_at"] is not None
    assert stored["output"]["title"] == "Failed"
    assert stored["external_id"] == "run-uid"
    assert (created.status, created.conclusion) == ("completed", "failure")
    fetched = repo.get_check_run(created.id)
    assert (fetched.name, fetched.head_sha, fetched.conclusion) == (
        "tekton/build-and-test",
        SHA,
        "failure",
    )
    assert fetched.url == f"{standin.url}/repos/acme/widget-service/check-runs/{created.id}"


def test_calls_are_recorded_without_the_authorization_value(standin: GitHubStandIn, repo: Repository) -> None:
    repo.create_check_run(name="tekton/x", head_sha=SHA, status="queued")

    get_repo, create = standin.calls
    assert (get_repo.method, get_repo.path, get_repo.status) == ("GET", "/repos/acme/widget-service", 200)
    assert (create.method, create.path, create.status) == (
        "POST",
        "/repos/acme/widget-service/check-runs",
        201,
    )
    assert create.body == {"name": "tekton/x", "head_sha": SHA, "status": "queued"}
    assert (create.auth_scheme, create.credential) == ("token", "token")
    assert create.authenticated
    assert not create.enterprise_prefix
    assert all(name.lower() != "authorization" for name in create.headers)
    assert TOKEN not in repr(standin.calls)
    assert [c.path for c in standin.calls_to("post", "/repos/*/check-runs")] == [create.path]


def test_commit_status_is_recorded_with_its_repository_and_sha(
    standin: GitHubStandIn, repo: Repository
) -> None:
    status = repo.get_commit(SHA).create_status(
        state="success", target_url="https://ci.example/1", description="ok", context="tekton/x"
    )

    assert (status.state, status.context, status.description) == ("success", "tekton/x", "ok")
    (posted,) = standin.statuses
    assert (posted["repository"], posted["sha"], posted["state"]) == (
        "acme/widget-service",
        SHA,
        "success",
    )
    assert posted["target_url"] == "https://ci.example/1"
    assert standin.calls[-1].path == f"/repos/acme/widget-service/statuses/{SHA}"


def test_enterprise_api_v3_prefix_is_served_and_echoed(standin: GitHubStandIn) -> None:
    client = github_client(standin.enterprise_url)
    try:
        check_run = client.get_repo("acme/widget-service").create_check_run(name="tekton/x", head_sha=SHA)
        check_run.edit(status="in_progress")
    finally:
        client.close()

    assert all(call.enterprise_prefix for call in standin.calls)
    assert [call.path for call in standin.calls] == [
        "/repos/acme/widget-service",
        "/repos/acme/widget-service/check-runs",
        f"/repos/acme/widget-service/check-runs/{check_run.id}",
    ]
    assert check_run.url.startswith(f"{standin.url}/api/v3/repos/")
    assert standin.check_runs[check_run.id]["status"] == "in_progress"


@pytest.mark.parametrize(
    ("status", "headers", "exception"),
    [
        (503, {}, GithubException),
        (404, {}, UnknownObjectException),
        (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4102444800"}, RateLimitExceededException),
        # PyGithub maps only 403s to RateLimitExceededException: a 429 stays a GithubException.
        (429, {"Retry-After": "30"}, GithubException),
    ],
)
def test_scripted_faults_surface_as_github_exceptions(
    standin: GitHubStandIn,
    repo: Repository,
    status: int,
    headers: dict[str, str],
    exception: type[GithubException],
) -> None:
    standin.fail_next(status, headers=headers)

    with pytest.raises(GithubException) as failed:
        repo.create_check_run(name="tekton/x", head_sha=SHA)

    assert type(failed.value) is exception
    assert failed.value.status == status
    assert failed.value.headers is not None
    for name, value in headers.items():
        assert failed.value.headers[name.lower()] == value
    assert standin.calls[-1].status == status
    assert not standin.check_runs, "a faulted request must not change state"
    repo.create_check_run(name="tekton/x", head_sha=SHA)  # the fault was used up
    assert len(standin.check_runs) == 1


def test_faults_count_and_match_method_and_path(standin: GitHubStandIn, repo: Repository) -> None:
    standin.fail_next(502, count=2, method="PATCH", path="/repos/*/check-runs/*", body={"message": "boom"})
    check_run = repo.create_check_run(name="tekton/x", head_sha=SHA)  # POST: not matched
    assert standin.pending_faults() == 2

    for _ in range(2):
        with pytest.raises(GithubException) as failed:
            check_run.edit(status="in_progress")
        assert (failed.value.status, failed.value.data) == (502, {"message": "boom"})
    check_run.edit(status="in_progress")

    assert standin.pending_faults() == 0
    assert [call.status for call in standin.calls_to("PATCH")] == [502, 502, 200]


def test_pygithub_default_retry_hides_one_503_on_post_but_not_on_patch(
    standin: GitHubStandIn,
) -> None:
    client = Github(base_url=standin.url, auth=Auth.Token(TOKEN), seconds_between_writes=None)
    try:
        repo = client.get_repo("acme/widget-service")
        standin.fail_next(503, method="POST")
        check_run = repo.create_check_run(name="tekton/x", head_sha=SHA)
        standin.fail_next(503, method="PATCH")
        with pytest.raises(GithubException) as failed:
            check_run.edit(status="in_progress")
    finally:
        client.close()

    assert [call.status for call in standin.calls_to("POST")] == [503, 201]
    assert failed.value.status == 503


def test_invalid_bodies_get_422_validation_failed(standin: GitHubStandIn, repo: Repository) -> None:
    check_run = repo.create_check_run(name="tekton/x", head_sha=SHA)
    attempts = [
        lambda: check_run.edit(conclusion="bogus"),
        lambda: repo.create_check_run(name="tekton/x", head_sha=SHA, status="completed"),
        lambda: repo.create_check_run(name="tekton/x", head_sha=SHA, output={"title": "t"}),
        lambda: repo.get_commit(SHA).create_status(state="great"),
    ]
    for attempt in attempts:
        with pytest.raises(GithubException) as refused:
            attempt()
        assert refused.value.status == 422
        assert refused.value.data["message"] == "Validation Failed"

    assert standin.check_runs[check_run.id]["status"] == "queued"
    assert len(standin.check_runs) == 1
    assert not standin.statuses


def test_writes_need_credentials(standin: GitHubStandIn) -> None:
    anonymous = Github(base_url=standin.url, retry=None, seconds_between_writes=None)
    try:
        repo = anonymous.get_repo("acme/widget-service")  # reading a public repo is allowed
        with pytest.raises(GithubException) as refused:
            repo.create_check_run(name="tekton/x", head_sha=SHA)
    finally:
        anonymous.close()
    assert (refused.value.status, refused.value.message) == (401, "Requires authentication")
    assert standin.calls[-1].credential is None


def test_app_flow_issues_an_installation_token_that_is_then_used(standin: GitHubStandIn) -> None:
    app_auth = Auth.AppAuth(7, app_private_key())
    integration = GithubIntegration(auth=app_auth, base_url=standin.url, retry=None)
    try:
        installation = integration.get_repo_installation("acme", "widget-service")
        token = integration.get_access_token(installation.id)
    finally:
        integration.close()
    client = github_client(standin.url, app_auth.get_installation_auth(installation.id))
    try:
        client.get_repo("acme/widget-service").create_check_run(name="tekton/x", head_sha=SHA)
    finally:
        client.close()

    assert installation.id == 42
    assert timedelta(minutes=59) < token.expires_at - datetime.now(UTC) <= timedelta(hours=1)
    lookup = standin.calls[0]
    assert (lookup.path, lookup.auth_scheme, lookup.credential) == (
        "/repos/acme/widget-service/installation",
        "Bearer",
        "jwt",
    )
    assert lookup.jwt_claims is not None
    assert lookup.jwt_claims["iss"] == "7"
    assert [c.credential for c in standin.calls_to(path="/repos/*/check-runs")] == ["installation-token"]


def test_app_endpoints_refuse_tokens_and_repo_endpoints_refuse_jwts(
    standin: GitHubStandIn, gh: Github
) -> None:
    with pytest.raises(GithubException) as refused:
        gh.requester.requestJsonAndCheck("GET", "/repos/acme/widget-service/installation")
    assert refused.value.status == 401

    jwt = Auth.AppAuth(7, app_private_key()).token
    answer = requests.post(
        f"{standin.url}/repos/acme/widget-service/check-runs",
        json={"name": "x", "head_sha": SHA},
        headers={"Authorization": f"Bearer {jwt}"},
        timeout=5,
    )
    assert answer.status_code == 401
    assert not standin.check_runs


def test_an_expired_installation_token_gets_401() -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    with GitHubStandIn(clock=lambda: now[0], token_lifetime=timedelta(minutes=10)) as standin:
        jwt = Auth.AppAuth(7, app_private_key()).token
        # The JWT carries the real time; keep the fake clock near it while it is checked.
        now[0] = datetime.now(UTC)
        issued = requests.post(
            f"{standin.url}/app/installations/42/access_tokens",
            headers={"Authorization": f"Bearer {jwt}"},
            timeout=5,
        )
        assert issued.status_code == 201
        headers = {"Authorization": f"token {issued.json()['token']}"}
        url = f"{standin.url}/repos/acme/widget-service/check-runs"
        body = {"name": "x", "head_sha": SHA}

        assert requests.post(url, json=body, headers=headers, timeout=5).status_code == 201
        now[0] += timedelta(minutes=11)
        expired = requests.post(url, json=body, headers=headers, timeout=5)
        assert (expired.status_code, expired.json()["message"]) == (401, "Bad credentials")
        assert len(standin.check_runs) == 1


def test_unknown_paths_and_bad_json_answer_like_github(standin: GitHubStandIn) -> None:
    missing = requests.get(f"{standin.url}/repos/acme/widget-service/nope", timeout=5)
    assert missing.status_code == 404
    assert missing.json()["message"] == "Not Found"
    garbled = requests.post(
        f"{standin.url}/repos/acme/widget-service/check-runs",
        data=b"{not json",
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        timeout=5,
    )
    assert garbled.status_code == 400
    assert garbled.json()["message"] == "Problems parsing JSON"


def test_latency_delays_every_answer(standin: GitHubStandIn) -> None:
    standin.latency_seconds = 0.3
    began = time.monotonic()
    assert requests.get(f"{standin.url}/repos/acme/widget-service", timeout=5).status_code == 200
    assert time.monotonic() - began >= 0.3

    with pytest.raises(requests.Timeout):
        requests.get(f"{standin.url}/repos/acme/widget-service", timeout=0.1)


def test_concurrent_creates_get_distinct_ids(standin: GitHubStandIn) -> None:
    def create() -> None:
        client = github_client(standin.url)
        try:
            repo = client.get_repo("acme/widget-service")
            for _ in range(5):
                repo.create_check_run(name="tekton/x", head_sha=SHA)
        finally:
            client.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(standin.check_runs) == 20
    assert len(standin.calls_to("POST")) == 20


def test_stopping_frees_the_port() -> None:
    with GitHubStandIn() as standin:
        url = standin.url
        assert requests.get(f"{url}/repos/a/b", timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/repos/a/b", timeout=5)
