"""Fixtures for driving functions end to end in-process: GitHub stand-in plus in-memory runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from common.standins.github import GitHubStandIn

TOKEN = "ghp_unit-test-token-0123456789abcdef"


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubStandIn]:
    """A loopback GitHub; the github function is pointed at it with a token."""
    with GitHubStandIn() as standin:
        monkeypatch.setenv("GITHUB_API_URL", standin.url)
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        yield standin
