"""Settings: ``X`` or the file ``X_FILE`` names, validated once, unreadable files named."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import SecretStr

from common.errors import PermanentError
from common.redaction import redact
from common.settings import ServiceSettings


class PagerSettings(ServiceSettings):
    prefix: ClassVar[str] = "PAGER"
    service: ClassVar[str] = "Pager"

    url: str = "https://pager.example.com"
    token: SecretStr | None = None
    retries: int = 2


def test_a_variable_is_read_and_a_file_is_read_when_the_variable_is_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAGER_URL", "https://pager.internal")
    token = tmp_path / "token"
    token.write_text("pager-token-from-a-file\n", encoding="utf-8")
    monkeypatch.setenv("PAGER_TOKEN_FILE", str(token))
    settings = PagerSettings.load()
    assert settings.url == "https://pager.internal"
    assert settings.token is not None
    assert settings.token.get_secret_value() == "pager-token-from-a-file"
    assert settings.timeout_seconds == 10.0


def test_a_secret_read_is_masked_everywhere_from_then_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAGER_TOKEN", "pgr-9f8e7d6c5b4a")
    PagerSettings.load()
    assert "pgr-9f8e7d6c5b4a" not in redact("the service said: bad token pgr-9f8e7d6c5b4a")
    assert "pgr-9f8e7d6c5b4a" not in repr(PagerSettings.load())


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda path: None, "which does not exist"),
        (lambda path: path.mkdir(), "which is a directory"),
        (lambda path: path.write_text("  \n", encoding="utf-8"), "which is empty"),
    ],
)
def test_an_unreadable_secret_file_counts_as_unset_and_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: object, why: str
) -> None:
    path = tmp_path / "token"
    make(path)  # type: ignore[operator]
    monkeypatch.setenv("PAGER_TOKEN_FILE", str(path))
    settings = PagerSettings.load()
    assert settings.token is None
    with pytest.raises(PermanentError) as refused:
        settings.require("token")
    assert refused.value.reason == "PagerNotConfigured"
    assert f"PAGER_TOKEN_FILE names {path}, {why}" in refused.value.message
    assert "PAGER_TOKEN(_FILE)" in refused.value.message


def test_an_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGER_TIMEOUT_SECONDS", "600")
    with pytest.raises(PermanentError) as refused:
        PagerSettings.load()
    assert refused.value.reason == "PagerNotConfigured"
    assert "PAGER_TIMEOUT_SECONDS" in refused.value.message
    monkeypatch.setenv("PAGER_TIMEOUT_SECONDS", "3")
    monkeypatch.setenv("PAGER_RETRIES", "many")
    with pytest.raises(PermanentError, match="PAGER_RETRIES"):
        PagerSettings.load()


def test_settings_are_read_again_only_when_a_variable_or_a_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tmp_path / "token"
    token.write_text("first-token-value", encoding="utf-8")
    monkeypatch.setenv("PAGER_TOKEN_FILE", str(token))
    first = PagerSettings.load()
    assert PagerSettings.load() is first
    token.write_text("rotated-token-value", encoding="utf-8")
    os.utime(token, ns=(1, 1))
    rotated = PagerSettings.load()
    assert rotated.token is not None
    assert rotated.token.get_secret_value() == "rotated-token-value"
    monkeypatch.setenv("PAGER_RETRIES", "5")
    assert PagerSettings.load().retries == 5
