"""Retention: each policy removes one kind of data older than its days, for one channel or all, once a day.

Kinds: ``conversations`` (resolved conversations whose last message is older than the limit, with everything
under them and their files), ``attachments`` (files and their records; the messages stay), ``raw_events`` (the
raw provider payloads kept for evidence and re-parsing), ``audit`` (audit log entries: the log stays append-only
for everything newer than the cut-off this run writes). A dry run counts what would go and changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, delete, func, select, update

from kommutator.audit.models import AuditEntry
from kommutator.clock import now
from kommutator.conversations.models import Attachment, Conversation, Message
from kommutator.db import Tx
from kommutator.ingest.models import InboundEvent
from kommutator.privacy.erase import remove_files
from kommutator.privacy.models import AuditRetention, RetentionPolicy
from kommutator.workers.base import PollingWorker

if TYPE_CHECKING:
    from kommutator.runtime import Runtime

log = logging.getLogger(__name__)
KINDS = ("conversations", "attachments", "raw_events", "audit")
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Outcome:
    policy_id: int
    kind: str
    channel_id: int | None
    days: int
    count: int


def _conversations(p: RetentionPolicy, cutoff: dt.datetime) -> Select[Any]:
    stmt = select(Conversation.id).where(Conversation.status == "resolved", Conversation.last_message_at < cutoff)
    if p.channel_id is not None:
        stmt = stmt.where(Conversation.last_inbound_channel_id == p.channel_id)
    return stmt


def _attachments(p: RetentionPolicy, cutoff: dt.datetime) -> Select[Any]:
    stmt = select(Attachment.id).join(Message, Message.id == Attachment.message_id).where(
        Attachment.created_at < cutoff)
    if p.channel_id is not None:
        stmt = stmt.where(Message.channel_id == p.channel_id)
    return stmt


def _raw_events(p: RetentionPolicy, cutoff: dt.datetime) -> Select[Any]:
    stmt = select(InboundEvent.id).where(InboundEvent.received_at < cutoff)
    if p.channel_id is not None:
        stmt = stmt.where(InboundEvent.channel_id == p.channel_id)
    return stmt


def _audit(p: RetentionPolicy, cutoff: dt.datetime) -> Select[Any]:
    return select(AuditEntry.id).where(AuditEntry.at < cutoff)


SELECTS = {"conversations": _conversations, "attachments": _attachments, "raw_events": _raw_events,
           "audit": _audit}


async def do_apply(tx: Tx, *, dry_run: bool) -> tuple[list[Outcome], list[str]]:
    """Each enabled policy's count (and, unless a dry run, removal); the files to delete after the commit."""
    s = tx.session
    ts = now()
    outcomes: list[Outcome] = []
    files: list[str] = []
    policies = (await s.execute(select(RetentionPolicy).where(RetentionPolicy.enabled.is_(True))
                                .order_by(RetentionPolicy.id))).scalars().all()
    for p in policies:
        ids = SELECTS[p.kind](p, ts - p.days * DAY)
        count = int(await s.scalar(select(func.count()).select_from(ids.subquery())) or 0)
        outcomes.append(Outcome(p.id, p.kind, p.channel_id, p.days, count))
        if dry_run:
            continue
        if count:
            files += await _remove(tx, p, ids, ts - p.days * DAY)  # the run is recorded even when nothing went
        await s.execute(update(RetentionPolicy).where(RetentionPolicy.id == p.id)
                        .values(last_run_at=ts, last_removed=count))
    return outcomes, files


async def _remove(tx: Tx, p: RetentionPolicy, ids: Select[Any], cutoff: dt.datetime) -> list[str]:
    """Remove what ``ids`` selects for the policy; the storage keys of files to delete after the commit."""
    s = tx.session
    files: list[str] = []
    if p.kind == "conversations":
        messages = select(Message.id).where(Message.conversation_id.in_(ids))
        files += list((await s.execute(select(Attachment.storage_key)
                                       .where(Attachment.message_id.in_(messages)))).scalars())
        await s.execute(delete(InboundEvent).where(InboundEvent.message_id.in_(messages)))
        await s.execute(delete(Conversation).where(Conversation.id.in_(ids)))
    elif p.kind == "attachments":
        files += list((await s.execute(select(Attachment.storage_key).where(Attachment.id.in_(ids)))).scalars())
        await s.execute(delete(Attachment).where(Attachment.id.in_(ids)))
    elif p.kind == "audit":  # the log's triggers let go only of what is older than the cut-off written here
        if await s.get(AuditRetention, 1) is None:
            s.add(AuditRetention(id=1, keep_before=cutoff))
        else:
            await s.execute(update(AuditRetention).where(AuditRetention.id == 1).values(keep_before=cutoff))
        await s.flush()
        await s.execute(delete(AuditEntry).where(AuditEntry.at < cutoff))
    else:
        await s.execute(delete(InboundEvent).where(InboundEvent.id.in_(ids)))
    return files


async def apply(rt: Runtime, *, dry_run: bool) -> list[Outcome]:
    outcomes, files = await rt.db.write(lambda tx: do_apply(tx, dry_run=dry_run))
    if files:
        await asyncio.to_thread(remove_files, rt.settings.data_dir / "files", files)
    return outcomes


class RetentionWorker(PollingWorker):
    """Applies the policies once a day (the first pass an hour after start, so a restart loop does no harm)."""

    name_in_logs = "retention"
    interval = 3600.0

    def __init__(self, rt: Runtime) -> None:
        super().__init__()
        self.rt = rt
        self.last: dt.datetime | None = None

    async def run_due(self) -> int:
        if self.last is not None and now() - self.last < DAY:
            return 0
        if self.last is None:
            self.last = now()
            return 0
        self.last = now()
        outcomes = await apply(self.rt, dry_run=False)
        removed = sum(o.count for o in outcomes)
        if removed:
            log.info("retention removed %s rows: %s", removed, outcomes)
        return removed


def retention_worker_of(rt: Runtime) -> RetentionWorker:
    if rt.retention_worker is None:
        rt.retention_worker = RetentionWorker(rt)
    return rt.retention_worker
