"""What a CLI command runs with: the cluster it talks to, its namespace scope, streams, style, clock.

Owns the ``Cluster`` protocol, the runtime's ``RunClient`` plus the listing the CLI needs.
``common.kube.KubeRunClient`` implements it for a real API server; tests pass their own
connector. The connection is made on first use, so ``--help`` and local-only commands never
need a cluster.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TextIO

from common.cli.output import Style
from common.events import RunKind
from common.runclient import RunClient, RunRef


class Cluster(RunClient, Protocol):
    """A ``RunClient`` that can also list runs, a run's Kubernetes Events, read a ConfigMap, and
    read any object (``doctor``; a Secret comes with its keys, never its values)."""

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

    def get_object(
        self, api_version: str, resource: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """One object as JSON (``v1`` ``secrets``, ``serving.knative.dev/v1`` ``services``...) or ``None``."""
        ...

    def list_objects(
        self, api_version: str, resource: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Objects of a resource in ``namespace``, or in every namespace when it is ``None``."""
        ...


@dataclass(frozen=True)
class Connection:
    """A cluster and the namespace its kubeconfig context (or pod) defaults to."""

    cluster: Cluster
    namespace: str


@dataclass(frozen=True)
class Target:
    """Which cluster, as the command line says: ``--kubeconfig``, ``--context``, ``--as``, ``--as-group``."""

    kubeconfig: str | None = None
    context: str | None = None
    as_user: str | None = None
    as_groups: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Target:
        return cls(
            kubeconfig=getattr(args, "kubeconfig", None),
            context=getattr(args, "context", None),
            as_user=getattr(args, "as_user", None),
            as_groups=tuple(getattr(args, "as_groups", None) or ()),
        )


Connector = Callable[[Target], Connection]
"""Makes the connection for a target."""


def kube_connector(target: Target) -> Connection:
    """The real cluster: in-cluster service account, else the kubeconfig (``--kubeconfig``,
    ``$KUBECONFIG``, ``~/.kube/config``) and ``--context``; impersonating as it says, or ``--as``."""
    from common import kube  # noqa: PLC0415 -- kubernetes is imported only when a cluster is used

    acting = kube.Impersonation(target.as_user, target.as_groups) if target.as_user else None
    cluster = kube.connect(target.context, kubeconfig=target.kubeconfig, impersonate=acting)
    return Connection(cluster, kube.current_namespace(target.context, kubeconfig=target.kubeconfig))


@dataclass
class Session:
    """One command invocation."""

    args: argparse.Namespace
    out: TextIO
    err: TextIO
    style: Style
    """For what is written to ``out``."""
    clock: Callable[[], datetime]
    env: Mapping[str, str]
    connector: Connector = kube_connector
    sleeper: Callable[[float], None] = time.sleep
    err_style: Style = field(default_factory=Style)
    """For what is written to ``err``."""
    _connection: Connection | None = field(default=None, repr=False)

    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = self.connector(Target.from_args(self.args))
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

    @property
    def namespace_chosen(self) -> bool:
        """``-n`` or ``-A`` was given: the user chose where to look."""
        return bool(getattr(self.args, "namespace", None) or getattr(self.args, "all_namespaces", False))

    def print(self, text: str = "") -> None:
        print(text, file=self.out)

    def warn(self, text: str) -> None:
        print(text, file=self.err)

    def warning(self, text: str) -> None:
        """``warning: text`` on stderr, as kubectl writes its warnings."""
        print(f"{self.err_style.paint('warning:', 'yellow')} {text}", file=self.err)

    def sleep(self, seconds: float) -> None:
        """Wait between polls (``status -w``); tests replace it."""
        self.sleeper(seconds)
