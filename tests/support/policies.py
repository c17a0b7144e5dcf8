"""Write a tenancy policy file for a test and point ``TI_POLICY_FILE`` at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

LOOPBACK_RECEIVERS: dict[str, Any] = {
    "allowHttp": True,
    "allowPrivateNetworks": ["127.0.0.0/8", "::1/128"],
}
"""A webhook/cloudevent entry that lets a namespace reach the tests' loopback receivers."""


def use_policy(monkeypatch: pytest.MonkeyPatch, directory: Path, policy: dict[str, Any] | str) -> Path:
    """Write ``policy`` (a mapping, or YAML text) to ``directory/policy.yaml`` and select it."""
    path = directory / "policy.yaml"
    path.write_text(policy if isinstance(policy, str) else yaml.safe_dump(policy), encoding="utf-8")
    monkeypatch.setenv("TI_POLICY_FILE", str(path))
    return path
