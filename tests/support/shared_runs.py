"""Several runs on one commit, for the reports they share (a rollup, a pull-request comment):
Tekton's sample events renamed into distinct runs, their child TaskRuns, the Lease a shared
report is claimed with, and their deliveries racing to create it."""

from __future__ import annotations

import copy
import random
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.test import TestResponse

from common import samples
from common.coordination import LEASE_API, LEASES
from common.events import RunKind
from common.runclient import MemoryRunClient, RunRef
from tests.conftest import add_run, advance, function_client
from tests.support.receiver import Event, post_together, to_app

SHA = "9f1c2e7b4a6d8e0f1a2b3c4d5e6f708192a3b4c5"
OTHER_SHA = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
NAMESPACE = "ci"
FINAL = {"build": "pipelinerun-successful", "lint": "pipelinerun-failed", "docs": "pipelinerun-successful"}
"""Three runs on the commit, and the sample each finishes as."""
_UIDS = uuid.UUID("3f0c8a52-6d1e-4b7a-9c25-8e4f1d0b6a73")


def run_event(
    sample_name: str, name: str, annotations: dict[str, str], *, integration: str = "github"
) -> dict[str, Any]:
    """The sample event as an event about the run ``name`` (its own uid, pipeline and child
    TaskRuns' names), whose only ``<integration>`` annotations are ``annotations``."""
    event = samples.load(sample_name)
    kind, obj = samples.run_object(event)
    metadata = obj["metadata"]
    old = metadata["name"]
    metadata.update(
        name=name, uid=str(uuid.uuid5(_UIDS, name)), creationTimestamp=f"2026-03-14T09:00:0{len(name) % 10}Z"
    )
    metadata["labels"] = {
        **metadata.get("labels", {}),
        "tekton.dev/pipeline" if kind == "PipelineRun" else "tekton.dev/task": name,
    }
    prefix = f"{integration}.integrations.tekton.dev/"
    metadata["annotations"] = {
        **{
            key: value
            for key, value in metadata.get("annotations", {}).items()
            if ".integrations.tekton.dev/" not in key
        },
        **{prefix + key: value for key, value in annotations.items()},
    }
    for child in (obj.get("status") or {}).get("childReferences") or []:
        child["name"] = child["name"].replace(old, name)
    event["headers"]["ce-source"] = f"/apis///namespaces/{metadata['namespace']}//{name}"
    event["headers"]["ce-subject"] = name
    return event


def github_annotations(**extra: str) -> dict[str, str]:
    return {"owner": "acme", "repo": "widget-service", "sha": SHA, **extra}


def live(kube: MemoryRunClient, ref: RunRef, event: dict[str, Any]) -> dict[str, Any]:
    """``event`` carrying the stored run's ``resourceVersion``: the event about the run as it is."""
    sent = copy.deepcopy(event)
    _, obj = samples.run_object(sent)
    obj["metadata"]["resourceVersion"] = kube.runs[ref]["metadata"]["resourceVersion"]
    return sent


def add_failed_child(kube: MemoryRunClient, parent: dict[str, Any], task: str) -> None:
    """A failed child TaskRun of the PipelineRun event ``parent``, for pipeline task ``task``."""
    _, run = samples.run_object(parent)
    _, child = samples.run_object(samples.load("taskrun-failed"))
    name = f"{run['metadata']['name']}-{task}"
    child["metadata"].update(name=name, uid=str(uuid.uuid5(_UIDS, name)))
    child["metadata"]["labels"].update(
        {
            "tekton.dev/pipelineRun": run["metadata"]["name"],
            "tekton.dev/pipelineRunUID": run["metadata"]["uid"],
            "tekton.dev/pipelineTask": task,
        }
    )
    kube.add("TaskRun", child)


def leases(kube: MemoryRunClient) -> list[dict[str, Any]]:
    return [
        obj for (api, resource, _, _), obj in kube.objects.items() if (api, resource) == (LEASE_API, LEASES)
    ]


def after_first_list(kube: MemoryRunClient, kind: RunKind, wait: Callable[[], object]) -> Callable[[], None]:
    """Make each thread call ``wait()`` once its first list of ``kind`` runs has returned; returns
    what stops it. Outside the store's lock, unlike ``before_request``: other threads go on."""
    original = kube.list_runs
    seen: set[int] = set()
    lock = threading.Lock()

    def listing(
        asked: RunKind, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        found = original(asked, namespace, label_selector)
        with lock:
            first = asked == kind and threading.get_ident() not in seen
            if first:
                seen.add(threading.get_ident())
        if first:
            wait()
        return found

    kube.list_runs = listing  # type: ignore[method-assign,assignment]  # on this instance only

    def stop() -> None:
        del kube.list_runs

    return stop


class Together:
    """A ``wait`` for ``after_first_list``: ``parties`` threads go on together. ``broken``: they
    never all came (the wait gave up after 30 s), so the race the test meant did not happen."""

    def __init__(self, parties: int) -> None:
        self._barrier = threading.Barrier(parties)

    def __call__(self) -> None:
        self._barrier.wait(timeout=30)

    @property
    def broken(self) -> bool:
        return self._barrier.broken


def finished_twice(kube: MemoryRunClient, event: Callable[[str, str], Event], seed: int) -> list[Event]:
    """The ``FINAL`` runs, each in the store and done before any delivery, their final events
    (``event(sample, name)``) each twice, shuffled by ``seed``."""
    events = []
    for name, final in FINAL.items():
        ref = add_run(kube, event("pipelinerun-running", name))
        advance(kube, ref, event(final, name))
        events += [live(kube, ref, event(final, name))] * 2
    random.Random(seed).shuffle(events)
    return events


def deliver_racing(
    kube: MemoryRunClient, function: str, events: list[Event], *, then: Iterable[Event] = ()
) -> None:
    """Deliver ``events`` to ``function`` all at once. One delivery of each run goes on to the
    shared report (a run's claim holds back its duplicates); these meet once each has listed the
    PipelineRuns: none has seen another's report, so all race to create it. Then deliver again,
    all at once, the events answered 429 or 503 and ``then``, and again those answered 429 or 503,
    as their sender does, until none is."""
    post = to_app(function_client(function).application)
    meet = Together(len({samples.run_object(event)[1]["metadata"]["uid"] for event in events}))
    stop = after_first_list(kube, "PipelineRun", meet)
    try:
        answers = list(post_together(post, events))
    finally:
        stop()
    assert not meet.broken, "the deliveries met"
    again = [*_to_redeliver(answers), *then]
    rounds = len(again) + 1
    while again:
        assert rounds, "deliveries kept being asked to come back"
        again = _to_redeliver(post_together(post, again))
        rounds -= 1


def _to_redeliver(answers: Iterable[tuple[Event, TestResponse]]) -> list[Event]:
    return [event for event, answer in answers if answer.status_code in (429, 503)]
