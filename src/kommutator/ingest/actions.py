"""Store a provider's event and what it means, in one transaction, before acknowledging it.

The raw body is kept in ``inbound_events`` (unique per channel and provider event id), so a provider's
retry of a processed event is a no-op. If turning the event into a message fails, the raw event is still
committed as ``failed`` with the error and the provider gets a 503, so it retries; a retry of a failed
event processes it again. Nothing is lost, nothing is doubled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from kommutator.channels.base import ChannelConfig, InboundMessage
from kommutator.clock import now
from kommutator.conversations.inbound import Received, receive_message
from kommutator.db import Database, Tx
from kommutator.errors import ProblemError
from kommutator.events import Event
from kommutator.ingest.models import InboundEvent

log = logging.getLogger(__name__)

_events = cast(Table, InboundEvent.__table__)
_FIND = select(_events.c.id, _events.c.status).where(
    _events.c.channel_id == bindparam("channel_id"), _events.c.provider_event_id == bindparam("provider_event_id"))
_MARK = _events.update().where(_events.c.id == bindparam("event_id_")).values(
    status=bindparam("status"), error=bindparam("error"), message_id=bindparam("message_id"))
_inserts: dict[str, Any] = {}


def _insert(dialect: str) -> Any:
    if dialect not in _inserts:
        ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
        _inserts[dialect] = ins(_events).on_conflict_do_nothing().returning(_events.c.id)
    return _inserts[dialect]


@dataclass(frozen=True)
class Ingested:
    event_id: str
    duplicate: bool
    received: Received | None


def ingest_message(conn: Connection, *, channel: ChannelConfig, msg: InboundMessage, body: str,
                   events: list[Event]) -> Ingested:
    key = {"channel_id": channel.id, "provider_event_id": msg.event_id}
    stored = conn.execute(_insert(conn.dialect.name), {**key, "body": body, "status": "processed",
                                                       "error": "", "received_at": now()}).scalar()
    if stored is None:
        existing = conn.execute(_FIND, key).one()
        if existing.status != "failed":
            return Ingested(msg.event_id, duplicate=True, received=None)
        stored = existing.id  # an earlier attempt failed: process the retry
    received = receive_message(conn, channel=channel, msg=msg, events=events)
    conn.execute(_MARK, {"event_id_": stored, "status": "processed", "error": "", "message_id": received.message_id})
    return Ingested(msg.event_id, duplicate=False, received=received)


async def do_ingest_message(tx: Tx, *, channel: ChannelConfig, msg: InboundMessage, body: str) -> Ingested:
    """Store the raw event and the message it carries, in the transaction of ``tx``."""
    events: list[Event] = []
    result = await tx.conn.run_sync(
        lambda c: ingest_message(c, channel=channel, msg=msg, body=body, events=events))
    for event in events:
        tx.publish(event)
    return result


async def ingest(db: Database, *, channel: ChannelConfig, messages: list[InboundMessage], body: str) -> list[Ingested]:
    """Commit each event with its effects; if that fails, keep it raw as failed and ask for a retry."""
    results = []
    for msg in messages:
        async def job(tx: Tx, msg: InboundMessage = msg) -> Ingested:
            return await do_ingest_message(tx, channel=channel, msg=msg, body=body)

        try:
            results.append(await db.write(job))
        except Exception as exc:
            log.exception("processing inbound event %s on channel %s failed", msg.event_id, channel.id)
            async def keep(tx: Tx, msg: InboundMessage = msg, exc: Exception = exc) -> None:
                await _keep_failed(tx, channel, msg, body, exc)

            await db.write(keep)
            raise ProblemError(503, "processing_failed",
                               "The event was stored but could not be processed yet; retry it later.",
                               headers={"Retry-After": "5"}) from exc
    return results


async def _keep_failed(tx: Tx, channel: ChannelConfig, msg: InboundMessage, body: str, exc: Exception) -> None:
    conn = tx.conn
    error = f"{type(exc).__name__}: {exc}"[:2000]
    key = {"channel_id": channel.id, "provider_event_id": msg.event_id}
    stored = (await conn.execute(_insert(conn.dialect.name), {**key, "body": body, "status": "failed",
                                                              "error": error, "received_at": now()})).scalar()
    if stored is None:
        existing = (await conn.execute(_FIND, key)).one()
        if existing.status == "failed":
            await conn.execute(_MARK, {"event_id_": existing.id, "status": "failed", "error": error,
                                       "message_id": None})
