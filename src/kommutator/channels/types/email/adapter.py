"""The email channel: one support address; mail arrives through the built-in SMTP listener or by polling an
IMAP mailbox, agent replies leave through the channel's SMTP server as threaded mail."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
from typing import Any

import httpx

from kommutator.channels.base import (
    Capabilities,
    ChannelAdapter,
    ChannelConfig,
    ChannelHost,
    ChannelProblem,
    Check,
    Draft,
    InboundItem,
    InboundRequest,
    OutboundMessage,
    OutboundTarget,
    Reach,
    Refusal,
    SendError,
    SendResult,
)
from kommutator.channels.oauth import token_target
from kommutator.channels.types.email import sending
from kommutator.channels.types.email.imap import ImapPollError, check_login, poll_once
from kommutator.channels.types.email.settings import EmailCredentials, EmailSettings
from kommutator.channels.types.email.smtp_server import (
    CHANNEL_TYPE,
    DEFAULT_MAX_MESSAGE_BYTES,
    SmtpListener,
    parse_listen,
)
from kommutator.errors import ProblemError
from kommutator.net.http import guard_of

log = logging.getLogger(__name__)

LISTEN_ENV = "KOMMUTATOR_SMTP_LISTEN"
MAX_BACKOFF = 900.0  # seconds between polls of a mailbox that keeps failing


def _server_setting(host: ChannelHost | None, name: str) -> Any:
    """A server setting (config.py) when the host carries them, else None."""
    settings = getattr(getattr(host, "rt", None), "settings", None)
    return getattr(settings, name, None)


def smtp_listen(host: ChannelHost | None = None) -> str:
    """Where the SMTP listener binds ('host:port'); empty: no listener."""
    value = _server_setting(host, "smtp_listen") or os.environ.get(LISTEN_ENV, "")
    return str(value).strip()


class EmailServices:
    """What ``EmailChannel.run`` does: the SMTP listener while any channel receives over SMTP, and one poll
    at a time per IMAP channel, every ``poll_seconds`` (backing off while a mailbox fails)."""

    def __init__(self, host: ChannelHost, *, tick: float = 2.0) -> None:
        self.host = host
        self.tick = tick
        self.listener: SmtpListener | None = None
        self._listen_failed_at: float | None = None
        self._polls: dict[int, asyncio.Task[None]] = {}
        self._due: dict[int, float] = {}
        self._failures: dict[int, int] = {}

    async def run(self) -> None:
        try:
            while True:
                channels = await self.host.channels(CHANNEL_TYPE)
                await self._ensure_listener(channels)
                self._schedule_polls(channels)
                await asyncio.sleep(self.tick)
        finally:
            await self.close()

    async def close(self) -> None:
        for task in self._polls.values():
            task.cancel()
        for task in self._polls.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._polls.clear()
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None

    async def _ensure_listener(self, channels: list[ChannelConfig]) -> None:
        if self.listener is not None:
            self.listener.forget_channels()  # settings may have changed
            return
        if not any("smtp" in (c.settings.get("inbound") or ["smtp"]) for c in channels):
            return
        listen = smtp_listen(self.host)
        loop = asyncio.get_running_loop()
        if not listen or (self._listen_failed_at is not None and loop.time() - self._listen_failed_at < 60):
            return
        try:
            address, port = parse_listen(listen)
            listener = SmtpListener(self.host, max_message_bytes=int(
                _server_setting(self.host, "smtp_max_message_bytes") or DEFAULT_MAX_MESSAGE_BYTES))
            await listener.start(address, port)
        except (ValueError, OSError) as exc:
            self._listen_failed_at = loop.time()
            log.error("the SMTP listener cannot start on %r (%s): %s; email channels with inbound 'smtp' receive "
                      "nothing until this is fixed (retrying every minute)", listen, LISTEN_ENV, exc)
            return
        self.listener = listener

    def _schedule_polls(self, channels: list[ChannelConfig]) -> None:
        now = asyncio.get_running_loop().time()
        for channel in channels:
            if "imap" not in (channel.settings.get("inbound") or []):
                continue
            running = self._polls.get(channel.id)
            if (running is not None and not running.done()) or self._due.get(channel.id, 0.0) > now:
                continue
            self._polls[channel.id] = asyncio.create_task(self._poll(channel), name=f"email:imap:{channel.id}")

    async def _poll(self, channel: ChannelConfig) -> None:
        every = float(channel.settings.get("poll_seconds") or 60)
        loop = asyncio.get_running_loop()
        try:
            result = await poll_once(self.host, channel)
        except ImapPollError as exc:
            failures = self._failures.get(channel.id, 0) + 1
            self._failures[channel.id] = failures
            wait = min(MAX_BACKOFF, every * 2 ** min(failures - 1, 10))
            log.warning("channel %s (%s): %s; next attempt in %.0f s", channel.id, channel.name, exc, wait)
            self._due[channel.id] = loop.time() + wait
            await self.host.report(channel.id, ChannelProblem(exc.code, str(exc)))
            return
        except Exception:
            # A commit that failed (the database is away): the UID was not stored; take it next time.
            failures = self._failures.get(channel.id, 0) + 1
            self._failures[channel.id] = failures
            log.exception("channel %s (%s): polling the mailbox failed", channel.id, channel.name)
            self._due[channel.id] = loop.time() + min(MAX_BACKOFF, every * 2 ** min(failures - 1, 10))
            return
        self._failures.pop(channel.id, None)
        self._due[channel.id] = loop.time() + (0.0 if result.more else every)
        await self.host.report(channel.id, None)


class EmailChannel(ChannelAdapter):
    type = "email"
    title = "Email"
    capabilities = Capabilities(max_text_length=100_000, buttons=False, attachments=True, threaded=True)
    receives_webhooks = False  # mail comes over SMTP or IMAP
    webhook_media_type = None
    Settings = EmailSettings
    Credentials = EmailCredentials

    def outbound_targets(self, settings: dict[str, Any]) -> list[OutboundTarget]:
        """The SMTP server replies go through, and the IMAP server when the channel polls one."""
        s = EmailSettings.model_validate(settings)
        targets = [OutboundTarget(setting="smtp_host", host=s.smtp_host, port=s.smtp_port_or_default)]
        if "imap" in s.inbound and s.imap_host:
            targets.append(OutboundTarget(setting="imap_host", host=s.imap_host, port=s.imap_port_or_default))
        return targets + token_target(settings)

    def setup_instructions(self, channel: ChannelConfig, webhook_url: str) -> str:
        settings = channel.settings
        address = settings.get("address", "the support address")
        steps = []
        inbound = settings.get("inbound") or ["smtp"]
        if "smtp" in inbound:
            listen = smtp_listen() or f"(not set: set {LISTEN_ENV}, e.g. 0.0.0.0:25, and restart)"
            steps.append(f"Deliver mail for {address} to Kommutator's SMTP listener at {listen}: point the domain's "
                         "MX record at this server, or have your mail server forward or relay that address to it.")
        if "imap" in inbound:
            steps.append(f"Kommutator reads the IMAP folder {settings.get('imap_folder', 'INBOX')!r} of {address} on "
                         f"{settings.get('imap_host')} every {settings.get('poll_seconds', 60)} s and marks what it "
                         "took as read; put the mailbox password (for Gmail and Yandex an app password) in the "
                         "imap_password credential.")
        steps.append(f"Replies are sent from {address} through {settings.get('smtp_host')}; publish SPF and DKIM for "
                     "its domain there so that they are not taken for spam, and set smtp_password if it needs a login.")
        return " ".join(steps)

    def verify(self, channel: ChannelConfig, request: InboundRequest) -> None:
        raise ProblemError(404, "no_webhook_for_email",
                           "Email channels receive mail over SMTP or IMAP, not webhooks; see the channel's set-up "
                           "instructions.")

    def parse(self, channel: ChannelConfig, request: InboundRequest) -> list[InboundItem]:
        raise ProblemError(404, "no_webhook_for_email", "Email channels receive mail over SMTP or IMAP, not webhooks.")

    def first_message(self, channel: ChannelConfig, reach: Reach, draft: Draft, at: dt.datetime) -> str:
        """Any address can be written to; a letter that starts a conversation needs a subject."""
        to = reach.chat_id or reach.email
        if not to:
            raise Refusal("email_no_address", "The customer has no email address; add one to the contact first.",
                          "У клиента нет адреса электронной почты; сначала добавьте его в карточку.")
        if not draft.subject.strip():
            raise Refusal("email_subject_required", "An email needs a subject; write one.",
                          "У письма должна быть тема; укажите её.")
        return to

    async def send(self, channel: ChannelConfig, message: OutboundMessage, client: httpx.AsyncClient) -> SendResult:
        """Send the reply over the channel's SMTP server (not through ``client``: it is not HTTP)."""
        return await sending.send(channel, message, guard_of(client))

    async def check(self, channel: ChannelConfig, client: httpx.AsyncClient) -> list[Check]:
        """SMTP: EHLO, STARTTLS, AUTH; IMAP (when the channel polls): login and select. Nothing is sent."""
        try:
            settings = EmailSettings.model_validate(channel.settings)
        except ValueError as exc:
            return [Check("settings", False, f"the channel's settings are invalid: {exc}", "config")]
        guard = guard_of(client)
        checks = []
        try:
            await asyncio.to_thread(sending.check_blocking, channel, guard)
            checks.append(Check("SMTP", True, f"greeted and logged in to {settings.smtp_host}"))
        except SendError as exc:
            checks.append(Check.failed("SMTP", exc))
        if "imap" in settings.inbound:
            try:
                found = await asyncio.to_thread(check_login, settings, channel.credentials, guard)
                checks.append(Check("IMAP", True, found))
            except ImapPollError as exc:
                checks.append(Check("IMAP", False, str(exc), exc.code))
        return checks

    async def run(self, host: ChannelHost) -> None:
        await EmailServices(host).run()
