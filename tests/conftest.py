"""Fixtures shared by every tier: isolated environment, the in-memory run store, samples, delivery."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from common import samples
from common.http import use_run_client
from common.runclient import MemoryRunClient, RunRef
from tests.support.secrets_guard import note_output

REPO = Path(__file__).resolve().parents[1]
SECRET_ENV = (
    "GITHUB_TOKEN",
    "GITHUB_TOKEN_FILE",
    "GITHUB_APP_ID",
    "GITHUB_APP_PRIVATE_KEY_FILE",
    "SLACK_BOT_TOKEN",
    "SLACK_BOT_TOKEN_FILE",
    "SLACK_WEBHOOK_URL",
    "SLACK_WEBHOOK_URL_FILE",
    "GITLAB_TOKEN",
    "GITLAB_TOKEN_FILE",
    "SMTP_PASSWORD",
    "SMTP_PASSWORD_FILE",
)
SERVICE_ENV = (
    "GITHUB_API_URL",
    "SLACK_API_URL",
    "GITLAB_URL",
    "TEKTON_DASHBOARD_URL",
    "KUBECONFIG",
    "TI_POLICY_FILE",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_SECURITY",
    "SMTP_USERNAME",
    "SMTP_FROM",
    "SMTP_CA",
    "SMTP_CA_FILE",
    "SMTP_TIMEOUT_SECONDS",
    "GITLAB_TIMEOUT_SECONDS",
    "GITHUB_TIMEOUT_SECONDS",
    "SLACK_TIMEOUT_SECONDS",
    "WEBHOOK_TIMEOUT_SECONDS",
    "CLOUDEVENT_TIMEOUT_SECONDS",
    "TI_INTEGRATION",
    "CLOUDEVENT_DEFAULT_SINK",
    "WEBHOOK_SECRET_DIR",
)


@pytest.fixture(autouse=True)
def isolate_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without the machine's credentials or kubeconfig and restores os.environ."""
    saved = dict(os.environ)
    for name in (*SECRET_ENV, *SERVICE_ENV):
        monkeypatch.delenv(name, raising=False)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def kube() -> Iterator[MemoryRunClient]:
    """An in-memory API server that every function in this process uses."""
    client = MemoryRunClient()
    use_run_client(client)
    yield client
    use_run_client(None)
    note_output(
        "records and Kubernetes Events in the run store",
        json.dumps([client.runs and list(client.runs.values()), client.events], default=str),
    )


Deliver = Callable[..., TestResponse]


def function_client(name: str) -> FlaskClient:
    """A test client for ``functions/<name>/main.py``, loaded the way functions-framework loads it."""
    return source_client(REPO / "functions" / name / "main.py")


def source_client(source: Path) -> FlaskClient:
    """A test client for the functions-framework target ``handle`` in ``source``."""
    app = functions_framework.create_app(target="handle", source=str(source), signature_type="cloudevent")
    return app.test_client()


DEADLETTER = REPO / "common" / "deadletter.py"
"""The dead-letter receiver's source: part of the runtime, not an integration."""


def event_request(sample: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """Binary-mode headers and body for a sample (or edited sample) event."""
    return dict(sample["headers"]), json.dumps(sample["data"]).encode()


def add_run(kube: MemoryRunClient, sample: dict[str, Any]) -> RunRef:
    """Create the sample's run in the store, as the API server would hold it."""
    kind, obj = samples.run_object(sample)
    return kube.add(kind, obj)


def advance(kube: MemoryRunClient, ref: RunRef, sample: dict[str, Any]) -> None:
    """Move the stored run to the state in ``sample`` (what Tekton's controller does)."""
    _, obj = samples.run_object(sample)
    kube.replace_status(ref, obj.get("status") or {})


def body(response: TestResponse) -> dict[str, Any]:
    """The JSON body of a function's answer."""
    parsed: dict[str, Any] = json.loads(response.data)
    return parsed


@pytest.fixture
def deliver() -> Deliver:
    """``deliver(client, sample)`` POSTs a sample as Tekton would (binary mode)."""

    def post(client: FlaskClient, sample: dict[str, Any]) -> TestResponse:
        headers, body = event_request(sample)
        return client.post("/", headers=headers, data=body)

    return post


def written_texts(
    answer: TestResponse,
    kube: MemoryRunClient,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture | None = None,
) -> dict[str, str]:
    """Every text a function wrote while handling a delivery: its HTTP answer, the runs (records
    included), the Kubernetes Events, its log lines and, with ``caplog``, the log records any
    other handler would format. Where credentials must never be."""
    texts = {
        "answer": answer.get_data(as_text=True),
        "runs": json.dumps(list(kube.runs.values())),
        "events": json.dumps(kube.events, default=str),
        "log lines": capsys.readouterr().err,
    }
    if caplog is not None:
        texts["log records"] = "\n".join(record.getMessage() for record in caplog.records)
    assert texts["log lines"], "the function logged the delivery"
    return texts
