"""The release: its workflow passes actionlint, its overlays pin every image by digest, and the
version is one string in pyproject.toml, the installed metadata and CHANGELOG.md.

The workflow (.github/workflows/release.yml) cannot run here: no container engine, no registry.
What it does with the digest the registry answers is reproduced instead. The overlays in
.github/release/ are copied with knative/ into a temporary tree. Their ``images:`` entry is set
as ``kustomize edit set image tekton-integrations=NAME:TAG@DIGEST`` writes it, and the tree is
rendered with ``kubectl kustomize``, the same kustomize as the ``kustomize build`` on the runner.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import pytest
import yaml

from common import registry
from common.policy import Destinations, parse_policy
from tests.deploy.contracts import TEMPLATES
from tests.deploy.manifests import (
    FUNCTIONS,
    IMAGE_PLACEHOLDER,
    KNATIVE_DIR,
    Obj,
    by_kind,
    find_tool,
    ident,
    kustomize,
    run,
)
from tests.support.tiers import REPO_ROOT, unavailable

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "release.yml"
OVERLAYS = REPO_ROOT / ".github" / "release"
RELEASE_OVERLAY = OVERLAYS / "knative"
RESYNC_OVERLAY = OVERLAYS / "resync"
CHANGELOG = REPO_ROOT / "CHANGELOG.md"
RELEASE_DOC = REPO_ROOT / "docs" / "release.md"
PYPROJECT = REPO_ROOT / "pyproject.toml"

VERSION_PATTERN = r"[0-9]+\.[0-9]+\.[0-9]+((a|b|rc)[0-9]+)?"
"""What the workflow accepts as pyproject.toml's version (its "Check the tag" step)."""
DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGE = "ghcr.io/acme/tekton-integrations"
PINNED = f"{IMAGE}:1.2.3@{DIGEST}"
SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@]+)?@[0-9a-f]{40}$")


@pytest.fixture(scope="module")
def workflow() -> Obj:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    # PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on".
    return {"on" if key is True else key: value for key, value in loaded.items()}


def steps(workflow: Obj) -> list[Obj]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def step_named(workflow: Obj, prefix: str) -> Obj:
    found = [s for s in steps(workflow) if s.get("name", "").startswith(prefix)]
    assert len(found) == 1, f"one step named {prefix!r}: {[s.get('name') for s in steps(workflow)]}"
    return found[0]


# --- the workflow ---------------------------------------------------------------------------


def test_the_workflow_passes_actionlint() -> None:
    actionlint = find_tool("actionlint")
    shellcheck = find_tool("shellcheck")  # actionlint checks every `run:` script with it
    done = run(
        [actionlint, "-no-color", f"-shellcheck={shellcheck}", "-pyflakes=", str(WORKFLOW)],
        timeout=120,
    )
    assert done.returncode == 0, f"actionlint:\n{done.stdout}{done.stderr}"


def test_third_party_actions_are_pinned_by_commit_sha(workflow: Obj) -> None:
    uses = [step["uses"] for step in steps(workflow) if "uses" in step]
    assert uses, "the workflow uses no action: the checks below would check nothing"
    for ref in uses:
        assert SHA_PIN.match(ref), f"{ref}: pin by a 40-hex commit SHA, with its release in a comment"
    # The release each SHA belongs to is written beside it, so that a bump changes both.
    for line in WORKFLOW.read_text().splitlines():
        if re.match(r"\s*(- )?uses:", line):
            assert re.search(r"@[0-9a-f]{40} # v\d+(\.\d+)*$", line), line.strip()


def test_the_workflow_releases_a_tag_with_a_multi_arch_image_and_release_yaml(workflow: Obj) -> None:
    assert workflow["on"] == {"push": {"tags": ["v*"]}}
    assert workflow["permissions"] == {}, "no permission by default"
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "write", "packages": "write"}

    build = step_named(workflow, "Build and push")
    assert build["uses"].startswith("docker/build-push-action@")
    assert set(build["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["with"]["push"] is True
    assert build["with"]["tags"].startswith("${{ steps.version.outputs.image }}:")
    assert any(s["uses"].startswith("docker/setup-qemu-action@") for s in steps(workflow) if "uses" in s)
    assert any(s["uses"].startswith("docker/setup-buildx-action@") for s in steps(workflow) if "uses" in s)

    render = step_named(workflow, "Render release.yaml")
    assert render["env"]["DIGEST"] == "${{ steps.build.outputs.digest }}", "the pushed digest, nothing else"
    script = render["run"]
    # The overlays the workflow edits and builds are the ones this module tests.
    assert 'kustomize edit set image "tekton-integrations=$ref"' in script
    assert 'ref="$IMAGE:$VERSION@$DIGEST"' in script
    for overlay in (RELEASE_OVERLAY, RESYNC_OVERLAY):
        assert (overlay / "kustomization.yaml").is_file()
        assert f"kustomize build .github/release/{overlay.name}" in script
    assert "for overlay in knative resync; do" in script

    publish = step_named(workflow, "Create the GitHub release")["run"]
    for asset in ("dist/release.yaml", "dist/resync.yaml", "dist/config-events.yaml", "dist/SHA256SUMS"):
        assert asset in publish


# --- the overlays -----------------------------------------------------------------------------


def set_image(kustomization: Path, ref: str) -> None:
    """What ``kustomize edit set image tekton-integrations=<ref>`` writes, for NAME[:TAG]@DIGEST."""
    name, _, digest = ref.partition("@")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), ref
    entry = {"name": IMAGE_PLACEHOLDER, "newName": name, "digest": digest}
    repository, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:  # a tag, not a registry's port
        entry["newName"], entry["newTag"] = repository, tag
    config = yaml.safe_load(kustomization.read_text())
    config["images"] = [entry]
    kustomization.write_text(yaml.safe_dump(config))


@pytest.fixture
def release_tree(tmp_path: Path) -> Path:
    """The repository's knative/ and .github/release/ in a temporary tree, the image set as the
    workflow sets it."""
    shutil.copytree(KNATIVE_DIR, tmp_path / "knative")
    shutil.copytree(OVERLAYS, tmp_path / ".github" / "release")
    for overlay in (RELEASE_OVERLAY, RESYNC_OVERLAY):
        set_image(tmp_path / overlay.relative_to(REPO_ROOT) / "kustomization.yaml", PINNED)
    return tmp_path


def images(node: Any) -> list[str]:
    """Every ``image:`` value anywhere in an object (containers, init containers, job templates)."""
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k == "image" and isinstance(v, str)]
        return found + [image for value in node.values() for image in images(value)]
    if isinstance(node, list):
        return [image for item in node for image in images(item)]
    return []


def test_release_yaml_pins_every_services_image_by_digest(kubectl: str, release_tree: Path) -> None:
    objects = kustomize(kubectl, release_tree / RELEASE_OVERLAY.relative_to(REPO_ROOT))
    services = by_kind(objects, "Service")
    # Every function, the dead-letter receiver included.
    assert set(services) == set(FUNCTIONS)
    for service in services.values():
        spec = service["spec"]["template"]["spec"]
        for container in spec["containers"] + spec.get("initContainers", []):
            assert container["image"] == PINNED, ident(service)
            assert "@sha256:" in container["image"]
    for obj in objects:
        assert all(image == PINNED for image in images(obj)), ident(obj)


def test_resync_yaml_pins_the_cronjobs_image_by_digest(kubectl: str, release_tree: Path) -> None:
    objects = kustomize(kubectl, release_tree / RESYNC_OVERLAY.relative_to(REPO_ROOT))
    cronjobs = by_kind(objects, "CronJob")
    assert set(cronjobs) == {"resync"}
    found = [image for obj in objects for image in images(obj)]
    assert found, "resync.yaml has no image"
    assert found == [PINNED] * len(found)


@pytest.mark.parametrize(
    ("overlay", "base"),
    [(RELEASE_OVERLAY, KNATIVE_DIR), (RESYNC_OVERLAY, KNATIVE_DIR / "resync")],
    ids=["release.yaml", "resync.yaml"],
)
def test_a_release_is_the_tree_itself_but_for_the_image(
    kubectl: str, release_tree: Path, overlay: Path, base: Path
) -> None:
    # The overlays add nothing else: release.yaml is knative/, resync.yaml is knative/resync/.
    released = kustomize(kubectl, release_tree / overlay.relative_to(REPO_ROOT))
    expected = yaml.safe_load_all(
        kustomize_text(kubectl, base).replace(f"image: {IMAGE_PLACEHOLDER}\n", f"image: {PINNED}\n")
    )
    assert released == [d for d in expected if d]
    # Committed with the placeholder: rendering the overlay in the repository gives the tree.
    assert kustomize(kubectl, overlay) == kustomize(kubectl, base)


def kustomize_text(kubectl: str, path: Path) -> str:
    done = run([kubectl, "kustomize", str(path)])
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_documented_site_overlay_configures_a_release(
    kubectl: str, release_tree: Path, tmp_path: Path
) -> None:
    # docs/release.md's site/kustomization.yaml, over a release.yaml rendered as the workflow does.
    site = tmp_path / "site"
    site.mkdir()
    (site / "release.yaml").write_text(
        kustomize_text(kubectl, release_tree / RELEASE_OVERLAY.relative_to(REPO_ROOT))
    )
    blocks = re.findall(r"```yaml\n(# site/kustomization\.yaml.*?)```", RELEASE_DOC.read_text(), re.S)
    assert len(blocks) == 1, "docs/release.md has one site/kustomization.yaml block"
    (site / "kustomization.yaml").write_text(blocks[0])
    objects = kustomize(kubectl, site)
    config_maps = {name.rsplit("-", 1)[0]: cm for name, cm in by_kind(objects, "ConfigMap").items()}
    # The functions refuse to start on a policy they cannot load: the documented one loads.
    policy = parse_policy(config_maps["tekton-integrations-policy"]["data"]["policy.yaml"], "docs/release.md")
    for declared in registry.declarations():
        policy.check(declared.name, declared.policy)
    github = registry.load("github").integration
    assert github is not None
    assert isinstance(github.policy, Destinations)
    assert policy.for_namespace("tenant-a").allows("github", github.policy, "acme/app")
    assert not policy.for_namespace("tenant-b").allows("github", github.policy, "acme/app")
    assert config_maps["tekton-integrations-settings"]["data"]["TEKTON_DASHBOARD_URL"].startswith("https://")
    # Patched in place: the Services still mount the ConfigMaps the release named (and the
    # operator's own templates, which no tree generates: it keeps its name).
    names = {cm["metadata"]["name"] for cm in config_maps.values()} | {TEMPLATES[0]}
    for service in by_kind(objects, "Service").values():
        volumes = service["spec"]["template"]["spec"]["volumes"]
        assert {v["configMap"]["name"] for v in volumes if "configMap" in v} <= names, ident(service)
        assert all(image == PINNED for image in images(service)), ident(service)


# --- the version ------------------------------------------------------------------------------


def project_version() -> str:
    version: str = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    return version


def test_the_version_is_one_the_workflow_releases() -> None:
    assert re.fullmatch(VERSION_PATTERN, project_version()), project_version()


def test_the_installed_metadata_reports_pyprojects_version() -> None:
    # What `tekton-integrations version` prints (importlib.metadata), and what the image installs.
    try:
        installed = installed_version("tekton-integrations")
    except PackageNotFoundError:
        unavailable("tekton-integrations is not installed: run `pip install -e .`")
    assert installed == project_version(), "pyproject.toml changed since the install: run `pip install -e .`"


def test_the_changelog_keeps_a_changelog() -> None:
    text = CHANGELOG.read_text()
    headings = re.findall(r"^## \[(.+?)\](.*)$", text, re.MULTILINE)
    assert headings, "no version sections"
    assert headings[0] == ("Unreleased", ""), "the first section is ## [Unreleased]"
    released = headings[1:]
    for name, rest in released:
        assert re.fullmatch(VERSION_PATTERN, name), name
        # The workflow's check: "## [X.Y.Z] - YYYY-MM-DD".
        assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", rest), f"## [{name}]{rest}"
    versions = [name for name, _ in released]
    assert versions == sorted(versions, key=version_key, reverse=True), "newest first"
    # pyproject.toml holds the latest release's version until the next one is cut (docs/release.md).
    assert versions[0] == project_version(), (
        f"pyproject.toml says {project_version()}, CHANGELOG {versions[0]}"
    )
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        for heading in re.findall(r"^### (.+)$", section, re.MULTILINE):
            assert heading in {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, heading


def version_key(version: str) -> tuple[int, ...]:
    release = re.match(r"[0-9.]+", version)
    assert release
    return tuple(int(part) for part in release.group().rstrip(".").split("."))
