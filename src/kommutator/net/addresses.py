"""Which addresses are special (not the public internet), and every spelling of an IPv4 address.

Pure functions, no I/O: the guard (``net.guard``) resolves names and asks ``special_reason`` about each
address; save-time checks ask ``literal_address`` whether a host is an address already.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Checked in order; the first that contains an address names its kind. Anything else that Python does not
# call global is refused as "not a globally routable address".
_V4: list[tuple[ipaddress.IPv4Network, str]] = [(ipaddress.IPv4Network(n), kind) for n, kind in (
    ("0.0.0.0/8", "'this network' (0.0.0.0/8)"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared carrier-grade NAT (100.64.0.0/10)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking (198.18.0.0/15)"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)]
_V6: list[tuple[ipaddress.IPv6Network, str]] = [(ipaddress.IPv6Network(n), kind) for n, kind in (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("64:ff9b:1::/48", "local-use NAT64 (64:ff9b:1::/48)"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignment"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)]
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_6TO4 = ipaddress.IPv6Network("2002::/16")
_TEREDO = ipaddress.IPv6Network("2001::/32")


def embedded_v4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries and how (mapped, NAT64, 6to4), or None."""
    if address in _MAPPED:
        return "IPv4-mapped", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _6TO4:
        return "6to4", ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
    return None


def _phrase(kind: str) -> str:
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind} address"


def special_reason(address: Address) -> str | None:
    """Why an address is not a public internet host, completing "X is …" (e.g. 'a loopback address'), or
    None when it is one."""
    if isinstance(address, ipaddress.IPv4Address):
        for network, kind in _V4:
            if address in network:
                return _phrase(kind)
        return None if address.is_global else "not a globally routable address"
    carried = embedded_v4(address)
    if carried is not None:
        how, v4 = carried
        inner = special_reason(v4)
        return f"the {how} form of {v4}, {inner}" if inner else None
    if address in _TEREDO:
        for v4 in address.teredo or ():
            if inner := special_reason(v4):
                return f"a Teredo address carrying {v4}, {inner}"
        return "a Teredo address (2001::/32)"
    for network6, kind in _V6:
        if address in network6:
            return _phrase(kind)
    if address.ipv4_mapped is None and not address.is_global:
        return "not a globally routable address"
    return None


def _ipv4_part(text: str) -> int | None:
    """One part of an inet_aton spelling: decimal, octal (leading 0) or hexadecimal (0x)."""
    if text[:2].lower() == "0x":
        digits, base = text[2:], 16
    elif len(text) > 1 and text[0] == "0":
        digits, base = text[1:], 8
    else:
        digits, base = text, 10
    allowed = "0123456789abcdefABCDEF"[: base + (6 if base == 16 else 0)]
    if not digits or any(c not in allowed for c in digits):
        return None
    return int(digits, base)


def parse_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address in any spelling the C library's inet_aton (and so the resolver) accepts: 127.1,
    0x7f.1, 017700000001, 2130706433, a trailing dot. None when the text is no such spelling."""
    text = text[:-1] if text.endswith(".") and not text.endswith("..") else text
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_ipv4_part(p) for p in parts]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    *head, last = values
    if any(n > 0xFF for n in head) or last >= 1 << (8 * (5 - len(values))):
        return None
    value = 0
    for n in head:
        value = value << 8 | n
    return ipaddress.IPv4Address(value << (8 * (5 - len(values))) | last)


def literal_address(host: str) -> Address | None:
    """The address a host names without any lookup (IPv6 with or without brackets and zone, IPv4 in any
    inet_aton spelling), or None for a name."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return None
    return parse_ipv4(host)


@dataclass(frozen=True)
class AllowEntry:
    """One entry of the allow-list: a name or a network, and the one port it allows (None: any)."""

    name: str | None
    network: Network | None
    port: int | None

    def covers(self, host: str, address: Address, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.name is not None:
            return self.name == norm_host(host)
        assert self.network is not None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return address in self.network or address.ipv4_mapped in self.network
        return address in self.network


def norm_host(host: str) -> str:
    """A host name as allow-list entries are compared: no brackets, lower case, no trailing dot, IDNA
    (the form URLs are resolved in), so 'почта.рф' on the list covers xn--80a1acny.xn--p1ai."""
    host = host.strip().strip("[]").lower().rstrip(".")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    return host


def parse_allow_entry(entry: str) -> AllowEntry:
    """'host', 'host:port', '10.0.0.0/8', '[::1]:8000', '::1' as an AllowEntry; ValueError if malformed."""
    text, port_text = entry.strip(), ""
    if text.startswith("["):
        inside, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{entry!r}: write an IPv6 address with a port as [::1]:8000")
        text, port_text = inside, rest[1:]
    elif text.count(":") == 1:
        text, _, port_text = text.partition(":")
    port: int | None = None
    if port_text or entry.strip().endswith(":"):
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
        port = int(port_text)
    if not text:
        raise ValueError(f"{entry!r}: name a host, an address or a network")
    literal = literal_address(text) if "/" not in text else None
    if literal is not None:
        return AllowEntry(None, ipaddress.ip_network(literal), port)
    try:
        return AllowEntry(None, ipaddress.ip_network(text, strict=False), port)
    except ValueError:
        if "/" in text or any(c.isspace() for c in text):
            raise ValueError(f"{entry!r} is neither a host name, an address nor a network") from None
        return AllowEntry(norm_host(text), None, port)
