"""CloudEvent: send one CloudEvent (binary mode) per state change of a run to a sink.

Annotations: ``cloudevent.integrations.tekton.dev/{target,on}`` (docs/cloudevent.md). Without
``target``, the operator's ``CLOUDEVENT_DEFAULT_SINK`` is used. A target from an annotation goes
through ``common.targets`` under the namespace's policy; the operator's default sink is trusted.
The record follows TEP-0004's CloudEventDelivery mapping: a ``Succeeded`` condition with its
reason and ``lastTransitionTime``, and annotations ``target`` and ``retryCount``.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import StringConstraints

from common import Context, Integration, IntegrationConfig, Report, serve
from common.config import RunStates, annotation_key
from common.errors import IntegrationError, InvalidConfigurationError
from common.policy import NetworkPolicy, load_policy
from common.status import RunState
from common.targets import TargetURL, deliver, host_of, http_status_of
from functions.cloudevent.event import binary_request, event_type

URL = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
SERVICE = "CloudEvent sink"


class CloudEventConfig(IntegrationConfig):
    target: URL | None = None
    on: RunStates | None = None


def report(ctx: Context[CloudEventConfig]) -> Report:
    run = ctx.run
    annotations = {"retryCount": str(_retry_count(ctx)), "last-http-status": "none"}
    try:
        url, network = _destination(ctx)
        annotations["target"] = TargetURL.parse(url).without_query
        headers, body = binary_request(run, ctx.run_url)
        response = deliver(url, body, headers, network, service=SERVICE)
    except IntegrationError as e:
        status = http_status_of(e)
        e.annotations.update({**annotations, "last-http-status": str(status) if status else "none"})
        raise
    annotations["last-http-status"] = str(response.status)
    return Report(
        f"sent {event_type(run)}; the sink answered {response.status} {response.reason}".rstrip(),
        annotations,
        "Sent",
    )


def _destination(ctx: Context[CloudEventConfig]) -> tuple[str, NetworkPolicy]:
    """The annotation's target under the namespace's policy, else the operator's trusted sink."""
    if ctx.config.target:
        return ctx.config.target, load_policy().for_namespace(ctx.run.namespace).network("cloudevent")
    sink = (os.environ.get("CLOUDEVENT_DEFAULT_SINK") or "").strip()
    if not sink:
        raise InvalidConfigurationError(
            f"{annotation_key('cloudevent', 'target')}: required, because this function has no "
            "CLOUDEVENT_DEFAULT_SINK"
        )
    return sink, NetworkPolicy.operator_configured("cloudevent", "CLOUDEVENT_DEFAULT_SINK")


def _retry_count(ctx: Context[CloudEventConfig]) -> int:
    """Earlier tries at the run's current state: the record's ``attempts`` for it, less this one."""
    previous = ctx.record
    if previous is None or previous.run_state != RunState.of(ctx.run):
        return 0
    return previous.attempts - (1 if previous.claim else 0)


def _wants(ctx: Context[CloudEventConfig]) -> bool:
    return ctx.config.on is None or ctx.run.phase in ctx.config.on


def _destinations(ctx: Context[CloudEventConfig]) -> list[str]:
    """The annotated target's host, for the runtime's policy check (the default sink is trusted)."""
    host = host_of(ctx.config.target) if ctx.config.target else None
    return [host] if host else []


integration = Integration(
    name="cloudevent", config=CloudEventConfig, report=report, wants=_wants, destinations=_destinations
)
handle = serve(integration)
