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

from common import registry, samples
from common.http import use_run_client
from common.runclient import MemoryRunClient, RunRef
from common.settings import RuntimeSettings, ServiceSettings
from common.steplogs import ResultsSettings
from tests.support.secrets_guard import note_output

REPO = Path(__file__).resolve().parents[1]
RUNTIME_ENV = ("KUBECONFIG", "TI_POLICY_FILE", "TEKTON_API_VERSION", registry.TARGET_ENV)


def settings_variables() -> list[str]:
    """Every variable a function reads its settings from (and its ``_FILE`` twin), from the
    runtime's and every installed integration's settings model."""
    models: list[type[ServiceSettings]] = [RuntimeSettings, ResultsSettings]
    models += [integration.settings for integration in registry.declarations()]
    names = {*RUNTIME_ENV}
    for model in models:
        for field in model.model_fields:
            names |= {model.variable(field), f"{model.variable(field)}_FILE"}
    return sorted(names)


@pytest.fixture(autouse=True)
def isolate_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without the machine's credentials or kubeconfig and restores os.environ."""
    saved = dict(os.environ)
    for name in settings_variables():
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
    return source_client(REPO / "functions" / registry.folder_of(name) / "main.py")


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
    """Create the sample's run in the store, as the API server would hold it.

    The sample then carries the stored ``resourceVersion``, as Tekton's event about the run would:
    delivered right away, it is the live run; delivered after the run changed, a late event.
    """
    kind, obj = samples.run_object(sample)
    ref = kube.add(kind, obj)
    obj["metadata"]["resourceVersion"] = kube.runs[ref]["metadata"]["resourceVersion"]
    return ref


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
