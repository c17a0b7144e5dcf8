"""Webhook: POST a signed, versioned JSON ``RunNotification`` about a run to a URL of its choosing.

Annotations: ``<name>.integrations.tekton.dev/{url,on}`` (docs/webhook.md), where ``<name>`` is
this folder's: nothing here names the integration, so a copy of the folder is a separate one.
The URL comes from a user, so it goes through ``common.targets`` under the namespace's policy
section for this integration (hosts, address safety, no redirects). The body is signed with the
namespace's key (``functions.webhook.signing``).

One request per run state: the runtime claims each state before sending (``claim=always``), so
``started``, ``running`` and duplicates arriving together send once. Every delivery of one state
carries the same delivery id (``ctx.key()``) and body: a repeat, which happens only when an
answer was lost or a replica died mid-call, is recognisable and receivers drop it.
"""

from __future__ import annotations

import time
from typing import Annotated

from pydantic import StringConstraints

from common import Context, Destinations, Idempotency, Integration, IntegrationConfig, Report, always, serve
from common.config import RunStates
from common.errors import IntegrationError
from common.notification import encode, run_notification
from common.policy import load_policy
from common.targets import FAULTS, LAST_HTTP_STATUS, TargetURL, Timeouts, deliver, host_of
from functions.webhook.signing import WebhookSettings, signed_headers, signing_key

URL = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
POLICY = Destinations("hosts", "host", network=True)


class WebhookConfig(IntegrationConfig):
    url: URL
    on: RunStates | None = None


Ctx = Context[WebhookConfig, WebhookSettings]


def report(ctx: Ctx) -> Report:
    run = ctx.run
    delivery = ctx.key()
    annotations = {"delivery-id": delivery}
    try:
        network = load_policy().for_namespace(run.namespace).network(ctx.integration, POLICY)
        body = encode(run_notification(run, ctx.run_url))
        headers = signed_headers(signing_key(ctx.settings, run.namespace), body, delivery, int(time.time()))
        response = deliver(
            ctx.config.url,
            body,
            headers,
            network,
            timeouts=Timeouts(ctx.settings.timeout_seconds),
            service=f"{ctx.integration} receiver",
        )
    except IntegrationError as e:
        e.annotations = {**annotations, LAST_HTTP_STATUS: "none", **e.annotations}
        raise
    origin = TargetURL.parse(ctx.config.url).origin
    return Report(
        f"{origin} answered {response.status} {response.reason}".rstrip(),
        {**annotations, LAST_HTTP_STATUS: str(response.status)},
        "Delivered",
    )


def _destinations(ctx: Ctx) -> list[str]:
    """The URL's host, for the runtime's policy check; a malformed URL is refused in ``report``."""
    host = host_of(ctx.config.url)
    return [host] if host else []


integration = Integration(
    declared_in=__file__,
    config=WebhookConfig,
    settings=WebhookSettings,
    report=report,
    policy=POLICY,
    destinations=_destinations,
    faults=FAULTS,
    idempotency=Idempotency(
        "delivery id (X-Tekton-Integrations-Delivery header) = deterministic per (run UID, "
        "integration, state); receivers drop repeats",
        claim=always,
    ),
)
handle = serve(integration)
