"""How Kubernetes' answers become the runtime's errors (the real server is exercised in tests/e2e)."""

from __future__ import annotations

import json

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from common.errors import (
    ConflictError,
    KubernetesUnavailableError,
    PermanentError,
    RunNotFoundError,
    TemporaryError,
)
from common.kube import _translated
from common.runclient import RunRef

REF = RunRef("PipelineRun", "ci", "build-1")


def api_error(status: int, message: str = "") -> ApiException:
    return ApiException(
        status=status, reason="Reason", body=json.dumps({"kind": "Status", "message": message})
    )


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (api_error(404), RunNotFoundError),
        (api_error(409, "the object has been modified"), ConflictError),
        (api_error(500), KubernetesUnavailableError),
        (api_error(503), KubernetesUnavailableError),
        (api_error(429), KubernetesUnavailableError),
        (api_error(403, "forbidden"), TemporaryError),
        (api_error(422, "metadata.annotations: Too long"), PermanentError),
        (
            urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError()),
            KubernetesUnavailableError,
        ),
        (ConnectionRefusedError(), KubernetesUnavailableError),
    ],
    ids=["404", "409", "500", "503", "429", "403", "422", "unreachable", "refused"],
)
def test_kubernetes_answers_become_runtime_errors(raised: Exception, expected: type[Exception]) -> None:
    with pytest.raises(expected) as caught, _translated(REF):
        raise raised
    assert caught.value.__cause__ is raised
    assert "ApiException" not in type(caught.value).__name__


def test_messages_name_the_run_and_carry_the_servers_words() -> None:
    with pytest.raises(PermanentError) as caught, _translated(REF):
        raise api_error(422, "metadata.annotations: Too long: must have at most 262144 bytes")
    assert "pipelineruns/ci/build-1" in caught.value.message
    assert "Too long" in caught.value.message
