"""Which peers may tell us the client's address (``X-Real-IP`` / ``X-Forwarded-For``).

Invariant: those headers are believed only when the TCP peer itself is one of
``TRUSTED_PROXIES`` (addresses or CIDR networks, e.g. the nginx host). Anyone
else who reaches a process directly is known by their own socket address, so
per-address limits (SMS sends) cannot be dodged by rotating a header.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``["127.0.0.1", "10.0.0.0/8"]`` -> networks; a malformed entry is a startup error."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"TRUSTED_PROXIES: not an address or network: {entry!r}") from None
    return tuple(networks)


@functools.lru_cache(maxsize=4096)  # asked per request; peers are few (the nginx hosts)
def is_trusted(peer_ip: str | None, networks: tuple[Network, ...]) -> bool:
    if not peer_ip or not networks:
        return False
    try:
        address = ipaddress.ip_address(peer_ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)
