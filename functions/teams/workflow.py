"""Teams settings, the channels' Workflows webhook URLs, and the one call: POST the card to a URL.

Owns reading a channel's URL from the mounted Secret and sending to it; not what the card says
(``functions.teams.card``). Office 365 connectors (``*.webhook.office.com``) are retired: a
channel's URL is the HTTP trigger of a Workflows (Power Automate) flow, e.g. the template "Post to a
channel when a webhook request is received". Its ``sig=`` query parameter is the only credential,
so the whole URL is a secret:

- it comes only from the file named after the channel in ``TEAMS_CHANNELS_DIR`` (a Secret mounted
  as a directory), read on every call so a rotated URL applies without a restart;
- it is handed to ``common.redaction.remember`` as soon as it is read, with its signature, so no
  answer, record, log line or Event can show it, even when a proxy or the service echoes it;
- redirects are never followed, and no error names it: messages say the channel's name.

What Workflows answers (Azure Logic Apps' request trigger, whose errors are
``{"error": {"code": ..., "message": ...}}``): 202 Accepted once the flow has taken the request
(it posts the card afterwards, and a failure there shows only in the flow's run history); 400
``TriggerInputSchemaMismatch`` for a body the trigger's schema refuses, 400
``WorkflowTriggerIsNotEnabled`` for a flow that is turned off or was deleted (its state says
which), 401
``DirectApiAuthorizationRequired``/``DirectApiInvalidAuthorizationSignature`` for a URL without
its signature or with a wrong one, 403 for a caller the flow does not allow, 404
``WorkflowNotFound`` for a deleted flow, 429 with ``Retry-After`` when throttled, and 5xx.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field

from common import Faults, PermanentError, ServiceSettings
from common.errors import IntegrationError, clip
from common.redaction import remember
from common.settings import SecretDirectory

DEFAULT_CHANNELS_DIR = "/var/run/secrets/tekton-integrations/teams"
RETIRED_HOSTS = ("webhook.office.com", "outlook.office.com", "outlook.office365.com")
"""Office 365 connector webhooks: retired by Microsoft, replaced by Workflows."""
FLOW_OFF = "WorkflowTriggerIsNotEnabled"

FAULTS = Faults(
    "Teams",
    {
        400: "the workflow refused the card: its trigger must accept the body of the template "
        "'Post to a channel when a webhook request is received' (leave the trigger's request schema empty)",
        401: "the workflow refused the URL's signature (its sig parameter): copy the flow's HTTP POST URL "
        "again, whole, into this channel's file in the Secret, and check that 'Who can trigger the flow' "
        "is 'Anyone'",
        403: "the workflow does not allow this caller: set 'Who can trigger the flow' to 'Anyone' and check "
        "that the flow is not suspended (Power Automate shows why)",
        404: "the workflow no longer exists: create it again in the channel (Workflows app) and put its new "
        "URL in this channel's file in the Secret",
        413: "the card is larger than Teams accepts (about 28 KB)",
    },
    reasons={401: "Unauthorized", 403: "Forbidden", 404: "WorkflowNotFound"},
)


class TeamsSettings(ServiceSettings):
    """``TEAMS_*``: where the channels' webhook URLs are mounted, and the total deadline of a post."""

    prefix: ClassVar[str] = "TEAMS"
    service: ClassVar[str] = "Teams"

    channels_dir: SecretDirectory = Field(DEFAULT_CHANNELS_DIR, examples=["widget-ci"])
    """``TEAMS_CHANNELS_DIR``: one file per channel name, holding that channel's Workflows webhook URL."""


@dataclass(frozen=True)
class Accepted:
    """Workflows took the request: its status and the flow run it started, if it says."""

    status: int
    reason: str
    run_id: str | None


def channel_url(settings: TeamsSettings, channel: str) -> str:
    """The webhook URL for ``channel``, remembered as a secret; ``TeamsChannelNotConfigured`` when
    the Secret has no usable file for it. ``channel`` is a validated Secret key (no path parts)."""
    directory = Path(settings.channels_dir)
    path = directory / channel
    try:
        url = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        why = (
            f"{directory} does not exist (is the Secret mounted?)"
            if not directory.is_dir()
            else f"{directory} has no file {channel!r}"
        )
        raise _not_configured(settings, channel, why) from None
    except (OSError, UnicodeDecodeError) as e:
        why = f"{path} cannot be read ({getattr(e, 'strerror', None) or type(e).__name__})"
        raise _not_configured(settings, channel, why) from None
    remember(url)
    for name, value in parse_qsl(urlsplit(url).query):
        if name == "sig":
            remember(value)
    if not url:
        raise _not_configured(settings, channel, f"{path} is empty")
    problem = _unusable(url)
    if problem:
        raise _not_configured(settings, channel, f"{path} {problem}")
    return url


def post(url: str, body: bytes, *, channel: str, timeout: float) -> Accepted:
    """POST ``body`` to the workflow; its answer, or the runtime's error for it."""
    import requests  # noqa: PLC0415 -- only for a run that posts to Teams

    what = f"post the card to Teams channel {channel!r}"
    try:
        answer = requests.post(
            url,
            data=body,
            headers={"Content-Type": "application/json; charset=utf-8"},
            timeout=timeout,
            allow_redirects=False,  # the URL is the credential: it never travels to another host
        )
    except requests.Timeout as e:
        raise FAULTS.timeout(what, timeout) from e
    except requests.RequestException as e:  # a refused or dropped connection: the URL is in no message
        raise FAULTS.unreachable(what, e) from e
    if 200 <= answer.status_code < 300:
        run_id = answer.headers.get("x-ms-workflow-run-id")
        return Accepted(
            answer.status_code, clip(answer.reason or "", 100), clip(run_id, 200) if run_id else None
        )
    raise classify(answer.status_code, answer.headers, answer.text, what=what)


def classify(status: int, headers: Mapping[str, str], text: str, *, what: str) -> IntegrationError:
    """The runtime's error for a refusal; a flow that is turned off is told apart by its code."""
    code, detail = _error(text)
    if code == FLOW_OFF and "'Deleted'" in detail:  # Power Automate keeps a deleted flow's id a while
        return PermanentError(
            FAULTS.reason("WorkflowNotFound"), f"{what}: {status} {FAULTS.hints[404]} ({detail})"
        )
    if code == FLOW_OFF:
        return PermanentError(
            FAULTS.reason("WorkflowDisabled"),
            f"{what}: {status} the workflow is turned off: turn it on in Teams (Workflows app, Manage) "
            f"or in Power Automate ({detail})",
        )
    return FAULTS.for_status(status, headers, what=what, detail=detail)


def _error(text: str) -> tuple[str, str]:
    """``(code, "code: message")`` from a Logic Apps error body; else ``("", text)``."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return "", text
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return "", text
    code, message = str(error.get("code") or ""), str(error.get("message") or "")
    return code, ": ".join(part for part in (code, message) if part)


def _unusable(url: str) -> str | None:
    """Why ``url`` cannot be a Workflows webhook (said without quoting it), or ``None``."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return "does not hold a URL"
    if parts.scheme not in ("https", "http") or not host:
        return "does not hold an http(s) URL"
    if any(host == retired or host.endswith("." + retired) for retired in RETIRED_HOSTS):
        return (
            "holds an Office 365 connector URL, which Microsoft retired: create a Workflows webhook "
            "for the channel (template 'Post to a channel when a webhook request is received') and "
            "put its URL there instead"
        )
    if parts.scheme == "http" and not _loopback(host):
        return "holds a plain http URL: the URL is a credential, sent over https only (http: loopback only)"
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _not_configured(settings: TeamsSettings, channel: str, why: str) -> PermanentError:
    variable = settings.variable("channels_dir")
    return PermanentError(
        FAULTS.reason("ChannelNotConfigured"),
        f"no Workflows webhook for channel {channel!r}: {why}. Add the key {channel!r}, holding the "
        f"workflow's URL, to the Secret mounted at {variable}. Nothing was sent",
    )
