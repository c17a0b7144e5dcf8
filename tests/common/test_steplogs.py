"""Failed-step logs: which step of which TaskRun, how many lines, redacted, from the pod or from
Tekton Results, and fitted into a message; nothing at all is read unless a failed run asks."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common import samples
from common.config import IntegrationConfig, ShowsStepLogs, load_config
from common.errors import KubernetesUnavailableError, TemporaryError
from common.events import Run, parse_run
from common.integration import Context
from common.redaction import MASK
from common.runclient import MemoryRunClient, RunRef
from common.settings import NoSettings, RuntimeSettings
from common.steplogs import (
    MAX_FAILED_TASKS,
    ResultsSettings,
    StepLog,
    as_markdown,
    as_plain,
    failed_step_logs,
)
from common.summary import child_references
from tests.support.policies import use_policy
from tests.support.standins.results import ResultsStandIn

NS = "ci"
PIPELINE_RUN = "build-and-test-run-q4m9z"
TASK_RUN = f"{PIPELINE_RUN}-unit-tests"
POD = f"{TASK_RUN}-pod"
CONTAINER = "step-run-tests"
TOKEN = "ghp_0123456789abcdefghijABCDEFGHIJ"
LOG = [f"=== RUN TestWidget/{i}" for i in range(10)] + [
    f"    widget_test.go:42: pushing with {TOKEN}",
    "--- FAIL: TestWidget (0.01s)",
]
RESULTS_LOG = f"{NS}/results/c1b7e0f4-93d2-4a58-b6e1-7f2a9d4c0e88/logs/7a0e1f52-3c3b-3f0e-9d0a-1b2c3d4e5f60"


class LogsConfig(ShowsStepLogs):
    """A configuration with the mixin, as an integration's would be (the samples name a commit)."""

    owner: str = ""
    repo: str = ""
    sha: str = ""


@pytest.fixture(autouse=True)
def no_results(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in ResultsSettings.model_fields:
        variable = ResultsSettings.variable(field)
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(f"{variable}_FILE", raising=False)


def task_run(
    name: str, task: str, *, failed: bool = True, exit_codes: tuple[int, ...] = (1,)
) -> dict[str, Any]:
    """A child TaskRun of the failed PipelineRun, as the API server keeps it."""
    _, obj = samples.run_object(samples.load("taskrun-failed"))
    obj = copy.deepcopy(obj)
    obj["metadata"].update(name=name, uid=f"uid-{name}")
    obj["metadata"]["labels"]["tekton.dev/pipelineTask"] = task
    status = obj["status"]
    status["podName"] = f"{name}-pod"
    status["steps"] = [
        {
            "name": f"step{i}",
            "container": f"step-step{i}",
            "terminated": {"exitCode": code, "reason": "Error"},
        }
        for i, code in enumerate(exit_codes)
    ]
    if not failed:
        status["conditions"][0].update(status="True", reason="Succeeded", message="All Steps have completed")
    return obj


def failed_pipeline(kube: MemoryRunClient, log_lines: str | None = "5", **children: dict[str, Any]) -> RunRef:
    """The sample's failed PipelineRun, its failed unit-tests TaskRun (step run-tests wrote ``LOG``)
    and a successful fetch-source TaskRun; ``children`` replaces them."""
    _, obj = samples.run_object(samples.load("pipelinerun-failed"))
    if log_lines is not None:
        obj["metadata"]["annotations"]["github.integrations.tekton.dev/log-lines"] = log_lines
    if not children:
        _, unit_tests = samples.run_object(samples.load("taskrun-failed"))
        children = {
            "fetch-source": task_run(f"{PIPELINE_RUN}-fetch-source", "fetch-source", failed=False),
            "unit-tests": unit_tests,
        }
    obj["status"]["childReferences"] = [
        {
            "apiVersion": "tekton.dev/v1",
            "kind": "TaskRun",
            "name": child["metadata"]["name"],
            "pipelineTaskName": task,
        }
        for task, child in children.items()
    ]
    for child in children.values():
        kube.add("TaskRun", child)
    kube.pod_logs[(NS, POD, CONTAINER)] = "\n".join(LOG) + "\n"
    return kube.add("PipelineRun", obj)


def context(kube: MemoryRunClient, ref: RunRef) -> Context[LogsConfig, NoSettings]:
    """What the runtime hands ``report`` for the stored run: its configuration from its annotations,
    its children read on demand, and the cluster. The requests made to build it are forgotten."""
    run = parse_run(ref.kind, kube.get(ref))

    def children(parent: Run) -> list[Run]:
        return [
            parse_run("TaskRun", kube.get(RunRef("TaskRun", parent.namespace, name)))
            for _, name in child_references(parent)
        ]

    config = load_config(LogsConfig, "github", run.annotations)
    kube.calls.clear()
    return Context("github", run, config, NoSettings(), None, RuntimeSettings(), children, cluster=kube)


def verbs(kube: MemoryRunClient) -> list[str]:
    return [verb for verb, _ in kube.calls]


@pytest.fixture
def kube() -> MemoryRunClient:
    return MemoryRunClient()


def test_the_failed_steps_last_lines_are_shown_redacted(kube: MemoryRunClient) -> None:
    logs = failed_step_logs(context(kube, failed_pipeline(kube, "5")))
    assert logs == [
        StepLog(
            task="unit-tests",
            task_run=TASK_RUN,
            step="run-tests",
            lines=(
                "=== RUN TestWidget/7",
                "=== RUN TestWidget/8",
                "=== RUN TestWidget/9",
                f"    widget_test.go:42: pushing with {MASK}",
                "--- FAIL: TestWidget (0.01s)",
            ),
            omitted=True,
        )
    ]
    assert verbs(kube).count("pod_log") == 1, "the successful task's log is not read"


def test_a_log_no_longer_than_asked_is_whole(kube: MemoryRunClient) -> None:
    (log,) = failed_step_logs(context(kube, failed_pipeline(kube, str(len(LOG)))))
    assert len(log.lines) == len(LOG)
    assert not log.omitted


@pytest.mark.parametrize(
    ("log_lines", "sample"),
    [
        (None, "pipelinerun-failed"),  # no annotation
        ("0", "pipelinerun-failed"),
        ("5", "pipelinerun-successful"),
        ("5", "pipelinerun-running"),
        ("5", "pipelinerun-cancelled"),
    ],
)
def test_nothing_is_read_unless_a_failed_run_asks(
    kube: MemoryRunClient, log_lines: str | None, sample: str
) -> None:
    ref = failed_pipeline(kube, log_lines)
    _, obj = samples.run_object(samples.load(sample))
    kube.replace_status(ref, obj["status"])
    assert failed_step_logs(context(kube, ref)) == []
    assert kube.calls == [], "not even the children are read"


def test_a_configuration_without_the_mixin_reads_nothing(kube: MemoryRunClient) -> None:
    ctx = context(kube, failed_pipeline(kube))
    plain = Context(
        "github",
        ctx.run,
        IntegrationConfig(),
        NoSettings(),
        None,
        RuntimeSettings(),
        ctx.load_children,
        cluster=kube,
    )
    assert failed_step_logs(plain) == []
    assert kube.calls == []


@pytest.mark.parametrize(("cap", "shown"), [(2, 2), (50, 5), (0, 0)])
def test_the_namespace_policy_caps_the_lines_or_forbids_them(
    kube: MemoryRunClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cap: int, shown: int
) -> None:
    use_policy(monkeypatch, tmp_path, {"namespaces": {NS: {"github": {"logLines": cap}}}})
    logs = failed_step_logs(context(kube, failed_pipeline(kube, "5")))
    assert [len(log.lines) for log in logs] == ([shown] if shown else [])
    assert verbs(kube).count("pod_log") == (1 if shown else 0)


def test_only_the_first_failed_tasks_are_read_in_the_pipelines_order(kube: MemoryRunClient) -> None:
    names = ["lint", "ok", "unit", "e2e", "docs", "race"]
    children = {task: task_run(f"pr-{task}", task, failed=task != "ok") for task in names}
    for task in names:
        kube.pod_logs[(NS, f"pr-{task}-pod", "step-step0")] = f"{task} failed\n"
    logs = failed_step_logs(context(kube, failed_pipeline(kube, "3", **children)))
    assert [(log.task, log.lines) for log in logs] == [
        ("lint", ("lint failed",)),
        ("unit", ("unit failed",)),
        ("e2e", ("e2e failed",)),
    ]
    assert len(logs) == MAX_FAILED_TASKS
    assert verbs(kube).count("pod_log") == MAX_FAILED_TASKS


@pytest.mark.parametrize("with_container", [True, False], ids=["v1beta1-event", "v1-without-container"])
def test_the_first_step_that_exited_non_zero_is_the_failed_one(
    kube: MemoryRunClient, with_container: bool
) -> None:
    child = task_run("pr-build", "build", exit_codes=(0, 2, 1))
    if not with_container:
        for step in child["status"]["steps"]:
            del step["container"]
    kube.pod_logs[(NS, "pr-build-pod", "step-step1")] = "compile error\n"
    (log,) = failed_step_logs(context(kube, failed_pipeline(kube, "5", build=child)))
    assert (log.step, log.lines) == ("step1", ("compile error",))


def test_a_task_without_a_failed_step_says_so(kube: MemoryRunClient) -> None:
    child = task_run("pr-build", "build", exit_codes=())
    child["status"]["conditions"][0]["reason"] = "TaskRunImagePullFailed"
    (log,) = failed_step_logs(context(kube, failed_pipeline(kube, "5", build=child)))
    assert log == StepLog(
        "build",
        "pr-build",
        "",
        (),
        omitted=False,
        note="no step exited with an error (the TaskRun's reason: TaskRunImagePullFailed)",
    )
    assert "pod_log" not in verbs(kube)


def test_a_standalone_taskrun_shows_its_own_failed_step(kube: MemoryRunClient) -> None:
    _, obj = samples.run_object(samples.load("taskrun-failed"))
    for label in ("tekton.dev/pipelineTask", "tekton.dev/pipelineRun", "tekton.dev/pipeline"):
        del obj["metadata"]["labels"][label]
    obj["metadata"]["annotations"] = {"github.integrations.tekton.dev/log-lines": "1"}
    kube.pod_logs[(NS, POD, CONTAINER)] = "one\ntwo\n"
    (log,) = failed_step_logs(context(kube, kube.add("TaskRun", obj)))
    assert (log.task, log.task_run, log.step, log.lines, log.omitted) == (
        TASK_RUN,
        TASK_RUN,
        "run-tests",
        ("two",),
        True,
    )
    assert verbs(kube) == ["pod_log"]


def test_a_pod_that_is_gone_gives_a_note_not_an_error(kube: MemoryRunClient) -> None:
    ref = failed_pipeline(kube)
    kube.pod_logs.clear()
    (log,) = failed_step_logs(context(kube, ref))
    assert log.lines == ()
    assert log.note == f"the pod {POD} is gone, and its log with it"


def test_kubernetes_being_unavailable_is_temporary(kube: MemoryRunClient) -> None:
    ctx = context(kube, failed_pipeline(kube))

    def down(verb: str, _: RunRef) -> None:
        if verb == "pod_log":
            raise KubernetesUnavailableError("connection refused")

    kube.before_request = down
    with pytest.raises(TemporaryError):
        failed_step_logs(ctx)


def test_a_forbidden_read_gives_a_note(kube: MemoryRunClient) -> None:
    ctx = context(kube, failed_pipeline(kube))

    def forbidden(verb: str, _: RunRef) -> None:
        if verb == "pod_log":
            raise TemporaryError("KubernetesForbidden", "Kubernetes refused access to pods/log")

    kube.before_request = forbidden
    (log,) = failed_step_logs(ctx)
    assert log.note is not None
    assert "pods/log get" in log.note


def test_terminal_escapes_progress_bars_and_split_private_keys_are_cleaned(kube: MemoryRunClient) -> None:
    kube_log = [
        "\x1b[31mERROR\x1b[0m: deploy failed",
        "downloading 10%\rdownloading 100%",
        "MIIEowIBAAKCAQEAx4ThZzF8jU2Vq3Lr0nq7Y9Qp2yH1bWm3Gx5Jt8Uv6Ci0Ls9D",  # a key the tail begins inside
        "8Uv6Ci0Ls9DMIIEowIBAAKCAQEAx4ThZzF8jU2Vq3Lr0nq7Y9Qp2yH1bWm3Gx5Jt",
        "q7Y9Qp2yH1bWm3==",
        "-----END RSA PRIVATE KEY-----",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "-----BEGIN OPENSSH PRIVATE KEY-----",  # one the tail ends inside
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2",
    ]
    ref = failed_pipeline(kube, "20")
    kube.pod_logs[(NS, POD, CONTAINER)] = "\n".join(kube_log)
    (log,) = failed_step_logs(context(kube, ref))
    assert log.lines == (
        "ERROR: deploy failed",
        "downloading 100%",
        MASK,
        f"aws_secret_access_key = {MASK}",
        MASK,
    )


def test_a_key_whose_first_and_last_lines_are_outside_the_tail_is_masked(kube: MemoryRunClient) -> None:
    body = [
        "MIIEowIBAAKCAQEAx4ThZzF8jU2Vq3Lr0nq7Y9Qp2yH1bWm3Gx5Jt8Uv6Ci0Ls9D",
        "8Uv6Ci0Ls9DMIIEowIBAAKCAQEAx4ThZzF8jU2Vq3Lr0nq7Y9Qp2yH1bWm3Gx5Jt",
    ]
    ref = failed_pipeline(kube, "2")
    kube.pod_logs[(NS, POD, CONTAINER)] = "\n".join(
        ["-----BEGIN RSA PRIVATE KEY-----", *body, *body, "-----END"]
    )
    (log,) = failed_step_logs(context(kube, ref))
    assert log.lines == (MASK, "-----END")


# -- Tekton Results ---------------------------------------------------------------------------


@pytest.fixture
def results(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ResultsStandIn]:
    token = tmp_path / "token"
    token.write_text("results-reader-token\n")
    with ResultsStandIn() as standin:
        monkeypatch.setenv("TEKTON_RESULTS_URL", standin.origin)
        monkeypatch.setenv("TEKTON_RESULTS_TOKEN_FILE", str(token))
        yield standin


def named_in_results(kube: MemoryRunClient) -> RunRef:
    """The failed PipelineRun whose unit-tests TaskRun Results' watcher has annotated with its log."""
    ref = failed_pipeline(kube, "2")
    child = kube.runs[RunRef("TaskRun", NS, TASK_RUN)]
    child["metadata"]["annotations"]["results.tekton.dev/log"] = RESULTS_LOG
    return ref


def test_results_gives_the_log_when_it_names_it(kube: MemoryRunClient, results: ResultsStandIn) -> None:
    results.store(RESULTS_LOG, {"prepare": ["ok"], "run-tests": [*LOG, "\x1b[0m"], "cleanup": ["bye"]})
    (log,) = failed_step_logs(context(kube, named_in_results(kube)))
    assert log.lines == ("--- FAIL: TestWidget (0.01s)", "")
    assert log.omitted
    assert "pod_log" not in verbs(kube), "Results is used instead of the pod"
    assert results.requests == [
        (f"/apis/results.tekton.dev/v1alpha2/parents/{RESULTS_LOG}", "Bearer results-reader-token")
    ]


def test_a_long_results_log_is_read_in_chunks(kube: MemoryRunClient, results: ResultsStandIn) -> None:
    lines = [f"line {i:06d} " + "x" * 100 for i in range(2000)]  # several chunks of the gateway
    results.store(RESULTS_LOG, {"run-tests": lines})
    (log,) = failed_step_logs(context(kube, named_in_results(kube)))
    assert log.lines == tuple(lines[-2:])


def test_a_taskrun_results_does_not_name_is_read_from_its_pod(
    kube: MemoryRunClient, results: ResultsStandIn
) -> None:
    (log,) = failed_step_logs(context(kube, failed_pipeline(kube, "1")))
    assert log.lines == ("--- FAIL: TestWidget (0.01s)",)
    assert results.requests == []


@pytest.mark.parametrize("status", [404, 403, 503])
def test_a_log_results_cannot_give_is_read_from_the_pod(
    kube: MemoryRunClient, results: ResultsStandIn, status: int
) -> None:
    results.store(RESULTS_LOG, {"run-tests": ["from results"]})
    results.answer = status
    (log,) = failed_step_logs(context(kube, named_in_results(kube)))
    assert log.lines == ("    widget_test.go:42: pushing with " + MASK, "--- FAIL: TestWidget (0.01s)")
    assert verbs(kube).count("pod_log") == 1


def test_when_neither_has_the_log_the_note_says_why_for_both(
    kube: MemoryRunClient, results: ResultsStandIn
) -> None:
    ref = named_in_results(kube)
    kube.pod_logs.clear()
    results.answer = 403
    (log,) = failed_step_logs(context(kube, ref))
    assert log.note is not None
    assert log.note.startswith(f"the pod {POD} is gone")
    assert "Tekton Results: refused (403)" in log.note


# -- presentation -----------------------------------------------------------------------------

SNIPPETS = [
    StepLog("build", "pr-build", "compile", tuple(f"error {i}: ```nope```" for i in range(30)), omitted=True),
    StepLog(
        "test", "pr-test", "unit", (), omitted=False, note="the pod pr-test-pod is gone, and its log with it"
    ),
]


def test_markdown_heads_each_step_and_fences_its_lines() -> None:
    text = as_markdown(SNIPPETS, 65535)
    assert text.startswith(
        "Task `build`, step `compile` (TaskRun `pr-build`), last 30 lines:\n````\nerror 0:"
    )
    assert text.endswith(
        "Task `test`, step `unit` (TaskRun `pr-test`): the pod pr-test-pod is gone, and its log with it."
    )
    assert "\n````\n\n" in text, "a fence longer than any run of backticks in the lines"


@pytest.mark.parametrize("render", [as_markdown, as_plain])
@pytest.mark.parametrize("limit", [2000, 500, 300, 120, 40, 5])
def test_snippets_fit_the_limit_dropping_the_oldest_lines_first(render: Any, limit: int) -> None:
    text, whole = render(SNIPPETS, limit), render(SNIPPETS, 10**6)
    assert len(text) <= limit
    if len(whole) <= limit:
        assert text == whole
    elif "error" in text:
        assert "error 29" in text, "the newest line stays longest"
        assert "error 0:" not in text
        assert f"last {text.count('error ')} line" in text
    elif text:
        assert "more failed step" in text


def test_plain_text_indents_the_lines_under_each_heading() -> None:
    text = as_plain([SNIPPETS[0]], 10000)
    assert text.splitlines()[:2] == [
        "Task build, step compile (TaskRun pr-build), last 30 lines:",
        "    error 0: ```nope```",
    ]


def test_a_results_log_too_long_to_reach_its_end_is_read_from_the_pod(
    kube: MemoryRunClient, results: ResultsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("common.steplogs.MAX_RESULTS_BYTES", 64 * 1024)
    results.store(RESULTS_LOG, {"run-tests": [f"line {i:06d} " + "x" * 100 for i in range(2000)]})
    (log,) = failed_step_logs(context(kube, named_in_results(kube)))
    assert log.lines == ("    widget_test.go:42: pushing with " + MASK, "--- FAIL: TestWidget (0.01s)")


def test_a_malformed_results_url_leaves_the_pods_as_the_source(
    kube: MemoryRunClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TEKTON_RESULTS_URL", "tekton-results-api-service:8080")
    ref = named_in_results(kube)
    with caplog.at_level("WARNING", logger="common.steplogs"):
        (log,) = failed_step_logs(context(kube, ref))
    assert log.lines[-1] == "--- FAIL: TestWidget (0.01s)"
    assert "TEKTON_RESULTS_URL" in caplog.text
