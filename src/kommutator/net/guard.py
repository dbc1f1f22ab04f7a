"""The one outbound-connection guard: resolve, check every address, connect only to a checked one.

Every protocol goes through here — HTTP (``net.http``), SMTP and IMAP (``net.mail``), the Telegram alerts.
A target is allowed when each address its name resolves to is a public internet address
(``net.addresses.special_reason``), or is covered by an entry of the ``outbound_allow_hosts`` setting: a
host name, an address or a network (CIDR), each optionally with a port (``127.0.0.1:8000``,
``[::1]:8000``, ``crm.internal:443``), which then allows that port only. The name is resolved once and
the connection made to the checked address, so a second DNS answer (rebinding) cannot swap in another.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable

from kommutator.channels.base import SendError
from kommutator.net.addresses import Address, literal_address, norm_host, parse_allow_entry, special_reason

SETTING = "outbound_allow_hosts"
Resolver = Callable[[str, int], list[str]]


class OutboundRefused(SendError):
    """A target the guard refuses; never retryable (retrying does not make an address public)."""

    def __init__(self, host: str, port: int, address: Address, kind: str) -> None:
        target = f"[{host}]" if ":" in host else host
        if str(address) == host:
            shown = host
        elif literal_address(host) == address:
            shown = f"{host} ({address})"
        else:
            shown = f"{host} resolves to {address}, which"
        super().__init__(retryable=False, reason=(
            f"{shown} is {kind}; outbound connections go only to public addresses "
            f"unless the {SETTING} setting lists the host or address (e.g. {target}:{port})"),
            channel_problem="refused")
        self.host, self.port, self.address, self.kind = host, port, address, kind


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the operating system's resolver gives for a name, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class OutboundGuard:
    """Decide whether a host:port may be reached, and connect to it only through a checked address."""

    def __init__(self, allow: Iterable[str] = (), *, resolver: Resolver = system_resolver) -> None:
        self.entries = [parse_allow_entry(e) for e in allow if e.strip()]
        self.resolver = resolver

    def refusal(self, host: str, port: int, address: Address) -> OutboundRefused | None:
        """Why one resolved address of host may not be reached on port, or None when it may."""
        if any(e.covers(host, address, port) for e in self.entries):
            return None
        kind = special_reason(address)
        return OutboundRefused(norm_host(host), port, address, kind) if kind else None

    def check(self, host: str, port: int, addresses: list[Address]) -> list[Address]:
        """The addresses, when every one may be reached; OutboundRefused names the first that may not."""
        for address in addresses:
            if (refused := self.refusal(host, port, address)) is not None:
                raise refused
        return addresses

    def resolve_blocking(self, host: str, port: int) -> list[Address]:
        """Every address of host, checked; OSError when it does not resolve."""
        literal = literal_address(host)
        if literal is not None:
            return self.check(host, port, [literal])
        found: list[Address] = []
        for text in self.resolver(norm_host(host), port):
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if address not in found:
                found.append(address)
        if not found:
            raise OSError(f"{host} has no address")
        return self.check(host, port, found)

    async def resolve(self, host: str, port: int) -> list[Address]:
        """``resolve_blocking`` without blocking the event loop."""
        if literal_address(host) is not None:
            return self.resolve_blocking(host, port)
        return await asyncio.to_thread(self.resolve_blocking, host, port)

    def connect_blocking(self, host: str, port: int, timeout: float | None) -> socket.socket:
        """A TCP connection to a checked address of host (tried in the resolver's order), its peer verified."""
        addresses = self.resolve_blocking(host, port)
        error: OSError | None = None
        for address in addresses:
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect((str(address), port))
                peer = ipaddress.ip_address(str(sock.getpeername()[0]).split("%", 1)[0])
                self.check(host, port, [peer])
                if peer not in addresses:
                    raise OSError(f"connected to {peer}, not to a checked address of {host}")
                return sock
            except OSError as exc:
                sock.close()
                error = exc
            except BaseException:
                sock.close()
                raise
        raise error or OSError(f"cannot connect to {host}:{port}")


STRICT = OutboundGuard()


SAVE_RESOLVE_SECONDS = 3.0


async def refusal_at_save(guard: OutboundGuard, host: str, port: int) -> OutboundRefused | None:
    """Why a target being saved would be refused, when it is a special address or resolves to one now.

    A convenience for whoever saves it; the check at connect time is the guard. A name that does not
    resolve (yet), or not within SAVE_RESOLVE_SECONDS, is accepted.
    """
    try:
        async with asyncio.timeout(SAVE_RESOLVE_SECONDS):
            await guard.resolve(host, port)
    except OutboundRefused as refused:
        return refused
    except (OSError, TimeoutError, UnicodeError, ValueError):
        return None
    return None
