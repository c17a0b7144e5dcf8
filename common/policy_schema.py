"""The policy file's schema (docs/policy.md): the pydantic models its YAML is validated with.

Owned by ``common.policy``, which imports this module only when a policy file is read: a function
without one (and every function before its first read) builds none of these models.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    create_model,
)

from common.config import MAX_LOG_LINES
from common.policy import Destinations, TargetsNothing

IPNetwork = IPv4Network | IPv6Network
Section = Mapping[str, Any]


def _network(value: object) -> object:
    if isinstance(value, str):
        try:
            return ip_network(value.strip())
        except ValueError as e:
            raise ValueError(f"{value!r} is not a network in CIDR notation (e.g. 10.20.0.0/16): {e}") from e
    return value


def _lowered(values: object) -> object:
    if isinstance(values, list | tuple):
        return tuple(v.strip().rstrip(".").lower() if isinstance(v, str) else v for v in values)
    return values


Network = Annotated[IPNetwork, BeforeValidator(_network)]
Patterns = Annotated[tuple[StrictStr, ...], BeforeValidator(_lowered)]
TemplateName = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
"""A template's name, as a run's ``template`` annotation names it (``common.config.Templated``)."""


class Entry(BaseModel):
    """A section, or the whole file: nothing but the keys it declares."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


class Presentation(Entry):
    """What every section may also say about the messages the namespace's runs get."""

    log_lines: StrictInt | None = Field(None, alias="logLines", ge=0, le=MAX_LOG_LINES)
    """``logLines``: the most lines of a failed step's log a run may show; 0 forbids reading logs."""
    templates: tuple[TemplateName, ...] | None = None
    """``templates``: the operator's templates the runs may select; absent, any of them."""


class PresentationView(Presentation):
    """``Presentation`` read from a section whose other keys are validated elsewhere (``Policy.check``)."""

    model_config = ConfigDict(extra="ignore")


class AddressRules(Presentation):
    """Address-safety exceptions of a section whose rule has ``network=True``."""

    allow_http: StrictBool = Field(False, alias="allowHttp")
    allow_private_networks: tuple[Network, ...] = Field((), alias="allowPrivateNetworks")
    allow_cluster_services: StrictBool = Field(False, alias="allowClusterServices")


class PolicyDocument(Entry):
    default: dict[StrictStr, Section] | None = None
    namespaces: dict[StrictStr, dict[StrictStr, Section]] = Field(default_factory=dict)
    cluster_service_networks: tuple[Network, ...] = Field((), alias="clusterServiceNetworks")


@cache
def section_model(rule: Destinations | TargetsNothing) -> type[Entry]:
    """The pydantic model of a section for ``rule``: its field, plus address rules if ``network``;
    every section also takes the ``Presentation`` keys (all a ``TargetsNothing`` section may hold)."""
    if isinstance(rule, TargetsNothing):
        return Presentation
    base: type[Entry] = AddressRules if rule.network else Presentation
    fields: dict[str, Any] = {rule.field: (Patterns | None, None)}
    model: type[Entry] = create_model(f"{rule.field.title()}Section", __base__=base, **fields)
    return model
