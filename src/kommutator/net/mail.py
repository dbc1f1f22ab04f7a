"""SMTP and IMAP clients (the standard library's) whose sockets are opened by the outbound guard.

Each class only replaces how the TCP connection is made: the guard resolves the host, checks every
address and connects to a checked one (verifying the peer); TLS, implicit or by STARTTLS, is still
negotiated with the host's name, so certificates are checked against it.
"""

from __future__ import annotations

import functools
import imaplib
import ipaddress
import re
import smtplib
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

from kommutator.net.guard import OutboundGuard

# An EHLO argument (RFC 5321 4.1.1.1): a domain name, or an address literal such as [192.0.2.1].
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HELO = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*|\[(?:[0-9.]+|IPv6:[0-9A-Fa-f:.]+)\])$")


def check_helo_name(value: str) -> str:
    """A configured EHLO name, without a trailing dot; ValueError saying what is wanted when it is not one."""
    value = value.strip().rstrip(".")
    if not _HELO.match(value) or len(value) > 253:
        raise ValueError("must be a fully qualified host name such as support.shop.example, or an address "
                         "literal such as [192.0.2.1]")
    return value


@functools.cache
def local_name() -> str:
    """This machine's name for EHLO, looked up once (smtplib would resolve it on every connection)."""
    return socket.getfqdn()


def helo_name_for(public_url: str) -> str:
    """The name this server gives in EHLO: the host of its public URL (the name it is known by; an address as
    an address literal), else this machine's name when the public URL is only local."""
    host = (urlsplit(public_url).hostname or "").rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None:
        if host and host != "localhost" and not host.endswith(".localhost"):
            try:
                return host.encode("idna").decode("ascii")
            except UnicodeError:
                pass
    elif not address.is_loopback:
        return f"[{address}]" if address.version == 4 else f"[IPv6:{address}]"
    return local_name()


class GuardedSMTP(smtplib.SMTP):
    def __init__(self, guard: OutboundGuard, *args: Any, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(*args, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self.guard.connect_blocking(host, port, timeout)


class GuardedSMTP_SSL(smtplib.SMTP_SSL):
    def __init__(self, guard: OutboundGuard, *args: Any, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(*args, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = self.guard.connect_blocking(host, port, timeout)
        return self.context.wrap_socket(sock, server_hostname=host)


class GuardedIMAP4(imaplib.IMAP4):
    def __init__(self, guard: OutboundGuard, *args: Any, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(*args, **kwargs)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return self.guard.connect_blocking(self.host, self.port, timeout)


class GuardedIMAP4_SSL(imaplib.IMAP4_SSL):
    def __init__(self, guard: OutboundGuard, *args: Any, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(*args, **kwargs)

    def _create_socket(self, timeout: float | None = None) -> ssl.SSLSocket:
        sock = self.guard.connect_blocking(self.host, self.port, timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)
