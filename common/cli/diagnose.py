"""Check one integration's settings on a run the way its function will: the parsed configuration,
each bad annotation with what is wrong and how to fix it, and what the tenancy policy allows.

Pure apart from reading a policy document that the caller found.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import AliasChoices, BaseModel, ValidationError

from common.config import IntegrationConfig, annotation_key, settings_from_annotations
from common.integration import Context, Integration
from common.policy import Destinations, PolicyError, parse_policy

_PATTERN_HINTS = {
    "[0-9a-f]{40}": "the full commit SHA: 40 (or 64) lower-case hex digits, not a branch or short SHA",
    "[A-Za-z0-9_.-]{1,100}": "a GitHub name: letters, digits, '.', '-', '_'; no slash (owner, repo apart)",
    "#?[A-Za-z0-9]": "a channel name such as #ci-builds, or a channel ID such as C0123456789",
    "https?://": "an http(s) URL",
}


@dataclass(frozen=True)
class Problem:
    """One bad annotation: its key, its value (``None`` when missing), what is wrong, the fix."""

    key: str
    value: str | None
    problem: str
    fix: str


@dataclass(frozen=True)
class Settings:
    """The outcome of validating an integration's annotations."""

    configuration: dict[str, Any] | None
    """Every setting after validation, defaults included; ``None`` when invalid."""
    defaults: frozenset[str] = frozenset()
    """Settings left at their default."""
    problems: list[Problem] = field(default_factory=list)
    config: IntegrationConfig | None = None


def check_settings(integration: Integration[Any, Any], annotations: Mapping[str, str]) -> Settings:
    """Validate like ``common.config.load_config`` does, keeping each error's details."""
    given = settings_from_annotations(integration.name, annotations)
    try:
        config = integration.config.model_validate(given)
    except ValidationError as e:
        return Settings(None, problems=[_problem(integration, given, dict(error)) for error in e.errors()])
    shown = config.model_dump(mode="json", by_alias=True)
    unset = frozenset(_key_of(integration.config, name) for name in type(config).model_fields) - {
        _key_of(integration.config, name) for name in config.model_fields_set
    }
    return Settings(shown, unset, [], config)


def known_keys(model: type[BaseModel]) -> list[str]:
    """Annotation keys a model accepts: alias or field name, and every alias choice."""
    keys: list[str] = []
    for name, info in model.model_fields.items():
        keys.append(info.alias or name)
        if isinstance(info.validation_alias, AliasChoices):
            keys += [str(choice) for choice in info.validation_alias.choices if str(choice) not in keys]
    return keys


def _key_of(model: type[BaseModel], name: str) -> str:
    info = model.model_fields[name]
    if isinstance(info.validation_alias, AliasChoices):
        return str(info.validation_alias.choices[0])
    return info.alias or name


def _problem(
    integration: Integration[Any, Any], given: Mapping[str, str], error: Mapping[str, Any]
) -> Problem:
    location = error.get("loc") or ("?",)
    key = str(location[0])
    full = annotation_key(integration.name, key)
    kind = str(error.get("type", ""))
    context = error.get("ctx") or {}
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    known = known_keys(integration.config)
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
        fix = f"rename it to {annotation_key(integration.name, close[0])}" if close else "remove it"
        return Problem(full, given.get(key), "unknown key", f"{fix} (known keys: {', '.join(known)})")
    if kind == "missing":
        return Problem(
            full, None, "required annotation is missing", f"add {full}{_description(integration, key)}"
        )
    if kind == "literal_error":
        fix = f"use one of {context.get('expected')}"
    elif kind == "string_pattern_mismatch":
        pattern = str(context.get("pattern", ""))
        hint = next((text for marker, text in _PATTERN_HINTS.items() if marker in pattern), None)
        fix = f"use {hint}" if hint else f"use a value matching {pattern}"
        message = "does not have the expected form"
    elif kind in ("string_too_long", "too_long"):
        fix = f"shorten it to at most {context.get('max_length')}"
    elif kind == "bool_parsing":
        fix = "use true or false"
    elif kind in ("int_parsing", "int_from_float"):
        fix = "use a whole number"
    else:
        fix = message if "use " in message else f"correct the value ({message})"
    return Problem(full, given.get(key), message, fix)


def _description(integration: Integration[Any, Any], key: str) -> str:
    for name, info in integration.config.model_fields.items():
        if key in (name, info.alias) and info.description:
            return f" ({info.description})"
    return ""


@dataclass(frozen=True)
class PolicyCheck:
    """One destination and whether the run's namespace may target it."""

    field: str
    value: str
    allowed: bool
    message: str


def check_policy(
    policy_text: str, where: str, integration: Integration[Any, Any], ctx: Context[Any, Any]
) -> list[PolicyCheck]:
    """What ``policy_text`` (the policy file's YAML) decides for the destinations the integration
    names for this run (its ``destinations``, exactly what the runtime checks before sending).

    Raises ``ValueError`` (with the policy's message) when the document is invalid.
    """
    rule = integration.policy
    values = [str(value) for value in integration.destinations(ctx)]
    if not isinstance(rule, Destinations) or not values:
        return []
    try:
        rules = parse_policy(policy_text, where).for_namespace(ctx.run.namespace)
        decisions = [(value, rules.allows(integration.name, rule, value)) for value in values]
    except PolicyError as e:  # the functions would refuse to send until it is fixed
        raise ValueError(e.message) from e
    field_name = rule.field
    checks = []
    for value, allowed in decisions:
        message = (
            f"{field_name} {value!r} by {rules.where}"
            if allowed
            else rules.refusal(integration.name, rule, value)
        )
        checks.append(PolicyCheck(field_name, value, allowed, message))
    return checks
