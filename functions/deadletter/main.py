"""Dead letters: record on the run that an integration's event could not be delivered.

A Knative Trigger sends an event here once its retries are exhausted, adding the extension
attributes ``knativeerrordest`` (the subscriber that kept failing), ``knativeerrorcode`` (its last
HTTP status) and ``knativeerrordata`` (the start of its last answer, base64). The failing
integration is the Knative Service named in ``knativeerrordest``; its record gets condition
``False``, reason ``DeliveryFailed`` (and a Kubernetes Event), unless it already reports the
run's current state.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import flask
from cloudevents.http import CloudEvent
from pydantic import ConfigDict

from common import Context, Integration, IntegrationConfig, PermanentError, Report, serve
from common.errors import clip

INTEGRATIONS = ("github", "slack", "webhook", "cloudevent", "gitlab", "email")
_SERVICE_NAME = re.compile(r"(?:^|-)(" + "|".join(INTEGRATIONS) + r")(?:-|$)")


class AnyConfig(IntegrationConfig):
    """The failing integration's own function validates its settings; here any key is accepted."""

    model_config = ConfigDict(extra="allow")


def failing_integration(destination: str) -> str | None:
    """``github`` for ``http://github.tekton-integrations.svc.cluster.local``, and the like."""
    host = urlsplit(destination).hostname or ""
    match = _SERVICE_NAME.search(host.split(".")[0])
    return match.group(1) if match else None


def failure_message(attributes: Mapping[str, str]) -> str:
    code = attributes.get("knativeerrorcode", "?")
    detail = ""
    if data := attributes.get("knativeerrordata"):
        try:
            detail = base64.b64decode(data, validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            detail = data
    return clip(
        f"the event could not be delivered to {attributes.get('knativeerrordest', '?')} after every "
        f"retry; its last answer was HTTP {code}" + (f": {detail}" if detail else ""),
        400,
    )


def give_up(ctx: Context[AnyConfig]) -> Report:
    raise PermanentError("DeliveryFailed", failure_message(ctx.event.attributes if ctx.event else {}))


_recorders = {name: serve(Integration(name=name, config=AnyConfig, report=give_up)) for name in INTEGRATIONS}


def handle(cloud_event: CloudEvent) -> None:
    destination = str(cloud_event.get_attributes().get("knativeerrordest", ""))
    integration = failing_integration(destination)
    if integration is None:
        flask.abort(
            flask.Response(
                '{"error": "malformed event", "detail": "a dead letter needs a knativeerrordest '
                'that names an integration Service"}',
                status=400,
                mimetype="application/json",
            )
        )
    _recorders[integration](cloud_event)
