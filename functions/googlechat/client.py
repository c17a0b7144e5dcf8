"""Posting one message through a space's incoming webhook: ``spaces.messages.create`` over HTTPS.

Owns the request and the reading of its answer. The message carries:

- ``messageId`` (query): a client-assigned id (``client-`` + a UUID, lower case, 43 characters;
  Chat allows 63 of ``[a-z0-9-]``), unique within the space. Chat refuses a second message with
  the same id (409 ``ALREADY_EXISTS``): that answer means the message is there, so it counts as
  posted. This is what keeps one message per (run, state) across crashes and lost answers.
- ``messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD`` (query) and ``thread.threadKey``
  (body): every message of a run goes to the thread its key names; the first one starts it.

One connection per call (``requests.post``, no shared pool: ``common.deadline`` cuts a thread's own
connections). Redirects are never followed (the URL carries the webhook's credentials). No
exception text leaves here: ``requests``' texts repeat the URL, so errors keep only their type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from functions.googlechat.errors import FAULTS, already_exists, classify, parse_error
from functions.googlechat.spaces import Webhook

REPLY_OPTION = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"


def post(hook: Webhook, message: Mapping[str, Any], *, message_id: str, timeout: float) -> bool:
    """Create ``message`` in ``hook``'s space under ``message_id``: ``True`` when Chat created it,
    ``False`` when it already had it (a repeat). Raise ``IntegrationError`` otherwise."""
    import requests  # noqa: PLC0415 -- only for a run that posts to Google Chat

    what = f"post to Google Chat space {hook.space!r}"
    url = hook.create_url({"messageReplyOption": REPLY_OPTION, "messageId": message_id})
    try:
        answer = requests.post(
            url,
            data=json.dumps(message).encode(),
            headers={"Content-Type": "application/json; charset=UTF-8"},
            timeout=timeout,
            allow_redirects=False,  # the credentials in the URL never travel to another address
        )
    except requests.Timeout:
        raise FAULTS.timeout(what, timeout) from None  # from None: the cause's text holds the URL
    except requests.RequestException as e:
        raise FAULTS.unreachable(what, e) from None
    if 200 <= answer.status_code < 300:
        return True
    error = parse_error(answer.text)
    if already_exists(answer.status_code, error):
        return False
    raise classify(answer.status_code, dict(answer.headers), error, what=what)
