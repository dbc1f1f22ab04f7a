"""Store a provider's event and what it means, in one transaction, before acknowledging it.

The raw body is kept in ``inbound_events`` (unique per channel and provider event id), so a
provider's retry is a no-op. If turning the event into a message fails, the raw event is still
stored as ``failed`` with the error, so nothing is lost and it can be replayed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import update

from kommutator.channels.base import ChannelConfig, InboundMessage
from kommutator.conversations.actions import Received, do_receive_message
from kommutator.db import Database, Tx, insert_ignoring_duplicates
from kommutator.ingest.models import InboundEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ingested:
    event_id: str
    duplicate: bool
    received: Received | None
    failed: bool = False


async def do_ingest_message(tx: Tx, *, channel: ChannelConfig, msg: InboundMessage, body: str) -> Ingested:
    stored = (await tx.session.execute(
        insert_ignoring_duplicates(tx, InboundEvent)
        .values(channel_id=channel.id, provider_event_id=msg.event_id, body=body, status="processed")
        .returning(InboundEvent.id)
    )).scalar_one_or_none()
    if stored is None:
        return Ingested(msg.event_id, duplicate=True, received=None)
    received = await do_receive_message(tx, channel=channel, msg=msg)
    if received.message_id is not None:
        await tx.session.execute(update(InboundEvent).where(InboundEvent.id == stored)
                                 .values(message_id=received.message_id))
    return Ingested(msg.event_id, duplicate=False, received=received)


async def ingest(db: Database, *, channel: ChannelConfig, messages: list[InboundMessage], body: str) -> list[Ingested]:
    """Commit each event (raw + processed); fall back to storing it raw as failed."""
    results = []
    for msg in messages:
        async def job(tx: Tx, msg: InboundMessage = msg) -> Ingested:
            return await do_ingest_message(tx, channel=channel, msg=msg, body=body)

        try:
            results.append(await db.write(job))
        except Exception as exc:
            log.exception("processing inbound event %s on channel %s failed", msg.event_id, channel.id)
            error = f"{type(exc).__name__}: {exc}"[:2000]

            async def keep_raw(tx: Tx, msg: InboundMessage = msg, error: str = error) -> Ingested:
                stored = (await tx.session.execute(
                    insert_ignoring_duplicates(tx, InboundEvent)
                    .values(channel_id=channel.id, provider_event_id=msg.event_id, body=body, status="failed",
                            error=error).returning(InboundEvent.id)
                )).scalar_one_or_none()
                if stored is None:
                    await tx.session.execute(update(InboundEvent).where(
                        InboundEvent.channel_id == channel.id, InboundEvent.provider_event_id == msg.event_id,
                        InboundEvent.status == "failed").values(error=error))
                return Ingested(msg.event_id, duplicate=stored is None, received=None, failed=True)

            results.append(await db.write(keep_raw))
    return results
