"""Ages, tables and colours; and the real connector's errors: no kubeconfig or context, no server."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from common import kube
from common.cli import ExitCode, main
from common.cli.output import Cell, Style, format_age, table, wants_colour
from tests.cli.conftest import NOW, SLACK_OFF, Cli
from tests.cli.fakes import FakeCluster
from tests.support.receiver import free_port


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (119, "119s"), (120, "2m"), (7199, "119m"), (7200, "2h"), (172_799, "47h"), (172_800, "2d")],
)
def test_ages_read_like_kubectl(seconds: int, shown: str) -> None:
    assert format_age(NOW - timedelta(seconds=seconds), NOW) == shown


def test_a_future_or_unknown_time_is_not_negative() -> None:
    assert format_age(NOW + timedelta(minutes=5), NOW) == "0s"
    assert format_age(None, NOW) == "-"


def test_columns_stay_aligned_when_coloured() -> None:
    rows: list[list[Cell | str]] = [[Cell("True", "green"), "a"], [Cell("Unknown", "yellow"), "b"]]
    plain = table(["CONDITION", "X"], rows, Style(enabled=False)).splitlines()
    coloured = table(["CONDITION", "X"], rows, Style(enabled=True)).splitlines()
    assert plain == ["CONDITION   X", "True        a", "Unknown     b"]
    assert coloured[1] == "\x1b[32mTrue\x1b[0m        a"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "env", "expected"),
    [
        (Terminal(), {}, True),
        (Terminal(), {"NO_COLOR": "1"}, False),
        (Terminal(), {"NO_COLOR": ""}, True),  # no-color.org: only a non-empty value disables
        (io.StringIO(), {}, False),
    ],
)
def test_colour_only_on_a_terminal_without_no_color(
    stream: io.StringIO, env: dict[str, str], expected: bool
) -> None:
    assert wants_colour(stream, env) is expected


def run_real(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    code = main(list(argv), out=io.StringIO(), err=err, env={})
    return code, err.getvalue()


def kubeconfig(tmp_path: Path, server: str, namespace: str = "team-a") -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{server: "{server}"}}
users:
- name: u
  user: {{token: not-a-real-token}}
contexts:
- name: main
  context: {{cluster: c, user: u, namespace: {namespace}}}
- name: other
  context: {{cluster: c, user: u}}
current-context: main
"""
    )
    return path


def test_no_kubeconfig_is_no_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    code, err = run_real("status")
    assert code == ExitCode.NO_CLUSTER
    assert "error: cannot reach Kubernetes: no Kubernetes configuration" in err
    assert "hint: check KUBECONFIG and --context" in err


def test_an_unknown_context_is_no_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path, "https://127.0.0.1:1")))
    code, err = run_real("status", "--context", "staging")
    assert code == ExitCode.NO_CLUSTER
    assert "staging" in err


def test_an_unreachable_server_is_no_cluster_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = f"https://127.0.0.1:{free_port()}"
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path, server)))
    code, err = run_real("status")
    assert code == ExitCode.NO_CLUSTER
    assert f"Kubernetes API unreachable: MaxRetryError (API server {server})" in err


def test_the_namespace_comes_from_the_chosen_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path, "https://127.0.0.1:1")))
    assert kube.current_namespace() == "team-a"
    assert kube.current_namespace("other") == "default"
    assert kube.connect("other").server == "https://127.0.0.1:1"


def test_a_credential_in_a_record_is_masked_in_everything_the_cli_prints(
    cli: Cli, cluster: FakeCluster
) -> None:
    """A record (editable by the run's author, or written before an upgrade) may quote a token."""
    leaked = "ghp_0123456789abcdefghijABCDEFGHIJklmn"
    record = {
        "name": "github.integrations.tekton.dev",
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Succeeded",
                "status": "False",
                "reason": "GitHubUnauthorized",
                "message": f"401 from a proxy: Authorization: token {leaked}",
                "lastTransitionTime": "2026-03-14T09:25:00Z",
            }
        ],
        "annotations": {"context": leaked},
        "runUID": "uid-to-fill",
        "runState": {"status": "True", "reason": "Succeeded"},
    }
    ref = cluster.add_sample("pipelinerun-successful", annotations=SLACK_OFF)
    record["runUID"] = cluster.uid(ref)
    cluster.patch(
        ref, {"metadata": {"annotations": {"github.integrations.tekton.dev/status": json.dumps(record)}}}
    )
    for command in (["status", "-o", "wide"], ["status", "-o", "json"], ["explain", ref.name, "-o", "yaml"]):
        result = cli(*command)
        assert result.code == ExitCode.OK, result.err
        assert "GitHubUnauthorized" in result.out
        assert leaked not in result.out + result.err, command
