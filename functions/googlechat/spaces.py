"""Google Chat settings, and the incoming webhooks the operator configured: one URL per space name.

``$GOOGLECHAT_SPACES_DIR`` is a Secret mounted as a directory. Its file ``<space>`` holds the
incoming webhook URL of the space a run names with ``googlechat.integrations.tekton.dev/space``
(``https://chat.googleapis.com/v1/spaces/SPACE/messages?key=KEY&token=TOKEN``). It is read on every
delivery, so an added or rotated webhook takes effect without a restart.

The URL is a credential: whoever holds it can post as the webhook. Every URL read, and the ``key``
and ``token`` in it in every form they travel in, goes to ``common.redaction`` before anything
else is done with it, and no message here repeats it: messages name the file instead. Owns no
HTTP (``functions.googlechat.client`` posts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, ClassVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from pydantic import AfterValidator, Field

from common import PermanentError, ServiceSettings
from common.redaction import remember
from common.settings import SecretDirectory
from functions.googlechat.errors import FAULTS

DEFAULT_SPACES_DIR = "/var/run/secrets/tekton-integrations/googlechat"
SPACE_ANNOTATION = "googlechat.integrations.tekton.dev/space"
_SPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")


def _space_name(value: str) -> str:
    if not _SPACE.fullmatch(value):
        raise ValueError(
            "is not a space name (the name of a webhook file in GOOGLECHAT_SPACES_DIR: letters, digits, "
            "'.', '-' and '_', not starting with '.', at most 253 characters)"
        )
    return value


SpaceName = Annotated[str, AfterValidator(_space_name)]
"""A Secret key without a leading dot: a file name in the mounted directory, never a path, never
Kubernetes' own ``..data`` entries."""
CONTROLLED = frozenset({"messageId", "messageReplyOption", "threadKey", "requestId"})
"""Query parameters the function sets itself; the operator's URL may not override them."""
_RAW_PARAM = re.compile(r"[?&](?:key|token)=([^&#\s]*)")


class GoogleChatSettings(ServiceSettings):
    """``GOOGLECHAT_*``: where the spaces' webhook URLs are mounted, and the total deadline of a post."""

    prefix: ClassVar[str] = "GOOGLECHAT"
    service: ClassVar[str] = "GoogleChat"

    spaces_dir: SecretDirectory = Field(DEFAULT_SPACES_DIR, examples=["widget-ci"])
    """``GOOGLECHAT_SPACES_DIR``: one file per space name, holding that space's incoming webhook URL."""


@dataclass(frozen=True)
class Webhook:
    """A space's incoming webhook, as the operator configured it under the name ``space``."""

    space: str
    url: str = field(repr=False)

    def create_url(self, params: dict[str, str]) -> str:
        """The webhook URL with ``params`` (``messageId``, ...) in place of any the operator's had."""
        parts = urlsplit(self.url)
        kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in CONTROLLED]
        url = urlunsplit(parts._replace(query=urlencode([*kept, *params.items()]), fragment=""))
        remember(url)  # as a server echoing the request line would repeat it
        return url


def webhook(settings: GoogleChatSettings, space: str) -> Webhook:
    """The webhook the operator configured for ``space``; ``GoogleChatSpaceNotConfigured`` when
    there is no file for it, ``GoogleChatNotConfigured`` when the file is unusable."""
    directory = Path(settings.spaces_dir)
    variable = settings.variable("spaces_dir")
    if not directory.is_dir():
        raise settings.not_configured(
            f"{variable} names {directory}, which is not a directory (is the Secret mounted?). "
            "Nothing was sent"
        )
    path = directory / space
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise PermanentError(
            FAULTS.reason("SpaceNotConfigured"),
            f"no incoming webhook is configured for Google Chat space {space!r}: {variable} ({directory}) "
            f"has no file {space!r}. Add the space's webhook URL to the Secret mounted there, under the "
            f"key {space!r}, or change {SPACE_ANNOTATION}. Nothing was sent",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or type(e).__name__
        raise _unusable(settings, path, f"cannot be read ({why})") from None
    remember_url(text)
    problem = _problem(text)
    if problem:
        raise _unusable(settings, path, problem)
    return Webhook(space, text)


def remember_url(url: str) -> None:
    """Mask ``url``, and its ``key`` and ``token`` alone (encoded as sent and decoded), everywhere."""
    remember(url)
    for raw in _RAW_PARAM.findall(url):
        for form in (raw, unquote(raw), unquote(raw.replace("+", " "))):
            remember(form)


def _problem(url: str) -> str | None:
    """Why ``url`` is not a usable webhook URL (never repeating it), or ``None``."""
    if not url:
        return "is empty"
    if any(char.isspace() for char in url):
        return "holds more than one line or word (one URL only)"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # a port out of range raises here, not in the post
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("https", "http") or not host:
        return "is not an https:// URL (expected https://chat.googleapis.com/v1/spaces/...)"
    if parts.scheme == "http" and not _loopback(host):
        return "is an http:// URL, which would send the webhook's token in clear text: use https://"
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _unusable(settings: GoogleChatSettings, path: Path, why: str) -> PermanentError:
    return settings.not_configured(
        f"the Google Chat webhook file {path} {why}; it must hold the space's incoming webhook URL, "
        "https://chat.googleapis.com/v1/spaces/SPACE/messages with its key and token. Nothing was sent"
    )
