"""Webhook: POST a signed, versioned JSON ``RunNotification`` about a run to a URL of its choosing.

Annotations: ``webhook.integrations.tekton.dev/{url,on}`` (docs/webhook.md). The URL comes from
a user, so it goes through ``common.targets`` (policy hosts, address safety, no redirects). The
body is signed with the namespace's secret (``functions.webhook.signing``); every delivery of one
run state carries the same delivery id and body, so receivers can drop repeats.
"""

from __future__ import annotations

import time
from typing import Annotated

from pydantic import StringConstraints

from common import Context, Integration, IntegrationConfig, Report, serve
from common.config import RunStates
from common.errors import IntegrationError
from common.notification import delivery_id, encode, run_notification
from common.policy import load_policy
from common.targets import TargetURL, deliver, host_of, http_status_of
from functions.webhook.signing import secret_for, signed_headers

URL = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
SERVICE = "webhook receiver"


class WebhookConfig(IntegrationConfig):
    url: URL
    on: RunStates | None = None


def report(ctx: Context[WebhookConfig]) -> Report:
    run = ctx.run
    delivery = delivery_id("webhook", run)
    annotations = {"delivery-id": delivery, "last-http-status": "none"}
    try:
        network = load_policy().for_namespace(run.namespace).network("webhook")
        body = encode(run_notification(run, ctx.run_url))
        headers = signed_headers(secret_for(run.namespace), body, delivery, int(time.time()))
        response = deliver(ctx.config.url, body, headers, network, service=SERVICE)
    except IntegrationError as e:
        status = http_status_of(e)
        e.annotations.update({**annotations, "last-http-status": str(status) if status else "none"})
        raise
    annotations["last-http-status"] = str(response.status)
    origin = TargetURL.parse(ctx.config.url).origin
    return Report(f"{origin} answered {response.status} {response.reason}".rstrip(), annotations, "Delivered")


def _wants(ctx: Context[WebhookConfig]) -> bool:
    return ctx.config.on is None or ctx.run.phase in ctx.config.on


def _destinations(ctx: Context[WebhookConfig]) -> list[str]:
    """The URL's host, for the runtime's policy check; a malformed URL is refused in ``report``."""
    host = host_of(ctx.config.url)
    return [host] if host else []


integration = Integration(
    name="webhook", config=WebhookConfig, report=report, wants=_wants, destinations=_destinations
)
handle = serve(integration)
