"""Decide whether an optional test tier can run, and say why not.

A user's fresh clone has no ../shared, no Prism and no realkube build: those tiers skip with a
printed reason. CI sets ``TI_REQUIRE_ALL_TIERS=1`` so that a tier which cannot run fails
instead of skipping quietly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path | None:
    """The ../shared folder beside the checkout (or ``TI_SHARED_DIR``), if it exists."""
    path = Path(os.environ.get("TI_SHARED_DIR", REPO_ROOT.parent / "shared"))
    return path if path.is_dir() else None


def all_tiers_required() -> bool:
    return os.environ.get("TI_REQUIRE_ALL_TIERS", "") not in ("", "0", "false")


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test or fixture with ``reason``, or fail it when CI requires every tier."""
    if all_tiers_required():
        pytest.fail(f"required tier cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


SHARED_ABSENT = (
    "this tier needs ../shared, the folder beside the checkout that holds the realkube API server "
    "scripts, Tekton's and Knative's CRDs and Tekton's recorded events; it is not part of the "
    "repository and a fresh clone does not need it: every other tier runs without it. CI runs with "
    "a copy of it beside the clone (.ci/run). To run this tier, put it at {where} or point "
    "TI_SHARED_DIR at it"
)


def require_shared() -> Path:
    path = shared_dir()
    if path is None:
        where = os.environ.get("TI_SHARED_DIR") or str(REPO_ROOT.parent / "shared")
        unavailable(SHARED_ABSENT.format(where=where))
    return path
