"""End-to-end tier: real kube-apiserver (realkube) with Tekton's CRDs, functions served by
functions-framework in a subprocess, and loopback stand-ins for the external services.

Skips with a printed reason when ../shared or the realkube build is absent
(``TI_REQUIRE_ALL_TIERS=1`` turns that into a failure, as in CI).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from pathlib import Path
from typing import IO, Any, cast

import pytest
import requests
from kubernetes import client, config

from common import registry, samples
from common.kube import KubeRunClient
from tests.support.realkube import realkube_up
from tests.support.secrets_guard import note_output_file

REPO = Path(__file__).resolve().parents[2]
V1 = ("tekton.dev", "v1")


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    return realkube_up()


@pytest.fixture(scope="session")
def api(kubeconfig: Path) -> client.ApiClient:
    """An admin client for the real API server."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


@pytest.fixture
def run_client(api: client.ApiClient) -> KubeRunClient:
    """The runtime's own Kubernetes client, against realkube."""
    return KubeRunClient(api)


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace for one test."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def create_run(api: client.ApiClient, namespace: str, sample: dict[str, Any]) -> dict[str, Any]:
    """Create the sample's run on realkube (v1, minimal spec), with the sample's status."""
    kind, _ = samples.run_object(sample)
    body = samples.v1_object(sample, namespace)
    objects = client.CustomObjectsApi(api)
    plural = kind.lower() + "s"
    objects.create_namespaced_custom_object(*V1, namespace, plural, body)
    return set_status(api, namespace, sample)


def set_status(api: client.ApiClient, namespace: str, sample: dict[str, Any]) -> dict[str, Any]:
    """Write the sample's status as Tekton's controller does: the whole status at once."""
    kind, obj = samples.run_object(sample)
    objects = client.CustomObjectsApi(api)
    plural = kind.lower() + "s"
    name = obj["metadata"]["name"]
    current = cast(dict[str, Any], objects.get_namespaced_custom_object(*V1, namespace, plural, name))
    current["status"] = samples.v1_status(kind, obj.get("status") or {})
    replaced = objects.replace_namespaced_custom_object_status(*V1, namespace, plural, name, current)
    return cast(dict[str, Any], replaced)


def get_run(api: client.ApiClient, namespace: str, kind: str, name: str) -> dict[str, Any]:
    objects = client.CustomObjectsApi(api)
    found = objects.get_namespaced_custom_object(*V1, namespace, kind.lower() + "s", name)
    return cast(dict[str, Any], found)


def event_for(sample: dict[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """The sample event re-addressed to the live object (its namespace, uid, resourceVersion)."""
    event = samples.addressed_to(sample, dict(live))
    event["headers"]["ce-id"] = str(uuid.uuid4())
    return event


def post_event(url: str, event: dict[str, Any]) -> requests.Response:
    """POST an event in binary mode, as Tekton's sender does."""
    return requests.post(url, headers=event["headers"], data=json.dumps(event["data"]), timeout=30)


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ServeFunction = Callable[..., str]


@pytest.fixture
def serve_function(kubeconfig: Path, tmp_path: Path) -> Iterator[ServeFunction]:
    """``serve_function("github", GITHUB_API_URL=...)`` runs functions-framework; returns its URL.

    Readiness is read from the server's own "Listening at" log line, not polled.
    """
    processes: list[subprocess.Popen[str]] = []

    def start(name: str, **env: str) -> str:
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "functions_framework",
                "--source",
                str(REPO / "functions" / registry.folder_of(name) / "main.py"),
                "--target",
                "handle",
                "--signature-type",
                "cloudevent",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env={**os.environ, "KUBECONFIG": str(kubeconfig), "GUNICORN_LOG_LEVEL": "info", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
        )
        processes.append(process)
        assert process.stdout is not None
        watchdog = threading.Timer(60, process.kill)  # a server that never says it listens is killed
        watchdog.start()
        seen = []
        for line in process.stdout:
            seen.append(line)
            if "Listening at" in line or "Running on" in line:
                watchdog.cancel()
                log_path = tmp_path / f"{name}-{port}.log"
                note_output_file(log_path)
                log = log_path.open("w")
                threading.Thread(target=_drain, args=(process.stdout, log), daemon=True).start()
                return f"http://127.0.0.1:{port}/"
        output = "".join(seen)[-2000:]
        raise RuntimeError(f"functions-framework exited before listening:\n{output}")

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _drain(stream: IO[str], log: IO[str]) -> None:
    with log:
        for line in stream:
            log.write(line)
            log.flush()
