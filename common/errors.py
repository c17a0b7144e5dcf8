"""The few exception types the runtime understands, chosen by what the caller does next.

- ``MalformedEventError``: the request is not a usable Tekton event; answer 400, record nothing.
- ``PermanentError``: retrying cannot help (bad configuration, 401/403/404/422 from a service);
  record condition ``False`` on the run and answer 2xx so nobody redelivers.
- ``TemporaryError``: retrying later may help (5xx, timeouts, rate limits, Kubernetes down);
  record condition ``Unknown`` and answer 503, or 429 with ``Retry-After``.
- ``RunNotFoundError`` / ``ConflictError``: Kubernetes answers the store turns into decisions.

No library exception type leaves ``common``: wrappers raise these ``from`` the original.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_ERROR_TEXT = 1000
"""Longest service error text kept in a message: records and logs stay small and readable."""


def clip(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class MalformedEventError(ValueError):
    """The request is not a well-formed Tekton run event."""


class IntegrationError(Exception):
    """An outcome of an integration's work that must be recorded on the run.

    ``annotations`` keeps ids from a partial success (a message posted before a later call
    failed) in the record, so a redelivery updates it instead of creating another.
    """

    def __init__(self, reason: str, message: str, annotations: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = clip(message)
        self.annotations = dict(annotations or {})


class PermanentError(IntegrationError):
    """Retrying cannot help; the run gets condition ``False`` with this reason."""


class InvalidConfigurationError(PermanentError):
    """The run's ``<name>.integrations.tekton.dev/*`` annotations do not form a valid configuration."""

    def __init__(self, message: str) -> None:
        super().__init__("InvalidConfiguration", message)


class TargetNotAllowedError(PermanentError):
    """The namespace's policy does not allow this destination; nothing was sent."""

    def __init__(self, message: str) -> None:
        super().__init__("TargetNotAllowed", message)


class TemporaryError(IntegrationError):
    """Retrying later may help; ``retry_after`` (seconds) is passed on to the sender."""

    def __init__(
        self,
        reason: str,
        message: str,
        retry_after: float | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(reason, message, annotations)
        self.retry_after = retry_after


class KubernetesUnavailableError(TemporaryError):
    """The Kubernetes API could not be reached or answered with a server error."""

    def __init__(self, message: str) -> None:
        super().__init__("KubernetesUnavailable", message)


class RunNotFoundError(LookupError):
    """The run no longer exists (deleted, or never created under that name)."""


class ConflictError(RuntimeError):
    """A conditional write lost a race: the run changed since it was read."""
