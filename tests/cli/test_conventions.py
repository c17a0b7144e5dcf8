"""The conventions of kubectl and tkn, driven through the installed ``tekton-integrations`` command as
a subprocess: version, completion, plain-text help, options before or after the command, exit codes
for usage and for no cluster, and ``NO_COLOR``. (Those that need a cluster are in
tests/e2e/test_cli_e2e.py, against realkube.)
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from common.cli import ExitCode, build_parser
from common.cli.completion import spec_of
from tests.support.receiver import free_port

REPO = Path(__file__).resolve().parents[2]
COMMANDS = [
    "status",
    "explain",
    "render",
    "send",
    "resync",
    "doctor",
    "health",
    "demo",
    "manifests",
    "version",
    "completion",
]


def command() -> list[str]:
    """The console script beside this interpreter (as pip installed it), else ``python -m``."""
    script = Path(sys.executable).parent / "tekton-integrations"
    return [str(script)] if script.exists() else [sys.executable, "-m", "common.cli"]


def cli(
    *argv: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_version_flag_and_command_agree_with_the_installed_distribution() -> None:
    expected = version("tekton-integrations")
    flag = cli("--version")
    assert flag.returncode == ExitCode.OK
    assert flag.stdout.strip() == f"tekton-integrations {expected}"
    sub = cli("version")
    assert (sub.returncode, sub.stdout.strip()) == (0, f"tekton-integrations {expected}")
    assert json.loads(cli("version", "-o", "json").stdout)["version"] == expected
    assert yaml.safe_load(cli("-o", "yaml", "version").stdout)["version"] == expected


@pytest.mark.parametrize("name", COMMANDS)
def test_help_is_plain_text(name: str) -> None:
    done = cli(name, "--help")
    assert done.returncode == ExitCode.OK, done.stderr
    text = done.stdout
    for markup in ("``", ":class:", ":func:", ".. ", "**"):
        assert markup not in text, f"{name} --help shows {markup!r}"
    assert f"usage: tekton-integrations {name}" in text


def test_top_level_help_lists_every_command_and_the_exit_codes() -> None:
    text = cli("--help").stdout
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s", text, re.MULTILINE), name
    assert "exit codes:" in text
    assert "``" not in text


def test_exit_codes_are_documented_in_docs_cli_md() -> None:
    doc = (REPO / "docs" / "cli.md").read_text()
    section = doc.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)}
    assert documented == {int(code) for code in ExitCode} | {130}


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--bogus"],
        ["status", "-o", "table-ish"],
        ["-o", "name", "explain", "x"],  # explain has no -o name
        ["explain", "x", "-A"],  # -A does not apply to one run
        ["-w", "resync"],
        ["status", "--watch-timeout", "5s"],  # needs -w
        ["status", "--as-group", "devs"],  # needs --as
        ["completion", "tcsh"],
        ["status", "--sha", "not-hex"],
    ],
)
def test_bad_usage_is_exit_code_2(argv: list[str]) -> None:
    done = cli(*argv)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert "usage:" in done.stderr


def test_an_option_for_another_command_names_it() -> None:
    done = cli("-A", "explain", "x")
    assert "-A/--all-namespaces does not apply to `explain`" in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["--kubeconfig", "{config}", "-n", "ci", "-v", "status"],
        ["status", "--kubeconfig", "{config}", "-n", "ci", "-v"],
        ["-n", "ci", "status", "-v", "--kubeconfig", "{config}"],
    ],
)
def test_shared_options_work_before_or_after_the_command(tmp_path: Path, argv: list[str]) -> None:
    server = f"https://127.0.0.1:{free_port()}"
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\n"
        f'clusters: [{{name: c, cluster: {{server: "{server}"}}}}]\n'
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    done = cli(*[a.replace("{config}", str(config)) for a in argv], env={"KUBECONFIG": "/nonexistent"})
    assert done.returncode == ExitCode.NO_CLUSTER, done.stderr
    assert f"(API server {server})" in done.stderr, "--kubeconfig was used, not $KUBECONFIG"


def test_no_kubeconfig_is_exit_code_5_with_a_hint(tmp_path: Path) -> None:
    done = cli("status", "--kubeconfig", str(tmp_path / "absent"))
    assert done.returncode == ExitCode.NO_CLUSTER
    assert "error: cannot reach Kubernetes: no Kubernetes configuration" in done.stderr
    assert "hint: check KUBECONFIG and --context" in done.stderr


def on_a_terminal(argv: list[str], env: dict[str, str]) -> str:
    """Run with stderr and stdout on a pseudo-terminal; what it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*command(), *argv], stdout=follower, stderr=follower, env={**os.environ, **env}, close_fds=True
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=30)
    os.close(leader)
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_and_none_with_no_color(tmp_path: Path) -> None:
    argv = ["status", "--kubeconfig", str(tmp_path / "absent")]
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    assert "\x1b[31merror:\x1b[0m" in on_a_terminal(argv, env)
    plain = on_a_terminal(argv, {**env, "NO_COLOR": "1"})
    assert "error: cannot reach Kubernetes" in plain
    assert "\x1b[" not in plain


def test_completion_scripts_are_generated_from_the_parser() -> None:
    spec = spec_of(build_parser())
    assert {c.name for c in spec.commands} == set(COMMANDS)
    for shell in ("bash", "zsh", "fish"):
        done = cli("completion", shell)
        assert done.returncode == ExitCode.OK
        for name in COMMANDS:
            assert name in done.stdout, (shell, name)
        assert "--watch-timeout" in done.stdout or "watch-timeout" in done.stdout


def bash_complete(words: list[str]) -> list[str]:
    """What bash completes for ``words`` (the last one being typed), with the generated script."""
    script = cli("completion", "bash").stdout
    line = " ".join(words)
    program = (
        f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
        '_tekton_integrations; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.split()


def test_bash_completes_commands_options_and_their_values() -> None:
    assert set(bash_complete(["tekton-integrations", "st"])) == {"status"}
    assert "--watch" in bash_complete(["tekton-integrations", "status", "--wa"])
    assert set(bash_complete(["tekton-integrations", "status", "-o", ""])) == {
        "table",
        "wide",
        "json",
        "yaml",
        "name",
    }
    assert set(bash_complete(["tekton-integrations", "explain", "-o", ""])) == {"text", "json", "yaml"}
    assert set(bash_complete(["tekton-integrations", "completion", ""])) == {"bash", "zsh", "fish"}
    assert "--kubeconfig" in bash_complete(["tekton-integrations", "--kube"])


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_parse(shell: str, tmp_path: Path) -> None:
    if shutil.which(shell) is None:
        pytest.skip(
            f"{shell} is not installed here (apt-get install {shell}); its script is checked as text above"
        )
    script = tmp_path / f"completion.{shell}"
    script.write_text(cli("completion", shell).stdout)
    done = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr


def test_fish_completes_output_formats(tmp_path: Path) -> None:
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed here")
    script = tmp_path / "completion.fish"
    script.write_text(cli("completion", "fish").stdout)
    program = f"source {script}; complete -C 'tekton-integrations status -o '"
    done = subprocess.run(["fish", "-c", program], capture_output=True, text=True, timeout=30, check=True)
    assert {line.split("\t")[0] for line in done.stdout.splitlines()} == {
        "table",
        "wide",
        "json",
        "yaml",
        "name",
    }
