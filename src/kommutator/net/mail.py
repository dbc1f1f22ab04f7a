"""SMTP and IMAP clients (the standard library's) whose sockets are opened by the outbound guard.

Each class only replaces how the TCP connection is made: the guard resolves the host, checks every
address and connects to a checked one (verifying the peer); TLS, implicit or by STARTTLS, is still
negotiated with the host's name, so certificates are checked against it.
"""

from __future__ import annotations

import imaplib
import smtplib
import socket
import ssl
from typing import Any

from kommutator.net.guard import OutboundGuard


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
