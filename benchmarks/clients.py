"""CPU per HTTP request of the clients the GitHub function uses, next to others.

Same requests, same servers, the calling thread's CPU (``time.thread_time()``, which includes the
kernel's socket and TLS work on its behalf): the runtime's Kubernetes client (``common.kube``)
against plain ``urllib3`` on realkube, and the function's GitHub client
(``functions/github/rest.py``) against PyGithub (what it used before), ``requests`` and plain
``urllib3`` on the GitHub stand-in. It shows how much of the per-event CPU is the clients' own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from github import Auth, Github
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from benchmarks.realkube import Cluster
from benchmarks.workload import RUNNING, run_event
from common import kube
from common.runclient import RunRef
from common.standins.github import GitHubStandIn
from functions.github.rest import Api, Connections, Repo

SHA = "9f1c2e7b4a6d8e0f1a2b3c4d5e6f708192a3b4c5"
WARMUP = 5


@dataclass(frozen=True)
class ClientCost:
    what: str
    ms: float
    """CPU per request, in milliseconds."""


def _cpu_ms(call: Callable[[int], Any], count: int) -> float:
    for index in range(WARMUP):
        call(index)
    began = time.thread_time()
    for index in range(count):
        call(index)
    return (time.thread_time() - began) * 1000 / count


def github(standin: GitHubStandIn, count: int) -> list[ClientCost]:
    """Create a check run: the function's client vs PyGithub vs ``requests`` vs ``urllib3``."""
    url = f"{standin.url}/repos/acme/widget-service/check-runs"
    headers = {"Authorization": "token bench", "Accept": "application/vnd.github+json"}

    def body(index: int) -> dict[str, Any]:
        return {"name": f"bench-{index}", "head_sha": SHA, "status": "in_progress", "external_id": str(index)}

    pygithub = Github(
        auth=Auth.Token("bench"),
        base_url=standin.url,
        lazy=True,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    session = requests.Session()
    bare = requests.Session()
    bare.trust_env = False  # no proxy/netrc lookups in the environment on every request
    pool = urllib3.PoolManager()
    repo = Repo(Api(standin.url, "token bench", Connections(10.0)), "acme", "widget-service")

    def with_rest(index: int) -> object:
        return repo.create_check_run(body(index))["id"]

    def with_pygithub(index: int) -> object:
        return pygithub.get_repo("acme/widget-service").create_check_run(**body(index)).id

    def with_requests(index: int, session: requests.Session = session) -> object:
        return session.post(url, json=body(index), headers=headers, timeout=10).json()["id"]

    def with_urllib3(index: int) -> object:
        answer = pool.request(
            "POST",
            url,
            body=json.dumps(body(index)),
            headers={**headers, "Content-Type": "application/json"},
            timeout=10,
        )
        return json.loads(answer.data)["id"]

    return [
        ClientCost(
            "GitHub: `Repo.create_check_run` (functions/github/rest.py, as the function)",
            _cpu_ms(with_rest, count),
        ),
        ClientCost("GitHub: PyGithub `create_check_run` (before)", _cpu_ms(with_pygithub, count)),
        ClientCost("GitHub: `requests.Session().post`", _cpu_ms(with_requests, count)),
        ClientCost(
            "GitHub: `requests`, `trust_env = False`",
            _cpu_ms(lambda index: with_requests(index, bare), count),
        ),
        ClientCost("GitHub: `urllib3.PoolManager().request`", _cpu_ms(with_urllib3, count)),
    ]


def kubernetes(cluster: Cluster, namespace: str, count: int) -> list[ClientCost]:
    """Read and merge-patch a run: the runtime's ``KubeRunClient`` vs ``urllib3`` with the same TLS."""
    event = run_event(RUNNING, 0, namespace=namespace)
    live = cluster.create_run(namespace, event)
    name = live["metadata"]["name"]
    ref = RunRef("PipelineRun", namespace, name)
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
    runs = kube.KubeRunClient(k8s.ApiClient(configuration))
    pool = urllib3.PoolManager(
        cert_reqs="CERT_REQUIRED",
        ca_certs=configuration.ssl_ca_cert,
        cert_file=configuration.cert_file,
        key_file=configuration.key_file,
    )
    url = f"{configuration.host}/apis/tekton.dev/v1/namespaces/{namespace}/pipelineruns/{name}"
    headers = {"Accept": "application/json"}
    token = configuration.api_key.get("authorization") or configuration.api_key.get("BearerToken")
    if token:
        headers["Authorization"] = token

    def patch(index: int) -> dict[str, Any]:
        return {"metadata": {"annotations": {"benchmark": str(index)}}}

    def raw(method: str, body: dict[str, Any] | None = None) -> object:
        extra = {"Content-Type": "application/merge-patch+json"} if body is not None else {}
        answer = pool.request(
            method,
            url,
            body=json.dumps(body) if body is not None else None,
            headers={**headers, **extra},
            timeout=10,
        )
        if answer.status != 200:
            raise RuntimeError(f"{method} {url}: {answer.status}")
        return json.loads(answer.data)

    return [
        ClientCost(
            "Kubernetes: `KubeRunClient.get` (common.kube, as the function)",
            _cpu_ms(lambda _: runs.get(ref), count),
        ),
        ClientCost("Kubernetes: `urllib3` GET", _cpu_ms(lambda _: raw("GET"), count)),
        ClientCost(
            "Kubernetes: `KubeRunClient.patch` (common.kube, as the function)",
            _cpu_ms(lambda index: runs.patch(ref, patch(index)), count),
        ),
        ClientCost(
            "Kubernetes: `urllib3` merge PATCH", _cpu_ms(lambda index: raw("PATCH", patch(index)), count)
        ),
    ]
