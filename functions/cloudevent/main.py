"""CloudEvent: send one CloudEvent (binary mode) per state change of a run to a sink.

Annotations: ``<name>.integrations.tekton.dev/{target,on}`` (docs/cloudevent.md), where
``<name>`` is this folder's: nothing here names the integration, so a copy of the folder is a
separate one. Without ``target``, the operator's ``CLOUDEVENT_DEFAULT_SINK`` is used. A target
from an annotation goes through ``common.targets`` under the namespace's policy section for this
integration; the operator's default sink is trusted.

One event per run state: the runtime claims each state before sending (``claim=always``), and
every delivery of one state is the same event, with ``id`` = ``ctx.key()``: a repeat, which
happens only when an answer was lost or a replica died mid-call, is dropped by sinks that
deduplicate on ``source`` + ``id``. The record follows TEP-0004's CloudEventDelivery mapping: a
``Succeeded`` condition with its reason and ``lastTransitionTime``, and annotations ``target``
and ``retryCount``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import StringConstraints

from common import (
    Context,
    Destinations,
    Idempotency,
    Integration,
    IntegrationConfig,
    Report,
    ServiceSettings,
    always,
    serve,
)
from common.config import RunStates, annotation_key
from common.errors import IntegrationError, InvalidConfigurationError
from common.policy import NetworkPolicy, load_policy
from common.status import RunState
from common.targets import FAULTS, LAST_HTTP_STATUS, TargetURL, Timeouts, deliver, host_of
from functions.cloudevent.event import binary_request, event_type

URL = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
POLICY = Destinations("hosts", "host", network=True)


class CloudEventConfig(IntegrationConfig):
    target: URL | None = None
    on: RunStates | None = None


class CloudEventSettings(ServiceSettings):
    """``CLOUDEVENT_*``: the operator's default sink, and the total deadline of a delivery."""

    prefix: ClassVar[str] = "CLOUDEVENT"
    service: ClassVar[str] = "CloudEvent"

    default_sink: str | None = None
    """``CLOUDEVENT_DEFAULT_SINK``: the sink for runs without a ``target`` annotation (trusted)."""


Ctx = Context[CloudEventConfig, CloudEventSettings]


def report(ctx: Ctx) -> Report:
    run = ctx.run
    annotations = {"retryCount": str(_retry_count(ctx))}
    try:
        url, network = _destination(ctx)
        annotations["target"] = TargetURL.parse(url).without_query
        headers, body = binary_request(run, ctx.run_url, ctx.key())
        response = deliver(
            url,
            body,
            headers,
            network,
            timeouts=Timeouts(ctx.settings.timeout_seconds),
            service=f"{ctx.integration} sink",
        )
    except IntegrationError as e:
        e.annotations = {**annotations, LAST_HTTP_STATUS: "none", **e.annotations}
        raise
    return Report(
        f"sent {event_type(run)}; the sink answered {response.status} {response.reason}".rstrip(),
        {**annotations, LAST_HTTP_STATUS: str(response.status)},
        "Sent",
    )


def _destination(ctx: Ctx) -> tuple[str, NetworkPolicy]:
    """The annotation's target under the namespace's policy, else the operator's trusted sink."""
    if ctx.config.target:
        namespace_policy = load_policy().for_namespace(ctx.run.namespace)
        return ctx.config.target, namespace_policy.network(ctx.integration, POLICY)
    variable = ctx.settings.variable("default_sink")
    if not ctx.settings.default_sink:
        raise InvalidConfigurationError(
            f"{annotation_key(ctx.integration, 'target')}: required, because this function has no {variable}"
        )
    return ctx.settings.default_sink, NetworkPolicy.operator_configured(ctx.integration, variable)


def _retry_count(ctx: Ctx) -> int:
    """Earlier tries at the run's current state: the record's ``attempts`` for it, less this one."""
    previous = ctx.record
    if previous is None or previous.run_state != RunState.of(ctx.run):
        return 0
    return max(0, previous.attempts - (1 if previous.claim else 0))


def _destinations(ctx: Ctx) -> list[str]:
    """The annotated target's host, for the runtime's policy check (the default sink is trusted)."""
    host = host_of(ctx.config.target) if ctx.config.target else None
    return [host] if host else []


integration = Integration(
    declared_in=__file__,
    config=CloudEventConfig,
    settings=CloudEventSettings,
    report=report,
    policy=POLICY,
    destinations=_destinations,
    faults=FAULTS,
    idempotency=Idempotency(
        "CloudEvent id = deterministic per (run UID, integration, state); sinks drop repeats by source + id",
        claim=always,
    ),
)
handle = serve(integration)
