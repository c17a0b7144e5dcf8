"""``tekton-integrations render``: the message a function would send for a run, with an operator's
template, built by the function's own code and sent nowhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.cli import ExitCode
from common.cli.tekton_events import event_for_run
from common.http import use_run_client
from common.runclient import RunRef
from common.templates import TEMPLATES_DIR_ENV
from tests.cli.conftest import NOW, SLACK_OFF, Cli
from tests.cli.fakes import FakeCluster
from tests.conftest import function_client
from tests.support.reports import log_failed_step, mount_templates
from tests.support.standins.slack import SlackStandIn

RUN = "build-and-test-run-q4m9z"
DASHBOARD = "https://dashboard.example.org"
SHORT = (
    "*{{ run.definition }}* {{ run.headline }} for {{ run.annotations.owner }}\n"
    "{% for t in failed_tasks %}• {{ t.name }}: {{ t.reason }}\n{% endfor %}"
    "<{{ links.run_url }}|Open the run>"
)
SHORT_TEXT = (
    "*build-and-test* Failed for &lt;!channel&gt;\n"
    "• unit-tests: StepFailed\n"
    "• build-image: Skipped\n"
    f"<{DASHBOARD}/#/namespaces/ci/pipelineruns/{RUN}|Open the run>"
)
SLACK = "slack.integrations.tekton.dev/"


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The template files, where the functions in this process read them too."""
    monkeypatch.setenv("TEKTON_DASHBOARD_URL", DASHBOARD)
    return mount_templates(
        tmp_path,
        monkeypatch,
        {
            "short.slack.j2": SHORT,
            "short.j2": "{{ run.name }} {{ run.phase }} ({{ target }})",
            "evil.j2": "{{ cycler.__init__.__globals__ }}",
        },
    )


@pytest.fixture
def slack(cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandIn]:
    """A loopback Slack for the slack function, which uses the fake cluster."""
    with SlackStandIn() as standin:
        monkeypatch.setenv("SLACK_API_URL", standin.api_url)
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-cli-render-test-0123456789")
        use_run_client(cluster)
        yield standin
        use_run_client(None)


def failed_run(cluster: FakeCluster, **annotations: str | None) -> RunRef:
    """The failed sample PipelineRun (and its failed TaskRun), owned by someone who can be mentioned."""
    cluster.add_sample("taskrun-failed")
    return cluster.add_sample("pipelinerun-failed", annotations={"owner": "<!channel>", **annotations})


def deliver(cluster: FakeCluster, ref: RunRef) -> None:
    """The event Tekton sends for the run as it is now, to the slack function."""
    event = event_for_run(ref.kind, cluster.runs[ref], NOW)
    answer = function_client("slack").post("/", headers=dict(event.headers), data=json.dumps(event.data))
    assert answer.status_code == 200, answer.get_data(as_text=True)


def sent(message: dict[str, Any]) -> dict[str, Any]:
    """What Slack keeps of a posted message's content."""
    return {key: message.get(key) for key in ("text", "blocks", "attachments")}


def test_render_prints_the_message_the_function_sends(
    cli: Cli, cluster: FakeCluster, slack: SlackStandIn, templates: Path
) -> None:
    ref = failed_run(cluster, **{SLACK + "template": "short"})
    deliver(cluster, ref)
    (posted,) = slack.messages.values()

    as_json = cli("render", RUN, "--integration", "slack", "-o", "json", "--templates-dir", str(templates))
    as_text = cli("render", RUN, "--integration", "slack", "--templates-dir", str(templates))

    assert as_json.code == ExitCode.OK, as_json.err
    (rendered,) = json.loads(as_json.out)["messages"]
    assert sent(posted) == sent(rendered["payload"]["message"])
    assert rendered["payload"]["reply"] is None
    assert (rendered["integration"], rendered["template"], rendered["fallbackReason"]) == (
        "slack",
        "short",
        None,
    )
    assert posted["blocks"][0]["text"]["text"] == SHORT_TEXT
    assert (as_text.code, as_text.out, as_text.err) == (ExitCode.OK, SHORT_TEXT + "\n", "")
    assert len(slack.messages) == 1, "render sends nothing"


def test_a_template_that_fails_prints_the_default_message_the_function_sends_and_exits_1(
    cli: Cli, cluster: FakeCluster, slack: SlackStandIn, templates: Path
) -> None:
    ref = failed_run(cluster, **{SLACK + "template": "evil"})
    deliver(cluster, ref)
    (posted,) = slack.messages.values()
    cli.env[TEMPLATES_DIR_ENV] = str(templates)

    result = cli("render", RUN, "--integration", "slack", "-o", "json")

    assert result.code == ExitCode.ERROR
    (rendered,) = json.loads(result.out)["messages"]
    assert sent(posted) == sent(rendered["payload"]["message"])
    assert rendered["fallbackReason"] == "TemplateFailed"
    assert result.err == (
        "warning: slack: template 'evil' failed (SecurityError: access to attribute '__init__' of 'type' "
        "object is unsafe.): the default message was used\n"
    )


def test_template_chooses_another_template_than_the_runs_own(
    cli: Cli, cluster: FakeCluster, templates: Path
) -> None:
    failed_run(cluster, **{SLACK + "template": "evil"})

    result = cli(
        "render", RUN, "--template", "short", "--integration", "slack", "--templates-dir", str(templates)
    )

    assert (result.code, result.out) == (ExitCode.OK, SHORT_TEXT + "\n")


def test_each_integration_the_run_opts_into_gets_its_message(
    cli: Cli, cluster: FakeCluster, templates: Path
) -> None:
    failed_run(
        cluster,
        **{
            "teams.integrations.tekton.dev/channel": "widget-ci",
            "email.integrations.tekton.dev/to": "team@example.org",
            "googlechat.integrations.tekton.dev/space": "widget-ci",
        },
    )

    result = cli("render", RUN, "--template", "short", "--templates-dir", str(templates))

    assert result.code == ExitCode.OK, result.err
    out = result.out
    for name in ("email", "googlechat", "teams"):
        assert f"{name} (template 'short')\n{RUN} failed ({name})\n" in out
    assert f"slack (template 'short')\n{SHORT_TEXT}\n" in out


def test_without_a_template_the_default_message_is_printed(cli: Cli, cluster: FakeCluster) -> None:
    failed_run(cluster)

    result = cli("render", RUN, "--integration", "slack", "-o", "json")

    assert result.code == ExitCode.OK
    (rendered,) = json.loads(result.out)["messages"]
    assert rendered["template"] is None
    assert rendered["text"] == f":x: PipelineRun ci/{RUN} (build-and-test): Failed after 1m 0s"
    assert "*Did not succeed*" in json.dumps(rendered["payload"])


def test_the_failed_steps_logs_are_read_from_the_cluster_as_the_function_reads_them(
    cli: Cli, cluster: FakeCluster
) -> None:
    failed_run(cluster, **{SLACK + "log-lines": "1"})
    log_failed_step(cluster, "ok", "--- FAIL: TestWidget")

    result = cli("render", RUN, "--integration", "slack", "-o", "json")

    (rendered,) = json.loads(result.out)["messages"]
    reply = json.dumps(rendered["payload"]["reply"])
    assert "--- FAIL: TestWidget" in reply
    assert "ok\\n" not in reply


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (
            ["--integration", "webhook"],
            ExitCode.USAGE,
            "error: webhook's messages are not written by templates",
        ),
        (
            ["--integration", "teams"],
            ExitCode.USAGE,
            "error: the run does not opt into teams: it carries no teams annotations",
        ),
        (["--integration", "slakc"], ExitCode.USAGE, "error: no integration named 'slakc'"),
        (
            ["--template", "../etc/x"],
            ExitCode.USAGE,
            "slack.integrations.tekton.dev/template: '../etc/x' does not",
        ),
    ],
)
def test_usage_errors(cli: Cli, cluster: FakeCluster, argv: list[str], code: ExitCode, words: str) -> None:
    failed_run(cluster)

    result = cli("render", RUN, *argv)

    assert result.code == code
    assert words in result.err


def test_a_run_without_a_templated_integration_says_which_integrations_have_templates(
    cli: Cli, cluster: FakeCluster
) -> None:
    cluster.add_sample(
        "pipelinerun-successful-no-integrations",
        annotations={"webhook.integrations.tekton.dev/url": "https://hooks.example.org/x", **SLACK_OFF},
    )

    result = cli("render", "nightly-report-8wzqf")

    assert result.code == ExitCode.ERROR
    assert "error: the run opts into no integration whose messages templates write" in result.err
    assert "hint: templates write the messages of slack, teams, googlechat, email and github" in result.err


def test_a_missing_run_is_exit_code_4(cli: Cli) -> None:
    assert cli("render", "gone").code == ExitCode.RUN_NOT_FOUND


def test_render_completes_with_its_options(cli: Cli) -> None:
    script = cli("completion", "bash").out
    assert "render" in script
    assert "--templates-dir" in script
