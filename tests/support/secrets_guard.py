"""A pytest plugin that fails the session if any secret a test used shows up in what the suite produced.

Secrets are the values of environment variables whose names say they are credentials
(``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*PRIVATE_KEY*``, ``*_WEBHOOK_URL*``) or that an
installed integration declares as a secret (a ``SecretStr`` or ``SecretDirectory`` setting), and
the contents of the files their ``*_FILE`` twins name, as they stand while each test runs. What the suite
produced is every test's captured stdout, stderr and log records, its failure text, the records
and Kubernetes Events written to in-memory run stores, and the log files of served functions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

CREDENTIAL_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PRIVATE_KEY|WEBHOOK_URL", re.IGNORECASE)
MIN_LENGTH = 8  # shorter values ("t", "x") would match ordinary text

_secrets: set[str] = set()
_produced: list[tuple[str, str]] = []
_files: list[Path] = []


def note_output(where: str, text: str) -> None:
    """Add something the suite produced (e.g. a run store's contents) to what is checked."""
    _produced.append((where, text))


def note_output_file(path: Path) -> None:
    """Check this file's contents at the end of the session (e.g. a served function's log)."""
    _files.append(path)


@cache
def _declared_secrets() -> frozenset[str]:
    """The variables installed integrations declare as secrets, with their ``_FILE`` twins."""
    from common import manifests, registry  # after pytest has started: the registry imports every integration

    names: set[str] = set()
    for integration in registry.declarations():
        settings = integration.settings
        for field in (*manifests.secret_fields(settings), *manifests.directory_fields(settings)):
            names |= {settings.variable(field), f"{settings.variable(field)}_FILE"}
    return frozenset(names)


def _credentials_in_environment() -> Iterator[str]:
    for name, value in os.environ.items():
        if not (CREDENTIAL_NAME.search(name) or name in _declared_secrets()):
            continue
        if name.endswith("_DIR") or Path(value).is_dir():
            for path in Path(value).glob("*"):
                if path.is_file():
                    text = path.read_text(encoding="utf-8", errors="replace").strip()
                    if len(text) >= MIN_LENGTH:
                        yield text
            continue
        if name.endswith("_FILE"):
            try:
                contents = Path(value).read_text(encoding="utf-8").strip()
            except OSError:
                continue
        else:
            contents = value
        for line in contents.splitlines() or [contents]:
            if len(line.strip()) >= MIN_LENGTH and not line.startswith("-----"):
                yield line.strip()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    _secrets.update(_credentials_in_environment())
    yield
    _secrets.update(_credentials_in_environment())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for section, text in report.sections:
        _produced.append((f"{report.nodeid} [{section}]", text))
    if report.longreprtext:
        _produced.append((f"{report.nodeid} [failure]", report.longreprtext))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    produced = list(_produced)
    for path in _files:
        if path.exists():
            produced.append((str(path), path.read_text(encoding="utf-8", errors="replace")))
    leaks = sorted(
        {
            f"{where}: a secret ({secret[:4]}…) appears"
            for where, text in produced
            for secret in _secrets
            if secret in text
        }
    )
    if leaks:
        terminal = session.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.ensure_newline()
            terminal.write_line("secrets found in the suite's output:", red=True)
            for leak in leaks[:50]:
                terminal.write_line(f"  {leak}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
