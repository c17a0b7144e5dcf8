"""The single-Service runtime: every installed integration, for each event, with one read of the run.

``common/all.py`` is its functions-framework target (``--source common/all.py --target handle``;
the ``knative/single-service`` tree deploys it as the Service ``tekton-integrations`` with one
Trigger). For each event, the ``Processor`` of every installed integration (or of those
``TI_INTEGRATIONS`` lists, comma-separated) runs in turn, exactly as its own function would:

- each keeps its own record, policy section, settings (its own ``<PREFIX>_*`` variables and
  Secret) and idempotency; a run that does not opt into one is screened out without any API call;
- they share one run client, and what one event's integrations read or write of the run is kept
  for the others (``SharedReads``): the run is read from the API server at most once per event
  when nothing else changes it, whichever integrations need a read;
- the answer is the most urgent of their outcomes (``most_urgent``). When one asks for a
  redelivery, the others' side effects are not repeated: each finds its record and skips what it
  already reported, as a standalone function does on a duplicate.

It owns no decision of its own: the runtime (``common.runtime``) decides for each integration.
The dead-letter receiver uses ``respond_all`` for the single Service's dead letters.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from common import http, metrics, registry
from common.config import opted_in
from common.errors import ConflictError
from common.events import CloudEventLike
from common.http import LazyProcessor
from common.integration import Integration
from common.policy import load_policy
from common.runclient import RunClient, RunRef
from common.runtime import Outcome, screen

NAME = "all"
"""What the single Service's own log lines and metrics (a malformed event) are counted for."""
SERVICE = "tekton-integrations"
"""The Knative Service (and Trigger, ServiceAccount) of the single-Service option."""
SELECTION_ENV = "TI_INTEGRATIONS"
"""Comma-separated names of the integrations to serve; unset or empty: every installed one."""

RETRY_KEY = "retry"
"""Lists, in an answer that asks for a redelivery, the integrations that asked for it: the
dead-letter receiver records a final delivery failure for those only."""

_URGENCY = {"retry": 3, "failed": 2, "reported": 1, "ignored": 0}


def most_urgent(outcomes: Sequence[Outcome]) -> Outcome:
    """The outcome that decides the answer: retry > failed > reported > ignored.

    - A retry first: it is the only outcome that makes the sender deliver again. The redelivery
      repeats nothing of the others (each finds its record and skips what it already reported,
      for at most the one shared read), while any other answer would leave that integration's
      state unreported until a later event or the resync CronJob.
    - Among retries, the longest ``Retry-After`` (a 429 over a 503 without one): an integration
      that must wait (a service's rate limit) is not called before it may be; the others lose
      only time. Among equal waits, the first.
    - Then a permanent failure, which an operator must fix, over a report, over an ignored event.
    """
    if not outcomes:
        raise ValueError("no outcome to choose from")
    return max(
        outcomes,
        key=lambda outcome: (_URGENCY[outcome.kind], outcome.retry_after or 0.0),
    )  # max keeps the first of equals


class SharedReads:
    """A ``RunClient`` whose reads one event's integrations share, around the real one.

    Inside ``one_event()`` (one per request, on the handling thread), the first read of a run goes
    to the API server and is kept; later reads of it are answered from what is kept. Every write
    goes to the API server, and its answer (the run as written) replaces what is kept, so the next
    integration decides on the run with the records written before it. A conditional write that
    conflicts on the version kept means something else changed the run: it is forgotten, and the
    next read asks the API server (a conflict on an older version, e.g. the event's own, leaves it:
    what is kept is newer). Outside ``one_event()`` every call goes to the API server.
    """

    def __init__(self, client: RunClient) -> None:
        self.client = client

    def get(self, ref: RunRef) -> dict[str, Any]:
        kept = _kept()
        if kept is None:
            return self.client.get(ref)
        if ref not in kept:
            kept[ref] = copy.deepcopy(self.client.get(ref))
        return copy.deepcopy(kept[ref])

    def patch(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self._write(self.client.patch, ref, patch)

    def patch_status(self, ref: RunRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self._write(self.client.patch_status, ref, patch)

    def record_event(self, ref: RunRef, uid: str, reason: str, message: str) -> None:
        self.client.record_event(ref, uid, reason, message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)  # anything else a client offers (the CLI's reads)

    def _write(
        self,
        write: Callable[[RunRef, Mapping[str, Any]], dict[str, Any]],
        ref: RunRef,
        patch: Mapping[str, Any],
    ) -> dict[str, Any]:
        kept = _kept()
        try:
            written = write(ref, patch)
        except ConflictError:
            if kept is not None and ref in kept:
                wanted = (patch.get("metadata") or {}).get("resourceVersion")
                if wanted is None or wanted == _version(kept[ref]):
                    del kept[ref]  # changed by someone else since it was kept
            raise
        except Exception:
            if kept is not None:
                kept.pop(ref, None)  # the write's effect is unknown
            raise
        if kept is not None:
            kept[ref] = copy.deepcopy(written)
        return written


_event = threading.local()


def _kept() -> dict[RunRef, dict[str, Any]] | None:
    kept: dict[RunRef, dict[str, Any]] | None = getattr(_event, "kept", None)
    return kept


@contextmanager
def one_event() -> Iterator[None]:
    """The scope in which ``SharedReads`` keeps what it read and wrote: one request."""
    _event.kept = {}
    try:
        yield
    finally:
        _event.kept = None


def _version(obj: Mapping[str, Any]) -> str | None:
    version = (obj.get("metadata") or {}).get("resourceVersion")
    return str(version) if version is not None else None


class Shared:
    """Gives the one ``SharedReads`` every integration's ``Processor`` is built on (again when
    ``use_run_client`` changes the run client): a ``LazyProcessor``'s ``connect``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reads: SharedReads | None = None

    def __call__(self) -> RunClient:
        with self._lock:
            override = http.client_override()
            if self._reads is None or (override is not None and self._reads.client is not override):
                self._reads = SharedReads(http.default_client())
            return self._reads


def selected() -> list[Integration[Any, Any]]:
    """The integrations to serve: ``TI_INTEGRATIONS``, else every installed one. An integration that
    does not load stops the Service at startup, as a broken ``main.py`` stops its function."""
    chosen = [name.strip() for name in os.environ.get(SELECTION_ENV, "").split(",") if name.strip()]
    names = chosen or registry.names()
    declared, problems = [], []
    for name in names:
        loaded = registry.load(name)
        if loaded.integration is None:
            problems.append(f"{name}: {loaded.problem}")
        else:
            declared.append(loaded.integration)
    if problems:
        raise RuntimeError("the single Service cannot serve every integration: " + "; ".join(problems))
    if not declared:
        raise RuntimeError(f"no integration to serve: {SELECTION_ENV} names none, and none is installed")
    return declared


def serve_all(integrations: Sequence[Integration[Any, Any]]) -> Callable[[CloudEventLike], None]:
    """The functions-framework target for ``integrations``, sharing one run client."""
    http.prepare(NAME)
    policy = load_policy()  # a malformed policy (or a bad section) stops startup
    for integration in integrations:
        policy.check(integration.name, integration.policy)
    shared = Shared()
    processors = [LazyProcessor(integration, shared) for integration in integrations]

    def handle(cloud_event: CloudEventLike) -> None:
        respond_all(processors, cloud_event)

    return http.register(handle)


def respond_all(
    processors: Sequence[LazyProcessor], cloud_event: CloudEventLike, name: str = NAME
) -> NoReturn:
    """Handle one request for every integration in turn and answer the most urgent outcome.

    The outcome of each integration the run opts into is traced, counted and logged as its own
    function's would be, and listed in the answer; the others are screened out without any API
    call and only counted (as their own functions would count an ignored event).
    """
    began, began_ns = time.perf_counter(), time.time_ns()
    event = http.read_event(name, cloud_event, began, began_ns)
    parsed_ns = time.time_ns()
    run = event.run
    outcomes: dict[str, Outcome] = {}
    with one_event():
        for lazy in processors:
            integration = lazy.integration.name
            if not opted_in(integration, run.annotations):
                started = time.perf_counter()
                ignored = screen(lazy.integration, event) or Outcome("ignored", "not opted in")
                metrics.event(integration, ignored.kind, ignored.reason, time.perf_counter() - started)
                continue
            first = not outcomes
            outcomes[integration] = http.handle_event(
                lazy,
                event,
                began if first else time.perf_counter(),
                began_ns if first else time.time_ns(),
                parsed_ns=parsed_ns,
            )
    if outcomes:
        top = most_urgent(list(outcomes.values()))
        detail = next(f"{key}: {top.detail}" for key, outcome in outcomes.items() if outcome is top)
    else:
        top = Outcome("ignored", "the run has no annotations of any integration served here")
        detail = top.detail
    body: dict[str, Any] = {"integration": name, "run": f"{run.namespace}/{run.name}", "outcome": top.kind}
    if top.kind == "retry":  # early in the body: a dead letter carries only its first 1024 bytes
        body[RETRY_KEY] = [key for key, outcome in outcomes.items() if outcome.kind == "retry"]
    body["detail"] = detail
    if top.reason:
        body["reason"] = top.reason
    body["integrations"] = {key: _summary(outcome) for key, outcome in outcomes.items()}
    http.answer(top.http_status, body, http.retry_headers(top))


def _summary(outcome: Outcome) -> dict[str, Any]:
    found: dict[str, Any] = {"outcome": outcome.kind, "detail": outcome.detail}
    if outcome.reason:
        found["reason"] = outcome.reason
    if outcome.retry_after:
        found["retryAfter"] = outcome.retry_after
    return found
