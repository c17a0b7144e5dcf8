"""The registry: an integration is one folder, or one installed package, and nothing else names it.

Both tests build a tree that differs from the checkout only by the added integration, then run
``tests.support.added_integration`` in a subprocess against that tree (see its docstring for what
it exercises: serving, the record's key, the policy section, dead letters, ``status``/``explain``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from common import registry
from tests.support.receiver import Receiver

REPO = Path(__file__).resolve().parents[2]


def run_added(tree: Path, args: list[str], section: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.added_integration", *args],
        input=yaml.safe_dump(section),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{REPO}", **env},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def copy_tree(destination: Path) -> Path:
    """The checkout's ``common`` and ``functions`` packages, copied: a tree to add an integration to."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "common", destination / "common", ignore=ignore)
    shutil.copytree(REPO / "functions", destination / "functions", ignore=ignore)
    return destination


def assert_complete(result: dict[str, Any], name: str, refused_value: str) -> None:
    assert name in result["names"]
    assert result["loaded"] == name
    assert set(result["started"].values()) == {"started"}, (
        f"a policy file with a {name} section must be valid for every function: {result['started']}"
    )
    status, answer = result["accepted"]
    assert (status, answer["integration"], answer["outcome"]) == (200, name, "reported"), answer
    assert result["accepted_record"]["name"] == f"{name}.integrations.tekton.dev"
    assert result["accepted_record"]["conditions"][0]["status"] == "True"
    refused = result["refused_record"]["conditions"][0]
    assert (refused["status"], refused["reason"]) == ("False", "TargetNotAllowed")
    assert f"{name}." in refused["message"], "refused by its own section of the policy"
    assert refused_value.rsplit("//", maxsplit=1)[-1].strip("/") in refused["message"]
    dead = result["dead_letter_record"]["conditions"][0]
    assert (dead["status"], dead["reason"]) == ("False", "DeliveryFailed")
    status_items = json.loads(result["status"]["out"])["items"]
    listed = {entry["name"]: entry for item in status_items for entry in item["integrations"]}
    assert listed[name]["implemented"], result["status"]
    assert result["explain"]["code"] == 0, result["explain"]
    assert name in result["explain"]["out"]


def test_a_copied_folder_renamed_inside_is_a_complete_integration(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path / "tree")
    copy = tree / "functions" / "hook2"
    shutil.copytree(REPO / "functions" / "webhook", copy, ignore=shutil.ignore_patterns("__pycache__"))
    for path in copy.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for old, new in (("webhook", "hook2"), ("Webhook", "Hook2"), ("WEBHOOK", "HOOK2")):
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "default").write_text("hook2-signing-key-for-the-test", encoding="utf-8")
    with Receiver() as receiver:
        refused = "http://other-host.example/"
        result = run_added(
            tree,
            ["hook2", str(copy / "main.py"), "url", receiver.url, refused],
            {"hosts": ["127.0.0.1"], "allowHttp": True, "allowPrivateNetworks": ["127.0.0.0/8"]},
            {"HOOK2_SECRET_DIR": str(keys)},
        )
        assert_complete(result, "hook2", refused)
        assert len(receiver.requests) == 1, "the copy delivered the accepted run once"
    assert "hook2" not in registry.names(), "the checkout itself is untouched"


PAGER = '''
"""A pager integration shipped as its own package."""

from common import Context, Destinations, Idempotency, Integration, IntegrationConfig, Report


class PagerConfig(IntegrationConfig):
    service: str


def report(ctx: Context[PagerConfig, object]) -> Report:
    return Report(f"paged {ctx.config.service}", {"incident": ctx.key()})


integration = Integration(
    declared_in=__file__,
    config=PagerConfig,
    report=report,
    policy=Destinations("services", "service"),
    destinations=lambda ctx: [ctx.config.service],
    idempotency=Idempotency("the incident key: ctx.key(), kept by the pager as its dedup key"),
)
'''


def test_an_installed_package_with_an_entry_point_is_a_complete_integration(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "acme_pager").mkdir(parents=True)
    (site / "acme_pager" / "__init__.py").write_text(PAGER, encoding="utf-8")
    info = site / "acme_pager-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-pager\nVersion: 0.1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[tekton_integrations.integrations]\npager = acme_pager:integration\n", encoding="utf-8"
    )
    result = run_added(
        site,
        ["pager", str(REPO / "common" / "target.py"), "service", "payments", "secrets"],
        {"services": ["payments"]},
        {"TI_INTEGRATION": "pager"},
    )
    assert_complete(result, "pager", "secrets")
    assert result["accepted_record"]["annotations"]["incident"]
