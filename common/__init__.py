"""The tekton-integrations runtime shared by every function in ``functions/``.

A function file declares an ``Integration`` and exports ``handle = serve(integration)``.
"""

from common.config import CommaList, IntegrationConfig
from common.errors import PermanentError, TargetNotAllowedError, TemporaryError
from common.events import Run, RunPhase
from common.http import serve
from common.runtime import Context, Integration, Report

__all__ = [
    "CommaList",
    "Context",
    "Integration",
    "IntegrationConfig",
    "PermanentError",
    "Report",
    "Run",
    "RunPhase",
    "TargetNotAllowedError",
    "TemporaryError",
    "serve",
]
