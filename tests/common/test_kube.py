"""The runtime's Kubernetes client against a loopback API server: paths, verbs and headers it
sends, how the server's answers become the runtime's errors, and connection pools per thread
(the real server is exercised in tests/e2e)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import pytest
import urllib3

from common import deadline
from common.errors import (
    ConflictError,
    KubernetesUnavailableError,
    PermanentError,
    RunNotFoundError,
    TemporaryError,
)
from common.kube import KubeRunClient, _translated
from common.kube_api import ApiError, ApiServer
from common.kube_config import BearerToken, Impersonation, Login
from common.runclient import ClusterAccess, RunRef
from tests.support.receiver import free_port
from tests.support.standins.loopback import LoopbackServer, LoopbackStandIn

REF = RunRef("PipelineRun", "ci", "build-1")
REPO = Path(__file__).resolve().parents[2]
RUN_PATH = "/apis/tekton.dev/v1/namespaces/ci/pipelineruns/build-1"


@dataclass
class Seen:
    """One request as the API server received it."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: Any
    client_port: int

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


Answer = tuple[int, Any]
"""Status and body (JSON-encoded unless it is ``bytes``)."""


@dataclass
class FakeApiServer(LoopbackStandIn):
    """Answers each request with ``answer(seen)``; keeps connections alive (HTTP/1.1)."""

    answer: Callable[[Seen], Answer] = lambda seen: (200, {})
    seen: list[Seen] = field(default_factory=list)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            standin: FakeApiServer = self.server.standin  # type: ignore[attr-defined]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            seen = Seen(
                self.command,
                url.path,
                parse_qsl(url.query),
                list(self.headers.items()),
                json.loads(raw) if raw else None,
                self.client_address[1],
            )
            standin.seen.append(seen)
            status, body = standin.answer(seen)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PATCH(self) -> None:
            self._serve()

        def log_message(self, *args: Any) -> None:
            pass

    handler: ClassVar[type[BaseHTTPRequestHandler]] = Handler
    server: ClassVar[type[LoopbackServer]] = LoopbackServer

    def client(self, **login: Any) -> KubeRunClient:
        return KubeRunClient(ApiServer(Login(self.origin, BearerToken("test-token"), **login)))


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        yield server


def status(code: int, message: str = "") -> Answer:
    return code, {"kind": "Status", "apiVersion": "v1", "code": code, "message": message}


# -- errors -----------------------------------------------------------------------------------


def api_error(code: int, message: str = "") -> ApiError:
    return ApiError(code, "Reason", json.dumps({"kind": "Status", "message": message}).encode())


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (api_error(404), RunNotFoundError),
        (api_error(409, "the object has been modified"), ConflictError),
        (api_error(500), KubernetesUnavailableError),
        (api_error(503), KubernetesUnavailableError),
        (api_error(429), KubernetesUnavailableError),
        (api_error(401, "Unauthorized"), TemporaryError),
        (api_error(403, "forbidden"), TemporaryError),
        (api_error(422, "metadata.annotations: Too long"), PermanentError),
        (
            urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError()),
            KubernetesUnavailableError,
        ),
        (ConnectionRefusedError(), KubernetesUnavailableError),
    ],
    ids=["404", "409", "500", "503", "429", "401", "403", "422", "unreachable", "refused"],
)
def test_kubernetes_answers_become_runtime_errors(raised: Exception, expected: type[Exception]) -> None:
    with pytest.raises(expected) as caught, _translated(REF):
        raise raised
    assert caught.value.__cause__ is raised
    assert type(caught.value).__module__ == "common.errors"


def test_forbidden_is_the_temporary_reason_kubernetes_forbidden(api: FakeApiServer) -> None:
    api.answer = lambda seen: status(403, 'pipelineruns "build-1" is forbidden: User "x" cannot get')
    with pytest.raises(TemporaryError) as caught:
        api.client().get(REF)
    assert caught.value.reason == "KubernetesForbidden"
    assert "pipelineruns/ci/build-1" in caught.value.message
    assert "cannot get" in caught.value.message


def test_messages_name_the_run_and_carry_the_servers_words(api: FakeApiServer) -> None:
    api.answer = lambda seen: status(422, "metadata.annotations: Too long: must have at most 262144 bytes")
    with pytest.raises(PermanentError) as caught:
        api.client().patch(REF, {"metadata": {"annotations": {"a": "b"}}})
    assert caught.value.reason == "KubernetesRejected"
    assert "pipelineruns/ci/build-1" in caught.value.message
    assert "Too long" in caught.value.message


def test_an_unreachable_server_is_tried_twice_then_unavailable() -> None:
    client = KubeRunClient(ApiServer(Login(f"http://127.0.0.1:{free_port()}")))
    with pytest.raises(KubernetesUnavailableError, match="MaxRetryError"):
        client.get(REF)


# -- runs -------------------------------------------------------------------------------------


def test_a_run_is_read_and_merge_patched_with_the_token(api: FakeApiServer) -> None:
    api.answer = lambda seen: (200, {"kind": "PipelineRun", "metadata": {"name": "build-1"}})
    client = api.client()
    assert isinstance(client, ClusterAccess)
    assert client.get(REF)["kind"] == "PipelineRun"
    client.patch(REF, {"metadata": {"resourceVersion": "7", "annotations": {"a": "b"}}})
    client.patch_status(REF, {"status": {"integrations": []}})
    get, patch, patch_status = api.seen
    assert (get.method, get.path) == ("GET", RUN_PATH)
    assert (patch.method, patch.path) == ("PATCH", RUN_PATH)
    assert (patch_status.method, patch_status.path) == ("PATCH", RUN_PATH + "/status")
    assert (
        patch.header("Content-Type")
        == patch_status.header("Content-Type")
        == ["application/merge-patch+json"]
    )
    assert patch.body == {"metadata": {"resourceVersion": "7", "annotations": {"a": "b"}}}
    assert all(seen.header("Authorization") == ["Bearer test-token"] for seen in api.seen)
    assert len({seen.client_port for seen in api.seen}) == 1, "one kept-alive connection"


def test_a_stale_resource_version_is_a_conflict(api: FakeApiServer) -> None:
    api.answer = lambda seen: status(409, "the object has been modified; please apply your changes")
    with pytest.raises(ConflictError):
        api.client().patch(REF, {"metadata": {"resourceVersion": "1"}})


def test_a_missing_run_is_run_not_found(api: FakeApiServer) -> None:
    api.answer = lambda seen: status(404, 'pipelineruns.tekton.dev "build-1" not found')
    with pytest.raises(RunNotFoundError):
        api.client().get(REF)


def test_impersonation_sends_every_group(api: FakeApiServer) -> None:
    acting = Impersonation("jane", ("dev", "ops"), uid="42", extra=(("scopes", "a"), ("scopes", "b")))
    client = api.client(impersonation=acting)
    client.get(REF)
    (seen,) = api.seen
    assert seen.header("Impersonate-User") == ["jane"]
    assert seen.header("Impersonate-Group") == ["dev", "ops"]
    assert seen.header("Impersonate-Uid") == ["42"]
    assert seen.header("Impersonate-Extra-scopes") == ["a", "b"]
    assert client.impersonating == acting
    assert api.client().impersonating is None


def test_list_runs_follows_continue_tokens_with_the_label_selector(api: FakeApiServer) -> None:
    def pages(seen: Seen) -> Answer:
        token = dict(seen.query).get("continue")
        following = {None: "page-2", "page-2": "page-3", "page-3": None}[token]
        item = {"metadata": {"name": f"run-{token or 'page-1'}"}}
        return 200, {"items": [item], "metadata": {"continue": following} if following else {}}

    api.answer = pages
    runs = api.client().list_runs("PipelineRun", "ci", "app=web,tier!=db")
    assert [run["metadata"]["name"] for run in runs] == ["run-page-1", "run-page-2", "run-page-3"]
    assert [seen.path for seen in api.seen] == ["/apis/tekton.dev/v1/namespaces/ci/pipelineruns"] * 3
    assert all(dict(seen.query)["labelSelector"] == "app=web,tier!=db" for seen in api.seen)
    assert [dict(seen.query).get("continue") for seen in api.seen] == [None, "page-2", "page-3"]


def test_runs_of_every_namespace_and_a_cluster_without_tekton(api: FakeApiServer) -> None:
    api.answer = lambda seen: status(404, "the server could not find the requested resource")
    with pytest.raises(PermanentError) as caught:
        api.client().list_runs("TaskRun", None)
    assert caught.value.reason == "TektonNotInstalled"
    assert api.seen[0].path == "/apis/tekton.dev/v1/taskruns"


def test_an_event_is_a_warning_about_the_run(api: FakeApiServer) -> None:
    api.answer = lambda seen: (201, seen.body)
    api.client().record_event(REF, "uid-1", "IntegrationFailed", "github: Nope: no")
    (seen,) = api.seen
    assert (seen.method, seen.path) == ("POST", "/api/v1/namespaces/ci/events")
    assert seen.header("Content-Type") == ["application/json"]
    body = seen.body
    assert (body["apiVersion"], body["kind"], body["type"], body["reason"], body["message"]) == (
        "v1",
        "Event",
        "Warning",
        "IntegrationFailed",
        "github: Nope: no",
    )
    assert body["metadata"] == {"generateName": "build-1.", "namespace": "ci"}
    assert body["involvedObject"] == {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "name": "build-1",
        "namespace": "ci",
        "uid": "uid-1",
    }


@pytest.mark.parametrize("code", [403, 422, 500])
def test_an_event_the_server_refuses_is_logged_not_raised(
    api: FakeApiServer, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    api.answer = lambda seen: status(code, "no")
    api.client().record_event(REF, "uid-1", "IntegrationFailed", "github: Nope: no")
    assert "could not record Kubernetes Event IntegrationFailed" in caplog.text


def test_the_runs_events_are_listed_by_field_selector_oldest_first(api: FakeApiServer) -> None:
    def event(uid: str, when: str) -> dict[str, Any]:
        return {"involvedObject": {"uid": uid}, "lastTimestamp": when, "reason": when}

    api.answer = lambda seen: (
        200,
        {"items": [event("uid-1", "2026-01-02T00:00:00Z"), event("older-run", "2026-01-01T00:00:00Z"),
                   event("uid-1", "2026-01-01T00:00:00Z")]},
    )  # fmt: skip
    events = api.client().list_events(REF, "uid-1")
    assert [e["reason"] for e in events] == ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]
    assert dict(api.seen[0].query)["fieldSelector"] == (
        "involvedObject.kind=PipelineRun,involvedObject.name=build-1"
    )


# -- other objects ----------------------------------------------------------------------------


def test_a_pod_log_is_its_tail_cut_to_the_last_bytes(api: FakeApiServer) -> None:
    api.answer = lambda seen: (200, "first line\nsecond line\nlast line é\n".encode())
    client = api.client()
    assert (
        client.pod_log("ci", "build-1-pod", "step-test", tail_lines=3, limit_bytes=20)
        == "d line\nlast line é\n"
    )
    assert client.pod_log("ci", "build-1-pod", "step-test", tail_lines=3, limit_bytes=2) == "\n", "é was cut"
    seen = api.seen[0]
    assert (seen.method, seen.path) == ("GET", "/api/v1/namespaces/ci/pods/build-1-pod/log")
    query = dict(seen.query)
    assert (query["container"], query["tailLines"]) == ("step-test", "3")
    assert int(query["limitBytes"]) >= 20, "the server's limit keeps the first bytes: more is read"


def test_a_missing_pod_is_not_found(api: FakeApiServer) -> None:
    api.answer = lambda seen: status(404, 'pods "build-1-pod" not found')
    with pytest.raises(RunNotFoundError, match="build-1-pod"):
        api.client().pod_log("ci", "build-1-pod", "step-test", tail_lines=3, limit_bytes=100)


def test_objects_are_created_and_patched_conditionally(api: FakeApiServer) -> None:
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "claim"}}
    answers = iter(
        [(201, lease), status(409, 'leases "claim" already exists'), (200, lease), status(409, "")]
    )
    api.answer = lambda seen: next(answers)
    client = api.client()
    assert client.create_object("coordination.k8s.io/v1", "leases", "ci", lease) == lease
    with pytest.raises(ConflictError):
        client.create_object("coordination.k8s.io/v1", "leases", "ci", lease)
    patch = {"metadata": {"resourceVersion": "5"}, "spec": {"holderIdentity": "me"}}
    client.patch_object("coordination.k8s.io/v1", "leases", "ci", "claim", patch)
    with pytest.raises(ConflictError):
        client.patch_object("coordination.k8s.io/v1", "leases", "ci", "claim", patch)
    created, _, patched, _ = api.seen
    assert (created.method, created.path) == ("POST", "/apis/coordination.k8s.io/v1/namespaces/ci/leases")
    assert created.body == lease
    assert (patched.method, patched.path) == (
        "PATCH",
        "/apis/coordination.k8s.io/v1/namespaces/ci/leases/claim",
    )
    assert patched.header("Content-Type") == ["application/merge-patch+json"]


def test_a_secret_is_read_with_its_keys_and_without_its_values(api: FakeApiServer) -> None:
    secret = {
        "kind": "Secret",
        "metadata": {
            "name": "github",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "token: ghp_x"},
        },
        "data": {"token": "Z2hwX3g="},
    }
    api.answer = lambda seen: (200, {"items": [secret]} if seen.path.endswith("/secrets") else secret)
    client = api.client()
    for found in (
        client.get_object("v1", "secrets", "ci", "github"),
        *client.list_objects("v1", "secrets", "ci"),
    ):
        assert found is not None
        assert found["data"] == {"token": ""}
        assert found["metadata"]["annotations"] == {}


def test_a_missing_object_is_none_and_an_unserved_resource_lists_empty(api: FakeApiServer) -> None:
    api.answer = lambda seen: status(404, "not found")
    client = api.client()
    assert client.get_object("serving.knative.dev/v1", "services", "ci", "github") is None
    assert client.list_objects("serving.knative.dev/v1", "services") == []


def test_the_newest_labelled_config_map_holding_the_key_is_read(api: FakeApiServer) -> None:
    def config_map(name: str, created: str, data: dict[str, str]) -> dict[str, Any]:
        return {"metadata": {"name": name, "creationTimestamp": created}, "data": data}

    api.answer = lambda seen: (
        200,
        {"items": [config_map("old", "2026-01-01T00:00:00Z", {"policy.yaml": "old"}),
                   config_map("new", "2026-01-02T00:00:00Z", {"policy.yaml": "new"}),
                   config_map("newest", "2026-01-03T00:00:00Z", {"other": "x"})]},
    )  # fmt: skip
    assert api.client().read_config_map("ti", "app=policy", "policy.yaml") == "new"
    assert dict(api.seen[0].query)["labelSelector"] == "app=policy"


# -- proxies ----------------------------------------------------------------------------------

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.mark.usefixtures("no_proxies")
def test_requests_go_through_the_proxy_the_environment_names(
    api: FakeApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", api.origin)
    KubeRunClient(ApiServer(Login("http://kube.test:8080", BearerToken("t")))).get(REF)
    (seen,) = api.seen
    assert seen.path == RUN_PATH
    assert seen.header("Host") == ["kube.test:8080"]


@pytest.mark.usefixtures("no_proxies")
@pytest.mark.parametrize(
    ("server", "no_proxy", "proxied"),
    [
        ("https://kube.test:6443", "", True),
        ("https://kube.test:6443", "*", False),
        ("https://kube.test:6443", "other.example, .test", False),
        ("https://kube.test:6443", "kube.test:6443", False),
        ("https://kube.test:6443", "ube.test", True),
        ("https://10.96.0.1:443", "10.0.0.0/8", False),
        ("https://10.96.0.1:443", "192.168.0.0/16,localhost", True),
        ("https://[fd00::1]:443", "fd00::/8", False),
    ],
)
def test_no_proxy_keeps_the_server_off_the_proxy(
    monkeypatch: pytest.MonkeyPatch, server: str, no_proxy: str, proxied: bool
) -> None:
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    expected = "http://proxy.example:3128" if proxied else None
    assert ApiServer(Login(server, verify=False)).proxy == expected


@pytest.mark.usefixtures("no_proxies")
def test_the_kubeconfigs_proxy_wins_and_only_http_proxies_are_supported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://from-the-environment:3128")
    monkeypatch.setenv("NO_PROXY", "*")
    assert ApiServer(Login("http://kube.test", proxy="http://proxy.example:3128")).proxy == (
        "http://proxy.example:3128"
    )
    with pytest.raises(KubernetesUnavailableError, match="not an http or https proxy") as caught:
        ApiServer(Login("http://kube.test", proxy="socks5://user:secret@127.0.0.1:1080"))
    assert "secret" not in caught.value.message


# -- connections and deadlines ----------------------------------------------------------------


def test_a_deadline_cuts_only_the_connections_of_its_own_thread(api: FakeApiServer) -> None:
    """``common.deadline`` shuts down a thread's connections when its deadline passes: another
    thread's write on the same client, in flight at that moment, is on a connection of its own
    (with one pool shared by the threads, it would have been cut off)."""
    arrived, release = threading.Event(), threading.Event()

    def answer(seen: Seen) -> Answer:
        if seen.path.endswith("/slow"):
            arrived.set()
            release.wait(10)
        return 200, {"kind": "PipelineRun"}

    api.answer = answer
    client = api.client()
    slow = RunRef("PipelineRun", "ci", "slow")
    outcome: list[object] = []

    def other_thread() -> None:
        try:
            outcome.append(client.patch(slow, {"metadata": {"annotations": {"a": "b"}}})["kind"])
        except Exception as e:  # the test reports what the other thread saw
            outcome.append(e)

    with deadline.within(60) as scope:
        client.get(REF)  # this thread's connection, made within its deadline, back in a pool
        other = threading.Thread(target=other_thread)
        other.start()
        assert arrived.wait(10)
        scope.expire()  # what the deadline's timer does
        release.set()
        other.join(10)
    assert outcome == ["PipelineRun"]
    mine, theirs = api.seen
    assert theirs.method == "PATCH"
    assert mine.client_port != theirs.client_port


def test_no_request_imports_the_kubernetes_library_or_requests() -> None:
    script = """
import json, sys
from common.kube_api import ApiServer
from common.kube_config import Login
from common.kube import KubeRunClient
from common.runclient import RunRef
try:
    KubeRunClient(ApiServer(Login("http://127.0.0.1:9"))).get(RunRef("PipelineRun", "ci", "x"))
except Exception:
    pass
print(json.dumps(sorted(name for name in ("kubernetes", "requests", "yaml") if name in sys.modules)))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True, cwd=REPO
    )
    assert json.loads(done.stdout) == []
