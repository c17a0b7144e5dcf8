"""Dead letters: record on the run that an integration's event could not be delivered.

A functions-framework target of its own (``--source common/deadletter.py --target handle``), part
of the runtime rather than an integration: it reports to no service. A Knative Trigger sends an
event here once its retries are exhausted, adding the extension attributes ``knativeerrordest``
(the subscriber that kept failing), ``knativeerrorcode`` (its last HTTP status) and
``knativeerrordata`` (the start of its last answer, base64). The failing integration is the one
the registry knows whose name is the Knative Service's in ``knativeerrordest``; its record gets
condition ``False``, reason ``DeliveryFailed`` (and a Kubernetes Event), unless it already reports
the run's current state. Every installed integration is covered; none is listed here.

A dead letter from the single Service (``tekton-integrations``, which serves every integration:
``common.single``) is recorded as above for each integration its last answer listed as asking for
a redelivery (``"retry": [...]``, early in the answer: Knative keeps its first 1024 bytes); when
that list cannot be read, for every integration the run opts into, so that those that already
report the run's state keep their records.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import ConfigDict

from common import registry
from common.config import IntegrationConfig
from common.errors import PermanentError, clip
from common.events import CloudEventLike
from common.http import LazyProcessor, answer, prepare, register, respond
from common.integration import Context, Idempotency, Integration, Report
from common.policy import TargetsNothing
from common.single import RETRY_KEY, Shared, respond_all
from common.single import SERVICE as SINGLE_SERVICE


class AnyConfig(IntegrationConfig):
    """The failing integration's own function validates its settings; here any key is accepted."""

    model_config = ConfigDict(extra="allow")


def failing_integration(destination: str) -> str | None:
    """``github`` for ``http://github.tekton-integrations.svc.cluster.local``, and the like.

    The Service may carry a kustomize prefix or suffix (``ti-github``): the longest installed
    integration name that the host's first label holds as a whole dash-separated part wins.
    """
    label = (urlsplit(destination).hostname or "").split(".")[0]
    for name in sorted(registry.names(), key=len, reverse=True):
        if re.search(rf"(?:^|-){re.escape(name)}(?:-|$)", label):
            return name
    return None


def from_the_single_service(destination: str) -> bool:
    """Whether ``destination`` is the single Service (``tekton-integrations``, maybe renamed by a
    kustomize prefix or suffix), which serves every integration."""
    label = (urlsplit(destination).hostname or "").split(".")[0]
    return re.search(rf"(?:^|-){re.escape(SINGLE_SERVICE)}(?:-|$)", label) is not None


def failed_integrations(attributes: Mapping[str, Any]) -> set[str] | None:
    """The integrations the single Service's last answer said asked for a redelivery, if it can be read."""
    data = str(attributes.get("knativeerrordata", ""))
    try:
        text = base64.b64decode(data, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        text = data
    found = re.search(rf'"{RETRY_KEY}": (\[[^\]]*\])', text)
    if found is None:
        return None
    try:
        names = json.loads(found.group(1))
    except ValueError:
        return None
    return {name for name in names if isinstance(name, str)} if isinstance(names, list) else None


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


def give_up(ctx: Context[AnyConfig, Any]) -> Report:
    raise PermanentError("DeliveryFailed", failure_message(ctx.event.attributes if ctx.event else {}))


_recorders: dict[str, LazyProcessor] = {}
_every: list[LazyProcessor] = []
_lock = threading.Lock()


def recorder(name: str) -> LazyProcessor:
    """The dead-letter recorder for integration ``name``: records under its key, calls no service."""
    with _lock:
        if name not in _recorders:
            _recorders[name] = LazyProcessor(_recording(name))
        return _recorders[name]


def every_recorder() -> list[LazyProcessor]:
    """A recorder for every installed integration, sharing one run client (the single Service's)."""
    with _lock:
        if not _every:
            shared = Shared()
            _every.extend(LazyProcessor(_recording(name), shared) for name in registry.names())
        return list(_every)


def _recording(name: str) -> Integration[AnyConfig, Any]:
    return Integration(
        declared_in=__file__,
        name=name,
        config=AnyConfig,
        report=give_up,
        policy=TargetsNothing(),
        idempotency=Idempotency("nothing is sent: only the run's record is written"),
    )


def handle(cloud_event: CloudEventLike) -> None:
    destination = str(cloud_event.get_attributes().get("knativeerrordest", ""))
    integration = failing_integration(destination)
    if integration is None and from_the_single_service(destination):
        failed = failed_integrations(cloud_event.get_attributes())
        recorders = [lazy for lazy in every_recorder() if failed is None or lazy.integration.name in failed]
        respond_all(recorders, cloud_event, name="deadletter")
    if integration is None:
        answer(
            400,
            {
                "error": "malformed event",
                "detail": "a dead letter needs a knativeerrordest that names an integration's Service",
            },
        )
    respond(recorder(integration), cloud_event)


prepare()
register(handle)
