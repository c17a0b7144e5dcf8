"""The Dockerfile passes hadolint, runs as a numeric non-root user, and runs any function.

There is no container engine on the development machines or in CI, so the image is not built
here: these tests lint it with hadolint (from PyPI, see scripts/install-test-tools) and check
its instructions against the contracts the Knative Services rely on.
"""

from __future__ import annotations

import json
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.deploy.manifests import (
    FUNCTIONS,
    SERVICE_FILES,
    env_of,
    load_yaml_objects,
    run,
    source_of,
)
from tests.support.tiers import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"

Instruction = tuple[str, str]


def parse(text: str) -> list[list[Instruction]]:
    """Dockerfile -> stages -> (INSTRUCTION, arguments), continuations joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[Instruction]] = [[]]
    for line in logical:
        word, _, args = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        stages[-1].append((word.upper(), args.strip()))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return parse(DOCKERFILE.read_text())


def final_stage(stages: list[list[Instruction]]) -> list[Instruction]:
    return stages[-1]


def env_values(stage: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for word, args in stage:
        if word == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", args):
                values[key] = value
    return values


def test_hadolint_passes(hadolint: str) -> None:
    done = run([hadolint, "--no-color", "--format", "tty", str(DOCKERFILE)])
    assert done.returncode == 0, f"hadolint:\n{done.stdout}{done.stderr}"


def test_hadolint_is_really_checking(hadolint: str, tmp_path: Path) -> None:
    # Negative control: the same tool must reject an unpinned base and a root user, or the
    # test above proves nothing.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nUSER root\nCMD python -m http.server\n")
    done = run([hadolint, "--no-color", "--format", "json", str(bad)])
    codes = {finding["code"] for finding in json.loads(done.stdout)}
    assert done.returncode != 0
    assert {"DL3007", "DL3002", "DL3025"} <= codes


def test_base_image_is_slim_python_311_pinned_by_tag_and_digest(
    stages: list[list[Instruction]],
) -> None:
    arg = next(args for word, args in stages[0] if word == "ARG")  # global ARG, before any FROM
    name, _, image = arg.partition("=")
    assert name == "PYTHON_IMAGE"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+@sha256:[0-9a-f]{64}", image), image
    froms = [args.split()[0] for stage in stages[1:] for word, args in stage if word == "FROM"]
    assert froms == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"], "two stages, same pinned base"


def test_multi_stage_runtime_has_no_source_or_build_steps(
    stages: list[list[Instruction]],
) -> None:
    runtime = final_stage(stages)
    copies = [args for word, args in runtime if word == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"], "runtime gets the virtualenv only"
    runs = " ".join(args for word, args in runtime if word == "RUN")
    for tool in ("pip", "apt-get", "gcc", "make"):
        assert tool not in runs, f"runtime stage runs {tool}"


def test_declares_a_numeric_non_root_user(stages: list[list[Instruction]]) -> None:
    users = [args for word, args in final_stage(stages) if word == "USER"]
    assert users, "the runtime stage must declare USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit(), f"USER {users[-1]}: numeric, so runAsNonRoot can verify it"
    assert int(uid) != 0
    assert not gid or (gid.isdigit() and int(gid) != 0)


def test_cmd_is_exec_form_functions_framework_cloudevent(
    stages: list[list[Instruction]],
) -> None:
    runtime = final_stage(stages)
    cmds = [args for word, args in runtime if word == "CMD"]
    assert len(cmds) == 1
    argv = json.loads(cmds[0])  # exec (JSON) form, or this raises
    assert argv[0] == "functions-framework"
    assert argv[argv.index("--signature-type") + 1] == "cloudevent"
    assert not [w for w, _ in runtime if w == "ENTRYPOINT"]
    # The port, target and source come from functions-framework's environment twins.
    env = env_values(runtime)
    assert env["PORT"] == "8080"
    assert env["FUNCTION_TARGET"] == "handle"
    assert env["FUNCTION_SOURCE"] == "functions/${FUNCTION}/main.py"
    assert ("ARG", "FUNCTION=github") in runtime


def test_threads_and_workers_are_explicit_and_match_the_services(
    stages: list[list[Instruction]],
) -> None:
    env = env_values(final_stage(stages))
    assert env["WORKERS"] == "1"
    assert int(env["THREADS"]) >= 1
    for path in SERVICE_FILES:
        (service,) = load_yaml_objects(path)
        service_env = env_of(service)
        assert service_env["THREADS"]["value"] == env["THREADS"], path.name
        assert service["spec"]["template"]["spec"]["containerConcurrency"] == int(env["THREADS"])


def test_knative_services_run_as_the_image_user(stages: list[list[Instruction]]) -> None:
    uid, _, gid = next(a for w, a in reversed(final_stage(stages)) if w == "USER").partition(":")
    for path in SERVICE_FILES:
        (service,) = load_yaml_objects(path)
        ctx = service["spec"]["template"]["spec"]["containers"][0]["securityContext"]
        assert ctx["runAsNonRoot"] is True
        assert ctx["runAsUser"] == int(uid), path.name
        assert ctx["runAsGroup"] == int(gid), path.name


def test_dockerignore_sends_only_what_pip_install_needs(stages: list[list[Instruction]]) -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: ignore everything, then re-include"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied: set[str] = set()
    for word, args in stages[1]:
        if word == "COPY":
            copied.update(p.rstrip("/") for p in args.split()[:-1] if not p.startswith("--"))
    assert copied == included == {"pyproject.toml", "README.md", "common", "functions"}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_source_is_installed_by_pip_install(name: str) -> None:
    # FUNCTION_SOURCE is resolved inside site-packages (the image's WORKDIR), so each function's
    # directory must be a package that pyproject's `packages.find` picks up: setuptools' find
    # takes only directories with an __init__.py, whose dotted name matches an include pattern.
    source = source_of(name)
    assert (REPO_ROOT / source).is_file()
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    directory = str(Path(source).parent)
    assert any(fnmatch(directory.replace("/", "."), pattern) for pattern in include), include
    parts = Path(source).parent.parts
    for depth in range(1, len(parts) + 1):
        package = "/".join(parts[:depth])
        assert (REPO_ROOT / package / "__init__.py").exists(), (
            f"`pip install .` would not install {source}: add {package}/__init__.py"
        )
