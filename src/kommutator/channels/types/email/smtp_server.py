"""The built-in SMTP listener: receives mail for the support addresses of the enabled email channels.

It is the final destination, not a relay: RCPT is refused (550) for any other address. DATA is answered
250 only after the mail was committed; if that fails the answer is 451, so the sending server keeps the
mail and tries again later (the same mail then dedupes on its Message-ID or raw digest).
"""

from __future__ import annotations

import asyncio
import logging
import socket

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from kommutator.channels.base import ChannelConfig, ChannelHost
from kommutator.channels.types.email.inbound import items_from
from kommutator.channels.types.email.parsing import parse_email

log = logging.getLogger(__name__)

CHANNEL_TYPE = "email"
DEFAULT_MAX_MESSAGE_BYTES = 30_000_000  # a 20 MB attachment grows by a third in base64
MAX_RECIPIENTS = 100
_CHANNELS_TTL = 5.0  # seconds a channel list is reused across RCPT commands


def parse_listen(value: str) -> tuple[str, int]:
    """'127.0.0.1:2525' or '[::1]:25' → (host, port); ValueError if malformed."""
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port, e.g. 127.0.0.1:2525 or 0.0.0.0:25")
    return host, int(port)


def _normalise(address: str) -> str:
    """Lower-case, without a +subaddress: support+tag@shop.example reaches support@shop.example."""
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


_END = b".\r\n"
_LONG = b"long"  # stands for a long line while an oversized mail is drained: never equal to _END


async def read_data(reader: asyncio.StreamReader, limit: int) -> bytes | None:
    """The mail after DATA, up to <CRLF>.<CRLF>; None when it is over ``limit`` bytes (read to its end anyway,
    so that the answer comes in step).

    As Postfix does (``smtpd_forbid_bare_newline = normalize``): a bare LF ends a line too and is stored as
    CRLF, but only <CRLF>.<CRLF> ends the mail (a dot after a bare LF is content: no SMTP smuggling). A line
    may be as long as the mail may be: refusing it would bounce the mail for good (aiosmtpd answers
    "500 Line too long" beyond its stream limit).
    """
    out = bytearray()
    line = bytearray()
    size = 0
    after_crlf = True
    while True:
        try:
            chunk = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as exc:  # a long line: take what is buffered and go on
            chunk = await reader.read(max(exc.consumed, 1))
        except asyncio.IncompleteReadError as exc:
            raise ConnectionResetError("the client closed the connection during DATA") from exc
        size += len(chunk)
        line += chunk
        if size > limit and len(line) > len(_END):
            line[:] = _LONG + line[-2:]  # drained, not kept; only how it ends matters now
        if not line.endswith(b"\n"):
            continue
        if after_crlf and line == _END:
            return bytes(out) if size <= limit else None
        after_crlf = line.endswith(b"\r\n")
        if size <= limit:
            body = line[:-2] if after_crlf else line[:-1]
            out += body[1:] if body.startswith(b".") else body  # RFC 5321 4.5.2: undo dot-stuffing
            out += b"\r\n"
        else:
            out.clear()
        line.clear()


class _Smtp(SMTP):
    # Command lines: RFC 5321 allows 512 characters; the stream reads in pieces of this size. Lines of mail
    # content have no limit but the mail's (see read_data).
    line_length_limit = 64 * 1024

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            data = await read_data(self._reader, self.data_size_limit or DEFAULT_MAX_MESSAGE_BYTES)
        except asyncio.CancelledError:
            self._writer.close()
            raise
        if data is None:
            self._set_post_data_state()
            await self.push("552 5.3.4 Message too big for the system")
            return
        self.envelope.content = self.envelope.original_content = data
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


class _Handler:
    """aiosmtpd hooks: accept RCPT for our addresses, commit DATA before answering."""

    def __init__(self, listener: SmtpListener) -> None:
        self.listener = listener

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        try:
            channel = await self.listener.channel_for(address)
        except Exception:
            log.exception("SMTP: cannot look up the channels for RCPT %s", address)
            return "451 4.3.0 Temporary failure looking up the recipient; try again later"
        if channel is None:
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        mail_from = envelope.mail_from or ""
        # As the final delivery point, record the envelope sender (RFC 5321 4.4): "<>" marks a bounce or
        # another automatic mail, and it names the sender when the From header is missing.
        raw = f"Return-Path: <{mail_from.strip('<>')}>\r\n".encode("utf-8", "replace") + raw
        try:
            await self.listener.deliver(envelope.rcpt_tos, raw, mail_from)
        except Exception:
            log.exception("SMTP: mail from <%s> to %s could not be committed; answered 451 so the sender retries",
                          mail_from, ", ".join(envelope.rcpt_tos))
            return "451 4.3.0 The mail could not be stored; try again later"
        return "250 2.0.0 OK: delivered"


class SmtpListener:
    """The listener on one address:port; ``start`` binds (port 0 picks a free one, see ``port``)."""

    def __init__(self, host: ChannelHost, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 hostname: str | None = None, timeout: float = 300.0) -> None:
        self.host = host
        self.max_message_bytes = max_message_bytes
        self.hostname = hostname or socket.gethostname()
        self.timeout = timeout
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._channels: tuple[float, dict[str, ChannelConfig]] | None = None

    async def start(self, address: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        handler = _Handler(self)

        def factory() -> SMTP:
            return _Smtp(handler, data_size_limit=self.max_message_bytes, hostname=self.hostname,
                         ident="Kommutator ESMTP", timeout=self.timeout, enable_SMTPUTF8=True, loop=loop)

        # reuse_port: several server processes on one machine can share the port (the kernel spreads
        # connections); every process commits through the same database, so any of them may take a mail.
        self._server = await loop.create_server(factory, host=address, port=port,
                                                reuse_port=hasattr(socket, "SO_REUSEPORT"))
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("SMTP listener on %s:%s", address, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _addresses(self) -> dict[str, ChannelConfig]:
        at = asyncio.get_running_loop().time()
        if self._channels is None or self._channels[0] < at:
            found: dict[str, ChannelConfig] = {}
            for channel in await self.host.channels(CHANNEL_TYPE):
                if "smtp" in (channel.settings.get("inbound") or ["smtp"]):
                    found.setdefault(str(channel.settings.get("address", "")).lower(), channel)
            self._channels = (at + _CHANNELS_TTL, found)
        return self._channels[1]

    async def channel_for(self, address: str) -> ChannelConfig | None:
        """The enabled email channel receiving over SMTP for ``address``, if any."""
        return (await self._addresses()).get(_normalise(address))

    async def deliver(self, recipients: list[str], raw: bytes, mail_from: str) -> None:
        """Commit one mail to every channel it is addressed to; raises if any could not be committed."""
        addresses = await self._addresses()
        channels = {c.id: c for c in (addresses.get(_normalise(r)) for r in recipients) if c is not None}
        if not channels:
            return  # disabled since RCPT: accepted then, nothing to do now
        parsed = await asyncio.to_thread(parse_email, raw)  # a big mail takes a while: keep the loop free
        for channel in channels.values():
            items = items_from(channel, parsed, envelope_from=mail_from or None)
            if items:
                await self.host.ingest(channel, items, raw)

    def forget_channels(self) -> None:
        """Read the channel list again at the next RCPT (tests, settings changes)."""
        self._channels = None

