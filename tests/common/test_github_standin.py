"""The loopback GitHub stand-in, driven with PyGithub as the integrations drive it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
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
from tests.conformance.prism import Prism, PrismGitHub, missing_tools, spec_path
from tests.support.github_app import app_private_key
from tests.support.tiers import unavailable

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


# -- List check runs for a Git reference ----------------------------------------------------------

OTHER_SHA = "0" * 40


def create_runs(repo: Repository, *names: str, sha: str = SHA) -> list[int]:
    return [
        repo.create_check_run(name=name, head_sha=sha, status="in_progress", external_id=f"uid-{n}").id
        for n, name in enumerate(names)
    ]


def test_check_runs_for_a_ref_are_newest_first_and_latest_per_name_by_default(
    standin: GitHubStandIn, repo: Repository, gh: Github
) -> None:
    build_1, lint, build_2 = create_runs(repo, "tekton/build", "tekton/lint", "tekton/build")
    create_runs(repo, "tekton/build", sha=OTHER_SHA)
    gh.get_repo("acme/other").create_check_run(name="tekton/build", head_sha=SHA)
    repo.get_check_run(build_2).edit(conclusion="success")
    commit = repo.get_commit(SHA)

    latest = commit.get_check_runs()
    assert [(run.id, run.name) for run in latest] == [(build_2, "tekton/build"), (lint, "tekton/lint")]
    assert latest.totalCount == 2
    every = commit.get_check_runs(filter="all")
    assert [run.id for run in every] == [build_2, lint, build_1]
    assert [run.external_id for run in every] == ["uid-2", "uid-1", "uid-0"]
    assert [run.id for run in commit.get_check_runs(check_name="tekton/build", filter="all")] == [
        build_2,
        build_1,
    ]
    assert [run.id for run in commit.get_check_runs(status="completed")] == [build_2]
    assert [run.id for run in commit.get_check_runs(status="in_progress")] == [lint]

    call = standin.calls_to("GET", "/repos/*/commits/*/check-runs")[-1]
    assert (call.path, call.query) == (
        f"/repos/acme/widget-service/commits/{SHA}/check-runs",
        {"status": ["in_progress"]},
    )


def test_check_runs_for_a_ref_are_the_objects_get_check_run_returns(
    standin: GitHubStandIn, repo: Repository
) -> None:
    (run_id,) = create_runs(repo, "tekton/build")
    headers = {"Authorization": f"token {TOKEN}"}
    one = requests.get(
        f"{standin.url}/repos/acme/widget-service/check-runs/{run_id}", headers=headers, timeout=5
    )
    listed = requests.get(
        f"{standin.url}/repos/acme/widget-service/commits/{SHA}/check-runs", headers=headers, timeout=5
    )
    assert listed.json() == {"total_count": 1, "check_runs": [one.json()]}
    assert "Link" not in listed.headers
    unknown = requests.get(
        f"{standin.url}/repos/acme/widget-service/commits/{SHA}/check-runs?filter=x", timeout=5
    )
    assert (unknown.status_code, unknown.json()["errors"][0]["field"]) == (422, "filter")


def test_check_runs_for_a_ref_are_paged_with_link_headers(standin: GitHubStandIn, repo: Repository) -> None:
    ids = create_runs(repo, *(f"tekton/task-{n}" for n in range(5)))
    url = f"{standin.url}/repos/acme/widget-service/commits/{SHA}/check-runs"

    page = requests.get(url, params={"per_page": "2", "page": "2", "check_name": "tekton/task-1"}, timeout=5)
    assert page.json() == {"total_count": 1, "check_runs": []}
    page = requests.get(url, params={"per_page": 2, "page": 2}, timeout=5)
    assert page.json()["total_count"] == 5
    assert [run["id"] for run in page.json()["check_runs"]] == [ids[2], ids[1]]
    links = {rel: link["url"] for rel, link in page.links.items()}
    assert links == {
        "next": f"{url}?per_page=2&page=3",
        "last": f"{url}?per_page=2&page=3",
        "first": f"{url}?per_page=2&page=1",
        "prev": f"{url}?per_page=2&page=1",
    }

    client = github_client(standin.url)
    client.per_page = 2
    try:
        paged = client.get_repo("acme/widget-service").get_commit(SHA).get_check_runs()
        assert [run.id for run in paged] == ids[::-1]
    finally:
        client.close()
    pages = [call.query.get("page") for call in standin.calls_to("GET", "/repos/*/commits/*/check-runs")]
    assert pages[-3:] == [None, ["2"], ["3"]]


def test_check_runs_per_page_is_capped_at_one_hundred(standin: GitHubStandIn) -> None:
    with requests.Session() as session:
        session.headers["Authorization"] = f"token {TOKEN}"
        for n in range(101):
            body = {"name": f"tekton/task-{n}", "head_sha": SHA}
            assert (
                session.post(f"{standin.url}/repos/a/b/check-runs", json=body, timeout=5).status_code == 201
            )
        url = f"{standin.url}/repos/a/b/commits/{SHA}/check-runs"
        assert len(session.get(url, params={"per_page": 500}, timeout=5).json()["check_runs"]) == 100
        assert len(session.get(url, timeout=5).json()["check_runs"]) == 30


def test_a_branch_ref_names_the_commit_that_get_commit_shows(
    standin: GitHubStandIn, repo: Repository
) -> None:
    head = repo.get_commit("main").sha
    (run_id,) = create_runs(repo, "tekton/build", sha=head)
    assert [run.id for run in repo.get_commit("main").get_check_runs()] == [run_id]
    answer = requests.get(f"{standin.url}/repos/acme/widget-service/commits/heads/main/check-runs", timeout=5)
    assert [run["id"] for run in answer.json()["check_runs"]] == [run_id]


# -- echoed credentials ---------------------------------------------------------------------------


def test_echo_credentials_repeats_the_authorization_header_in_the_answer(
    standin: GitHubStandIn, repo: Repository
) -> None:
    standin.echo_credentials_next(502, method="POST", path="/repos/*/check-runs")

    with pytest.raises(GithubException) as failed:
        repo.create_check_run(name="tekton/x", head_sha=SHA)

    assert failed.value.status == 502
    assert f"Authorization: token {TOKEN}" in str(failed.value.data)
    assert standin.calls[-1].status == 502
    assert TOKEN not in repr(standin.calls), "the record still never keeps the credential"
    repo.create_check_run(name="tekton/x", head_sha=SHA)  # used up

    standin.echo_credentials_next(401, count=2, as_json=True)
    for _ in range(2):
        answer = requests.get(
            f"{standin.url}/repos/a/b", headers={"Authorization": "Bearer a.b.c"}, timeout=5
        )
        assert answer.status_code == 401
        assert answer.json()["message"].startswith("Authorization: Bearer a.b.c -- 401")
    assert standin.pending_faults() == 0


# -- the same answers through Prism ----------------------------------------------------------------


@pytest.fixture(scope="module")
def prism_github() -> Iterator[PrismGitHub]:
    """Prism in front of a stand-in of this module's own: the conformance tier's check, for the
    list endpoint (tests/conformance keeps its session-wide Prism to itself)."""
    spec = spec_path()
    reason = missing_tools(spec)
    if reason is not None:
        unavailable(f"Prism conformance tier: {reason}")
    with GitHubStandIn() as standin, Prism(spec, upstream=standin.url) as prism:
        standin.public_url = prism.url
        yield PrismGitHub(prism, standin)


def test_check_runs_for_a_ref_conform_to_githubs_description(prism_github: PrismGitHub) -> None:
    prism_github.reset()
    client = github_client(prism_github.url)
    client.per_page = 1
    try:
        repo = client.get_repo("acme/widget-service")
        create_runs(repo, "tekton/build", "tekton/lint")
        repo.get_check_run(create_runs(repo, "tekton/build")[0]).edit(conclusion="failure")
        commit = repo.get_commit(SHA)
        assert len(list(commit.get_check_runs(filter="all"))) == 3
        assert [run.name for run in commit.get_check_runs(check_name="tekton/build", status="completed")] == [
            "tekton/build"
        ]
    finally:
        client.close()
    assert prism_github.violations() == []

    # Not a rubber stamp: an answer that breaks the schema is caught.
    prism_github.fail_next(200, body={"total_count": "many"}, path="/repos/*/commits/*/check-runs")
    requests.get(f"{prism_github.url}/repos/acme/widget-service/commits/{SHA}/check-runs", timeout=30)
    assert {found.code for found in prism_github.take_violations() if found.severity == "error"} == {
        "VIOLATIONS"
    }
