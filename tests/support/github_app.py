"""Signing in to GitHub as an App: a private key, its file, and the variables that name them.

Neither the stand-ins nor Prism check a JWT's signature, so one key serves every test."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@cache
def app_private_key() -> str:
    """An RSA key as GitHub gives an App's, in PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def sign_in_as_app(monkeypatch: pytest.MonkeyPatch, app_id: int, directory: Path) -> None:
    """The functions sign in as App ``app_id`` (its key in ``directory/app.pem``), not with a token."""
    key_file = directory / "app.pem"
    key_file.write_text(app_private_key(), encoding="utf-8")
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.setenv("GITHUB_APP_ID", str(app_id))
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY_FILE", str(key_file))
