"""The namespace tenancy policy: which destinations each namespace's runs may target.

Owns reading and validating the policy file and answering "may namespace N target X?". It makes
no network calls: address safety for URLs (loopback, private ranges, DNS) is ``common.targets``,
which reads its per-namespace settings from the ``NetworkPolicy`` built here. Format and
semantics for operators: docs/policy.md.

The file is YAML at ``$TI_POLICY_FILE`` (default ``/etc/tekton-integrations/policy/policy.yaml``,
mounted from a ConfigMap)::

    default:                       # namespaces not listed below; absent: they may target nothing
      github: {repositories: ["acme/*"]}
      slack: {channels: ["#ci-*"]}
      webhook: {hosts: ["hooks.example.com"], allowHttp: false, allowPrivateNetworks: ["10.20.0.0/16"]}
    namespaces:
      ci: {...same shape as default...}
    clusterServiceNetworks: ["10.96.0.0/12"]

API, for integrations:

- ``load_policy() -> Policy``: the current policy. Cached per process and per path, re-read when
  the file changes (ConfigMap updates need no restart). A missing file means allow-all, logged
  once as a warning. A malformed file raises ``PolicyError`` (a ``TemporaryError``: nothing is
  sent, the event is answered 503 and redelivered, until the operator fixes the file). Call it once
  at startup too, so a bad file is reported before the first event.
- ``Policy.for_namespace(ns) -> NamespacePolicy``.
- ``NamespacePolicy.allows(integration, field, value) -> bool`` and ``.require(...)``, which raises
  ``common.errors.TargetNotAllowedError`` naming the namespace, the value and the policy entry.
  ``(integration, field)`` is one of ``NAME_FIELDS``, e.g. ``("github", "repositories")`` with
  ``"owner/repo"``, ``("slack", "channels")`` with ``"#ci"`` or a channel id, ``("email",
  "domains")`` with the address's domain, ``("webhook", "hosts")`` with a host name.
- ``NamespacePolicy.network(integration) -> NetworkPolicy`` for ``webhook`` and ``cloudevent``.

Integrations rarely call ``require`` themselves: they list what a call targets in
``Integration.destinations`` and the runtime checks each value before any claim or call.

Matching: patterns are ``fnmatch`` globs (``*``, ``?``, ``[...]``), compared case-insensitively
(GitHub and GitLab paths, Slack channels, domains and hosts are all case-insensitive services).
An integration key absent from a namespace's entry means no restriction by name for that
integration; a field absent from an integration's entry means no restriction by that field; an
empty list allows nothing. A listed namespace gets exactly its entry: ``default`` is not merged in.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from common.errors import TargetNotAllowedError, TemporaryError, clip

log = logging.getLogger(__name__)

POLICY_FILE_ENV = "TI_POLICY_FILE"
DEFAULT_POLICY_FILE = "/etc/tekton-integrations/policy/policy.yaml"

NAME_FIELDS: Mapping[str, str] = {
    "github": "repositories",
    "gitlab": "projects",
    "slack": "channels",
    "email": "domains",
    "webhook": "hosts",
    "cloudevent": "hosts",
}
"""The one name field each integration's policy entry restricts, by integration."""
NETWORK_INTEGRATIONS = frozenset({"webhook", "cloudevent"})
"""Integrations that send to URLs from annotations, with the address-safety settings."""
_NOUNS = {
    "repositories": "repository",
    "projects": "project",
    "channels": "channel",
    "domains": "domain",
    "hosts": "host",
}

IPNetwork = IPv4Network | IPv6Network


class PolicyError(TemporaryError):
    """The policy file cannot be read or is malformed; nothing is sent until it is fixed."""

    def __init__(self, message: str) -> None:
        super().__init__("PolicyInvalid", message)


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


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


class GitHubRules(_Entry):
    repositories: Patterns | None = None


class GitLabRules(_Entry):
    projects: Patterns | None = None


class SlackRules(_Entry):
    channels: Patterns | None = None


class EmailRules(_Entry):
    domains: Patterns | None = None


class AddressRules(_Entry):
    """Policy for an integration that sends to URLs: hosts by name, and address-safety exceptions."""

    hosts: Patterns | None = None
    allow_http: StrictBool = Field(False, alias="allowHttp")
    allow_private_networks: tuple[Network, ...] = Field((), alias="allowPrivateNetworks")
    allow_cluster_services: StrictBool = Field(False, alias="allowClusterServices")


class NamespaceRules(_Entry):
    """One namespace's entry (or ``default``): an optional section per integration."""

    github: GitHubRules | None = None
    gitlab: GitLabRules | None = None
    slack: SlackRules | None = None
    email: EmailRules | None = None
    webhook: AddressRules | None = None
    cloudevent: AddressRules | None = None


class PolicyDocument(_Entry):
    default: NamespaceRules | None = None
    namespaces: dict[StrictStr, NamespaceRules] = Field(default_factory=dict)
    cluster_service_networks: tuple[Network, ...] = Field((), alias="clusterServiceNetworks")


_NO_RULES = NamespaceRules()


@dataclass(frozen=True)
class NetworkPolicy:
    """What one namespace may send to with one URL-based integration; read by ``common.targets``.

    ``hosts`` is ``None`` when host names are not restricted. ``trusted`` is for destinations the
    operator configured (e.g. ``CLOUDEVENT_DEFAULT_SINK``), which skip the host and address checks.
    """

    integration: str
    namespace: str
    where: str
    hosts: tuple[str, ...] | None = None
    allow_http: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    allow_cluster_services: bool = False
    cluster_service_networks: tuple[IPNetwork, ...] = ()
    trusted: bool = False

    @classmethod
    def operator_configured(cls, integration: str, where: str) -> NetworkPolicy:
        """For a destination from the function's own configuration, not from a user's annotation."""
        return cls(integration, namespace="", where=where, allow_http=True, trusted=True)

    def allows_host(self, host: str) -> bool:
        return self.trusted or self.hosts is None or _matches(self.hosts, host)

    def setting(self, name: str) -> str:
        """Where an operator changes ``name``, for messages: ``webhook.allowHttp in namespaces.ci of ...``."""
        return f"{self.integration}.{name} in {self.where}"


@dataclass(frozen=True)
class NamespacePolicy:
    """The rules for one namespace: an entry of the file, allow-all (no file) or deny-all."""

    namespace: str
    mode: Literal["entry", "allow-all", "deny-all"]
    where: str
    rules: NamespaceRules = _NO_RULES
    cluster_service_networks: tuple[IPNetwork, ...] = ()

    def allows(self, integration: str, field: str, value: str) -> bool:
        """Whether the namespace may target ``value`` (e.g. ``"acme/widgets"``) with ``integration``."""
        _check_field(integration, field)
        if self.mode != "entry":
            return self.mode == "allow-all"
        section = getattr(self.rules, integration)
        patterns: tuple[str, ...] | None = getattr(section, field) if section is not None else None
        return patterns is None or _matches(patterns, value)

    def require(self, integration: str, field: str, value: str) -> None:
        """Raise ``TargetNotAllowedError`` unless ``allows(integration, field, value)``."""
        if not self.allows(integration, field, value):
            raise TargetNotAllowedError(self.refusal(integration, field, value))

    def refusal(self, integration: str, field: str, value: str) -> str:
        """The message for a refused ``value``: who, what, and which policy entry decided."""
        noun = f"{integration} {_NOUNS.get(field, field)} {value!r}"
        if self.mode == "deny-all":
            return (
                f'namespace "{self.namespace}" may not target {noun}: {self.where} has no entry for it '
                "and no default entry"
            )
        section = getattr(self.rules, integration)
        allowed = ", ".join(getattr(section, field) or ()) or "nothing"
        return clip(
            f'namespace "{self.namespace}" may not target {noun}: not matched by '
            f"{integration}.{field} ({allowed}) in {self.where}",
            500,
        )

    def network(self, integration: str) -> NetworkPolicy:
        """Host and address rules for a URL-based integration (``webhook``, ``cloudevent``)."""
        if integration not in NETWORK_INTEGRATIONS:
            raise ValueError(f"{integration!r} is not a URL-based integration")
        base = NetworkPolicy(
            integration, self.namespace, self.where, cluster_service_networks=self.cluster_service_networks
        )
        if self.mode == "deny-all":
            return NetworkPolicy(integration, self.namespace, self.where, hosts=())
        section: AddressRules | None = getattr(self.rules, integration)
        if self.mode == "allow-all" or section is None:
            return base
        return NetworkPolicy(
            integration,
            self.namespace,
            self.where,
            hosts=section.hosts,
            allow_http=section.allow_http,
            allowed_networks=section.allow_private_networks,
            allow_cluster_services=section.allow_cluster_services,
            cluster_service_networks=self.cluster_service_networks,
        )


@dataclass(frozen=True)
class Policy:
    """The whole policy file, or allow-all when there is none (``document`` is ``None``)."""

    path: str
    document: PolicyDocument | None

    def for_namespace(self, namespace: str) -> NamespacePolicy:
        where = f"the policy file {self.path}"
        if self.document is None:
            return NamespacePolicy(namespace, "allow-all", f"{where}, which does not exist yet")
        networks = self.document.cluster_service_networks
        if namespace in self.document.namespaces:
            rules = self.document.namespaces[namespace]
            return NamespacePolicy(namespace, "entry", f"namespaces.{namespace} of {where}", rules, networks)
        if self.document.default is not None:
            return NamespacePolicy(namespace, "entry", f"default of {where}", self.document.default, networks)
        return NamespacePolicy(namespace, "deny-all", where, cluster_service_networks=networks)


def parse_policy(text: str, path: str = "<policy>") -> Policy:
    """Validate the YAML ``text`` of a policy file; raise ``PolicyError`` naming what is wrong."""
    import yaml  # noqa: PLC0415 -- only when a policy file exists

    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PolicyError(f"the policy file {path} is not valid YAML: {clip(str(e), 300)}") from e
    if data is None:
        data = {}  # an empty file: no default, no namespaces, so nothing is allowed
    if not isinstance(data, Mapping):
        raise PolicyError(f"the policy file {path} must hold a mapping (default, namespaces, ...)")
    try:
        return Policy(path, PolicyDocument.model_validate(data))
    except ValidationError as e:
        problems = "; ".join(_describe(error) for error in e.errors())
        raise PolicyError(clip(f"the policy file {path} is invalid: {problems}", 900)) from e


_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, ...], Policy]] = {}
_warned_missing: set[str] = set()


def policy_path() -> str:
    return os.environ.get(POLICY_FILE_ENV) or DEFAULT_POLICY_FILE


def load_policy() -> Policy:
    """The policy at ``$TI_POLICY_FILE``, re-read only when the file changed. See the module doc."""
    path = policy_path()
    try:
        stat = os.stat(path)  # follows the ConfigMap's ..data symlink, so an update is seen
    except FileNotFoundError:
        with _lock:
            if path not in _warned_missing:
                _warned_missing.add(path)
                log.warning(
                    "no policy file at %s: every namespace may target every destination "
                    "(address safety for webhook/cloudevent still applies); see docs/policy.md",
                    path,
                )
        return Policy(path, None)
    except OSError as e:
        raise PolicyError(f"the policy file {path} cannot be read: {e.strerror}") from e
    signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_dev)
    with _lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == signature:
            return cached[1]
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyError(f"the policy file {path} cannot be read: {e}") from e
    policy = parse_policy(text, path)
    with _lock:
        _cache[path] = (signature, policy)
        _warned_missing.discard(path)
    return policy


def _matches(patterns: tuple[str, ...], value: str) -> bool:
    value = value.strip().rstrip(".").lower()
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def _check_field(integration: str, field: str) -> None:
    if NAME_FIELDS.get(integration) != field:
        raise ValueError(f"the policy has no field {integration}.{field}; see common.policy.NAME_FIELDS")


def _describe(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "(top level)"
    if error.get("type") == "extra_forbidden":
        return f"{where}: unknown key"
    message = str(error.get("msg", "invalid"))
    return f"{where}: {message.removeprefix('Value error, ')}"
