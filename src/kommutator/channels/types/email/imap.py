"""Polling an existing mailbox over IMAP: new mail (by UID) is committed, then remembered, then marked seen.

The last committed UID is kept per channel (``last_uid``) with the folder's UIDVALIDITY; when the server
renumbers the folder (a new UIDVALIDITY) the folder is read again from the start, and the mails already
taken dedupe on their Message-ID. imaplib blocks, so every call runs in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import imaplib
import logging
import re
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from kommutator.channels.base import ChannelConfig, ChannelHost
from kommutator.channels.oauth import xoauth2
from kommutator.channels.types.email.inbound import items_from
from kommutator.channels.types.email.parsing import parse_email
from kommutator.channels.types.email.settings import EmailSettings, tls_context
from kommutator.net.guard import OutboundGuard, OutboundRefused
from kommutator.net.http import guard_of
from kommutator.net.mail import GuardedIMAP4, GuardedIMAP4_SSL

log = logging.getLogger(__name__)

IMAP_TIMEOUT = 60.0
BATCH = 200  # mails per poll; the rest follow in the next poll, which comes at once
_FETCHED_UID = re.compile(rb"UID (\d+)")
T = TypeVar("T")


class ImapPollError(Exception):
    """The mailbox could not be read; the message says why, in words an administrator can act on, and
    ``code`` what kind of problem it is for the channel's health (channels.base.PROBLEM_CODES)."""

    def __init__(self, message: str, code: str = "provider") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PollResult:
    taken: int  # mails committed (or found to be duplicates)
    more: bool  # the batch was full: poll again soon


def _utf7(folder: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3), quoted."""
    out, pending = [], ""

    def flush() -> None:
        nonlocal pending
        if pending:
            b64 = base64.b64encode(pending.encode("utf-16-be")).decode("ascii").rstrip("=").replace("/", ",")
            out.append(f"&{b64}-")
            pending = ""

    for char in folder:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending += char
    flush()
    return '"' + "".join(out) + '"'


def _check(typ: str, data: Sequence[object], what: str) -> None:
    if typ != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise ImapPollError(f"{what} failed: {typ} {detail}".strip())


def _secret(settings: EmailSettings, credentials: dict[str, Any]) -> str:
    """The password, or with OAuth 2.0 the access token (renewed by the server before it gets here)."""
    if settings.auth == "oauth2":
        if credentials.get("oauth_problem"):
            raise ImapPollError(str(credentials["oauth_problem"]), str(credentials.get("oauth_problem_code") or "auth"))
        token = credentials.get("oauth_access_token")
        if not token:
            raise ImapPollError("the channel is not signed in to the mailbox: press Sign in on the channel screen",
                                "config")
        return str(token)
    password = credentials.get("imap_password")
    if not password:
        raise ImapPollError("the channel has no imap_password; set it in the channel's credentials", "config")
    return str(password)


class _XOAuth2:
    """imaplib's AUTHENTICATE callback: the XOAUTH2 response, then an empty line to a failure's challenge."""

    def __init__(self, user: str, token: str) -> None:
        self.first: bytes | None = xoauth2(user, token).encode()

    def __call__(self, challenge: bytes) -> bytes:
        answer, self.first = self.first or b"", None
        return answer


def _open(settings: EmailSettings, credentials: dict[str, Any], guard: OutboundGuard) -> tuple[imaplib.IMAP4, str]:
    """Connect, log in and select the folder; the connection and the folder's UIDVALIDITY."""
    host, port = settings.imap_host or "", settings.imap_port_or_default
    where = f"{host}:{port}"
    secret = _secret(settings, credentials)
    context = tls_context(settings.tls_ca_certificate)
    try:
        if settings.imap_security == "ssl":
            conn: imaplib.IMAP4 = GuardedIMAP4_SSL(guard, host, port, ssl_context=context, timeout=IMAP_TIMEOUT)
        else:
            conn = GuardedIMAP4(guard, host, port, timeout=IMAP_TIMEOUT)
            if settings.imap_security == "starttls":
                conn.starttls(ssl_context=context)
    except OutboundRefused as exc:
        raise ImapPollError(f"imap_host: {exc.reason}", "refused") from None
    except ssl.SSLError as exc:
        raise ImapPollError(f"TLS with the IMAP server {where} failed: {exc}; check imap_security and the "
                            "server's certificate", "tls") from exc
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapPollError(f"cannot connect to the IMAP server {where}: {exc or type(exc).__name__}",
                            "connect") from exc
    try:
        try:
            user = settings.imap_username or settings.address
            if settings.auth == "oauth2":
                conn.authenticate("XOAUTH2", _XOAuth2(user, secret))
            else:
                # imaplib quotes the password but sends the user name as it is.
                conn.login('"' + user.replace("\\", "\\\\").replace('"', '\\"') + '"', secret)
        except UnicodeEncodeError as exc:
            raise ImapPollError("the IMAP user name and password must be ASCII; use an app password",
                                "config") from exc
        except imaplib.IMAP4.error as exc:
            if settings.auth == "oauth2":
                raise ImapPollError(f"the IMAP server {where} refused the OAuth 2.0 sign-in ({exc}); check that the "
                                    "mailbox allows IMAP and sign in again on the channel screen", "auth") from exc
            raise ImapPollError(f"the IMAP server {where} refused the login ({exc}); check imap_username and "
                                "imap_password (many providers need an app password)", "auth") from exc
        typ, data = conn.select(_utf7(settings.imap_folder))
        try:
            _check(typ, data, f"opening the folder {settings.imap_folder!r} on {where}")
        except ImapPollError as exc:
            raise ImapPollError(f"{exc}; check imap_folder", "config") from None
        _, validity = conn.response("UIDVALIDITY")
        value = validity[0] if validity and isinstance(validity[0], bytes) else b""
        return conn, value.decode("ascii", "replace").strip()
    except BaseException:
        _close(conn)
        raise


def _search(conn: imaplib.IMAP4, after: int) -> list[int]:
    typ, data = conn.uid("SEARCH", "UID", f"{after + 1}:*")
    _check(typ, data, "UID SEARCH")
    uids = sorted({int(x) for chunk in data if isinstance(chunk, bytes) for x in chunk.split() if x.isdigit()})
    # "n:*" always matches the last mail, even when its UID is below n (RFC 3501 6.4.8).
    return [u for u in uids if u > after]


def _fetch(conn: imaplib.IMAP4, uid: int) -> bytes | None:
    """The whole mail, without marking it seen; None when it is gone (expunged meanwhile)."""
    typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
    _check(typ, data, f"UID FETCH {uid}")
    for part in data:
        if isinstance(part, tuple) and len(part) == 2 and isinstance(part[1], bytes):
            found = _FETCHED_UID.search(part[0]) if isinstance(part[0], bytes) else None
            if found is None or int(found.group(1)) == uid:
                return part[1]
    return None


def _mark_seen(conn: imaplib.IMAP4, uid: int) -> None:
    typ, data = conn.uid("STORE", str(uid), "+FLAGS", "(\\Seen)")
    _check(typ, data, f"UID STORE {uid} +FLAGS (\\Seen)")


def _close(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (imaplib.IMAP4.error, OSError):
        try:
            conn.shutdown()
        except OSError:
            pass


async def _imap(where: str, call: Callable[..., T], *args: Any) -> T:
    """One blocking IMAP step in a thread; its failures as ImapPollError (other errors pass through)."""
    try:
        return await asyncio.to_thread(call, *args)
    except ImapPollError:
        raise
    except ssl.SSLError as exc:
        raise ImapPollError(f"TLS with the IMAP server {where} failed: {exc}", "tls") from exc
    except (TimeoutError, imaplib.IMAP4.error, OSError) as exc:
        raise ImapPollError(f"the IMAP server {where} failed: {exc or type(exc).__name__}", "connect") from exc


def check_login(settings: EmailSettings, credentials: dict[str, Any], guard: OutboundGuard) -> str:
    """Log in and select the folder, then leave (the connection test); what was found, or ImapPollError."""
    conn, _ = _open(settings, credentials, guard)
    try:
        typ, data = conn.response("EXISTS")
        count = data[0].decode("ascii", "replace") if typ == "EXISTS" and data and isinstance(data[0], bytes) else "?"
    finally:
        _close(conn)
    return f"logged in to {settings.imap_host} and opened {settings.imap_folder!r} ({count} mails)"


async def poll_once(host: ChannelHost, channel: ChannelConfig, *, batch: int = BATCH) -> PollResult:
    """Take the mails that arrived since the last poll. ImapPollError when the mailbox cannot be read; an
    error committing a mail passes through (its UID is not stored, so the next poll takes it again)."""
    try:
        settings = EmailSettings.model_validate(channel.settings)
    except ValueError as exc:
        raise ImapPollError(f"the channel's settings are invalid: {exc}", "config") from exc
    where = f"{settings.imap_host}:{settings.imap_port_or_default}"
    conn, validity = await _imap(where, _open, settings, channel.credentials, guard_of(host.client))
    try:
        last = await _last_uid(host, channel, validity)
        uids = await _imap(where, _search, conn, last)
        taken = 0
        for uid in uids[:batch]:
            raw = await _imap(where, _fetch, conn, uid)
            if raw is not None:
                parsed = await asyncio.to_thread(parse_email, raw)
                items = items_from(channel, parsed)
                if items:
                    await host.ingest(channel, items, raw)
                taken += 1
            await host.set_state(channel.id, "last_uid", str(uid))
            try:
                await _imap(where, _mark_seen, conn, uid)
            except ImapPollError as exc:
                log.warning("channel %s: mail UID %s was taken but could not be marked seen: %s", channel.id, uid,
                            exc)
        return PollResult(taken=taken, more=len(uids) > batch)
    finally:
        await asyncio.to_thread(_close, conn)


async def _last_uid(host: ChannelHost, channel: ChannelConfig, validity: str) -> int:
    """The last UID taken from this folder; 0 (read it all again) when the folder was renumbered."""
    stored = await host.get_state(channel.id, "uidvalidity")
    if stored == validity:
        value = await host.get_state(channel.id, "last_uid") or "0"
        return int(value) if value.isdigit() else 0
    if stored is not None:
        log.warning("channel %s: the IMAP folder's UIDVALIDITY changed (%s → %s); reading it again from the "
                    "start (mails already taken are not duplicated)", channel.id, stored, validity)
    # last_uid first: a crash between the two writes reads the folder again instead of skipping mail.
    await host.set_state(channel.id, "last_uid", "0")
    await host.set_state(channel.id, "uidvalidity", validity)
    return 0
