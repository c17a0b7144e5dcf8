"""How Kubernetes' answers become the runtime's errors (the real server is exercised in tests/e2e)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

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
REPO = Path(__file__).resolve().parents[2]


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


EVENT_SCRIPT = """
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from kubernetes import client
from common.kube import KubeRunClient
from common.runclient import RunRef

seen = []
status = int(sys.argv[1])

class Server(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        seen.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
        answer = json.dumps({"kind": "Event" if status < 300 else "Status", "message": "no"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Server)
threading.Thread(target=server.serve_forever, daemon=True).start()
configuration = client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}")
configuration.api_key = {"authorization": "Bearer test-token"}
kube = KubeRunClient(client.ApiClient(configuration))
kube.record_event(RunRef("PipelineRun", "ci", "build-1"), "uid-1", "IntegrationFailed", "github: Nope: no")
server.shutdown()
print(json.dumps({"seen": seen, "core_v1_api": "kubernetes.client.api.core_v1_api" in sys.modules,
                  "models": sum(name.startswith("kubernetes.client.models.") for name in sys.modules)}))
"""


def post_an_event(status: int) -> tuple[dict[str, Any], str]:
    """``record_event`` in a fresh interpreter against a loopback API server answering ``status``."""
    done = subprocess.run(
        [sys.executable, "-c", EVENT_SCRIPT, str(status)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=REPO,
    )
    return json.loads(done.stdout), done.stderr


def test_an_event_is_posted_as_a_plain_dict_without_the_generated_core_api() -> None:
    found, _ = post_an_event(201)
    (request,) = found["seen"]
    assert request["path"] == "/api/v1/namespaces/ci/events"
    headers = {key.lower(): value for key, value in request["headers"].items()}
    assert headers["content-type"] == "application/json"
    assert headers["authorization"] == "Bearer test-token"
    body = request["body"]
    assert (body["apiVersion"], body["kind"], body["type"], body["reason"]) == (
        "v1",
        "Event",
        "Warning",
        "IntegrationFailed",
    )
    assert body["metadata"] == {"generateName": "build-1.", "namespace": "ci"}
    assert body["involvedObject"] == {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "name": "build-1",
        "namespace": "ci",
        "uid": "uid-1",
    }
    assert body["message"] == "github: Nope: no"
    assert not found["core_v1_api"], "CoreV1Api's module (and its ~250 models) is never imported"
    assert found["models"] <= 5


@pytest.mark.parametrize("status", [403, 422, 500])
def test_an_event_the_server_refuses_is_logged_not_raised(status: int) -> None:
    found, stderr = post_an_event(status)
    assert len(found["seen"]) == 1
    assert "could not record Kubernetes Event IntegrationFailed" in stderr
