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

Sections are not listed here: each integration declares its rule (``Destinations``: the field
that names what it targets, and whether its targets are URLs with address-safety settings), and
a section is named after an integration the registry knows. A section for an unknown name is an
error everywhere; a section's content is checked by ``Policy.check(name, rule)``, which every
function runs for its own rule at startup, and the CLI for every rule.

API, for the runtime and integrations:

- ``load_policy() -> Policy``: the current policy. Cached per process and per path, re-read when
  the file changes (ConfigMap updates need no restart). A missing file means allow-all, logged
  once at INFO. A malformed file raises ``PolicyError`` (a ``TemporaryError``: nothing is sent,
  the event is answered 503 and redelivered, until the operator fixes the file).
- ``Policy.for_namespace(ns) -> NamespacePolicy``.
- ``NamespacePolicy.allows(name, rule, value) -> bool`` and ``.require(...)``, which raises
  ``common.errors.TargetNotAllowedError`` naming the namespace, the value and the policy entry.
- ``NamespacePolicy.network(name, rule) -> NetworkPolicy`` for a rule with ``network=True``.
- ``NamespacePolicy.log_lines_cap(name) -> int | None`` (section key ``logLines``: the most lines
  of a failed step's log a run may show, 0 forbids reading them; ``None``: not capped) and
  ``.allows_template(name, template) -> bool`` (section key ``templates``: the operator's
  templates a run may select; absent, any). Every section may hold these two keys, also that of
  an integration that targets nothing.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from common.errors import TargetNotAllowedError, TemporaryError, clip

if TYPE_CHECKING:  # the file's schema is built when a policy file is first read (policy_schema)
    from common.policy_schema import Entry, PolicyDocument, PresentationView

log = logging.getLogger(__name__)

POLICY_FILE_ENV = "TI_POLICY_FILE"
DEFAULT_POLICY_FILE = "/etc/tekton-integrations/policy/policy.yaml"

IPNetwork = IPv4Network | IPv6Network


@dataclass(frozen=True)
class Destinations:
    """An integration's policy rule: its section holds ``field``, a list of patterns of ``noun``s.

    ``network``: the destinations are URL hosts, and the section also takes the address-safety
    settings ``allowHttp``, ``allowPrivateNetworks`` and ``allowClusterServices``.
    """

    field: str
    noun: str
    network: bool = False


@dataclass(frozen=True)
class TargetsNothing:
    """An integration whose destinations are fixed by the operator, never by a run."""


class PolicyError(TemporaryError):
    """The policy file cannot be read or is malformed; nothing is sent until it is fixed."""

    def __init__(self, message: str) -> None:
        super().__init__("PolicyInvalid", message)


Section = Mapping[str, Any]


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
    sections: Mapping[str, Section] | None = None
    cluster_service_networks: tuple[IPNetwork, ...] = ()
    entry: str = ""
    """``default`` or ``namespaces.<ns>``: where in the file the sections are."""
    path: str = ""

    def log_lines_cap(self, name: str) -> int | None:
        """The most lines of a failed step's log integration ``name`` may show for this namespace's
        runs: ``None`` when not capped, 0 when reading logs is forbidden (deny-all: nothing is)."""
        if self.mode != "entry":
            return None if self.mode == "allow-all" else 0
        view = self._presentation(name)
        return view.log_lines if view is not None else None

    def allows_template(self, name: str, template: str) -> bool:
        """Whether this namespace's runs may have integration ``name`` render the operator's
        template ``template`` (its section's ``templates``; absent: any)."""
        if self.mode != "entry":
            return self.mode == "allow-all"
        view = self._presentation(name)
        return view is None or view.templates is None or template in view.templates

    def _presentation(self, name: str) -> PresentationView | None:
        """The ``logLines`` and ``templates`` of integration ``name``'s section, ``None`` without one."""
        raw = (self.sections or {}).get(name)
        if raw is None:
            return None
        from pydantic import ValidationError  # noqa: PLC0415 -- a section is validated only for a file

        from common.policy_schema import PresentationView  # noqa: PLC0415

        if not isinstance(raw, Mapping):
            raise PolicyError(
                f"the policy file {self.path} is invalid: {self.entry}.{name}: must be a mapping"
            )
        try:
            return PresentationView.model_validate(raw)
        except ValidationError as e:
            problems = "; ".join(f"{self.entry}.{name}.{_describe(error)}" for error in e.errors())
            raise PolicyError(clip(f"the policy file {self.path} is invalid: {problems}", 900)) from e

    def section(self, name: str, rule: Destinations) -> Entry | None:
        """The validated section of integration ``name``, ``None`` when the entry has none."""
        raw = (self.sections or {}).get(name)
        if raw is None:
            return None
        return _validated_section(name, rule, raw, self.entry, self.path)

    def allows(self, name: str, rule: Destinations, value: str) -> bool:
        """Whether the namespace may target ``value`` (e.g. ``"acme/widgets"``) with integration ``name``."""
        if self.mode != "entry":
            return self.mode == "allow-all"
        section = self.section(name, rule)
        patterns: tuple[str, ...] | None = getattr(section, rule.field) if section is not None else None
        return patterns is None or _matches(patterns, value)

    def require(self, name: str, rule: Destinations, value: str) -> None:
        """Raise ``TargetNotAllowedError`` unless ``allows(name, rule, value)``."""
        if not self.allows(name, rule, value):
            raise TargetNotAllowedError(self.refusal(name, rule, value))

    def refusal(self, name: str, rule: Destinations, value: str) -> str:
        """The message for a refused ``value``: who, what, and which policy entry decided."""
        noun = f"{name} {rule.noun} {value!r}"
        if self.mode == "deny-all":
            return (
                f'namespace "{self.namespace}" may not target {noun}: {self.where} has no entry for it '
                "and no default entry"
            )
        section = self.section(name, rule)
        allowed = ", ".join(getattr(section, rule.field) or ()) or "nothing"
        return clip(
            f'namespace "{self.namespace}" may not target {noun}: not matched by '
            f"{name}.{rule.field} ({allowed}) in {self.where}",
            500,
        )

    def network(self, name: str, rule: Destinations) -> NetworkPolicy:
        """Host and address rules for a URL-based integration (a rule with ``network=True``)."""
        if not rule.network:
            raise ValueError(f"{name!r} is not a URL-based integration")
        base = NetworkPolicy(
            name, self.namespace, self.where, cluster_service_networks=self.cluster_service_networks
        )
        if self.mode == "deny-all":
            return NetworkPolicy(name, self.namespace, self.where, hosts=())
        section = self.section(name, rule)
        if self.mode == "allow-all" or section is None:
            return base
        from common.policy_schema import AddressRules  # noqa: PLC0415 -- loaded with the file

        assert isinstance(section, AddressRules)
        return NetworkPolicy(
            name,
            self.namespace,
            self.where,
            hosts=getattr(section, rule.field),
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
            entry, sections = f"namespaces.{namespace}", self.document.namespaces[namespace]
        elif self.document.default is not None:
            entry, sections = "default", self.document.default
        else:
            return NamespacePolicy(namespace, "deny-all", where, cluster_service_networks=networks)
        return NamespacePolicy(
            namespace, "entry", f"{entry} of {where}", sections, networks, entry, self.path
        )

    def check(self, name: str, rule: Destinations | TargetsNothing) -> None:
        """Validate every section of integration ``name`` against its rule; raise ``PolicyError``."""
        if self.document is None:
            return
        entries = [("default", self.document.default or {})] + [
            (f"namespaces.{namespace}", sections) for namespace, sections in self.document.namespaces.items()
        ]
        for where, sections in entries:
            if name in sections:
                _validated_section(name, rule, sections[name], where, self.path)


def parse_policy(text: str, path: str = "<policy>", known: Callable[[], list[str]] | None = None) -> Policy:
    """Validate the YAML ``text`` of a policy file; raise ``PolicyError`` naming what is wrong.

    ``known`` lists the integration names a section may have (default: the registry's, asked
    name by name, so that a function's startup reads no package metadata for its own name).
    """
    import yaml  # noqa: PLC0415 -- only when a policy file exists
    from pydantic import ValidationError  # noqa: PLC0415

    from common.policy_schema import PolicyDocument  # noqa: PLC0415 -- the schema, built for a file

    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PolicyError(f"the policy file {path} is not valid YAML: {clip(str(e), 300)}") from e
    if data is None:
        data = {}  # an empty file: no default, no namespaces, so nothing is allowed
    if not isinstance(data, Mapping):
        raise PolicyError(f"the policy file {path} must hold a mapping (default, namespaces, ...)")
    try:
        document = PolicyDocument.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(_describe(error) for error in e.errors())
        raise PolicyError(clip(f"the policy file {path} is invalid: {problems}", 900)) from e
    _check_names(document, path, known)
    return Policy(path, document)


def _check_names(document: PolicyDocument, path: str, known: Callable[[], list[str]] | None) -> None:
    from common import registry  # noqa: PLC0415 -- the registry imports declarations, which import this

    entries = [("default", document.default or {})] + [
        (f"namespaces.{namespace}", sections) for namespace, sections in document.namespaces.items()
    ]
    listed = set(known()) if known is not None else None
    for where, sections in entries:
        for name in sections:
            if name in listed if listed is not None else registry.installed(name):
                continue
            names = listed if listed is not None else registry.names()
            raise PolicyError(
                f"the policy file {path} is invalid: {where}.{name}: no integration named {name!r} "
                f"is installed (installed: {', '.join(sorted(names))})"
            )


def _validated_section(
    name: str, rule: Destinations | TargetsNothing, raw: Any, entry: str, path: str
) -> Entry:
    """``raw`` checked against ``rule``; errors name ``<entry>.<name>.<key>`` in the file at ``path``.

    A ``TargetsNothing`` integration's section may hold only ``logLines`` and ``templates``."""
    from pydantic import ValidationError  # noqa: PLC0415 -- a section is validated only for a file

    from common.policy_schema import section_model  # noqa: PLC0415

    where = f"the policy file {path} is invalid: {entry}.{name}"
    if not isinstance(raw, Mapping):
        keys = (
            f"{rule.field}, logLines or templates"
            if isinstance(rule, Destinations)
            else "logLines or templates"
        )
        raise PolicyError(f"{where}: must be a mapping with {keys}")
    try:
        return section_model(rule).model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(f"{entry}.{name}.{_describe(error)}" for error in e.errors())
        if isinstance(rule, TargetsNothing):
            problems += (
                f" ({name} targets nothing a run chooses: its section holds only logLines and templates)"
            )
        raise PolicyError(clip(f"the policy file {path} is invalid: {problems}", 900)) from e


_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, ...], Policy]] = {}
_noted_missing: set[str] = set()


def policy_path() -> str:
    return os.environ.get(POLICY_FILE_ENV) or DEFAULT_POLICY_FILE


def load_policy() -> Policy:
    """The policy at ``$TI_POLICY_FILE``, re-read only when the file changed. See the module doc."""
    path = policy_path()
    try:
        stat = os.stat(path)  # follows the ConfigMap's ..data symlink, so an update is seen
    except FileNotFoundError:
        with _lock:
            if path not in _noted_missing:
                _noted_missing.add(path)
                log.info(
                    "no policy file at %s: every namespace may target every destination "
                    "(address safety for URL targets still applies); see docs/policy.md",
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
        _noted_missing.discard(path)
    return policy


def _matches(patterns: tuple[str, ...], value: str) -> bool:
    value = value.strip().rstrip(".").lower()
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def _describe(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "(top level)"
    if error.get("type") == "extra_forbidden":
        return f"{where}: unknown key"
    message = str(error.get("msg", "invalid"))
    return f"{where}: {message.removeprefix('Value error, ')}"
