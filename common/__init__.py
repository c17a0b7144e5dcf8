"""The tekton-integrations runtime shared by every function in ``functions/``.

A function file declares an ``Integration`` and exports ``handle = serve(integration)``
(docs/writing-an-integration.md).
"""

from common.config import CommaList, IntegrationConfig, RunStates
from common.errors import PermanentError, TargetNotAllowedError, TemporaryError
from common.events import Run, RunPhase
from common.faults import Faults
from common.http import serve
from common.integration import (
    PHASE_KEY,
    Context,
    Idempotency,
    Integration,
    Report,
    always,
    never,
    phase_not_reported,
)
from common.policy import Destinations, TargetsNothing
from common.settings import ServiceSettings

__all__ = [
    "PHASE_KEY",
    "CommaList",
    "Context",
    "Destinations",
    "Faults",
    "Idempotency",
    "Integration",
    "IntegrationConfig",
    "PermanentError",
    "Report",
    "Run",
    "RunPhase",
    "RunStates",
    "ServiceSettings",
    "TargetNotAllowedError",
    "TargetsNothing",
    "TemporaryError",
    "always",
    "never",
    "phase_not_reported",
    "serve",
]
