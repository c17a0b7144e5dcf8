"""Operators' templates: found in the mounted ConfigMap's files, rendered in a sandbox within
bounds, with the documented context, redacted; any failure falls back to the default message."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from common import samples
from common.config import ShowsStepLogs, Templated
from common.events import Run, parse_run
from common.integration import Context, Report
from common.redaction import MASK
from common.runclient import MemoryRunClient, RunRef
from common.settings import NoSettings, RuntimeSettings
from common.status import new_record
from common.steplogs import StepLog
from common.summary import child_references
from common.templates import (
    TEMPLATE_FAILED,
    TEMPLATE_NOT_ALLOWED,
    TEMPLATE_NOT_FOUND,
    TEMPLATES_DIR_ENV,
    Rendered,
    render,
    template_text,
    with_fallback,
)
from tests.support.policies import use_policy
from tests.support.reports import log_failed_step, mount_templates, pod_log_reads

DEFAULT = "the default message"
TOKEN = "ghp_0123456789abcdefghijABCDEFGHIJ"


class Config(ShowsStepLogs, Templated):
    """A configuration with the mixins, as an integration's would be."""


@pytest.fixture
def directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The ConfigMap's mount point, as ``$TI_TEMPLATES_DIR``."""
    return mount_templates(tmp_path, monkeypatch, {})


def write(directory: Path, key: str, text: str) -> None:
    (directory / key).write_text(text, encoding="utf-8")


class Reads:
    """Counts what rendering asks of the cluster."""

    def __init__(self) -> None:
        self.children = 0
        """Calls to ``ctx.child_runs()``."""


def failed_run(kube: MemoryRunClient, **annotations: str) -> RunRef:
    """The sample's failed PipelineRun with its failed unit-tests TaskRun."""
    _, obj = samples.run_object(samples.load("pipelinerun-failed"))
    obj["metadata"]["annotations"].update(annotations)
    kube.add("TaskRun", samples.run_object(samples.load("taskrun-failed"))[1])
    return kube.add("PipelineRun", obj)


def context(
    kube: MemoryRunClient,
    ref: RunRef,
    template: str | None,
    *,
    reads: Reads | None = None,
    log_lines: int = 0,
    record: Any = None,
    dashboard: str | None = None,
) -> Context[Config, NoSettings]:
    run = parse_run(ref.kind, kube.get(ref))

    def children(parent: Run) -> list[Run]:
        if reads is not None:
            reads.children += 1
        refs = [RunRef("TaskRun", parent.namespace, name) for _, name in child_references(parent)]
        return [parse_run("TaskRun", kube.get(ref)) for ref in refs if ref in kube.runs]

    return Context(
        integration="slack",
        run=run,
        config=Config.model_validate({"template": template, "log-lines": log_lines}),
        settings=NoSettings(),
        record=record,
        runtime=RuntimeSettings(dashboard_url=dashboard),
        load_children=children,
        cluster=kube,
    )


def rendered(
    directory: Path, text: str, target: str = "slack", *, key: str = "t.j2", **options: Any
) -> Rendered:
    write(directory, key, text)
    kube = MemoryRunClient()
    ref = failed_run(kube)
    return render(context(kube, ref, "t", **options), target, lambda: DEFAULT)


def test_without_a_template_the_default_message_is_used_and_nothing_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEMPLATES_DIR_ENV, str(tmp_path / "absent"))
    kube, reads = MemoryRunClient(), Reads()
    ctx = context(kube, failed_run(kube), None, reads=reads)

    result = render(ctx, "slack", lambda: DEFAULT)

    assert result == Rendered(DEFAULT, None, "")
    assert template_text(ctx, result) is None
    assert reads.children == 0


def test_a_template_for_the_target_wins_over_the_one_for_every_target(directory: Path) -> None:
    write(directory, "short.j2", "any target: {{ run.name }}")
    write(directory, "short.slack.j2", "slack: {{ run.name }}")
    kube = MemoryRunClient()
    ctx = context(kube, failed_run(kube), "short")

    assert render(ctx, "slack", lambda: DEFAULT).text == "slack: build-and-test-run-q4m9z"
    assert render(ctx, "email", lambda: DEFAULT).text == "any target: build-and-test-run-q4m9z"
    assert template_text(ctx, render(ctx, "email", lambda: DEFAULT)) == "any target: build-and-test-run-q4m9z"


def test_the_context_holds_the_run_its_tasks_links_and_the_record(directory: Path) -> None:
    template = (
        "{{ run.kind }} {{ run.namespace }}/{{ run.name }} ({{ run.definition }}) {{ run.phase }} "
        "[{{ run.headline }}] {{ run.status }}/{{ run.reason }}: {{ run.message }}\n"
        "took {{ run.duration }} from {{ run.start_time }}; commit {{ run.results.commit }}\n"
        "{% for t in tasks %}task {{ t.name }} ({{ t.task_run }}, {{ t.definition }}): {{ t.phase }} "
        "{{ t.reason }} {{ t.duration }} {{ t.link }}\n{% endfor %}"
        "{% for t in failed_tasks %}not ok: {{ t.name }} {{ t.reason }}\n{% endfor %}"
        "link {{ links.run_url }}; before: {{ record.status }} {{ record.reason }} {{ record.ids }}\n"
        "annotations: {{ run.annotations | list | sort | join(',') }}"
    )
    write(directory, "t.j2", template)
    kube = MemoryRunClient()
    ref = failed_run(
        kube,
        **{
            "kubectl.kubernetes.io/last-applied-configuration": '{"spec": "..."}',
            "slack.integrations.tekton.dev/status": "{}",
            "team": "widgets",
        },
    )
    run = parse_run(ref.kind, kube.get(ref))
    previous = new_record(
        "slack", run, "True", "Reported", "posted", previous=None, annotations={"ts": "1.2", "sig": "ab"}
    )
    ctx = context(kube, ref, "t", record=previous, dashboard="https://dash.example.org")

    text = render(ctx, "email", lambda: DEFAULT).text

    lines = text.splitlines()
    assert lines[0] == (
        "PipelineRun ci/build-and-test-run-q4m9z (build-and-test) failed [Failed] False/Failed: "
        "Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 1"
    )
    assert lines[1] == (
        "took 1m 0s from 2026-03-14T10:02:41+00:00; commit 4e8a1d0c7b2f93e6a5d41c08b7f2e3a9d6c1b0f5"
    )
    assert lines[2] == (
        "task unit-tests (build-and-test-run-q4m9z-unit-tests, golang-test): failed StepFailed 47s "
        "https://dash.example.org/#/namespaces/ci/taskruns/build-and-test-run-q4m9z-unit-tests"
    )
    assert lines[3:5] == ["not ok: unit-tests StepFailed", "not ok: build-image Skipped"]
    assert lines[5] == (
        "link https://dash.example.org/#/namespaces/ci/pipelineruns/build-and-test-run-q4m9z; "
        "before: True Reported {'ts': '1.2'}"
    )
    assert lines[6] == (
        "annotations: github.integrations.tekton.dev/owner,github.integrations.tekton.dev/repo,"
        "github.integrations.tekton.dev/sha,slack.integrations.tekton.dev/channel,team"
    )


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{{ ''.__class__ }}", "SecurityError: access to attribute '__class__' of 'str' object is unsafe"),
        ("{{ cycler.__init__.__globals__ }}", "SecurityError: access to attribute '__init__'"),
        ("{{ run.__class__.__mro__ }}", "SecurityError: access to attribute '__class__'"),
        ("{{ run.labels.clear() }}", "SecurityError"),
        ("{{ 'a' * 1000000000 }}", "SecurityError: a repetition longer than 100000 is not allowed"),
        ("{{ 10 ** 1000 ** 3 }}", "SecurityError: a power of more than 4096 bits is not allowed"),
        ("{{ lipsum(1000000) }}", "UndefinedError: 'lipsum' is undefined"),
        ("{% for i in range(1000000) %}{% endfor %}", "OverflowError: Range too big"),
    ],
)
def test_a_template_reaching_for_python_internals_or_huge_values_is_refused_and_falls_back(
    directory: Path, template: str, words: str
) -> None:
    result = rendered(directory, template)

    assert result.text == DEFAULT
    assert result.fallback_reason == TEMPLATE_FAILED
    assert result.note.startswith(f"template 't' failed ({words}")
    assert result.note.endswith(": the default message was used")


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{% for %}", "TemplateSyntaxError: line 1: Expected an expression"),
        ("fine\n{{ run.nmae }}", "UndefinedError: 'dict object' has no attribute 'nmae'"),
        ("{{ 1 / 0 }}", "ZeroDivisionError: division by zero"),
        ("{{ '  ' }}\n", "TemplateEmptyError: the template wrote nothing"),
        ("{% for i in range(5000) %}{{ run.message }}{% endfor %}", "TemplateTooLongError"),
    ],
)
def test_a_template_that_fails_to_render_falls_back_and_says_why(
    directory: Path, template: str, words: str
) -> None:
    result = rendered(directory, template)

    assert (result.text, result.fallback_reason) == (DEFAULT, TEMPLATE_FAILED)
    assert f"({words}" in result.note


def test_a_template_that_runs_too_long_is_stopped(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("common.templates.RENDER_SECONDS", 0.05)
    nested = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}done"

    result = rendered(directory, nested)

    assert (result.text, result.fallback_reason) == (DEFAULT, TEMPLATE_FAILED)
    assert "TemplateTooSlowError: the template ran longer than 0.05 s" in result.note


def test_a_missing_template_falls_back_as_not_found(directory: Path) -> None:
    kube = MemoryRunClient()
    result = render(context(kube, failed_run(kube), "nowhere"), "teams", lambda: DEFAULT)

    assert (result.text, result.fallback_reason) == (DEFAULT, TEMPLATE_NOT_FOUND)
    assert result.note == (
        f"template 'nowhere' was not found (no key nowhere.teams.j2 or nowhere.j2 in {directory}, the "
        "ConfigMap tekton-integrations-templates): the default message was used"
    )


def test_the_policy_decides_which_templates_a_namespace_may_use(
    directory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(directory, "short.j2", "short {{ run.name }}")
    write(directory, "long.j2", "long {{ run.name }}")
    use_policy(monkeypatch, tmp_path, {"namespaces": {"ci": {"slack": {"templates": ["short"]}}}})
    kube = MemoryRunClient()
    ref = failed_run(kube)

    allowed = render(context(kube, ref, "short"), "slack", lambda: DEFAULT)
    refused = render(context(kube, ref, "long"), "slack", lambda: DEFAULT)

    assert allowed == Rendered("short build-and-test-run-q4m9z", None, "")
    assert (refused.text, refused.fallback_reason) == (DEFAULT, TEMPLATE_NOT_ALLOWED)
    assert "template 'long' is not allowed in namespace 'ci' by the policy (slack.templates)" in refused.note


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("slack", "*done*: &lt;!channel&gt; &amp; &lt;https://evil|x&gt;"),
        ("googlechat", "*done*: &lt;!channel&gt; &amp; &lt;https://evil|x&gt;"),
        ("teams", "*done*: \\<!channel\\> & \\<https://evil|x\\>"),
        ("email", "*done*: <!channel> & <https://evil|x>"),
    ],
)
def test_values_are_escaped_for_the_target_and_the_operators_own_markup_is_kept(
    directory: Path, target: str, shown: str
) -> None:
    kube = MemoryRunClient()
    ref = failed_run(kube, note="<!channel> & <https://evil|x>")
    write(directory, "t.j2", "*done*: {{ run.annotations.note }}")

    assert render(context(kube, ref, "t"), target, lambda: DEFAULT).text == shown


def test_everything_rendered_is_redacted(directory: Path) -> None:
    kube = MemoryRunClient()
    ref = failed_run(kube, leak=f"pushing with {TOKEN}")
    write(directory, "t.j2", "{{ run.annotations.leak }}")

    assert render(context(kube, ref, "t"), "email", lambda: DEFAULT).text == f"pushing with {MASK}"


def test_a_changed_configmap_is_read_again_without_a_restart(directory: Path) -> None:
    """The kubelet writes a new timestamped folder and swaps the ``..data`` symlink to it."""
    kube = MemoryRunClient()
    ctx = context(kube, failed_run(kube), "t")

    def publish(version: str, text: str) -> None:
        folder = directory / f"..{version}"
        folder.mkdir()
        (folder / "t.j2").write_text(text, encoding="utf-8")
        (directory / "..data_tmp").symlink_to(folder.name)
        os.replace(directory / "..data_tmp", directory / "..data")
        if not (directory / "t.j2").is_symlink():
            (directory / "t.j2").symlink_to("..data/t.j2")

    publish("2026_03_14_10_00_00.1", "first {{ run.phase }}")
    assert render(ctx, "slack", lambda: DEFAULT).text == "first failed"
    publish("2026_03_14_10_05_00.2", "second {{ run.phase }}")
    assert render(ctx, "slack", lambda: DEFAULT).text == "second failed"


def test_includes_share_the_directory_and_never_leave_it(directory: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.j2").write_text("outside", encoding="utf-8")
    write(directory, "macros.j2", "{% macro who(run) %}{{ run.namespace }}/{{ run.name }}{% endmacro %}")
    write(directory, "t.j2", '{% from "macros.j2" import who %}failed: {{ who(run) }}')
    write(directory, "escape.j2", '{% include "../secret.j2" %}')
    kube = MemoryRunClient()
    ref = failed_run(kube)

    assert (
        render(context(kube, ref, "t"), "slack", lambda: DEFAULT).text
        == "failed: ci/build-and-test-run-q4m9z"
    )
    escaped = render(context(kube, ref, "escape"), "slack", lambda: DEFAULT)
    assert (escaped.text, escaped.fallback_reason) == (DEFAULT, TEMPLATE_FAILED)
    assert "TemplateNotFound: ../secret.j2" in escaped.note


def test_tasks_and_logs_are_read_only_for_a_template_that_uses_them(directory: Path) -> None:
    kube, reads = MemoryRunClient(), Reads()
    ref = failed_run(kube)
    log_failed_step(kube, "compiling", "--- FAIL: TestWidget")
    write(directory, "plain.j2", "{{ run.name }}")
    write(
        directory, "logs.j2", "{% for s in step_logs %}{{ s.task }}/{{ s.step }}:\n{{ s.text }}{% endfor %}"
    )

    render(context(kube, ref, "plain", reads=reads, log_lines=5), "slack", lambda: DEFAULT)
    assert reads.children == 0
    assert not pod_log_reads(kube)

    text = render(context(kube, ref, "logs", reads=reads, log_lines=5), "slack", lambda: DEFAULT).text
    assert text == "unit-tests/run-tests:\ncompiling\n--- FAIL: TestWidget"
    assert len(pod_log_reads(kube)) == 1


def test_what_the_caller_has_read_already_is_not_read_again(directory: Path) -> None:
    kube, reads = MemoryRunClient(), Reads()
    ref = failed_run(kube)
    write(
        directory,
        "t.j2",
        "{{ tasks | length }} tasks; {% for s in step_logs %}{{ s.lines | join }}{% endfor %}",
    )
    ctx = context(kube, ref, "t", reads=reads, log_lines=5)
    logs = [StepLog("unit-tests", "x", "run-tests", ("already read",), omitted=False)]

    text = render(ctx, "slack", lambda: DEFAULT, children=[], step_logs=logs).text

    assert text == "0 tasks; already read"
    assert reads.children == 0
    assert not pod_log_reads(kube)


def test_with_fallback_records_the_reason_and_keeps_the_report_otherwise() -> None:
    report = Report("posted", {"ts": "1.2"}, "Posted")
    note = "template 'x' failed (SecurityError: ...): the default message was used"

    assert with_fallback(report, Rendered("text", None, "")) is report
    assert with_fallback(report, Rendered(DEFAULT, TEMPLATE_FAILED, note)) == Report(
        f"posted; {note}", {"ts": "1.2"}, TEMPLATE_FAILED
    )


def test_a_default_is_built_only_when_it_is_used(directory: Path) -> None:
    write(directory, "t.j2", "templated")
    kube = MemoryRunClient()
    built: list[str] = []

    def default() -> str:
        built.append("default")
        return DEFAULT

    assert render(context(kube, failed_run(kube), "t"), "slack", default).text == "templated"
    assert built == []
