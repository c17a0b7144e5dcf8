"""Read an integration's settings from the run's ``<name>.integrations.tekton.dev/<key>`` annotations.

Pure: no I/O. Each integration declares a pydantic model; unknown keys and bad values become one
``InvalidConfigurationError`` whose message names the annotation and what is wrong with it.
The ``status`` key under each prefix is the integration's own record, never configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from common.errors import InvalidConfigurationError
from common.events import RunPhase

DOMAIN = "integrations.tekton.dev"
RECORD_KEY = "status"

ConfigT = TypeVar("ConfigT", bound="IntegrationConfig")


class IntegrationConfig(BaseModel):
    """Base for integration settings. Field names are annotation keys (use aliases for dashes)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, str_strip_whitespace=True)


def annotation_prefix(integration: str) -> str:
    return f"{integration}.{DOMAIN}/"


def annotation_key(integration: str, key: str) -> str:
    return annotation_prefix(integration) + key


def settings_from_annotations(integration: str, annotations: Mapping[str, str]) -> dict[str, str]:
    """The integration's configuration keys and values, without its status record."""
    prefix = annotation_prefix(integration)
    return {
        key[len(prefix) :]: value
        for key, value in annotations.items()
        if key.startswith(prefix) and key[len(prefix) :] != RECORD_KEY
    }


def opted_in(integration: str, annotations: Mapping[str, str]) -> bool:
    """A run opts in by carrying at least one configuration annotation for the integration."""
    return bool(settings_from_annotations(integration, annotations))


def load_config(model: type[ConfigT], integration: str, annotations: Mapping[str, str]) -> ConfigT:
    """Validate the integration's annotations into ``model``; raise ``InvalidConfigurationError``."""
    settings = settings_from_annotations(integration, annotations)
    try:
        return model.model_validate(settings)
    except ValidationError as e:
        problems = [_describe(integration, error) for error in e.errors()]
        raise InvalidConfigurationError("; ".join(problems)) from e


def _describe(integration: str, error: Mapping[str, object]) -> str:
    location = error.get("loc") or ()
    key = str(location[0]) if isinstance(location, tuple) and location else "?"
    where = annotation_key(integration, key)
    if error.get("type") == "extra_forbidden":
        return f"{where}: unknown key (check the spelling against the README)"
    if error.get("type") == "missing":
        return f"{where}: required annotation is missing"
    return f"{where}: {error.get('msg')}"


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CommaList = Annotated[list[str], BeforeValidator(_split_list)]
"""An annotation holding a comma-separated list, e.g. ``a@x.org, b@x.org``."""


STATE_NAMES: dict[str, frozenset[RunPhase]] = {
    "queued": frozenset({RunPhase.QUEUED}),
    "started": frozenset({RunPhase.RUNNING}),
    "running": frozenset({RunPhase.RUNNING}),
    "succeeded": frozenset({RunPhase.SUCCEEDED}),
    "failed": frozenset({RunPhase.FAILED, RunPhase.CANCELLED, RunPhase.TIMED_OUT}),
    "cancelled": frozenset({RunPhase.CANCELLED}),
    "timed-out": frozenset({RunPhase.TIMED_OUT}),
    "finished": frozenset(phase for phase in RunPhase if phase.is_done),
    "all": frozenset(RunPhase),
}


def _parse_states(value: object) -> object:
    if not isinstance(value, str):
        return value
    phases: set[RunPhase] = set()
    for name in (part.strip().lower() for part in value.split(",")):
        if not name:
            continue
        if name not in STATE_NAMES:
            raise ValueError(f"unknown state {name!r}; use any of {', '.join(STATE_NAMES)}")
        phases |= STATE_NAMES[name]
    if not phases:
        raise ValueError("name at least one state")
    return frozenset(phases)


RunStates = Annotated[frozenset[RunPhase], BeforeValidator(_parse_states)]
"""An ``on`` annotation: comma-separated states to report, e.g. ``started,failed,succeeded``.

``failed`` covers cancelled and timed-out runs too; ``finished`` is every end state."""
