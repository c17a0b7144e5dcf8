"""docs/writing-an-integration.md: its example is a working integration, and its list of the files
an integration adds matches every installed integration."""

from __future__ import annotations

import json
import re
from pathlib import Path

from common import registry
from tests.common.test_registry import REPO, assert_complete, copy_tree, run_added
from tests.support.receiver import Receiver

GUIDE = REPO / "docs" / "writing-an-integration.md"


def example() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(r"<!-- example: functions/pager/main.py -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "the guide lost its example"
    return match.group(1)


def listed_files() -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("<!-- files:", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"`([^`\s]*<name>[^`\s]*)`", section)
    return [path for path in found if "/" in path and "." not in path.split("/")[0]]


def test_the_guides_example_is_a_complete_integration(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path / "tree")
    folder = tree / "functions" / "pager"
    folder.mkdir()
    (folder / "__init__.py").write_text("", encoding="utf-8")
    (folder / "main.py").write_text(example(), encoding="utf-8")
    with Receiver() as pager:
        result = run_added(
            tree,
            ["pager", str(folder / "main.py"), "service", "payments", "secrets", "pipelinerun-failed"],
            {"services": ["payments"]},
            {"PAGER_URL": pager.url.rstrip("/"), "PAGER_TOKEN": "pager-token-0123456789abcdef"},
        )
        assert_complete(result, "pager", "secrets")
        (request,) = pager.requests
    event = json.loads(request.body)
    assert event["service"] == "payments"
    assert event["dedup_key"] == result["accepted_record"]["annotations"]["dedup-key"]
    assert request.headers["authorization"] == "Token pager-token-0123456789abcdef"
    assert "pager-token-0123456789abcdef" not in json.dumps(result), "the token is masked in all it wrote"


def test_the_listed_files_are_what_every_installed_integration_has() -> None:
    paths = listed_files()
    assert {"functions/<name>/main.py", "tests/functions/test_<name>.py", "docs/<name>.md"} <= set(paths)
    names = [name for name in registry.names() if (REPO / "functions" / registry.folder_of(name)).is_dir()]
    assert names
    for name in names:
        for path in paths:
            python = path.startswith(("functions/", "tests/"))  # Python packages take `_` for `-`
            where = path.replace("<name>", registry.folder_of(name) if python else name)
            assert (REPO / where).exists(), f"{name} has no {where}"
