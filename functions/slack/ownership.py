"""How a Slack message is known to be this run's, whatever its record says. Pure: no I/O.

Two marks, for two questions (DESIGN.md §3):

- **Slack keeps one.** Every message the function posts carries message metadata
  ``{"event_type": "tekton_run", "event_payload": {"run_uid": ..., "integration": ..., "part": ...}}``
  (``part``: ``run`` for the run's message, ``details`` for its thread reply). Together with the
  poster (this token's ``bot_id``), it lets a replica find the run's message in the channel's
  history when no record says where it is: after a crash between the post and the record, a lost
  answer, or Tekton writing back an older record.
- **The record is signed.** A run's author may edit the record's ``channel``, ``ts`` and
  ``details-ts`` (annotations are theirs). The ids are used only if ``sig`` verifies: an
  HMAC-SHA256, keyed by a key derived from the bot token, over (run UID, configured channel, channel
  ID, ts, details-ts). Only this function, holding the token, can make one, and it does so only for
  ids Slack returned for a post to the configured channel. So a verified record names this run's
  own message in the channel the run configures, which the runtime has checked against the
  namespace's policy; a record copied from another run, pointing at another channel, or edited
  in any id does not verify and counts as absent (then the history lookup applies).

  Why a signature rather than asking Slack: it needs no extra scope and no extra call per event,
  and it is as strong as the token itself. Rotating the token invalidates every signature; a
  run's next state then finds its message through the history (or, without the history scopes,
  posts a new one).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
"""A conversation ID (public, private, direct), as opposed to a name."""
TS = re.compile(r"\d{1,16}\.\d{1,9}")
EVENT_TYPE = "tekton_run"
_KEY_LABEL = b"tekton-integrations/slack/record-signature/v1"

Part = Literal["run", "details"]


def destination(channel: str) -> str:
    """The configured channel as the namespace policy names it: an ID as is, a name as ``#name``."""
    return channel if channel.startswith("#") or CHANNEL_ID.fullmatch(channel) else f"#{channel}"


def metadata(integration: str, run_uid: str, part: Part) -> dict[str, Any]:
    """The message metadata that names the run a message belongs to."""
    return {
        "event_type": EVENT_TYPE,
        "event_payload": {"run_uid": run_uid, "integration": integration, "part": part},
    }


def names_run(message: Mapping[str, Any], integration: str, run_uid: str, part: Part) -> bool:
    """Whether ``message``'s metadata says it is ``part`` of the run (who posted it is checked apart)."""
    found = message.get("metadata")
    if not isinstance(found, Mapping) or found.get("event_type") != EVENT_TYPE:
        return False
    payload = found.get("event_payload")
    if not isinstance(payload, Mapping):
        return False
    wanted = metadata(integration, run_uid, part)["event_payload"]
    return all(payload.get(key) == value for key, value in wanted.items())


def signing_key(token: str) -> bytes:
    """The record-signing key: derived from the bot token, so nothing else needs to be mounted."""
    return hmac.new(token.encode(), _KEY_LABEL, hashlib.sha256).digest()


@dataclass(frozen=True)
class MessageIds:
    """Where the run's message (and its thread reply) is: what the record keeps."""

    channel: str
    """The channel's ID."""
    ts: str
    details_ts: str | None = None

    def well_formed(self) -> bool:
        return bool(
            CHANNEL_ID.fullmatch(self.channel)
            and TS.fullmatch(self.ts)
            and (self.details_ts is None or TS.fullmatch(self.details_ts))
        )

    def signature(self, key: bytes, run_uid: str, configured: str) -> str:
        """The HMAC over the ids, the run and the configured channel (its policy ``destination``)."""
        fields = (run_uid, configured.lower(), self.channel, self.ts, self.details_ts or "")
        return hmac.new(key, "\x1f".join(fields).encode(), hashlib.sha256).hexdigest()

    def annotations(self, key: bytes, run_uid: str, configured: str) -> dict[str, str]:
        """The record's annotations. ``details-ts`` is always written, empty when there is no reply,
        so a value left by an earlier record never outlives the signature that covers it."""
        return {
            "channel": self.channel,
            "ts": self.ts,
            "details-ts": self.details_ts or "",
            "sig": self.signature(key, run_uid, configured),
        }


def verified(annotations: Mapping[str, str], key: bytes, run_uid: str, configured: str) -> MessageIds | None:
    """The ids a record names, if its signature verifies for this run and configured channel."""
    channel, ts, sig = annotations.get("channel"), annotations.get("ts"), annotations.get("sig")
    if not (channel and ts and sig):
        return None
    ids = MessageIds(channel, ts, annotations.get("details-ts") or None)
    expected = ids.signature(key, run_uid, configured)
    if not ids.well_formed() or not hmac.compare_digest(sig.encode(), expected.encode()):
        return None
    if CHANNEL_ID.fullmatch(configured) and channel != configured:
        return None  # cannot happen with a genuine signature; checked anyway, as it costs nothing
    return ids
