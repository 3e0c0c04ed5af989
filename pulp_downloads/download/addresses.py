"""The outbound address policy: which peer addresses a download may connect to.

The check runs when a socket is created for a connection, after DNS resolution, so it covers
names that resolve to a denied address, IP literals, redirect targets, mirrors, token realms
and proxies alike, once per connection (pooled connections are not checked again).
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Denied unless allowed: loopback (the host's own services), link-local (cloud metadata
#: services live at 169.254.169.254), the shared address space of RFC 6598 (carrier-grade
#: NAT, where some clouds put their metadata service, e.g. 100.100.100.200), "this network",
#: multicast and broadcast, and the IPv6 counterparts: loopback, the unspecified address,
#: link-local, multicast and fd00:ec2::254 (a cloud metadata service's IPv6 address). Private
#: ranges (10/8, 172.16/12, 192.168/16, fc00::/7) are not in it: on-premises mirrors live
#: there.
DEFAULT_DENIED_NETWORKS: tuple[str, ...] = (
    "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10", "0.0.0.0/8", "224.0.0.0/4",
    "255.255.255.255/32", "::1/128", "::/128", "fe80::/10", "ff00::/8", "fd00:ec2::254/128",
)

#: How the settings are named where operators set them, for error messages.
SETTINGS_HINT = "PULP_DOWNLOADS_DENIED_NETWORKS / PULP_DOWNLOADS_ALLOWED_NETWORKS"


class AddressDenied(Exception):
    """Raised inside the connector when a peer address is denied (translated at the
    library's boundary into :class:`~.exceptions.AddressNotAllowed`)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(
            f"connecting to {address} is not allowed by the outbound address policy "
            f"({SETTINGS_HINT})"
        )


def parse_networks(values: Iterable[str | Network], *, setting: str = "networks") -> tuple[Network, ...]:
    """CIDRs (or single addresses) as networks; ``ValueError`` names the bad entry."""
    networks = []
    for value in values:
        if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            networks.append(value)
            continue
        text = str(value).strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{setting}: {text!r} is not an IP network (CIDR)") from None
    return tuple(networks)


class AddressPolicy:
    """Deny ``denied`` networks except those in ``allowed`` (which win)."""

    def __init__(
        self,
        denied: Iterable[str | Network] = DEFAULT_DENIED_NETWORKS,
        allowed: Iterable[str | Network] = (),
    ) -> None:
        self.denied = parse_networks(denied, setting="denied networks")
        self.allowed = parse_networks(allowed, setting="allowed networks")

    def allows(self, address: str | Address) -> bool:
        """Whether a connection to ``address`` may be made."""
        ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if any(ip in network for network in self.allowed if network.version == ip.version):
            return True
        return not any(ip in network for network in self.denied if network.version == ip.version)

    def socket_factory(self, addr_info: tuple[Any, ...]) -> socket.socket:
        """For ``aiohttp.TCPConnector(socket_factory=...)``: a socket for an allowed peer,
        :class:`AddressDenied` otherwise."""
        family, type_, proto, _, sockaddr = addr_info
        if family in (socket.AF_INET, socket.AF_INET6) and not self.allows(sockaddr[0]):
            raise AddressDenied(sockaddr[0])
        return socket.socket(family=family, type=type_, proto=proto)

    def __repr__(self) -> str:
        return f"<AddressPolicy denied={len(self.denied)} allowed={len(self.allowed)}>"


#: Allows every address (for library users who configure no policy).
ALLOW_ALL = AddressPolicy(denied=(), allowed=())
