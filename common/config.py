"""Read an integration's settings from the run's ``<name>.integrations.tekton.dev/<key>`` annotations.

Pure: no I/O. Each integration declares a pydantic model; unknown keys and bad values become one
``InvalidConfigurationError`` whose message names each annotation, what is wrong with it and the
fix, in words (``PATTERN_HINTS``, never a regular expression). The runtime records that message
and the CLI shows the same ``Problem``s, so users read one wording everywhere.
The ``status`` key under each prefix is the integration's own record, never configuration.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from common.errors import InvalidConfigurationError, clip
from common.events import RunPhase

DOMAIN = "integrations.tekton.dev"
RECORD_KEY = "status"

ConfigT = TypeVar("ConfigT", bound="IntegrationConfig")


class IntegrationConfig(BaseModel):
    """Base for integration settings. Field names are annotation keys (use aliases for dashes)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, str_strip_whitespace=True, defer_build=True
    )
    """``defer_build``: the validator is built for the first run that opts in, not at import."""


MAX_LOG_LINES = 200
"""The most log lines of a failed step a run may ask for (a namespace's policy may cap it lower)."""


class ShowsStepLogs(IntegrationConfig):
    """Mixin for a configuration whose messages can show the last lines of each failed step."""

    log_lines: int = Field(default=0, ge=0, le=MAX_LOG_LINES, alias="log-lines")
    """``log-lines``: lines of each failed step's log to show; 0 (the default) reads no log."""


class Templated(IntegrationConfig):
    """Mixin for a configuration whose message an operator's named template may render."""

    template: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    """``template``: the name of an operator's template (common.templates) for the message."""


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


PATTERN_HINTS: dict[str, str] = {
    "[0-9a-f]{40}": "the full commit SHA: 40 (or 64) lower-case hex digits, not a branch or short SHA",
    "[A-Za-z0-9_.-]{1,100}": "a GitHub name: letters, digits, '.', '-', '_'; no slash (owner, repo apart)",
    "#?[A-Za-z0-9]": "a channel name such as #ci-builds, or a channel ID such as C0123456789",
    "https?://": "an http(s) URL",
    "-[1-9][0-9]{0,17}$": "a Jira issue key such as WID-42: the project key, a dash, the issue's number",
    "^[A-Z][A-Z0-9_]{0,254}$": "a Jira project key such as WID: capital letters, digits and _",
    "[0-9]+|[A-Za-z0-9_][A-Za-z0-9_.+-]*(/": "a GitLab project path such as group/project, or its numeric ID",
    "[^\\x00-\\x1f\\x7f]": "text without control characters (no newline or tab)",
}
"""What a value matching a model's regular expression is, in words, keyed by a part of the pattern.

Users are told these, never the pattern (``String should match pattern '^...$'``)."""
MAX_SHOWN_VALUE = 80


@dataclass(frozen=True)
class Problem:
    """One bad annotation: its key, its value (``None`` when missing), what is wrong, the fix."""

    key: str
    value: str | None
    problem: str
    fix: str
    """Empty when the problem's own words already say what to write (a declaration's validator)."""

    @property
    def text(self) -> str:
        """The one-line message a record, an Event and the CLI carry: ``KEY: problem: fix``, with
        the value where the problem is about it (``KEY: 'main' does not have the expected form: use
        the full commit SHA...``)."""
        about_value = self.value is not None and self.problem.startswith(("is ", "does "))
        shown = f"{clip(self.value, MAX_SHOWN_VALUE)!r} " if about_value and self.value is not None else ""
        fix = "" if not self.fix or self.fix in self.problem else f": {self.fix}"
        return f"{self.key}: {shown}{self.problem}{fix}"


def problems_of(
    model: type[BaseModel], integration: str, annotations: Mapping[str, str], error: ValidationError
) -> list[Problem]:
    """Each error of ``model.model_validate(settings)`` as a ``Problem`` with the fix, in words."""
    given = settings_from_annotations(integration, annotations)
    return [_problem(model, integration, given, dict(item)) for item in error.errors()]


def load_config(model: type[ConfigT], integration: str, annotations: Mapping[str, str]) -> ConfigT:
    """Validate the integration's annotations into ``model``; raise ``InvalidConfigurationError``
    whose message is every ``Problem.text``, the same words ``tekton-integrations explain`` shows."""
    settings = settings_from_annotations(integration, annotations)
    try:
        return model.model_validate(settings)
    except ValidationError as e:
        found = problems_of(model, integration, annotations, e)
        raise InvalidConfigurationError("; ".join(p.text for p in found)) from e


def known_keys(model: type[BaseModel]) -> list[str]:
    """Annotation keys a model accepts: alias or field name, and every alias choice."""
    keys: list[str] = []
    for name, info in model.model_fields.items():
        keys.append(info.alias or name)
        if isinstance(info.validation_alias, AliasChoices):
            keys += [str(choice) for choice in info.validation_alias.choices if str(choice) not in keys]
    return keys


def _problem(
    model: type[BaseModel], integration: str, given: Mapping[str, str], error: Mapping[str, Any]
) -> Problem:
    location = error.get("loc") or ("?",)
    key = str(location[0])
    full = annotation_key(integration, key)
    kind = str(error.get("type", ""))
    context = error.get("ctx") or {}
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        known = known_keys(model)
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
        fix = f"rename it to {annotation_key(integration, close[0])}" if close else "remove it"
        return Problem(full, given.get(key), "unknown key", f"{fix} (known keys: {', '.join(known)})")
    if kind == "missing":
        return Problem(full, None, "required annotation is missing", f"add {full}{_description(model, key)}")
    if kind == "literal_error":
        fix = f"use one of {context.get('expected')}"
        message = "is not one of the allowed values"
    elif kind == "string_pattern_mismatch":
        pattern = str(context.get("pattern", ""))
        hint = next((text for marker, text in PATTERN_HINTS.items() if marker in pattern), None)
        fix = f"use {hint}" if hint else "correct the value (see the integration's documentation)"
        message = "does not have the expected form"
    elif kind in ("string_too_long", "too_long"):
        fix = f"shorten it to at most {context.get('max_length')}"
        message = "is too long"
    elif kind == "bool_parsing":
        fix = "use true or false"
        message = "is not true or false"
    elif kind in ("int_parsing", "int_from_float"):
        fix = "use a whole number"
        message = "is not a whole number"
    elif kind == "value_error":
        fix = ""  # the declaration's own words say what is wrong and what to write instead
    else:
        fix = message if "use " in message else "correct the value"
    return Problem(full, given.get(key), message, fix)


def _description(model: type[BaseModel], key: str) -> str:
    for name, info in model.model_fields.items():
        if key in (name, info.alias) and info.description:
            return f" ({info.description})"
    return ""


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
