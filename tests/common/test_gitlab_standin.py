"""The GitLab stand-in answers like GitLab's commit-status API, spoken to with plain HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.standins.gitlab import GitLabStandIn

SHA = "4e8a1d0c7b2f93e6a5d41c08b7f2e3a9d6c1b0f5"
TOKEN = "glpat-standin"


@pytest.fixture
def standin() -> Iterator[GitLabStandIn]:
    with GitLabStandIn({"group/sub/project": 5}, token=TOKEN) as running:
        yield running


def post(standin: GitLabStandIn, project: str, token: str | None = TOKEN, **fields: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{standin.url}/api/v4/projects/{project}/statuses/{SHA}",
        data=json.dumps(fields).encode(),
        headers={"Content-Type": "application/json", **({"PRIVATE-TOKEN": token} if token else {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_a_status_moves_through_states_and_refuses_to_repeat_one(standin: GitLabStandIn) -> None:
    encoded = "group%2Fsub%2Fproject"
    assert post(standin, encoded, state="pending", name="ci")[0] == 201
    status, body = post(standin, encoded, state="pending", name="ci")
    assert (status, body["message"].split(" (")[0]) == (
        400,
        "Cannot transition status via :enqueue from :pending",
    )
    assert post(standin, "5", state="running", name="ci")[1]["status"] == "running"
    status, body = post(standin, encoded, state="running", name="ci")
    assert (status, body["message"].split(" (")[0]) == (
        400,
        "Cannot transition status via :run from :running",
    )
    assert post(standin, encoded, state="success", name="ci")[1]["status"] == "success"
    assert [s["status"] for s in standin.statuses] == ["success"]

    # A finished status is left alone: the next post starts a new one, as a retried job.
    assert post(standin, encoded, state="failed", name="ci")[1]["status"] == "failed"
    assert [s["status"] for s in standin.statuses] == ["success", "failed"]


def test_refusals_follow_gitlab(standin: GitLabStandIn) -> None:
    assert post(standin, "group%2Fsub%2Fproject", token=None, state="pending")[0] == 401
    assert post(standin, "group%2Fsub%2Fproject", token="wrong", state="pending")[0] == 401
    assert post(standin, "other%2Fproject", state="pending") == (404, {"message": "404 Project Not Found"})
    assert post(standin, "5", state="bogus")[0] == 400
    status, body = post(standin, "5", state="pending", description="x" * 256)
    assert (status, list(body["message"])) == (400, ["description"])
    assert standin.calls[0].credential is None
    assert not standin.statuses


def test_echo_credentials_repeats_private_token_and_authorization(standin: GitLabStandIn) -> None:
    standin.echo_credentials_next(502, method="POST", path="/api/v4/projects/*/statuses/*")
    status, body = post_raw(standin, "5", {"PRIVATE-TOKEN": TOKEN}, state="pending")
    assert status == 502
    assert body.startswith(f"PRIVATE-TOKEN: {TOKEN} -- 502")
    assert post(standin, "5", state="pending")[0] == 201  # the echo was used up

    standin.echo_credentials_next(401, as_json=True)
    status, body = post_raw(standin, "5", {"Authorization": f"Bearer {TOKEN}"}, state="running")
    assert (status, json.loads(body)["message"]) == (
        401,
        f"Authorization: Bearer {TOKEN} -- 401 upstream error",
    )
    assert [call.status for call in standin.calls] == [502, 201, 401]
    assert TOKEN not in repr(standin.calls)
    assert standin.states() == ["pending"]


def post_raw(standin: GitLabStandIn, project: str, headers: dict[str, str], **fields: str) -> tuple[int, str]:
    """Like ``post``, with the given headers, answering the body as text."""
    request = urllib.request.Request(
        f"{standin.url}/api/v4/projects/{project}/statuses/{SHA}",
        data=json.dumps(fields).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read().decode()
