"""Which IP addresses a user-supplied target may be connected to. Pure: no I/O.

Refused, unless the namespace's ``NetworkPolicy`` allows them (DESIGN.md §4; docs/policy.md):

- never allowable: unspecified (0.0.0.0/8, ::), multicast and broadcast addresses;
- the cluster's service networks, unless ``allowClusterServices`` (checked first, so a wider
  ``allowPrivateNetworks`` range does not open them);
- unless listed in ``allowPrivateNetworks``: loopback, link-local (169.254.0.0/16 with cloud
  metadata, fe80::/10), private (10/8, 172.16/12, 192.168/16, fc00::/7), shared/CGNAT
  100.64.0.0/10 (Alibaba Cloud's metadata lives there, and some clusters put pods there) and
  every other non-global or reserved range.

IPv4-mapped (::ffff:0:0/96) and NAT64 (64:ff9b::/96) addresses are judged as the IPv4 address
they lead to; 6to4, Teredo and IPv4-compatible addresses are refused when the IPv4 inside them
would be. ``common.targets`` applies this to every address a host name resolves to.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

from common.policy import NetworkPolicy

IPAddress = IPv4Address | IPv6Address

_NEVER_ALLOWED: tuple[tuple[str, tuple[IPv4Network | IPv6Network, ...]], ...] = (
    ("unspecified", (ip_network("0.0.0.0/8"), ip_network("::/128"))),
    ("multicast", (ip_network("224.0.0.0/4"), ip_network("ff00::/8"))),
    ("broadcast", (ip_network("255.255.255.255/32"),)),
)
_REFUSED: tuple[tuple[str, tuple[IPv4Network | IPv6Network, ...]], ...] = (
    ("loopback", (ip_network("127.0.0.0/8"), ip_network("::1/128"))),
    ("link-local", (ip_network("169.254.0.0/16"), ip_network("fe80::/10"))),
    (
        "private",
        (
            ip_network("10.0.0.0/8"),
            ip_network("172.16.0.0/12"),
            ip_network("192.168.0.0/16"),
            ip_network("fc00::/7"),
        ),
    ),
    ("shared (carrier-grade NAT)", (ip_network("100.64.0.0/10"),)),
)
_NAT64 = ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ip_network("::/96")


@dataclass(frozen=True)
class Refusal:
    """Why an address is refused, and the policy setting that would allow it (``None``: nothing)."""

    why: str
    setting: str | None

    def __str__(self) -> str:
        return self.why


def refusal(address: IPAddress, network: NetworkPolicy) -> Refusal | None:
    """Why ``address`` may not be connected to under ``network``, or ``None`` when it may."""
    if network.trusted:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # the same destination, spelled as IPv6
    elif isinstance(address, IPv6Address) and address in _NAT64:
        address = IPv4Address(int(address) & 0xFFFFFFFF)  # DNS64/NAT64: judged as the IPv4 behind it
    refused = _refusal(address, network)
    if refused is not None:
        return refused
    for embedded in _embedded_ipv4(address):
        refused = _refusal(embedded, network)
        if refused is not None:
            return Refusal(f"{refused.why}, embedded in {address}", refused.setting)
    return None


def _refusal(address: IPAddress, network: NetworkPolicy) -> Refusal | None:
    for name, networks in _NEVER_ALLOWED:
        if any(address in net for net in networks):
            return Refusal(f"{name} address {address}", None)
    for net in network.cluster_service_networks:
        if address in net:
            if network.allow_cluster_services:
                return None
            return Refusal(f"cluster service address {address} (in {net})", "allowClusterServices")
    if any(address in net for net in network.allowed_networks):
        return None
    for name, networks in _REFUSED:
        if any(address in net for net in networks):
            return Refusal(f"{name} address {address}", "allowPrivateNetworks")
    if not address.is_global or address.is_reserved:
        return Refusal(f"reserved or special-purpose address {address}", "allowPrivateNetworks")
    return None


def _embedded_ipv4(address: IPAddress) -> list[IPv4Address]:
    """IPv4 addresses inside an IPv6 address that tunnels may deliver to (6to4, Teredo, compatible)."""
    if not isinstance(address, IPv6Address):
        return []
    embedded: list[IPv4Address] = []
    if address.sixtofour is not None:
        embedded.append(address.sixtofour)
    if address.teredo is not None:
        embedded.extend(address.teredo)
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        embedded.append(IPv4Address(int(address) & 0xFFFFFFFF))
    return embedded
