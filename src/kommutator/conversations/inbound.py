"""A customer's message arrives: find or create the contact and conversation, append the message.

This is the hottest write in the system, so it runs prebuilt Core statements with parameters on the
transaction's connection instead of building ORM statements per message (measured several times
cheaper; see bench/README.md). It is safe under concurrency on PostgreSQL: the identity insert ignores a
concurrent duplicate, and the contact row is locked while its open conversation is found or created, so
two first messages never make two contacts or two conversations. A new identity with a verified email or
phone (docs/contacts.md) takes a transaction-scoped advisory lock per value before it looks for a contact
that has the value: first messages sharing it on two channels run one after the other, and the second
joins the contact the first made.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import BigInteger, Table, bindparam, case, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from kommutator.audit.models import AuditEntry
from kommutator.clock import now
from kommutator.common.language import follow as follow_language
from kommutator.contacts import optout, preferred
from kommutator.contacts.models import Contact, Identity
from kommutator.contacts.verified import lock_key, normal_email, normal_phone
from kommutator.conversations import hooks, lifecycle
from kommutator.conversations.files import StoredFile
from kommutator.conversations.models import Attachment, Conversation, Message
from kommutator.conversations.timers import UNSNOOZE
from kommutator.db import Tx
from kommutator.events import ContactChanged, Event, MessageCreated
from kommutator.ingest.types import ChannelConfig, InboundMessage
from kommutator.workers.timers import cancel_timers_statement

_contacts = cast(Table, Contact.__table__)
_identities = cast(Table, Identity.__table__)
_conversations = cast(Table, Conversation.__table__)
_messages = cast(Table, Message.__table__)

_FIND_IDENTITY = select(_identities.c.contact_id, _identities.c.id, _identities.c.verified_email,
                        _identities.c.verified_phone).where(
    _identities.c.channel_type == bindparam("channel_type"), _identities.c.external_id == bindparam("external_id"))
# The same, with the contact's language (joined by primary key: the language follows every message).
_FIND_IDENTITY_LANGUAGE = (
    select(_identities.c.contact_id, _identities.c.id, _identities.c.verified_email, _identities.c.verified_phone,
           _contacts.c.language, _contacts.c.language_source)
    .join(_contacts, _contacts.c.id == _identities.c.contact_id)
    .where(_identities.c.channel_type == bindparam("channel_type"),
           _identities.c.external_id == bindparam("external_id")))
_CONTACT_LANGUAGE = select(_contacts.c.language, _contacts.c.language_source).where(
    _contacts.c.id == bindparam("contact_id_"))
_SET_LANGUAGE = _contacts.update().where(_contacts.c.id == bindparam("contact_id_")).values(
    language=bindparam("language_v"), language_source=bindparam("source_v"), updated_at=bindparam("ts"))
# A known identity whose channel now vouches for a (new) email or phone: remember it for later links.
_VERIFY_IDENTITY = _identities.update().where(_identities.c.id == bindparam("identity_id_")).values(
    verified_email=func.coalesce(bindparam("email_v"), _identities.c.verified_email),
    verified_phone=func.coalesce(bindparam("phone_v"), _identities.c.verified_phone))
_ADVISORY_LOCK = select(func.pg_advisory_xact_lock(bindparam("lock_key", type_=BigInteger)))
# Live contacts with an identity (any channel type) having the sender's verified email or phone; two rows
# mean the value is shared by different contacts (e.g. after a split), and then nothing is linked.
_LINK_CANDIDATES = (
    select(_identities.c.contact_id,
           func.max(case((_identities.c.verified_email == bindparam("email_v"), 1), else_=0)).label("by_email"),
           func.max(case((_identities.c.verified_phone == bindparam("phone_v"), 1), else_=0)).label("by_phone"))
    .join(_contacts, _contacts.c.id == _identities.c.contact_id)
    .where(_contacts.c.merged_into_id.is_(None),
           or_(_identities.c.verified_email == bindparam("email_v"),
               _identities.c.verified_phone == bindparam("phone_v")))
    .group_by(_identities.c.contact_id).limit(2))
_FILL_CONTACT = _contacts.update().where(_contacts.c.id == bindparam("contact_id_")).values(
    email=func.coalesce(_contacts.c.email, bindparam("email_v")),
    phone=func.coalesce(_contacts.c.phone, bindparam("phone_v")), updated_at=bindparam("ts"))
_INSERT_AUDIT = cast(Table, AuditEntry.__table__).insert()
_INSERT_CONTACT = _contacts.insert().returning(_contacts.c.id)
_DELETE_CONTACT = _contacts.delete().where(_contacts.c.id == bindparam("contact_id_"))
# FOR NO KEY UPDATE, first in the one lock order (conversations/locks.py).
_LOCK_CONTACT = (select(_contacts.c.id).where(_contacts.c.id == bindparam("contact_id_"))
                 .with_for_update(key_share=True))
_OPEN_CONVERSATION = (
    select(_conversations.c.id, _conversations.c.status, _conversations.c.assignee_id, _conversations.c.team_id)
    .where(_conversations.c.contact_id == bindparam("contact_id_"), _conversations.c.status != "resolved")
    .order_by(_conversations.c.id.desc()).limit(1))
_CONVERSATION_COLUMNS = (_conversations.c.id, _conversations.c.status, _conversations.c.assignee_id,
                         _conversations.c.team_id)
# The conversation holding the newest of the messages a reply names (same channel, same contact).
_THREAD_CONVERSATION = (
    select(*_CONVERSATION_COLUMNS)
    .join(_messages, _messages.c.conversation_id == _conversations.c.id)
    .where(_messages.c.channel_id == bindparam("channel_id_"),
           _messages.c.provider_message_id.in_(bindparam("thread_ids", expanding=True)),
           _conversations.c.contact_id == bindparam("contact_id_"))
    .order_by(_messages.c.id.desc()).limit(1))
_HINTED_CONVERSATION = select(*_CONVERSATION_COLUMNS).where(
    _conversations.c.id == bindparam("conversation_id_"), _conversations.c.contact_id == bindparam("contact_id_"))
_INSERT_CONVERSATION = _conversations.insert().returning(_conversations.c.id)
_INSERT_ATTACHMENT = cast(Table, Attachment.__table__).insert()
_TOUCH_CONVERSATION = _conversations.update().where(_conversations.c.id == bindparam("conversation_id_")).values(
    last_message_at=bindparam("ts"), last_customer_message_at=bindparam("ts"), updated_at=bindparam("ts"),
    last_inbound_channel_id=bindparam("channel_id_"))

# In an inbound message's payload: the customer left the message for a person (the web chat's offline form).
FOR_PEOPLE = "offline"

_by_dialect: dict[str, tuple[Any, Any]] = {}


def _ignoring_duplicates(dialect: str) -> tuple[Any, Any]:
    """INSERT … ON CONFLICT DO NOTHING for identities and messages, built once per dialect."""
    if dialect not in _by_dialect:
        ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
        _by_dialect[dialect] = (
            ins(_identities).on_conflict_do_nothing().returning(_identities.c.contact_id),
            ins(_messages).on_conflict_do_nothing().returning(_messages.c.id),
        )
    return _by_dialect[dialect]


@dataclass(frozen=True)
class Received:
    conversation_id: int
    message_id: int | None  # None when the provider message id was already stored
    contact_id: int
    new_conversation: bool


def _contact_for(conn: Connection, channel: ChannelConfig, msg: InboundMessage, ts: dt.datetime,
                 events: list[Event]) -> int:
    """The sender's contact: by their identity on this channel type; for a new identity, the one live contact
    that has the sender's verified email or phone on any channel (never a name or an unverified value);
    else a new contact. Its language follows the message (``common.language.follow``)."""
    snd = msg.sender
    key = {"channel_type": channel.type, "external_id": snd.external_id}
    email = normal_email(snd.email) if snd.verified_email else None
    phone = normal_phone(snd.phone) if snd.verified_phone else None
    found = conn.execute(_FIND_IDENTITY_LANGUAGE, key).first()
    if found is not None:
        if (email and email != found.verified_email) or (phone and phone != found.verified_phone):
            conn.execute(_VERIFY_IDENTITY, {"identity_id_": found.id, "email_v": email, "phone_v": phone})
        _follow_language(conn, int(found.contact_id), found.language, found.language_source, msg, ts, events)
        return int(found.contact_id)
    identity = {**key, "display": snd.display, "verified_email": email, "verified_phone": phone, "linked_by": None,
                "created_at": ts}
    if email or phone:
        linked = _link_identity(conn, identity, ts, events)
        if linked is not None:
            current = conn.execute(_CONTACT_LANGUAGE, {"contact_id_": linked}).one()
            _follow_language(conn, linked, current.language, current.language_source, msg, ts, events)
            return linked
    language = follow_language(None, None, hint=snd.language, text=_own_words(msg))
    contact_id = conn.execute(_INSERT_CONTACT, {
        "name": snd.name or snd.display or snd.external_id, "email": snd.email, "phone": snd.phone,
        "language": language[0] if language else None, "language_source": language[1] if language else None,
        "attributes": dict(msg.attributes), "created_at": ts, "updated_at": ts,
    }).scalar_one()
    insert_identity, _ = _ignoring_duplicates(conn.dialect.name)
    mine = conn.execute(insert_identity, {**identity, "contact_id": contact_id}).scalar()
    if mine is not None:
        events.append(ContactChanged(contact_id=int(contact_id), action="created"))
        return int(contact_id)
    # Another transaction created this identity first: use its contact, drop ours.
    conn.execute(_DELETE_CONTACT, {"contact_id_": contact_id})
    return int(conn.execute(_FIND_IDENTITY, key).scalar_one())


def _own_words(msg: InboundMessage) -> str:
    """What the customer wrote themselves: a pressed button's text is ours, not theirs."""
    return "" if msg.button is not None else msg.text


def _follow_language(conn: Connection, contact_id: int, current: str | None, source: str | None,
                     msg: InboundMessage, ts: dt.datetime, events: list[Event]) -> None:
    """Keep the contact's language current: the channel's hint, else the text (an agent's choice stays)."""
    changed = follow_language(current, source, hint=msg.sender.language, text=_own_words(msg))
    if changed is None:
        return
    conn.execute(_SET_LANGUAGE, {"contact_id_": contact_id, "language_v": changed[0], "source_v": changed[1],
                                 "ts": ts})
    events.append(ContactChanged(contact_id=contact_id, action="updated"))


def _link_identity(conn: Connection, identity: dict[str, Any], ts: dt.datetime, events: list[Event]) -> int | None:
    """Insert a new identity into the one live contact that has its verified email or phone; None when no
    contact or more than one has them."""
    email, phone = identity["verified_email"], identity["verified_phone"]
    if conn.dialect.name == "postgresql":
        values = [("email", email), ("phone", phone)]
        for lock in sorted(lock_key(kind, value) for kind, value in values if value):  # one order: no deadlock
            conn.execute(_ADVISORY_LOCK, {"lock_key": lock})
    candidates = conn.execute(_LINK_CANDIDATES, {"email_v": email, "phone_v": phone}).all()
    if len(candidates) != 1:
        return None
    [(target, by_email, by_phone)] = candidates
    linked_by = "+".join(kind for kind, hit in (("email", by_email), ("phone", by_phone)) if hit)
    insert_identity, _ = _ignoring_duplicates(conn.dialect.name)
    if conn.execute(insert_identity, {**identity, "contact_id": target, "linked_by": linked_by}).scalar() is None:
        # The same identity came in concurrently (and committed first): it has its contact already.
        key = {"channel_type": identity["channel_type"], "external_id": identity["external_id"]}
        return int(conn.execute(_FIND_IDENTITY, key).scalar_one())
    conn.execute(_FILL_CONTACT, {"contact_id_": target, "email_v": email, "phone_v": phone, "ts": ts})
    conn.execute(_INSERT_AUDIT, {
        "at": ts, "actor_user_id": None, "actor_token_id": None, "action": "contact.identity_linked",
        "subject_type": "contact", "subject_id": str(target), "ip": "",
        "detail": {"identity": f"{identity['channel_type']}:{identity['external_id']}", "linked_by": linked_by}})
    events.append(ContactChanged(contact_id=int(target), action="identity_linked"))
    return int(target)


def receive_message(conn: Connection, *, channel: ChannelConfig, msg: InboundMessage,
                    events: list[Event], files: Sequence[StoredFile] = ()) -> Received:
    """Append a customer's message to their open conversation (or start one); duplicates are no-ops.

    Synchronous on purpose: run inside one ``AsyncConnection.run_sync`` so its seven or so statements
    cost one hop into SQLAlchemy's greenlet bridge instead of one each.
    """
    ts = now()
    contact_id = _contact_for(conn, channel, msg, ts, events)
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK_CONTACT, {"contact_id_": contact_id})
    row = _threaded_conversation(conn, channel, msg, contact_id)
    if row is None:
        row = conn.execute(_OPEN_CONVERSATION, {"contact_id_": contact_id}).first()
    said = hooks.Said(contact_id=contact_id, channel_id=channel.id, text=msg.text, button=msg.button, ts=ts)
    for finder in hooks.intake.finders.values():  # e.g. quality/: the answer to a rating question
        if row is not None:
            break
        row = finder(conn, said)
    new = row is None
    born: list[Event] = []  # ConversationCreated, published before the message's event
    if row is None:
        # An opener may start it (the bot, with a flow on the channel: bot/inbound.py); otherwise the
        # conversation waits in the queue for an agent of the channel's team.
        # A message left for people (the web chat's offline form: "answer me by email") goes to them, not to
        # the bot, so the visitor is not offered a menu after being told a person will write back.
        opener, start = (None, None) if msg.payload.get(FOR_PEOPLE) else _opening(conn, channel.id)
        status, assignee_id, team_id = (start[0] if start else "queued"), None, channel.team_id
        conv_id = int(conn.execute(_INSERT_CONVERSATION, {
            "contact_id": contact_id, "status": status, "priority": "normal",
            "subject": msg.subject[:300] or msg.text[:120],
            "team_id": team_id, "queue_id": channel.queue_id, "last_inbound_channel_id": channel.id,
            "created_at": ts, "updated_at": ts,
            "last_message_at": ts, "last_customer_message_at": ts, "queued_at": ts if status == "queued" else None,
        }).scalar_one())
        if opener is not None and start is not None:
            opener.opened(conn, conv_id, start[1], ts)
        lifecycle.apply_core(conn, lifecycle.created(
            conversation_id=conv_id, contact_id=contact_id, status=status, team_id=team_id, at=ts,
            reason=f"new message on {channel.type} channel {channel.id}", code="created",
            params={"channel_type": channel.type, "channel_id": channel.id}), born)
    else:
        conv_id, status, assignee_id, team_id = row
    _, insert_message = _ignoring_duplicates(conn.dialect.name)
    payload = dict(msg.payload)
    if msg.button is not None:
        payload["button"] = msg.button
    message_id = conn.execute(insert_message, {
        "conversation_id": conv_id, "direction": "in", "sender_type": "contact", "sender_user_id": None,
        "kind": "text", "channel_id": channel.id, "provider_message_id": msg.provider_message_id,
        "text": msg.text, "payload": payload, "status": "received", "status_reason": "",
        "created_at": ts, "status_updated_at": None,
    }).scalar()
    if message_id is None:
        return Received(conv_id, None, contact_id, new)
    # One upsert: the contact's preferred channel stays current (contacts/preferred.py).
    preferred.note_inbound(conn, contact_id=contact_id, channel_type=channel.type, at=ts)
    if files:
        conn.execute(_INSERT_ATTACHMENT, [
            {"message_id": message_id, "filename": f.filename, "content_type": f.content_type, "size": f.size,
             "sha256": f.sha256, "storage_key": f.key, "created_at": ts} for f in files])
    if not new:
        conn.execute(_TOUCH_CONVERSATION, {"conversation_id_": conv_id, "ts": ts, "channel_id_": channel.id})
        # e.g. quality/: the answer to the rating question (or its comment) is recorded and does not reopen.
        taken = status == "resolved" and any(
            absorb(conn, conv_id, assignee_id, said) for absorb in hooks.intake.absorbers.values())
        if status in ("waiting", "snoozed", "resolved") and not taken:
            status = _wake(conn, conv_id, status, assignee_id, team_id, ts)
        elif status in hooks.intake.wakers:  # e.g. the bot's: its session is due
            hooks.intake.wakers[status](conn, conv_id, ts)
    events.extend(born)
    events.append(MessageCreated(conversation_id=conv_id, team_id=team_id, assignee_id=assignee_id,
                                 message_id=message_id, direction="in", sender_type="contact",
                                 message_kind="text", channel_id=channel.id, conversation_status=status))
    if optout.is_opt_out(msg.text):  # "стоп", "STOP", …: no more marketing here, and a confirmation says so
        optout.withdraw(conn, contact_id=contact_id, channel=channel, conversation_id=conv_id, team_id=team_id,
                        assignee_id=assignee_id, to=msg.sender.external_id, text=msg.text, at=ts, events=events)
    return Received(conv_id, int(message_id), contact_id, new)


async def do_receive_message(tx: Tx, *, channel: ChannelConfig, msg: InboundMessage) -> Received:
    """``receive_message`` for async callers; events go on the transaction."""
    events: list[Event] = []
    received = await tx.conn.run_sync(lambda c: receive_message(c, channel=channel, msg=msg, events=events))
    for event in events:
        tx.publish(event)
    return received


def _threaded_conversation(conn: Connection, channel: ChannelConfig, msg: InboundMessage,
                           contact_id: int) -> Any:
    """The conversation a reply names (by earlier message ids, then a quoted conversation id), if it is this
    contact's: a stranger who knows an id cannot write into someone else's conversation."""
    if msg.thread_ids:
        row = conn.execute(_THREAD_CONVERSATION, {"channel_id_": channel.id, "thread_ids": list(msg.thread_ids),
                                                  "contact_id_": contact_id}).first()
        if row is not None:
            return row
    if msg.conversation_hint is not None:
        return conn.execute(_HINTED_CONVERSATION, {"conversation_id_": msg.conversation_hint,
                                                   "contact_id_": contact_id}).first()
    return None


def opens_with_self_service(conn: Connection, channel_id: int) -> bool:
    """Whether a new conversation on the channel starts with self-service (the bot, with a flow attached)."""
    return _opening(conn, channel_id)[0] is not None


def _opening(conn: Connection, channel_id: int) -> tuple[hooks.Opener | None, tuple[str, Any] | None]:
    """The first registered opener that wants a new conversation on this channel, and what it said."""
    for opener in hooks.intake.openers.values():
        start = opener.status_for(conn, channel_id)
        if start is not None:
            return opener, start
    return None, None


def _wake(conn: Connection, conv_id: int, status: str, assignee_id: int | None, team_id: int | None,
          ts: dt.datetime) -> str:
    """The customer wrote to a conversation waiting for them, snoozed, or (answering it) resolved: it needs an
    agent again. No ConversationUpdated: the message's own event tells listeners, as it always has."""
    change = lifecycle.wake(lifecycle.Now(conv_id, status, assignee_id, team_id), at=ts, reason="the customer wrote",
                            code="customer_wrote", publish=False)
    lifecycle.apply_core(conn, change, [])
    if status == "snoozed":
        conn.execute(cancel_timers_statement(UNSNOOZE, "conversation", conv_id))
    return str(change.values["status"])
