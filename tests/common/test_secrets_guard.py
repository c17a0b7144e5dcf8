"""The suite's own guard: a secret a test used must not appear in anything the suite produced."""

from __future__ import annotations

import pytest

from tests.conftest import REPO

LEAKY = """
import logging

def test_logs_a_token(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "guard-test-secret-value")
    logging.getLogger("x").warning("using guard-test-secret-value")
"""
CAREFUL = """
import logging

def test_logs_no_token(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "guard-test-secret-value")
    logging.getLogger("x").warning("using a token")
"""


@pytest.mark.parametrize(("source", "fails"), [(LEAKY, True), (CAREFUL, False)], ids=["leak", "no-leak"])
def test_the_guard_fails_a_session_whose_output_holds_a_secret(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: str, fails: bool
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makepyfile(test_sample=source)
    result = pytester.runpytest_subprocess("-p", "tests.support.secrets_guard", "-p", "no:cacheprovider")
    assert (result.ret != 0) is fails
    assert ("a secret (guar" in result.stdout.str()) is fails
