"""The outbox worker: deliver queued messages through their channel's adapter, in order per chat.

A due row is claimed (``claimed_by``/``claimed_until``) in a short transaction — with ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so processes never take the same row; SQLite's single writer serialises claims.
The adapter's ``send`` runs outside any transaction, and its outcome is written in one more, which also
moves the message's status (outcomes that arrive together — a claimed batch's sends finishing — share it).
A worker that dies between the send and that write leaves a claim that is released when its heartbeat stops
(workers/owners.py; or expires, for an owner nobody reaps); the item is then sent again with the same idempotency
key, which the receiver uses to drop the repeat: delivery is at least once, and the
message turns "sent" exactly once.

An item waits while an earlier item with the same ordering key (one chat) is still pending, including
one waiting for a retry; an item that failed for good no longer holds the chat up.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Select, func, or_, select, update

from kommutator.audit.actions import do_audit
from kommutator.channels.actions import config_of
from kommutator.channels.base import (
    OUTBOUND_DISABLED,
    Button,
    Capabilities,
    OutboundAttachment,
    OutboundMessage,
    SendError,
    SendResult,
    TemplateUse,
)
from kommutator.channels.health import note_send
from kommutator.channels.models import Channel
from kommutator.channels.oauth import OAuthError
from kommutator.channels.registry import get_adapter
from kommutator.channels.signin import fresh
from kommutator.clock import now
from kommutator.contacts.models import Contact
from kommutator.conversations.files_api import file_store
from kommutator.conversations.models import Attachment, Conversation, Message
from kommutator.db import Tx
from kommutator.errors import ProblemError
from kommutator.events import Event, MessageStatusChanged
from kommutator.ingest.actions import apply_unmatched
from kommutator.net.http import outbound_client
from kommutator.runtime import Runtime
from kommutator.workers.base import PollingWorker
from kommutator.workers.models import OutboxItem
from kommutator.workers.retry import RetryPolicy

log = logging.getLogger(__name__)

# --- Recording outcomes (the worker's actions) ---------------------------------------------------------

def _status_event(conv: Conversation, msg: Message) -> MessageStatusChanged:
    return MessageStatusChanged(conversation_id=conv.id, team_id=conv.team_id, assignee_id=conv.assignee_id,
                                message_id=msg.id, status=msg.status, reason=msg.status_reason,
                                channel_id=msg.channel_id)


async def _set_message_status(tx: Tx, msg: Message, status: str, reason: str,
                              provider_message_id: str | None = None) -> None:
    if msg.status != "queued":  # statuses only move forward; a later callback may have moved it already
        return
    ts = now()
    msg.status, msg.status_reason, msg.status_updated_at = status, reason, ts
    if provider_message_id and msg.provider_message_id is None:
        # The id comes from the receiver: keep it only if it does not clash with another message's.
        taken = await tx.session.scalar(select(Message.id).where(
            Message.channel_id == msg.channel_id, Message.provider_message_id == provider_message_id,
            Message.id != msg.id).limit(1))
        if taken is None:
            msg.provider_message_id = provider_message_id
            await tx.session.flush()
            events: list[Event] = []
            channel_id = msg.channel_id
            if channel_id is not None:
                await tx.conn.run_sync(lambda c: apply_unmatched(c, channel_id, provider_message_id, events))
                if events:
                    await tx.session.refresh(msg)
            for event in events:
                tx.publish(event)
        else:
            log.warning("channel %s gave message %s the id %r, which message %s already has; not stored",
                        msg.channel_id, msg.id, provider_message_id, taken)
    conv = await tx.session.get(Conversation, msg.conversation_id)
    if conv is not None:
        tx.publish(_status_event(conv, msg))


async def _stop_channel_outbound(tx: Tx, channel_id: int | None, reason: str) -> None:
    channel = await tx.session.get(Channel, channel_id) if channel_id is not None else None
    if channel is None or channel.settings.get(OUTBOUND_DISABLED):
        return
    channel.settings = {**channel.settings, OUTBOUND_DISABLED: reason}
    channel.updated_at = now()
    do_audit(tx, None, "channel.outbound_disabled", "channel", channel.id, reason=reason)
    log.warning("channel %s: outbound delivery stopped: %s", channel.id, reason)


async def do_record_outcome(tx: Tx, *, item_id: int, worker: str, outcome: SendResult | SendError,
                            policy: RetryPolicy, locked: bool = False) -> bool:
    """Mark a claimed item done, schedule its retry, or fail it, with its message; False if not ours."""
    # ``locked``: the caller has loaded the item in this transaction, locked (do_record_outcomes) — no re-read.
    item = (await tx.session.get(OutboxItem, item_id) if locked else
            await tx.session.get(OutboxItem, item_id, with_for_update=True, populate_existing=True))
    # A lease released meanwhile (this process was taken for dead, workers/owners.py) and not claimed again is
    # still this outcome's to record: the item is not sent a second time.
    if item is None or item.status != "pending" or item.claimed_by not in (worker, None):
        log.info("outbox item %s is no longer claimed by %s; its outcome is left to the new claimant",
                 item_id, worker)
        return False
    ts = now()
    item.attempts += 1
    item.claimed_by, item.claimed_until, item.updated_at = None, None, ts
    if "text" in item.payload and not (isinstance(outcome, SendError) and outcome.retryable
                                       and item.attempts < policy.max_attempts):
        # Sent or given up: a one-time code's text (outbound/proofs.py) is not kept.
        item.payload = {k: v for k, v in item.payload.items() if k != "text"}
    msg = await tx.session.get(Message, item.message_id) if item.message_id is not None else None
    if isinstance(outcome, SendResult):
        item.status, item.last_error = "done", ""
        if msg is not None:
            await _set_message_status(tx, msg, "sent", "", outcome.provider_message_id)
        return True
    item.last_error = outcome.reason
    if outcome.retryable and item.attempts < policy.max_attempts:
        item.next_attempt_at = ts + dt.timedelta(seconds=policy.delay(item.attempts, outcome.retry_after))
        if msg is not None and msg.status == "queued":
            # The agent sees that delivery is being retried, why, and when the next try is.
            msg.status_reason = (f"Delivery attempt {item.attempts} of {policy.max_attempts} failed: "
                                 f"{outcome.reason}. Next try at {item.next_attempt_at:%H:%M:%S} UTC.")[:2000]
            msg.status_updated_at = ts
            conv = await tx.session.get(Conversation, msg.conversation_id)
            if conv is not None:
                tx.publish(_status_event(conv, msg))
        return True
    item.status = "failed"
    reason = outcome.reason
    if outcome.retryable:
        reason += f" (gave up after {item.attempts} attempts)"
    if outcome.endpoint_gone:
        await _stop_channel_outbound(tx, item.channel_id, outcome.reason)
    if msg is not None:
        await _set_message_status(tx, msg, "failed", reason)
    return True


async def do_record_outcomes(tx: Tx, *, outcomes: list[tuple[int, SendResult | SendError]], worker: str,
                             policy: RetryPolicy) -> list[bool]:
    """Record several outcomes in one transaction: the items (locked), their messages and conversations are read
    in three statements first, so each ``do_record_outcome`` finds its rows in the session instead of reading
    them one by one."""
    ids = [item_id for item_id, _ in outcomes]
    items = list((await tx.session.execute(
        select(OutboxItem).where(OutboxItem.id.in_(ids)).with_for_update()
        .execution_options(populate_existing=True))).scalars())
    message_ids = [i.message_id for i in items if i.message_id is not None]
    held: list[object] = [*items]  # the session's identity map holds objects weakly: keep them for the job
    if message_ids:
        msgs = list((await tx.session.execute(select(Message).where(Message.id.in_(message_ids)))).scalars())
        held += msgs
        held += (await tx.session.execute(select(Conversation).where(
            Conversation.id.in_({m.conversation_id for m in msgs})))).scalars()
    found = {i.id for i in items}
    results = []
    for item_id, outcome in outcomes:
        results.append(await do_record_outcome(tx, item_id=item_id, worker=worker, outcome=outcome, policy=policy,
                                               locked=item_id in found))
    del held
    return results


def _capabilities(channel_type: str) -> Capabilities:
    try:
        return get_adapter(channel_type).capabilities
    except (ProblemError, KeyError):
        return Capabilities()


def _latest(in_conversation: dt.datetime | None, hint: Any) -> dt.datetime | None:
    """The customer's latest message on the channel: in this conversation, or as a first message recorded it
    (outbound/actions.py: they may have written in an earlier conversation)."""
    try:
        earlier = dt.datetime.fromisoformat(hint) if isinstance(hint, str) else None
    except ValueError:
        earlier = None
    if earlier is not None and earlier.tzinfo is None:
        earlier = earlier.replace(tzinfo=dt.UTC)
    if in_conversation is not None and in_conversation.tzinfo is None:
        in_conversation = in_conversation.replace(tzinfo=dt.UTC)
    found = [t for t in (in_conversation, earlier) if t is not None]
    return max(found) if found else None


def _template(payload: dict[str, Any]) -> TemplateUse | None:
    """The provider template a message was queued with (outbound/actions.py), if any."""
    t = payload.get("template")
    if not isinstance(t, dict) or not t.get("name"):
        return None
    return TemplateUse(name=str(t["name"]), language=str(t.get("language", "")),
                       parameters=tuple(str(p) for p in t.get("values", ())))


def _buttons(payload: dict[str, Any]) -> tuple[Button, ...]:
    raw = payload.get("buttons") or []
    return tuple(Button(id=str(b["id"]), label=str(b["label"])) for b in raw
                 if isinstance(b, dict) and "id" in b and "label" in b)


# --- The worker ----------------------------------------------------------------------------------------

def _nothing() -> None:
    return None


class _Round:
    """A round of sends: ``all_started`` is set once each has passed its pacing wait (or ended)."""

    def __init__(self, sends: int) -> None:
        self.left = sends
        self.all_started = asyncio.Event()
        if sends <= 0:
            self.all_started.set()

    def started_one(self) -> Callable[[], None]:
        """A callback for one send; calling it again does nothing."""
        called = False

        def started() -> None:
            nonlocal called
            if called:
                return
            called = True
            self.left -= 1
            if self.left <= 0:
                self.all_started.set()

        return started


@dataclass(frozen=True)
class _Work:
    item_id: int
    message: OutboundMessage | None
    channel: Channel | None
    ordering_key: str = ""


class OutboxWorker(PollingWorker):
    """Deliver due outbox items; ``start`` polls in the background, ``run_due`` does one pass (tests)."""

    name_in_logs = "outbox"

    def __init__(self, runtime: Runtime, *, client: httpx.AsyncClient | None = None, interval: float = 1.0,
                 batch: int = 50, lease: dt.timedelta = dt.timedelta(minutes=5),
                 policy: RetryPolicy | None = None, name: str | None = None, bulk_batch: int = 20,
                 headroom: float = 0.95) -> None:
        super().__init__()
        self.rt = runtime
        self.db = runtime.db
        self._client = client
        self._own_client = client is None
        self.interval = interval
        self.batch = batch
        # Campaign items a round claims at most: 20 at Telegram's 30/s is 0.67 s of sending, the longest a reply
        # claimed in the next round waits behind campaign traffic.
        self.bulk_batch = bulk_batch
        self.headroom = headroom  # the share of each provider's documented rate we send at
        self.lease = lease  # longer than any send takes: an expired claim means the worker died
        self.policy = policy or RetryPolicy()
        self.name = (name or f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}")[:64]
        self._task: asyncio.Task[None] | None = None
        self.pacer = runtime.cluster.pacer  # per channel and per chat, shared by every server process (cluster/)
        # Outcomes waiting for their write, and the task writing them (see _record).
        self._outcomes: list[tuple[int, SendResult | SendError, asyncio.Future[None]]] = []
        self._recorder: asyncio.Task[None] | None = None
        # Each send in flight's "passed its pacing wait" callback (run_due's overlapping rounds), by item id.
        self._starting: dict[int, Callable[[], None]] = {}

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = outbound_client(self.rt.settings)
        return self._client

    async def _loop(self) -> None:
        """Pass after pass while there is work (a campaign's backlog keeps it busy), pausing ``interval`` only when a
        pass found nothing to send: a reply never waits out a pause behind a long backlog."""
        while True:
            attempted = 0
            try:
                attempted = await self.run_due()
            except Exception:
                log.exception("outbox pass failed")
            if not attempted:
                await asyncio.sleep(self.interval)

    async def run_due(self, *, max_rounds: int = 100) -> int:
        """Send what is due now; the next message of a chat goes in the next round. Return attempts made."""
        attempted = 0
        flying: set[asyncio.Task[None]] = set()
        try:
            for _ in range(max_rounds):
                ids = await self.claim()
                if not ids:
                    if not flying:
                        break
                    # A chat's next message becomes due when its previous one is recorded: finish, then look again.
                    await asyncio.gather(*flying)
                    flying = set()
                    continue
                work = await self._load(ids)
                # Rounds overlap: the next is claimed once each send of this one has passed its pacing wait (is
                # on the wire or done), so a paced channel does not idle while outcomes are written and the next
                # items claimed. A chat's next item is never in it: its head is still claimed until recorded.
                gate = _Round(len(work))
                flying |= {asyncio.create_task(self._deliver(w, gate.started_one())) for w in work}
                await gate.all_started.wait()
                flying = {t for t in flying if not t.done()}
                attempted += len(work)
            if flying:
                await asyncio.gather(*flying)
        except BaseException:
            for task in flying:
                task.cancel()
            raise
        return attempted

    async def claim(self) -> list[int]:
        """Claim up to ``batch`` due items of priority 0 (agents' replies, notifications) and up to
        ``bulk_batch`` of priority 1 (campaigns), at most one per ordering key (the oldest pending one). A round
        of sends lasts about ``bulk_batch / rate`` at most, so a reply waits for that, never for a campaign's
        backlog; and within a round, replies take the channel's first pacing slots (``_load``'s order)."""
        at = now()
        unclaimed = or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until <= at)
        # Each ordering key's oldest pending item, found in one sorted pass: no per-row sub-select, so a
        # backlog of thousands of chats costs milliseconds even before the planner has statistics for it.
        ranked = (select(OutboxItem.id, OutboxItem.kind, OutboxItem.next_attempt_at, OutboxItem.claimed_until,
                         OutboxItem.priority, func.row_number().over(partition_by=OutboxItem.ordering_key,
                                                order_by=OutboxItem.id).label("place"))
                  .where(OutboxItem.status == "pending").subquery())

        def heads(limit: int, bulk: bool) -> Select[tuple[int]]:
            lane = ranked.c.priority >= 1 if bulk else ranked.c.priority < 1
            return (select(ranked.c.id)
                    .where(ranked.c.place == 1, ranked.c.kind == "message", ranked.c.next_attempt_at <= at,
                           or_(ranked.c.claimed_until.is_(None), ranked.c.claimed_until <= at), lane)
                    .order_by(ranked.c.next_attempt_at, ranked.c.id).limit(limit))

        take = update(OutboxItem).values(claimed_by=self.name, claimed_until=at + self.lease)
        lanes = ((False, self.batch), (True, self.bulk_batch))

        async def job(tx: Tx) -> list[int]:
            if self.db.is_sqlite:
                # One statement: it takes the write lock before it reads, so no other connection's commit can
                # slip in between choosing and claiming.
                stmt = take.where(or_(*(OutboxItem.id.in_(heads(n, bulk)) for bulk, n in lanes))
                                  ).returning(OutboxItem.id)
                return sorted((await tx.conn.execute(stmt)).scalars())
            # PostgreSQL: choose candidates, then lock what no other process holds. Locking re-reads a row
            # another transaction changed meanwhile, so an item claimed or finished a moment ago drops out.
            # (An UPDATE … WHERE id IN (sub-select … LIMIT … SKIP LOCKED) may re-run the sub-select as it goes
            # and claim far more than the limit; separate statements cannot.)
            claimed: list[int] = []
            for bulk, n in lanes:
                candidates = list((await tx.conn.execute(heads(n * 4, bulk))).scalars())
                if not candidates:
                    continue
                ids = list((await tx.conn.execute(
                    select(OutboxItem.id)
                    .where(OutboxItem.id.in_(candidates), OutboxItem.status == "pending",
                           OutboxItem.next_attempt_at <= at, unclaimed)
                    .order_by(OutboxItem.next_attempt_at, OutboxItem.id).limit(n)
                    .with_for_update(skip_locked=True))).scalars())
                if ids:
                    await tx.conn.execute(take.where(OutboxItem.id.in_(ids)))
                claimed += ids
            return sorted(claimed)

        return await self.db.write(job)

    async def _load(self, ids: list[int]) -> list[_Work]:
        base = self.rt.settings.public_base_url
        store = file_store(self.rt)
        async with self.db.read() as s:
            rows = (await s.execute(
                select(OutboxItem, Message, Channel, Conversation, Contact)
                .outerjoin(Message, Message.id == OutboxItem.message_id)
                .outerjoin(Channel, Channel.id == OutboxItem.channel_id)
                .outerjoin(Conversation, Conversation.id == Message.conversation_id)
                .outerjoin(Contact, Contact.id == Conversation.contact_id)
                .where(OutboxItem.id.in_(ids)).order_by(OutboxItem.priority, OutboxItem.id))).all()
            message_ids = [m.id for _, m, _, _, _ in rows if m is not None]
            files: dict[int, list[OutboundAttachment]] = {}
            for a in (await s.execute(select(Attachment).where(Attachment.message_id.in_(message_ids))
                                      .order_by(Attachment.id))).scalars():
                files.setdefault(a.message_id, []).append(OutboundAttachment(
                    id=a.id, filename=a.filename, content_type=a.content_type, size=a.size, sha256=a.sha256,
                    url=f"{base}/api/v1/attachments/{a.id}", path=store.path(a.storage_key)))
            pairs = {(m.conversation_id, c.id) for _, m, c, _, _ in rows if m is not None and c is not None}
            last_in: dict[tuple[int, int], dt.datetime] = {}
            if pairs:
                for conv_id, ch_id, at in (await s.execute(
                        select(Message.conversation_id, Message.channel_id, func.max(Message.created_at))
                        .where(Message.conversation_id.in_({p[0] for p in pairs}), Message.direction == "in")
                        .group_by(Message.conversation_id, Message.channel_id))).all():
                    if ch_id is not None:
                        last_in[(conv_id, ch_id)] = at
            threads: dict[tuple[int, int], tuple[str, ...]] = {}
            for conv_id, ch_id in pairs:
                channel_type = next(c.type for _, m, c, _, _ in rows if c is not None and c.id == ch_id)
                if _capabilities(channel_type).threaded:
                    ids_ = (await s.execute(
                        select(Message.provider_message_id)
                        .where(Message.conversation_id == conv_id, Message.channel_id == ch_id,
                               Message.provider_message_id.is_not(None))
                        .order_by(Message.id.desc()).limit(20))).scalars()
                    threads[(conv_id, ch_id)] = tuple(reversed([i for i in ids_ if i]))
        work = []
        for item, msg, channel, conv, contact in rows:
            outbound = None
            if msg is not None:
                # Stable across attempts and restarts; the creation second keeps it unique across databases.
                key = f"msg_{msg.id}_{int(msg.created_at.timestamp())}"
                # A one-time code's text rides in the outbox row, not in the message the timeline shows
                # (outbound/proofs.py); so does its own subject.
                text, buttons = str(item.payload.get("text", msg.text)), _buttons(msg.payload)
                if buttons and channel is not None and not _capabilities(channel.type).buttons:
                    # No buttons on this channel: numbered options the customer answers by number or label.
                    text = "\n".join([text, *(f"{n}. {b.label}" for n, b in enumerate(buttons, 1))])
                    buttons = ()
                pair = (msg.conversation_id, channel.id if channel is not None else 0)
                outbound = OutboundMessage(
                    id=msg.id, idempotency_key=key, conversation_id=msg.conversation_id,
                    to=str(item.payload.get("to", "")), text=text, kind=msg.kind, created_at=msg.created_at,
                    attachments=tuple(files.get(msg.id, ())), buttons=buttons,
                    language=contact.language if contact is not None else None,
                    last_customer_message_at=_latest(last_in.get(pair), msg.payload.get("customer_wrote_at")),
                    thread=threads.get(pair, ()),
                    subject=str(item.payload.get("subject", conv.subject if conv is not None else "")),
                    template=_template(msg.payload))
            work.append(_Work(item.id, outbound, channel, item.ordering_key))
        return work

    async def _send(self, work: _Work) -> SendResult:
        channel = work.channel
        if work.message is None:
            raise SendError(retryable=False, reason="the message no longer exists")
        if channel is None:
            raise SendError(retryable=False, reason="the channel was removed")
        if not channel.enabled:
            raise SendError(retryable=False, reason=f"channel {channel.name!r} is disabled")
        if channel.settings.get(OUTBOUND_DISABLED):
            raise SendError(retryable=False, reason=str(channel.settings[OUTBOUND_DISABLED]))
        try:
            adapter = get_adapter(channel.type)
            config = config_of(channel, self.rt.box, self.rt.settings.public_base_url)
        except (ProblemError, ValueError) as exc:
            raise SendError(retryable=False, reason=f"channel {channel.name!r} cannot be used: {exc}") from exc
        try:
            config = await fresh(self.rt, config)  # an OAuth access token about to expire is renewed first
        except OAuthError as exc:
            raise SendError(retryable=True, reason=str(exc), channel_problem=exc.code) from None
        caps = adapter.capabilities
        calls = max(1, adapter.calls(work.message))  # the parts of a split message count against the limits
        wait = max(await self.pacer.reserve(f"channel:{channel.id}", self._paced(caps.messages_per_second), calls),
                   await self.pacer.reserve(f"chat:{work.ordering_key}",
                                            self._paced(caps.messages_per_second_per_chat), calls))
        if wait > 0:
            await asyncio.sleep(wait)  # the provider's published rate: leave at it, do not collect 429s
        # Slots booked in advance can fall due together after the loop was held up (a long transaction's Python
        # side): at most the paced rate leaves in any second, whatever the slots say.
        rate = self._paced(caps.messages_per_second)
        for _ in range(10_000):
            late = await self.pacer.admit(f"channel:{channel.id}", rate, calls)
            if late <= 0:
                break
            await asyncio.sleep(late)
        self._starting.pop(work.item_id, _nothing)()  # this send is on the wire: the round may go on
        return await adapter.send(config, work.message, self.client)

    def _paced(self, rate: float | None) -> float | None:
        """The rate to leave at: the provider's documented one less the headroom, because sends booked 1/rate
        apart do not arrive 1/rate apart (a late one is followed closely by the next) and a provider counting
        in a sliding second would refuse the 31st of them."""
        return rate * self.headroom if rate else rate

    async def _deliver(self, work: _Work, started: Callable[[], None] = lambda: None) -> None:
        outcome: SendResult | SendError
        self._starting[work.item_id] = started
        try:
            outcome = await self._send(work)
        except SendError as exc:
            outcome = exc
        except Exception as exc:  # an adapter bug must not stall the chat forever: count it as a failed attempt
            log.exception("outbox item %s: the adapter failed unexpectedly", work.item_id)
            outcome = SendError(retryable=True, reason=f"unexpected error: {type(exc).__name__}: {exc}")
        finally:
            self._starting.pop(work.item_id, None)
            started()  # refused before its send (a disabled channel): it no longer holds the round up

        await note_send(self.rt, work.channel.id if work.channel is not None else None, outcome)
        await self._record(work.item_id, outcome)

    async def _record(self, item_id: int, outcome: SendResult | SendError) -> None:
        """Record an outcome; those that arrive together (a claimed batch's sends finishing) share one write job.

        Returns once the outcome is committed, or its write failed (logged: the claim then expires and the item
        is sent again with the same idempotency key)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outcomes.append((item_id, outcome, done))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_pending(), name="kommutator-outbox-recorder")
        await asyncio.shield(done)  # a cancelled pass does not cancel the write of what was sent

    async def _record_pending(self) -> None:
        await asyncio.sleep(0)  # sends that finished in this same turn of the loop join the first write
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            try:
                await self._write_outcomes([(item_id, outcome) for item_id, outcome, _ in batch])
            finally:
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def _write_outcomes(self, outcomes: list[tuple[int, SendResult | SendError]]) -> None:
        if len(outcomes) > 1:
            async def together(tx: Tx) -> list[bool]:
                return await do_record_outcomes(tx, outcomes=outcomes, worker=self.name, policy=self.policy)

            try:
                await self.db.write(together)
                return
            except Exception:  # one of them failed and took the others' transaction with it: each alone
                log.warning("outbox: recording %d outcomes together failed; recording each alone", len(outcomes),
                            exc_info=True)
        for item_id, outcome in outcomes:
            async def job(tx: Tx, item_id: int = item_id, outcome: SendResult | SendError = outcome) -> bool:
                return await do_record_outcome(tx, item_id=item_id, worker=self.name, outcome=outcome,
                                               policy=self.policy)

            try:
                await self.db.write(job)
            except Exception:
                log.exception("outbox item %s: the outcome could not be recorded; the claim expires and the item "
                              "is sent again with the same idempotency key", item_id)

    async def stop(self) -> None:
        await super().stop()
        if self._recorder is not None:  # what was sent before the stop is recorded before the database closes
            with contextlib.suppress(Exception):
                await self._recorder
            self._recorder = None
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None
