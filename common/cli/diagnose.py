"""Check one integration's settings on a run the way its function will: the parsed configuration,
each bad annotation with what is wrong and how to fix it (``common.config.Problem``: the words the
runtime records), and what the tenancy policy allows.

Pure apart from reading a policy document that the caller found.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import AliasChoices, BaseModel, ValidationError

from common.config import IntegrationConfig, Problem, problems_of, settings_from_annotations
from common.integration import Context, Integration
from common.policy import Destinations, PolicyError, parse_policy


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
        return Settings(None, problems=problems_of(integration.config, integration.name, annotations, e))
    shown = config.model_dump(mode="json", by_alias=True)
    unset = frozenset(_key_of(integration.config, name) for name in type(config).model_fields) - {
        _key_of(integration.config, name) for name in config.model_fields_set
    }
    return Settings(shown, unset, [], config)


def _key_of(model: type[BaseModel], name: str) -> str:
    info = model.model_fields[name]
    if isinstance(info.validation_alias, AliasChoices):
        return str(info.validation_alias.choices[0])
    return info.alias or name


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
