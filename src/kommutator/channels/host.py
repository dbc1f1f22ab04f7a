"""What the server offers channel adapters' long-running work (``ChannelAdapter.run``): the enabled
channels of a type, the same ingest path as webhooks, and a durable value per channel (polling offsets).

Every registered adapter's ``run`` is started with the server and cancelled at shutdown; one that
crashes is logged and restarted after a pause, so a provider outage never takes the server down. With
several server processes on PostgreSQL, one process at a time runs each type's work (a session advisory
lock per type, held on its own connection): two processes polling one Telegram bot would make Telegram
refuse both, and two IMAP pollers would fetch everything twice. If that process dies, its connection
closes, the lock is released, and another process takes over within ``leader_retry`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy import select, text

from kommutator.channels.actions import config_of
from kommutator.channels.base import Accepted, ChannelConfig, ChannelProblem, InboundItem
from kommutator.channels.health import note_report
from kommutator.channels.models import Channel, ChannelState
from kommutator.channels.oauth import OAuthError, with_credentials
from kommutator.channels.registry import channel_types
from kommutator.channels.signin import fresh
from kommutator.clock import now
from kommutator.db import Tx
from kommutator.ingest.actions import accept, channel_client
from kommutator.runtime import Runtime

log = logging.getLogger(__name__)


class Host:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    @property
    def client(self) -> httpx.AsyncClient:
        return channel_client(self.rt)

    async def channels(self, type: str) -> list[ChannelConfig]:
        async with self.rt.db.read() as s:
            rows = (await s.execute(select(Channel).where(Channel.type == type, Channel.enabled.is_(True))
                                    .order_by(Channel.id))).scalars().all()
        out = []
        for row in rows:
            try:
                config = config_of(row, self.rt.box, self.rt.settings.public_base_url)
            except Exception:
                log.exception("channel %s: its credentials cannot be read; skipped", row.id)
                continue
            try:
                config = await fresh(self.rt, config)
            except OAuthError as exc:  # the adapter reports it as this round's problem (e.g. an IMAP poll)
                config = with_credentials(config, {"oauth_problem": str(exc), "oauth_problem_code": exc.code})
            out.append(config)
        return out

    async def ingest(self, channel: ChannelConfig, items: list[InboundItem], raw: bytes) -> list[Accepted]:
        results = await accept(self.rt, channel, items, raw)
        return [Accepted(event_id=r.event_id, duplicate=r.duplicate,
                         conversation_id=r.received.conversation_id if r.received else None,
                         message_id=r.received.message_id if r.received else None) for r in results]

    async def get_state(self, channel_id: int, key: str) -> str | None:
        async with self.rt.db.read() as s:
            value = await s.scalar(select(ChannelState.value).where(ChannelState.channel_id == channel_id,
                                                                    ChannelState.key == key))
        return value

    async def set_state(self, channel_id: int, key: str, value: str) -> None:
        async def job(tx: Tx) -> None:
            row = await tx.session.scalar(select(ChannelState).where(ChannelState.channel_id == channel_id,
                                                                     ChannelState.key == key))
            if row is None:
                tx.session.add(ChannelState(channel_id=channel_id, key=key, value=value, updated_at=now()))
            else:
                row.value, row.updated_at = value, now()

        await self.rt.db.write(job)

    async def report(self, channel_id: int, problem: ChannelProblem | None) -> None:
        await note_report(self.rt, channel_id, problem)


class ChannelServices:
    """Runs every adapter's ``run`` for the life of the server."""

    def __init__(self, rt: Runtime, *, restart_after: float = 5.0, leader_retry: float = 15.0) -> None:
        self.host = Host(rt)
        self.restart_after = restart_after
        self.leader_retry = leader_retry
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for name, adapter in sorted(channel_types().items()):
            self._tasks.append(asyncio.create_task(self._keep_running(name, adapter.run), name=f"channel:{name}"))

    async def _keep_running(self, name: str, run: object) -> None:
        assert callable(run)
        if self.host.rt.db.is_sqlite:
            await self._run_restarting(name, run)
            return
        key = int.from_bytes(hashlib.sha256(f"kommutator.channel-run:{name}".encode()).digest()[:8], "big",
                             signed=True)
        while True:
            async with self.host.rt.db.engine.connect() as conn:
                got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar()
                await conn.commit()
                if got:
                    try:
                        await self._run_restarting(name, run)
                        return
                    finally:
                        with contextlib.suppress(Exception):
                            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            await asyncio.sleep(self.leader_retry)

    async def _run_restarting(self, name: str, run: Callable[[Host], Awaitable[None]]) -> None:
        while True:
            try:
                await run(self.host)
                return  # nothing long-running for this type
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("channel type %s: background work failed; restarting in %.0f s", name,
                              self.restart_after)
                await asyncio.sleep(self.restart_after)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        client, self.host.rt.channel_client = self.host.rt.channel_client, None
        if client is not None:
            await client.aclose()
