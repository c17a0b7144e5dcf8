"""Fixtures for the CLI's unit tests: a fake cluster, a runner, and a loopback GitHub."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from common.cli import main
from common.cli.session import Connection
from common.standins.github import GitHubStandIn
from tests.cli.fakes import FakeCluster

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
"""Five minutes after the samples' successful run completed."""
TOKEN = "ghp_cli-unit-test-token"
SLACK_OFF = {"slack.integrations.tekton.dev/channel": None}
"""Annotations that opt a sample out of Slack, so only GitHub is involved."""


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


class Cli:
    """Runs ``tekton-integrations`` in-process against a fake cluster whose context namespace is ``ci``."""

    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self.env: dict[str, str] = {}

    def __call__(self, *argv: str, context_namespace: str = "ci") -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = main(
            list(argv),
            connector=lambda _context: Connection(self.cluster, context_namespace),
            out=out,
            err=err,
            env=self.env,
            clock=lambda: NOW,
        )
        return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def cli(cluster: FakeCluster) -> Cli:
    return Cli(cluster)


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubStandIn]:
    """A loopback GitHub that the github integration (in-process) is pointed at."""
    with GitHubStandIn() as standin:
        monkeypatch.setenv("GITHUB_API_URL", standin.url)
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        yield standin
