"""Store a provider's event and what it means, in one transaction, before acknowledging it.

The raw body is kept in ``inbound_events`` (unique per channel and provider event id), so a provider's
retry of a processed event is a no-op. If turning the event into a message fails, the raw event is still
committed as ``failed`` with the error and the provider gets a 503, so it retries; a retry of a failed
event processes it again. Nothing is lost, nothing is doubled.

Three kinds of event arrive (``channels.base.InboundItem``): a customer's message (with files, which are
downloaded and stored before the commit), a delivery status for one of our messages (statuses only move
forward), and an edit of a customer's message.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import httpx
from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from kommutator.clock import now
from kommutator.conversations.files import FileStore, StoredFile
from kommutator.conversations.inbound import Received, receive_message
from kommutator.conversations.models import Conversation, Message
from kommutator.db import Database, Tx
from kommutator.errors import ProblemError
from kommutator.events import Event, MessageEdited, MessageStatusChanged
from kommutator.ingest.models import InboundEvent
from kommutator.ingest.types import (
    STATUS_ORDER,
    ChannelConfig,
    InboundEdit,
    InboundFile,
    InboundItem,
    InboundMessage,
    InboundStatus,
    SendError,
)
from kommutator.net.http import outbound_client

if TYPE_CHECKING:
    from kommutator.runtime import Runtime

log = logging.getLogger(__name__)

_events = cast(Table, InboundEvent.__table__)
_messages = cast(Table, Message.__table__)
_conversations = cast(Table, Conversation.__table__)
_FIND = select(_events.c.id, _events.c.status).where(
    _events.c.channel_id == bindparam("channel_id"), _events.c.provider_event_id == bindparam("provider_event_id"))
_MARK = _events.update().where(_events.c.id == bindparam("event_id_")).values(
    status=bindparam("status"), error=bindparam("error"), message_id=bindparam("message_id"),
    ref=bindparam("ref"), pending=None)
_BY_PROVIDER_ID = (
    select(_messages.c.id, _messages.c.status, _messages.c.direction, _messages.c.text, _messages.c.payload,
           _messages.c.conversation_id, _conversations.c.team_id, _conversations.c.assignee_id)
    .join(_conversations, _conversations.c.id == _messages.c.conversation_id)
    .where(_messages.c.channel_id == bindparam("channel_id"),
           _messages.c.provider_message_id == bindparam("provider_message_id")))
_UNMATCHED = (select(_events.c.id, _events.c.pending)
              .where(_events.c.channel_id == bindparam("channel_id"), _events.c.ref == bindparam("ref"),
                     _events.c.status == "unmatched").order_by(_events.c.id))
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


RawBody = str | bytes


def _raw_columns(body: RawBody) -> dict[str, str]:
    """The raw event's columns, lossless: UTF-8 text as it is, any other bytes as base64."""
    if isinstance(body, str):
        return {"body": body, "body_encoding": "text"}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:  # PostgreSQL text cannot hold NUL
        return {"body": text, "body_encoding": "text"}
    return {"body": base64.b64encode(body).decode("ascii"), "body_encoding": "base64"}


def raw_body(event: Any) -> bytes:
    """The bytes of a stored raw event (an ``InboundEvent`` or a row with ``body`` and ``body_encoding``)."""
    if event.body_encoding == "base64":
        return base64.b64decode(event.body)
    return str(event.body).encode("utf-8")


def _store_raw(conn: Connection, channel: ChannelConfig, event_id: str, body: RawBody) -> int | None:
    """Insert the raw event; its row id, or None when it was processed before (a redelivery)."""
    key = {"channel_id": channel.id, "provider_event_id": event_id}
    stored = conn.execute(_insert(conn.dialect.name), {**key, **_raw_columns(body), "status": "processed",
                                                       "error": "", "received_at": now()}).scalar()
    if stored is not None:
        return int(stored)
    existing = conn.execute(_FIND, key).one()
    if existing.status != "failed":
        return None
    return int(existing.id)  # an earlier attempt failed: process the retry


def apply_status(conn: Connection, row: Any, status: str, reason: str, events: list[Event]) -> bool:
    """Move an outbound message's status forward (never back; failed only from queued or sent)."""
    old = row.status
    if status == "failed":
        if old not in ("queued", "sent"):
            return False
    elif status not in STATUS_ORDER or old not in STATUS_ORDER or STATUS_ORDER[status] <= STATUS_ORDER[old]:
        return False
    conn.execute(_messages.update().where(_messages.c.id == row.id).values(
        status=status, status_reason=reason[:2000], status_updated_at=now()))
    events.append(MessageStatusChanged(conversation_id=row.conversation_id, team_id=row.team_id,
                                       assignee_id=row.assignee_id, message_id=row.id, status=status,
                                       reason=reason))
    return True


def _status(conn: Connection, channel: ChannelConfig, st: InboundStatus, stored: int, events: list[Event]) -> None:
    row = conn.execute(_BY_PROVIDER_ID, {"channel_id": channel.id,
                                         "provider_message_id": st.provider_message_id}).first()
    if row is None or row.direction != "out":
        # Not (yet) known: the provider may report before the outbox stored the id it returned.
        conn.execute(_events.update().where(_events.c.id == stored).values(
            status="unmatched", ref=st.provider_message_id, pending={"status": st.status, "reason": st.reason}))
        return
    apply_status(conn, row, st.status, st.reason, events)
    conn.execute(_MARK, {"event_id_": stored, "status": "processed", "error": "", "message_id": row.id,
                         "ref": None})


def apply_unmatched(conn: Connection, channel_id: int, provider_message_id: str, events: list[Event]) -> None:
    """Apply status reports that arrived before ``provider_message_id`` was stored on its message."""
    pending = conn.execute(_UNMATCHED, {"channel_id": channel_id, "ref": provider_message_id}).all()
    if not pending:
        return
    row = conn.execute(_BY_PROVIDER_ID, {"channel_id": channel_id,
                                         "provider_message_id": provider_message_id}).first()
    if row is None:
        return
    message_id = row.id
    for ev in pending:
        report = ev.pending or {}
        if apply_status(conn, row, str(report.get("status", "")), str(report.get("reason", "")), events):
            row = conn.execute(_BY_PROVIDER_ID, {"channel_id": channel_id,
                                                 "provider_message_id": provider_message_id}).one()
        conn.execute(_MARK, {"event_id_": ev.id, "status": "processed", "error": "", "message_id": message_id,
                             "ref": None})


def _edit(conn: Connection, channel: ChannelConfig, ed: InboundEdit, stored: int, events: list[Event]) -> None:
    row = conn.execute(_BY_PROVIDER_ID, {"channel_id": channel.id,
                                         "provider_message_id": ed.provider_message_id}).first()
    if row is None or row.direction != "in":
        conn.execute(_MARK, {"event_id_": stored, "status": "processed", "message_id": None, "ref": None,
                             "error": "edit of a message this server never received; ignored"})
        return
    if ed.text != row.text:
        payload = dict(row.payload or {})
        payload["edits"] = [*payload.get("edits", []), {"text": row.text, "replaced_at": now().isoformat()}]
        conn.execute(_messages.update().where(_messages.c.id == row.id).values(text=ed.text, payload=payload))
        events.append(MessageEdited(conversation_id=row.conversation_id, team_id=row.team_id,
                                    assignee_id=row.assignee_id, message_id=row.id))
    conn.execute(_MARK, {"event_id_": stored, "status": "processed", "error": "", "message_id": row.id,
                         "ref": None})


def ingest_item(conn: Connection, *, channel: ChannelConfig, item: InboundItem, body: RawBody,
                events: list[Event], files: list[StoredFile] | None = None) -> Ingested:
    stored = _store_raw(conn, channel, item.event_id, body)
    if stored is None:
        return Ingested(item.event_id, duplicate=True, received=None)
    if isinstance(item, InboundStatus):
        _status(conn, channel, item, stored, events)
        return Ingested(item.event_id, duplicate=False, received=None)
    if isinstance(item, InboundEdit):
        _edit(conn, channel, item, stored, events)
        return Ingested(item.event_id, duplicate=False, received=None)
    received = receive_message(conn, channel=channel, msg=item, events=events, files=files or ())
    conn.execute(_MARK, {"event_id_": stored, "status": "processed", "error": "", "message_id": received.message_id,
                         "ref": None})
    return Ingested(item.event_id, duplicate=False, received=received)


# Kept for callers that only pass messages.
ingest_message = ingest_item


async def do_ingest_message(tx: Tx, *, channel: ChannelConfig, msg: InboundItem, body: RawBody,
                            files: list[StoredFile] | None = None) -> Ingested:
    """Store the raw event and what it carries, in the transaction of ``tx``."""
    events: list[Event] = []
    result = await tx.conn.run_sync(
        lambda c: ingest_item(c, channel=channel, item=msg, body=body, events=events, files=files))
    for event in events:
        tx.publish(event)
    return result


async def ingest(db: Database, *, channel: ChannelConfig, messages: list[InboundItem], body: RawBody,
                 files: dict[int, list[StoredFile]] | None = None) -> list[Ingested]:
    """Commit each event with its effects; if that fails, keep it raw as failed and ask for a retry.
    ``files`` maps an item's index to its stored files."""
    results = []
    for index, msg in enumerate(messages):
        item_files = (files or {}).get(index)

        async def job(tx: Tx, msg: InboundItem = msg, item_files: list[StoredFile] | None = item_files) -> Ingested:
            return await do_ingest_message(tx, channel=channel, msg=msg, body=body, files=item_files)

        try:
            results.append(await db.write(job))
        except Exception as exc:
            log.exception("processing inbound event %s on channel %s failed", msg.event_id, channel.id)
            async def keep(tx: Tx, msg: InboundItem = msg, exc: Exception = exc) -> None:
                await _keep_failed(tx, channel, msg, body, exc)

            await db.write(keep)
            raise ProblemError(503, "processing_failed",
                               "The event was stored but could not be processed yet; retry it later.",
                               headers={"Retry-After": "5"}) from exc
    return results


# How each channel type turns a provider's file reference into bytes, registered with the type
# (channels/registry.py): ingest needs no import of channels/.
FetchFile = Callable[[ChannelConfig, str, httpx.AsyncClient], Awaitable[bytes]]
file_fetchers: dict[str, FetchFile] = {}

# What runs once a provider's events are stored (the channel's health notes a receive), registered with the
# channel types (channels/registry.py): ingest needs no import of channels/.
AfterAccept = Callable[["Runtime", int], Awaitable[None]]
after_accept: list[AfterAccept] = []


def channel_client(rt: Runtime) -> httpx.AsyncClient:
    """The HTTP client adapters use outside the outbox (file downloads, long polling)."""
    if rt.channel_client is None or rt.channel_client.is_closed:
        rt.channel_client = outbound_client(rt.settings, timeout=60.0)
    return rt.channel_client


async def _fetch(rt: Runtime, channel: ChannelConfig, f: InboundFile, store: FileStore) -> StoredFile | str:
    """Store one inbound file; a refusal reason (too large, empty) instead of raising, so the message
    itself still arrives. A failed download raises: the provider retries the whole event."""
    data = f.data
    if data is None and f.ref is not None:
        try:
            data = await file_fetchers[channel.type](channel, f.ref, channel_client(rt))
        except SendError as exc:
            if not exc.retryable:
                return f"could not be downloaded: {exc.reason}"
            raise ProblemError(503, "file_download_failed",
                               f"A file of this event could not be downloaded yet ({exc.reason}); retry later.",
                               headers={"Retry-After": "10"}) from exc
    try:
        return store.put(data or b"", f.filename, f.content_type)
    except ProblemError as exc:
        return exc.detail


async def _already_processed(rt: Runtime, channel: ChannelConfig, event_ids: list[str]) -> set[str]:
    """Events stored and processed before: a redelivery's files are not downloaded again."""
    if not event_ids:
        return set()
    async with rt.db.read() as s:
        rows = await s.execute(select(InboundEvent.provider_event_id).where(
            InboundEvent.channel_id == channel.id, InboundEvent.provider_event_id.in_(event_ids),
            InboundEvent.status == "processed"))
        return set(rows.scalars())


async def accept(rt: Runtime, channel: ChannelConfig, items: list[InboundItem], raw: bytes) -> list[Ingested]:
    """Everything an adapter received, committed: files downloaded and stored, then each event in its
    transaction. Files of events that turn out to be redeliveries (or fail) are removed again."""
    from kommutator.conversations.files_api import file_store

    store = file_store(rt)
    files: dict[int, list[StoredFile]] = {}
    prepared: list[InboundItem] = []
    kept: list[StoredFile] = []
    seen = await _already_processed(rt, channel, [i.event_id for i in items
                                                 if isinstance(i, InboundMessage) and i.files])
    try:
        for index, item in enumerate(items):
            if isinstance(item, InboundMessage) and item.files and item.event_id not in seen:
                refused = []
                for inbound_file in item.files:
                    outcome = await _fetch(rt, channel, inbound_file, store)
                    if isinstance(outcome, str):
                        refused.append({"filename": inbound_file.filename, "reason": outcome})
                    else:
                        files.setdefault(index, []).append(outcome)
                        kept.append(outcome)
                if refused:
                    item = dataclasses.replace(item, payload={**item.payload, "files_refused": refused})
            prepared.append(item)
        results = await ingest(rt.db, channel=channel, messages=prepared, body=raw,
                               files=files)
    except BaseException:
        for f in kept:
            store.discard(f)
        raise
    for index, result in enumerate(results):
        if result.received is None or result.received.message_id is None:
            for f in files.get(index, []):
                store.discard(f)
    for hook in after_accept:
        await hook(rt, channel.id)
    return results


async def _keep_failed(tx: Tx, channel: ChannelConfig, msg: InboundItem, body: RawBody, exc: Exception) -> None:
    conn = tx.conn
    error = f"{type(exc).__name__}: {exc}"[:2000]
    key = {"channel_id": channel.id, "provider_event_id": msg.event_id}
    stored = (await conn.execute(_insert(conn.dialect.name), {**key, **_raw_columns(body), "status": "failed",
                                                              "error": error, "received_at": now()})).scalar()
    if stored is None:
        existing = (await conn.execute(_FIND, key)).one()
        if existing.status == "failed":
            await conn.execute(_MARK, {"event_id_": existing.id, "status": "failed", "error": error,
                                       "message_id": None, "ref": None})
