"""A real kube-apiserver for the benchmarks that need one (``../shared/realkube``), when it is here.

Owns: finding (or starting) realkube with Tekton's CRDs, a throw-away namespace, and creating runs
from the samples as Tekton would hold them (v1, the sample's status written through the status
subresource). Benchmarks that need Kubernetes are skipped, with the reason, when it is absent.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config

from benchmarks.paths import REPO
from common import samples
from common.events import RunKind

V1 = ("tekton.dev", "v1")
SCRIPT = Path(os.environ.get("TI_SHARED_DIR", REPO.parent / "shared")) / "realkube" / "realkube"
HOME = Path(os.environ.get("REALKUBE_HOME", Path.home() / ".cache" / "realkube"))
KUBECONFIG = HOME / "run" / "kubeconfig"


class Cluster:
    """An admin connection to realkube."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        self.api = client.ApiClient(configuration)
        self.objects = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    def run_requests(self) -> Counter[str]:
        """Requests about Tekton's runs (and Events) so far, as the API server counts them in its
        ``apiserver_request_total``: ``GET`` (Kubernetes 1.20 counts a GET of one custom resource as
        ``LIST``: both are reads here), ``PATCH``, ``PATCH 409`` (refused), ``PATCH status``, ..."""
        serialized = self.api.param_serialize(
            method="GET",
            resource_path="/metrics",
            header_params={"Accept": "text/plain"},
            auth_settings=["BearerToken"],
        )
        response: Any = self.api.call_api(*serialized, _request_timeout=(3, 30))
        response.read()
        found: Counter[str] = Counter()
        for line in response.data.split(b"\n"):
            if not line.startswith(b"apiserver_request_total{") or (
                b'group="tekton.dev"' not in line and b'resource="events"' not in line
            ):
                continue
            labels = dict(_LABEL.findall(line.decode().split("}", 1)[0]))
            if labels.get("resource") not in ("pipelineruns", "taskruns", "events"):
                continue
            found[_request_name(labels)] += int(float(line.rsplit(b" ", 1)[1]))
        return found

    def answers(self) -> bool:
        try:
            client.VersionApi(self.api).get_code(_request_timeout=3)
        except Exception:  # any failure means "not usable here"
            return False
        return True

    @contextmanager
    def namespace(self) -> Iterator[str]:
        """A fresh namespace, deleted afterwards with everything in it."""
        name = f"bench-{uuid.uuid4().hex[:8]}"
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        try:
            yield name
        finally:
            self.core.delete_namespace(name)

    def create_run(self, namespace: str, event: Mapping[str, Any]) -> dict[str, Any]:
        """Create the event's run (v1, minimal spec) with the event's status; return it as stored."""
        kind, obj = samples.run_object(dict(event))
        plural = kind.lower() + "s"
        body = samples.v1_object(dict(event), namespace)
        created = self.objects.create_namespaced_custom_object(*V1, namespace, plural, body)
        return self.set_status(cast(dict[str, Any], created), kind, obj.get("status") or {})

    def set_status(self, live: dict[str, Any], kind: RunKind, status: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the run's whole status, as Tekton's controller does."""
        metadata = live["metadata"]
        live["status"] = samples.v1_status(kind, dict(status))
        replaced = self.objects.replace_namespaced_custom_object_status(
            *V1, metadata["namespace"], kind.lower() + "s", metadata["name"], live
        )
        return cast(dict[str, Any], replaced)

    def advance(self, namespace: str, event: Mapping[str, Any]) -> dict[str, Any]:
        """Move the event's run to the event's state (read first: the write needs a fresh version)."""
        kind, obj = samples.run_object(dict(event))
        live = self.objects.get_namespaced_custom_object(
            *V1, namespace, kind.lower() + "s", obj["metadata"]["name"]
        )
        return self.set_status(cast(dict[str, Any], live), kind, obj.get("status") or {})


_LABEL = re.compile(r'(\w+)="([^"]*)"')


def _request_name(labels: Mapping[str, str]) -> str:
    verb = "GET" if labels["verb"] == "LIST" else labels["verb"]
    name = verb + (f" {labels['subresource']}" if labels.get("subresource") else "")
    if labels["resource"] == "events":
        name += " event"
    elif labels["resource"] == "taskruns":
        name += " taskruns"  # a PipelineRun's tasks, read for what the report shows (the task table)
    return name if labels["code"].startswith("2") else f"{name} {labels['code']}"


def connect(*, start: bool = True) -> tuple[Cluster | None, str]:
    """realkube if it answers (started with ``realkube up --tekton`` when allowed), else why not."""
    built = SCRIPT.exists() and (HOME / "bin" / "kube-apiserver").exists()
    if start and built and not (KUBECONFIG.exists() and Cluster(KUBECONFIG).answers()):
        done = subprocess.run(
            [str(SCRIPT), "up", "--tekton"], capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode != 0:
            return None, f"realkube did not start: {done.stderr.strip()[-300:]}"
    if not KUBECONFIG.exists():
        return None, f"no realkube kubeconfig at {KUBECONFIG}"
    cluster = Cluster(KUBECONFIG)
    if not cluster.answers():
        return None, f"realkube at {KUBECONFIG} does not answer"
    return cluster, "realkube"
