"""The address a request comes from: the connecting peer, or behind trusted reverse proxies their X-Forwarded-For.

X-Forwarded-For is believed only when the connecting address is a trusted proxy, and then read from the right:
each proxy appends the address it was connected from, so the right-most address that is not a trusted proxy
is the first one no proxy of ours vouches for -- the client. Anything left of it may be forged by the client.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=16)
def parse_networks(items: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _address(text: str) -> IPAddress | None:
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def client_address(peer: str, forwarded_for: Iterable[str], trusted: tuple[IPNetwork, ...]) -> str:
    """The client's address given the peer's, the X-Forwarded-For header values (in order) and the trusted
    proxies' networks."""
    current = _address(peer)
    if current is None or not trusted or not _trusted(current, trusted):
        return peer
    hops = [part for value in forwarded_for for part in value.split(",") if part.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:  # garbage: only the proxies' own entries to its right are to be believed
            break
        current = address
        if not _trusted(address, trusted):
            break
    return str(current)
