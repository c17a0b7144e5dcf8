"""A functions-framework target for any installed integration, named by ``TI_INTEGRATION``.

``functions-framework --source <site-packages>/common/target.py --target handle`` with
``TI_INTEGRATION=pager`` serves the integration the registry finds under that name: a folder of
``functions/`` or an entry point of a separately installed package (group
``tekton_integrations.integrations``). A name the registry cannot load stops the function at
startup with the reason, as a broken ``main.py`` would.
"""

from __future__ import annotations

import os
from typing import Any

from common import registry
from common.http import serve
from common.integration import Integration

TARGET_ENV = registry.TARGET_ENV


def _declared() -> Integration[Any, Any]:
    name = os.environ.get(TARGET_ENV, "").strip()
    if not name:
        raise RuntimeError(f"{TARGET_ENV} must name the integration to serve (one of {registry.names()})")
    loaded = registry.load(name)
    if loaded.integration is None:
        raise RuntimeError(f"{TARGET_ENV}={name}: {loaded.problem}")
    return loaded.integration


handle = serve(_declared())
