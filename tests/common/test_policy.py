"""The tenancy policy: who may target what, how the file is read, and how a bad file is reported."""

from __future__ import annotations

import logging
import os
import re
from ipaddress import ip_network
from pathlib import Path

import pytest

from common import registry
from common.errors import TargetNotAllowedError, TemporaryError
from common.policy import Destinations, Policy, PolicyError, TargetsNothing, load_policy, parse_policy
from tests.support.policies import use_policy

REPO = Path(__file__).resolve().parents[2]

POLICY = """
default:
  github: {repositories: ["acme/*"]}
  slack: {channels: ["#ci-*", "C0123456"]}
  email: {domains: ["example.com"]}
  webhook: {hosts: ["hooks.example.com", "*.example.org"]}
namespaces:
  ci:
    github: {repositories: ["acme/widgets", "Acme/Gadgets"]}
    webhook: {hosts: ["hooks.example.com"], allowHttp: true, allowPrivateNetworks: ["10.20.0.0/16"],
              allowClusterServices: true}
  open: {}
  locked:
    github: {repositories: []}
clusterServiceNetworks: ["10.96.0.0/12"]
"""


def rule(name: str) -> Destinations:
    """The policy rule integration ``name`` declares."""
    loaded = registry.load(name).integration
    assert loaded is not None, registry.load(name).problem
    assert isinstance(loaded.policy, Destinations)
    return loaded.policy


def check_every_section(policy: Policy) -> None:
    """What every installed function checks at startup, each for its own section."""
    for declared in registry.declarations():
        policy.check(declared.name, declared.policy)


@pytest.mark.parametrize(
    ("namespace", "integration", "field", "value", "allowed"),
    [
        ("ci", "github", "repositories", "acme/widgets", True),
        ("ci", "github", "repositories", "ACME/WIDGETS", True),  # GitHub names are case-insensitive
        ("ci", "github", "repositories", "acme/gadgets", True),
        ("ci", "github", "repositories", "acme/other", False),  # ci's entry replaces default
        ("ci", "slack", "channels", "#anything", True),  # no slack key in ci: not restricted
        ("team-a", "github", "repositories", "acme/other", True),  # default
        ("team-a", "github", "repositories", "evil/widgets", False),
        ("team-a", "slack", "channels", "#ci-builds", True),
        ("team-a", "slack", "channels", "C0123456", True),
        ("team-a", "slack", "channels", "#random", False),
        ("team-a", "email", "domains", "Example.COM", True),
        ("team-a", "email", "domains", "example.com.evil.net", False),
        ("team-a", "webhook", "hosts", "a.b.example.org", True),
        ("team-a", "webhook", "hosts", "example.org", False),
        ("team-a", "webhook", "hosts", "hooks.example.com.", True),  # the same host, fully qualified
        ("team-a", "gitlab", "projects", "any/project", True),  # absent from default: not restricted
        ("open", "github", "repositories", "evil/widgets", True),
        ("locked", "github", "repositories", "acme/widgets", False),  # an empty list allows nothing
    ],
)
def test_allows_follows_the_namespace_entry_then_default(
    namespace: str, integration: str, field: str, value: str, allowed: bool
) -> None:
    policy = parse_policy(POLICY, "/etc/policy.yaml").for_namespace(namespace)
    assert rule(integration).field == field
    assert policy.allows(integration, rule(integration), value) is allowed


def test_without_a_default_unlisted_namespaces_may_target_nothing() -> None:
    policy = parse_policy("namespaces: {ci: {}}", "/p.yaml")
    assert policy.for_namespace("ci").allows("github", rule("github"), "a/b")
    stranger = policy.for_namespace("stranger")
    assert not stranger.allows("github", rule("github"), "a/b")
    assert stranger.network("webhook", rule("webhook")).hosts == ()
    with pytest.raises(TargetNotAllowedError) as refused:
        stranger.require("slack", rule("slack"), "#ci")
    assert "stranger" in refused.value.message
    assert "no default entry" in refused.value.message


def test_an_empty_file_allows_nothing() -> None:
    assert not parse_policy("", "/p.yaml").for_namespace("ci").allows("slack", rule("slack"), "#ci")


def test_a_refusal_names_the_namespace_the_value_and_where_the_policy_lives() -> None:
    policy = parse_policy(POLICY, "/etc/tekton-integrations/policy/policy.yaml").for_namespace("ci")
    with pytest.raises(TargetNotAllowedError) as refused:
        policy.require("github", rule("github"), "acme/secret-repo")
    error = refused.value
    assert error.reason == "TargetNotAllowed"
    assert 'namespace "ci"' in error.message
    assert "'acme/secret-repo'" in error.message
    assert "namespaces.ci of the policy file /etc/tekton-integrations/policy/policy.yaml" in error.message
    assert "github.repositories (acme/widgets, acme/gadgets)" in error.message


def test_network_settings_come_from_the_entry_and_the_cluster() -> None:
    policy = parse_policy(POLICY, "/p.yaml")
    ci = policy.for_namespace("ci").network("webhook", rule("webhook"))
    assert ci.allow_http
    assert ci.allow_cluster_services
    assert ci.allowed_networks == (ip_network("10.20.0.0/16"),)
    assert ci.cluster_service_networks == (ip_network("10.96.0.0/12"),)
    assert ci.allows_host("HOOKS.example.com")
    assert not ci.allows_host("x.example.org")
    other = policy.for_namespace("team-a").network("cloudevent", rule("cloudevent"))  # no key: defaults
    assert (other.hosts, other.allow_http, other.allowed_networks) == (None, False, ())
    assert other.cluster_service_networks == (ip_network("10.96.0.0/12"),)


def test_network_rules_are_only_for_url_based_integrations() -> None:
    policy = parse_policy(POLICY).for_namespace("ci")
    with pytest.raises(ValueError, match="not a URL-based integration"):
        policy.network("github", rule("github"))


def test_a_section_for_an_integration_that_is_not_installed_is_refused() -> None:
    with pytest.raises(PolicyError) as bad:
        parse_policy("default: {githib: {repositories: ['a/*']}}", "/etc/policy.yaml")
    assert "default.githib: no integration named 'githib' is installed" in bad.value.message
    assert "github" in bad.value.message, "the installed names are listed"


def test_every_declared_rule_has_a_section_shape() -> None:
    """Each installed integration either names its rule or says it targets nothing."""
    declared = registry.declarations()
    assert {d.name for d in declared} >= {"github", "slack", "webhook", "cloudevent", "gitlab", "email"}
    for integration in declared:
        if isinstance(integration.policy, Destinations):
            text = f"default: {{{integration.name}: {{{integration.policy.field}: ['x']}}}}"
            parse_policy(text, "/p.yaml").check(integration.name, integration.policy)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("default: {github: {repositorys: ['a/*']}}", "default.github.repositorys: unknown key"),
        ("default: {webhook: {allowHttp: 'yes please'}}", "default.webhook.allowHttp"),
        ("namespaces: {ci: {webhook: {allowPrivateNetworks: ['10.0.0.1/8']}}}", "not a network in CIDR"),
        ("clusterServiceNetworks: ['ten']", "clusterServiceNetworks.0"),
        ("namespaces: {ci: }", "namespaces.ci"),
        ("default: {slack: {channels: '#ci'}}", "default.slack.channels"),
        ("- a list", "must hold a mapping"),
        ("default: {github: [unclosed", "not valid YAML"),
        ("tenants: {}", "tenants: unknown key"),
    ],
)
def test_a_malformed_file_is_reported_with_its_path_and_the_problem(text: str, complaint: str) -> None:
    with pytest.raises(PolicyError) as bad:
        check_every_section(parse_policy(text, "/etc/policy.yaml"))
    assert isinstance(bad.value, TemporaryError), "nothing may be sent, and the event is redelivered"
    assert bad.value.reason == "PolicyInvalid"
    assert "/etc/policy.yaml" in bad.value.message
    assert complaint in bad.value.message


def test_a_missing_file_allows_everything_and_is_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TI_POLICY_FILE", str(tmp_path / "absent.yaml"))
    with caplog.at_level(logging.INFO, logger="common.policy"):
        for _ in range(3):
            policy = load_policy().for_namespace("anyone")
    assert policy.allows("github", rule("github"), "any/repo")
    network = policy.network("webhook", rule("webhook"))
    assert network.hosts is None
    assert not network.allow_http, "address safety still applies"
    assert not network.allowed_networks
    warnings = [r for r in caplog.records if r.name == "common.policy"]
    assert len(warnings) == 1
    assert str(tmp_path / "absent.yaml") in warnings[0].getMessage()


def test_the_file_is_read_once_and_again_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = use_policy(monkeypatch, tmp_path, {"default": {"github": {"repositories": ["acme/*"]}}})
    first = load_policy()
    assert load_policy() is first
    path.write_text("default: {github: {repositories: ['other/*', 'more/*']}}", encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    changed = load_policy().for_namespace("ci")
    assert changed.allows("github", rule("github"), "other/x")
    assert not changed.allows("github", rule("github"), "acme/x")


def test_a_file_broken_later_raises_at_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = use_policy(monkeypatch, tmp_path, {"default": {}})
    load_policy()
    path.write_text("default: {webhook: {hosts: [}", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy()


def test_the_examples_in_docs_policy_md_are_valid() -> None:
    text = (REPO / "docs" / "policy.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 2, "docs/policy.md lost its YAML examples"
    for block in blocks:
        policy = parse_policy(block, "docs/policy.md")
        check_every_section(policy)
        assert policy.document is not None
        assert policy.document.namespaces


# -- failed-step logs and templates -----------------------------------------------------------

PRESENTATION = """
default:
  github: {repositories: ["acme/*"], logLines: 20, templates: [short, detailed]}
  slack: {logLines: 0}
namespaces:
  ci:
    github: {templates: []}
    slack: {channels: ["#ci-*"]}
  open: {}
"""


@pytest.mark.parametrize(
    ("namespace", "integration", "cap"),
    [
        ("team-a", "github", 20),
        ("team-a", "slack", 0),  # forbidden
        ("team-a", "email", None),  # no section: not capped
        ("ci", "github", None),  # a section without logLines: not capped
        ("open", "slack", None),
    ],
)
def test_log_lines_are_capped_or_forbidden_per_namespace(
    namespace: str, integration: str, cap: int | None
) -> None:
    policy = parse_policy(PRESENTATION, "/p.yaml").for_namespace(namespace)
    assert policy.log_lines_cap(integration) == cap


@pytest.mark.parametrize(
    ("namespace", "integration", "template", "allowed"),
    [
        ("team-a", "github", "short", True),
        ("team-a", "github", "Short", False),  # names are a ConfigMap's keys: exact
        ("team-a", "github", "other", False),
        ("team-a", "slack", "anything", True),  # no templates key: any
        ("ci", "github", "short", False),  # an empty list allows none
        ("ci", "teams", "short", True),
    ],
)
def test_templates_are_restricted_per_namespace(
    namespace: str, integration: str, template: str, allowed: bool
) -> None:
    policy = parse_policy(PRESENTATION, "/p.yaml").for_namespace(namespace)
    assert policy.allows_template(integration, template) is allowed


def test_without_a_file_logs_and_templates_are_free_and_without_an_entry_forbidden() -> None:
    free = Policy("/absent.yaml", None).for_namespace("ci")
    assert free.log_lines_cap("github") is None
    assert free.allows_template("github", "short")
    stranger = parse_policy("namespaces: {ci: {}}", "/p.yaml").for_namespace("stranger")
    assert stranger.log_lines_cap("github") == 0
    assert not stranger.allows_template("github", "short")


def test_the_presentation_keys_are_valid_in_every_section() -> None:
    policy = parse_policy(PRESENTATION, "/p.yaml")
    check_every_section(policy)
    for integration in registry.declarations():
        parse_policy(f"default: {{{integration.name}: {{logLines: 5, templates: [a]}}}}").check(
            integration.name, integration.policy
        )


def test_an_integration_that_targets_nothing_may_have_only_the_presentation_keys() -> None:
    policy = parse_policy("default: {github: {logLines: 3}}", "/p.yaml", known=lambda: ["github"])
    policy.check("github", TargetsNothing())
    wider = parse_policy("default: {github: {repositories: [a/b]}}", "/p.yaml", known=lambda: ["github"])
    with pytest.raises(PolicyError) as bad:
        wider.check("github", TargetsNothing())
    assert "default.github.repositories: unknown key" in bad.value.message
    assert "github targets nothing a run chooses" in bad.value.message


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("default: {github: {logLines: -1}}", "default.github.logLines"),
        ("default: {github: {logLines: 500}}", "default.github.logLines"),
        ("default: {github: {logLines: '20'}}", "default.github.logLines"),
        ("default: {github: {logLines: true}}", "default.github.logLines"),
        ("default: {github: {templates: short}}", "default.github.templates"),
        ("default: {github: {templates: ['no spaces']}}", "default.github.templates.0"),
        ("default: {github: {template: [short]}}", "default.github.template: unknown key"),
    ],
)
def test_bad_presentation_keys_are_reported_by_the_check_and_at_use(text: str, complaint: str) -> None:
    policy = parse_policy(text, "/etc/policy.yaml")
    with pytest.raises(PolicyError) as bad:
        check_every_section(policy)
    assert complaint in bad.value.message
    if "unknown key" not in complaint:  # what a function reads, it refuses to guess
        with pytest.raises(PolicyError, match=re.escape(complaint)):
            policy.for_namespace("ci").log_lines_cap("github")
