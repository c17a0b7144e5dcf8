"""Fixtures for the conformance tier: Prism validating our GitHub requests.

The tier needs Node.js and the npm packages pinned in ``tests/conformance/package.json``
(``scripts/install-test-tools``). Without them it skips with that advice, or fails where CI
requires every tier (``TI_REQUIRE_ALL_TIERS=1``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from common.standins.github import GitHubStandIn
from tests.conformance.prism import Prism, PrismGitHub, missing_tools, spec_path
from tests.support.tiers import unavailable


@pytest.fixture(scope="session")
def prism_github() -> Iterator[PrismGitHub]:
    """Prism (``proxy --errors``, GitHub's description) in front of one GitHub stand-in.

    Shared by the whole session because Prism takes about ten seconds to read the description;
    use ``conformant_github`` for a clean slate per test.
    """
    spec = spec_path()
    reason = missing_tools(spec)
    if reason is not None:
        unavailable(f"Prism conformance tier: {reason}")
    # Installed but not starting is a bug to see, not a reason to skip: PrismError propagates.
    with GitHubStandIn() as standin, Prism(spec, upstream=standin.url) as prism:
        standin.public_url = prism.url  # answers' URLs must point at Prism, as PyGithub checks
        yield PrismGitHub(prism, standin)


@pytest.fixture
def conformant_github(prism_github: PrismGitHub) -> Iterator[PrismGitHub]:
    """``prism_github`` reset for this test; the test fails if Prism refused any request.

    A test that provokes violations on purpose takes them with ``take_violations()``.
    """
    prism_github.reset()
    yield prism_github
    refused = prism_github.errors()
    prism_github.reset()
    if refused:
        listing = "\n".join(f"  {violation}" for violation in refused)
        pytest.fail(f"Prism found requests that GitHub's API does not accept:\n{listing}")


@pytest.fixture
def through_prism(conformant_github: PrismGitHub, monkeypatch: pytest.MonkeyPatch) -> PrismGitHub:
    """The GitHub function's requests go through ``conformant_github``, with a token.
    (``test_github_issues_conformance`` puts its own stand-in behind Prism.)"""
    monkeypatch.setenv("GITHUB_API_URL", conformant_github.url)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_conformance-token-0123456789")
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", "https://dashboard.example.org")
    return conformant_github
