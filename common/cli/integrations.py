"""Which integrations a run names. The implementations come from ``common.registry``.

A run names an integration by carrying any ``<name>.integrations.tekton.dev/<key>`` annotation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from common.config import DOMAIN, RECORD_KEY
from common.registry import Loaded, available, closest, load

__all__ = ["Loaded", "available", "closest", "load", "names_on"]

_KEY = re.compile(rf"^(?P<name>[a-z0-9]([a-z0-9-]{{0,61}}[a-z0-9])?)\.{re.escape(DOMAIN)}/(?P<key>.+)$")


def names_on(annotations: Mapping[str, str], *, configured_only: bool = False) -> list[str]:
    """Integration names the annotations mention, sorted; only those with settings if asked."""
    found = set()
    for key in annotations:
        match = _KEY.match(key)
        if match and not (configured_only and match["key"] == RECORD_KEY):
            found.add(match["name"])
    return sorted(found)
