"""Address safety: which IP addresses a user-supplied target may be connected to."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from common.addresses import refusal
from common.policy import NetworkPolicy

STRICT = NetworkPolicy("webhook", "ci", "namespaces.ci of the policy file /p.yaml")
"""No exceptions: nothing private."""
LOOPBACK = NetworkPolicy(
    "webhook",
    "ci",
    "namespaces.ci of the policy file /p.yaml",
    allow_http=True,
    allowed_networks=(ip_network("127.0.0.0/8"), ip_network("::1/128")),
)


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("100.100.100.200", "shared (carrier-grade NAT)"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.10", "reserved"),  # documentation range
        ("198.18.0.1", "reserved"),  # benchmarking
        ("2001:db8::1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: the same destination
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("::7f00:1", "reserved"),  # IPv4-compatible (deprecated)
    ],
)
def test_refused_address_classes(address: str, category: str) -> None:
    refused = refusal(ip_address(address), STRICT)
    assert refused is not None
    assert category in refused.why


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "172.32.0.1", "64:ff9b::5db8:d822"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ip_address(address), STRICT) is None


def test_allow_private_networks_opens_exactly_the_listed_ranges() -> None:
    policy = NetworkPolicy("webhook", "ci", "p", allowed_networks=(ip_network("10.20.0.0/16"),))
    assert refusal(ip_address("10.20.3.4"), policy) is None
    assert refusal(ip_address("10.21.0.1"), policy) is not None
    assert refusal(ip_address("127.0.0.1"), LOOPBACK) is None
    assert refusal(ip_address("::ffff:127.0.0.1"), LOOPBACK) is None


def test_unspecified_and_multicast_can_never_be_allowed() -> None:
    everything = NetworkPolicy(
        "webhook", "ci", "p", allowed_networks=(ip_network("0.0.0.0/0"), ip_network("::/0"))
    )
    for address in ("0.0.0.0", "::", "224.0.0.1", "255.255.255.255"):
        assert refusal(ip_address(address), everything) is not None, address
    assert refusal(ip_address("169.254.169.254"), everything) is None


def test_cluster_services_need_their_own_allowance_even_inside_an_allowed_range() -> None:
    services = (ip_network("10.96.0.0/12"),)
    wide = NetworkPolicy(
        "webhook",
        "ci",
        "p",
        allowed_networks=(ip_network("10.0.0.0/8"),),
        cluster_service_networks=services,
    )
    refused = refusal(ip_address("10.96.0.1"), wide)
    assert refused is not None
    assert refused.setting == "allowClusterServices"
    assert refusal(ip_address("10.200.0.1"), wide) is None
    allowed = NetworkPolicy(
        "webhook", "ci", "p", allow_cluster_services=True, cluster_service_networks=services
    )
    assert refusal(ip_address("10.96.0.1"), allowed) is None
    assert refusal(ip_address("10.200.0.1"), allowed) is not None, "only the service range is opened"
