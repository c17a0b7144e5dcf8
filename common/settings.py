"""Runtime settings shared by every integration, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote

from common.events import Run

DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024
"""Above etcd's 1.5 MiB object limit with room for the v1beta1 conversion; larger is not Tekton."""


@dataclass(frozen=True)
class RuntimeSettings:
    dashboard_url: str | None = None
    """``TEKTON_DASHBOARD_URL``: base of links to runs on the Tekton Dashboard."""
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    """``TI_MAX_EVENT_BYTES``: larger requests are refused with 400."""

    @classmethod
    def from_env(cls) -> RuntimeSettings:
        return cls(
            dashboard_url=(os.environ.get("TEKTON_DASHBOARD_URL") or "").rstrip("/") or None,
            max_event_bytes=int(os.environ.get("TI_MAX_EVENT_BYTES", DEFAULT_MAX_EVENT_BYTES)),
        )

    def run_url(self, run: Run) -> str | None:
        """``<dashboard>/#/namespaces/<ns>/<resource>/<name>``, the Dashboard's hash route."""
        if not self.dashboard_url:
            return None
        return f"{self.dashboard_url}/#/namespaces/{quote(run.namespace)}/{run.resource}/{quote(run.name)}"
