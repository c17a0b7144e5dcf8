"""Cold start: from starting ``functions-framework`` (gunicorn) to the first event answered.

Cases are run interleaved (hello, github, ..., hello, github, ...) after one discarded warm-up
run each (bytecode caches, page cache), so drift on the machine hits every case alike. The
worker's resident memory is read right after the first answer.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import serving
from benchmarks.workload import Request


@dataclass(frozen=True)
class Case:
    name: str
    source: Path
    env: Mapping[str, str]
    request: Callable[[int], Request]
    """The first event of attempt ``n`` (a fresh run when the event needs one)."""
    expected: str
    """The answer's ``outcome`` (or body, for the hello-world) that counts as handled."""
    target: float | None = None
    """Process start to first answer, at most this many times the hello-world's (``None``: no target)."""
    rss_target: float | None = None
    """The worker's RSS after its first answer, at most this many times the hello-world's."""
    summarised: bool = False
    """Whether the case's figures go into the summary against the targets."""


@dataclass
class ColdStart:
    case: Case
    seconds: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    """What the first answers said (status and outcome): a cold start only counts when handled."""


def outcome_of(answer: serving.Answer) -> str:
    try:
        body = json.loads(answer.body)
    except ValueError:
        return f"{answer.status} {answer.body[:40].decode(errors='replace')}"
    return f"{answer.status} {body.get('outcome') if isinstance(body, dict) else body}"


def measure(
    cases: Sequence[Case], repeats: int, logs: Path, progress: Callable[[str], None]
) -> list[ColdStart]:
    results = [ColdStart(case) for case in cases]
    for attempt in range(-1, repeats):  # attempt -1 warms caches and is not counted
        for result in results:
            case = result.case
            request = case.request(attempt + 1)  # before the clock starts: it may create a run
            log = logs / ("coldstart-" + re.sub(r"[^A-Za-z0-9._-]+", "-", case.name) + ".log")
            served = serving.start(case.source, log, case.env)
            try:
                answer = serving.first_answer(served, request)
                rss = serving.worker_rss_kb(served)
            finally:
                serving.stop(served)
            said = outcome_of(answer)
            if said != f"200 {case.expected}":
                raise RuntimeError(f"{case.name}: first answer was {said!r}:\n{served.log_text()[-1500:]}")
            if attempt >= 0:
                result.seconds.append(answer.seconds)
                result.rss_kb.append(rss)
                result.answers[said] += 1
        progress(f"cold start: attempt {attempt + 1}/{repeats} done")
    return results
