"""What a CLI command runs with: the cluster it talks to, its namespace scope, streams, style, clock.

Owns the ``Cluster`` protocol, the runtime's ``RunClient`` plus the listing the CLI needs.
``common.kube.KubeRunClient`` implements it for a real API server; tests pass their own
connector. The connection is made on first use, so ``--help`` and local-only commands never
need a cluster.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TextIO

from common.cli.output import Style
from common.events import RunKind
from common.runclient import RunClient, RunRef


class Cluster(RunClient, Protocol):
    """A ``RunClient`` that can also list runs, a run's Kubernetes Events, and read a ConfigMap."""

    def list_runs(
        self, kind: RunKind, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Runs of ``kind`` in ``namespace``, or in every namespace when it is ``None``."""
        ...

    def list_events(self, ref: RunRef, uid: str) -> list[dict[str, Any]]:
        """The run's Kubernetes Events as core/v1 JSON, oldest first."""
        ...

    def read_config_map(self, namespace: str, label_selector: str, key: str) -> str | None:
        """``key`` of the newest matching ConfigMap, or ``None``."""
        ...


@dataclass(frozen=True)
class Connection:
    """A cluster and the namespace its kubeconfig context (or pod) defaults to."""

    cluster: Cluster
    namespace: str


Connector = Callable[[str | None], Connection]
"""Makes the connection for a kubeconfig context (``None``: the current one)."""


def kube_connector(context: str | None) -> Connection:
    """The real cluster: in-cluster service account, else ``KUBECONFIG`` and ``--context``."""
    from common import kube  # noqa: PLC0415 -- kubernetes is imported only when a cluster is used

    return Connection(kube.connect(context), kube.current_namespace(context))


def add_cluster_arguments(parser: argparse.ArgumentParser, *, all_namespaces: bool = True) -> None:
    """``-n``, ``-A`` and ``--context``, as ``kubectl`` spells them."""
    group = parser.add_argument_group("cluster")
    group.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    if all_namespaces:
        group.add_argument("-A", "--all-namespaces", action="store_true", help="look in every namespace")
    group.add_argument("--context", help="kubeconfig context to use (default: the current one)")


@dataclass
class Session:
    """One command invocation."""

    args: argparse.Namespace
    out: TextIO
    err: TextIO
    style: Style
    clock: Callable[[], datetime]
    env: Mapping[str, str]
    connector: Connector = kube_connector
    _connection: Connection | None = field(default=None, repr=False)

    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = self.connector(getattr(self.args, "context", None))
        return self._connection

    @property
    def connected(self) -> Cluster | None:
        """The cluster, if a connection was made."""
        return self._connection.cluster if self._connection else None

    @property
    def cluster(self) -> Cluster:
        return self.connection().cluster

    @property
    def namespace(self) -> str:
        """``-n``, else the context's namespace."""
        chosen: str | None = getattr(self.args, "namespace", None)
        return chosen or self.connection().namespace

    @property
    def scope(self) -> str | None:
        """The namespace to list in; ``None`` with ``-A``."""
        return None if getattr(self.args, "all_namespaces", False) else self.namespace

    def print(self, text: str = "") -> None:
        print(text, file=self.out)

    def warn(self, text: str) -> None:
        print(text, file=self.err)
