"""The connection test of a channel (``ChannelAdapter.check``) and the health read models it and the API give."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.channels.base import ChannelConfig, ChannelProblem, Check
from kommutator.channels.health import book_of, do_record_problem, do_record_success
from kommutator.channels.models import ChannelHealth
from kommutator.channels.oauth import OAuthError
from kommutator.channels.registry import get_adapter
from kommutator.channels.schemas import ChannelHealthRead, ChannelTestRead, CheckRead
from kommutator.channels.signin import fresh
from kommutator.ingest.actions import channel_client
from kommutator.runtime import Runtime

log = logging.getLogger(__name__)


def health_read(row: ChannelHealth | None) -> ChannelHealthRead:
    if row is None:
        return ChannelHealthRead(status="unknown")
    return ChannelHealthRead.model_validate(row)


async def health_rows(session: AsyncSession, channel_ids: Iterable[int]) -> dict[int, ChannelHealth]:
    ids = list(channel_ids)
    if not ids:
        return {}
    rows = await session.execute(select(ChannelHealth).where(ChannelHealth.channel_id.in_(ids)))
    return {row.channel_id: row for row in rows.scalars()}


async def run_channel_test(rt: Runtime, channel: ChannelConfig) -> ChannelTestRead:
    """Run the type's connection checks through the guarded client and record the outcome as the health."""
    adapter = get_adapter(channel.type)
    try:
        channel = await fresh(rt, channel)
        checks = await adapter.check(channel, channel_client(rt))
    except OAuthError as exc:
        checks = [Check("sign-in", False, str(exc), exc.code)]
    except Exception as exc:  # an adapter bug: report it as a failed check rather than a 500
        log.exception("channel %s: the connection test failed unexpectedly", channel.id)
        checks = [Check("connection", False, f"unexpected error: {type(exc).__name__}: {exc}", "provider")]
    failed = next((c for c in checks if not c.ok), None)
    if failed is None:
        status = await rt.db.write(lambda tx: do_record_success(tx, channel_id=channel.id))
        book_of(rt).wrote(channel.id, "ok", status)
    else:
        problem = ChannelProblem(failed.code or "provider", f"{failed.name}: {failed.detail}")
        status = await rt.db.write(lambda tx: do_record_problem(tx, channel_id=channel.id, problem=problem))
        book_of(rt).wrote(channel.id, "problem", status)
    async with rt.db.read() as s:
        row = await s.get(ChannelHealth, channel.id)
    return ChannelTestRead(ok=failed is None, checks=[CheckRead(name=c.name, ok=c.ok, detail=c.detail) for c in checks],
                           health=health_read(row))
