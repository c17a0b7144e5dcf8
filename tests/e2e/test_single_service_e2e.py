"""The single-Service target (``common/all.py``) against realkube: a run that opts into three
integrations (GitHub, Slack, a webhook) is handled with at most one read of the run per event, and
ends with the records the three standalone functions write for the same events.

Reads are counted on the wire: every function reaches the API server through a plain-HTTP proxy
(``CountingProxy``, in front of realkube with its admin credentials) that notes each request's
method and path, so the count is the API server's own, per run, whatever else uses realkube.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import pytest
import requests
import yaml
from kubernetes import client

from common import samples
from common.standins.github import GitHubStandIn
from tests.e2e.conftest import ServeFunction, create_run, free_port, get_run, post_event, set_status
from tests.support.policies import LOOPBACK_RECEIVERS
from tests.support.receiver import Receiver
from tests.support.secrets_guard import note_output_file
from tests.support.standins.slack import SlackStandIn

REPO = Path(__file__).resolve().parents[2]
NAMES = ("github", "slack", "webhook")
GITHUB_TOKEN = "ghp_e2e-single-service-token"
SLACK_TOKEN = "xoxb-e2e-single-service-token"
WEBHOOK_SECRET = b"e2e-single-service-signing-secret"
SEQUENCE = (
    ("pipelinerun-running", "now"),
    ("pipelinerun-running", "now"),  # Tekton repeats itself
    ("pipelinerun-failed", "now"),
    ("pipelinerun-running", "late"),  # the first event again, delivered after the run failed
)
"""The events, in order: about the run as it is when sent (``now``), or as it was when that state's
first event was sent (``late``)."""
DERIVED = ("delivery-id", "sig")
"""Record annotations derived from the run's UID (which differs between the two runs compared)."""


class CountingProxy:
    """Plain HTTP on 127.0.0.1 in front of realkube: forwards every request with realkube's admin
    credentials and notes ``(method, path)``. ``kubeconfig()`` points a function at it."""

    def __init__(self, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
        cluster = config["clusters"][0]["cluster"]
        self.upstream = cluster["server"].rstrip("/")
        self.ca = cluster["certificate-authority"]
        self.token = config["users"][0]["user"]["token"]
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.session = requests.Session()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CountingProxy:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.session.close()

    def kubeconfig(self, directory: Path) -> Path:
        path = directory / "proxied-kubeconfig"
        port = self.server.server_address[1]
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "proxy", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                    "users": [{"name": "proxy", "user": {}}],
                    "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "proxy"}}],
                    "current-context": "proxy",
                }
            ),
            encoding="utf-8",
        )
        return path

    def count(self, method: str, namespace: str, name: str) -> int:
        path = f"/apis/tekton.dev/v1/namespaces/{namespace}/pipelineruns/{name}"
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and p.split("?")[0] == path)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                with proxy.lock:
                    proxy.requests.append((self.command, self.path))
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
                answer = proxy.session.request(
                    self.command,
                    proxy.upstream + self.path,
                    data=data,
                    headers={**headers, "Authorization": f"Bearer {proxy.token}"},
                    verify=proxy.ca,
                    timeout=30,
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def do_GET(self) -> None:
                self._forward()

            def do_PATCH(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def log_message(self, *_: Any) -> None:
                pass

        return Handler


@pytest.fixture
def proxy(kubeconfig: Path) -> Iterator[CountingProxy]:
    with CountingProxy(kubeconfig) as counting:
        yield counting


@pytest.fixture
def second_namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture
def serve_source(kubeconfig: Path, tmp_path: Path) -> Iterator[ServeFunction]:
    """``serve_source(path, **env)`` runs functions-framework on any source; returns its URL."""
    processes: list[subprocess.Popen[str]] = []

    def start(source: Path, **env: str) -> str:
        port = free_port()
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "functions_framework", "--source", str(source)),
                *("--target", "handle", "--signature-type", "cloudevent", "--host", "127.0.0.1"),
                *("--port", str(port)),
            ],
            env={**os.environ, "GUNICORN_LOG_LEVEL": "info", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
        )
        processes.append(process)
        assert process.stdout is not None
        watchdog = threading.Timer(60, process.kill)
        watchdog.start()
        seen = []
        for line in process.stdout:
            seen.append(line)
            if "Listening at" in line or "Running on" in line:
                watchdog.cancel()
                log_path = tmp_path / f"{source.stem}-{port}.log"
                note_output_file(log_path)
                threading.Thread(
                    target=_drain, args=(process.stdout, log_path.open("w")), daemon=True
                ).start()
                return f"http://127.0.0.1:{port}/"
        raise RuntimeError("functions-framework exited before listening:\n" + "".join(seen)[-2000:])

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


def environment(
    tmp_path: Path, namespaces: tuple[str, ...], kubeconfig: Path, github: GitHubStandIn, slack: SlackStandIn
) -> dict[str, str]:
    """What each function (and the single Service) is given: its credentials, a policy that lets
    the test namespaces reach the loopback receiver, a webhook signing key per namespace."""
    policy = tmp_path / f"policy-{uuid.uuid4().hex[:6]}.yaml"
    entry = {"webhook": LOOPBACK_RECEIVERS}
    policy.write_text(yaml.safe_dump({"namespaces": dict.fromkeys(namespaces, entry)}), encoding="utf-8")
    secrets = tmp_path / "webhook-secrets"
    secrets.mkdir(exist_ok=True)
    for namespace in namespaces:
        (secrets / namespace).write_bytes(WEBHOOK_SECRET)
    return {
        "KUBECONFIG": str(kubeconfig),
        "TI_POLICY_FILE": str(policy),
        "GITHUB_API_URL": github.url,
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "WEBHOOK_SECRET_DIR": str(secrets),
    }


def opting_into_three(sample_name: str, receiver: Receiver) -> dict[str, Any]:
    """The sample (GitHub and Slack annotations) with a webhook too, named as the failed sample's run."""
    sample = samples.load(sample_name)
    failed = samples.load("pipelinerun-failed")
    _, run = samples.run_object(sample)
    _, failed_run = samples.run_object(failed)
    run["metadata"]["name"] = failed_run["metadata"]["name"]
    annotations = {
        **samples.run_object(samples.load("pipelinerun-running"))[1]["metadata"]["annotations"],
        "webhook.integrations.tekton.dev/url": receiver.url,
    }
    run["metadata"]["annotations"] = annotations
    return sample


def event_of(sample: dict[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """The event Tekton sends about ``live``: the persisted run's metadata (records included, with
    its ``resourceVersion``), the sample's status (which ``live`` holds too), a new ``ce-id``."""
    event = json.loads(json.dumps(sample))
    _, run = samples.run_object(event)
    run["metadata"] = json.loads(json.dumps(live["metadata"]))
    event["headers"]["ce-id"] = str(uuid.uuid4())
    return event


def play(
    api: client.ApiClient, namespace: str, urls: list[str], receiver: Receiver, proxy: CountingProxy
) -> tuple[dict[str, Any], list[int]]:
    """Create the run, then for each event of ``SEQUENCE``: bring the run to that state, send the
    event to every URL. The run's final object, and the reads of it each event cost."""
    first = opting_into_three(SEQUENCE[0][0], receiver)
    live = create_run(api, namespace, first)
    name = live["metadata"]["name"]
    reads: list[int] = []
    seen: dict[str, dict[str, Any]] = {}
    for sample_name, when in SEQUENCE:
        sample = opting_into_three(sample_name, receiver)
        if when == "late":
            live = seen[sample_name]
        else:
            if reads and sample_name not in seen:
                set_status(api, namespace, sample)  # Tekton's controller moves the run on
            live = get_run(api, namespace, "PipelineRun", name)
            seen.setdefault(sample_name, live)
        before = proxy.count("GET", namespace, name)
        for url in urls:
            answer = post_event(url, event_of(sample, live))
            assert answer.status_code == 200, answer.text
        reads.append(proxy.count("GET", namespace, name) - before)
    return get_run(api, namespace, "PipelineRun", name), reads


def comparable(run: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """Each integration's record, without what differs between two runs of the same events: the
    times, the run's UID and namespace, and the values derived from the UID (checked for form)."""
    uid = run["metadata"]["uid"]
    found = {}
    for name in NAMES:
        text = run["metadata"]["annotations"][f"{name}.integrations.tekton.dev/status"]
        record = json.loads(text.replace(uid, "<uid>").replace(namespace, "<namespace>"))
        record["conditions"] = [
            {k: v for k, v in condition.items() if not k.endswith("Time")}
            for condition in record["conditions"]
        ]
        for key in DERIVED:
            if key in record.get("annotations", {}):
                assert len(record["annotations"][key]) in (36, 64), (name, key)
                record["annotations"][key] = "<derived from the run's UID>"
        found[name] = record
    return found


def test_one_service_reads_the_run_at_most_once_per_event_and_records_what_the_three_functions_do(  # noqa: PLR0917
    api: client.ApiClient,
    namespace: str,
    second_namespace: str,
    tmp_path: Path,
    proxy: CountingProxy,
    serve_function: ServeFunction,
    serve_source: ServeFunction,
) -> None:
    proxied = proxy.kubeconfig(tmp_path)
    with Receiver() as receiver:  # one receiver: its URL is in the webhook's record
        with GitHubStandIn() as github, SlackStandIn(clock=lambda: 1700000000.0) as slack:
            env = environment(tmp_path, (namespace,), proxied, github, slack)
            standalone = [serve_function(name, **env) for name in NAMES]
            apart, apart_reads = play(api, namespace, standalone, receiver, proxy)
            standalone_calls = (len(github.calls), len(slack.calls), len(receiver.requests))

        with GitHubStandIn() as github, SlackStandIn(clock=lambda: 1700000000.0) as slack:
            env = environment(tmp_path, (second_namespace,), proxied, github, slack)
            single = serve_source(REPO / "common" / "all.py", TI_INTEGRATIONS=",".join(NAMES), **env)
            together, together_reads = play(api, second_namespace, [single], receiver, proxy)
            single_calls = (len(github.calls), len(slack.calls), len(receiver.requests) - standalone_calls[2])

    assert comparable(together, second_namespace) == comparable(apart, namespace)
    assert single_calls == standalone_calls, "the same calls to GitHub, Slack and the receiver"
    assert all(reads <= 1 for reads in together_reads), f"reads of the run per event: {together_reads}"
    assert 1 in together_reads, f"an event that needed the live run read it once: {together_reads}"
    assert sum(together_reads) < sum(apart_reads), (together_reads, apart_reads)
    for name in NAMES:
        record = json.loads(together["metadata"]["annotations"][f"{name}.integrations.tekton.dev/status"])
        assert record["runState"]["reason"] == "Failed", name
