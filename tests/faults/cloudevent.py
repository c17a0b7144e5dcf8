"""The CloudEvent function in the fault matrix: a loopback sink behind a resolved name."""

from __future__ import annotations

from tests.support.faults import TARGET_FAULTS, Target, rows


class CloudEvent(Target):
    name = "cloudevent"
    id_header = "ce-id"
    url_key = "target"


SERVICE = CloudEvent
ROWS = rows("cloudevent", TARGET_FAULTS)
