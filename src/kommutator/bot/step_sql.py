"""The bot step's statements, prebuilt once and run on the transaction's connection inside one ``run_sync``
(like the inbound path, conversations/inbound.py): one hop into SQLAlchemy's greenlet bridge per step instead
of one per statement, and no ORM unit of work. bot/apply.py decides; these functions read and write rows."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, or_, select
from sqlalchemy.engine import Connection

from kommutator.agents.models import Skill
from kommutator.bot.models import BotFlowVersion, BotSession
from kommutator.contacts.models import Contact, Identity
from kommutator.conversations.models import Conversation, Message
from kommutator.events import ContactChanged, Event, MessageCreated
from kommutator.ingest.models import Channel
from kommutator.queues.models import Queue
from kommutator.routing.models import ConversationSkill
from kommutator.workers.models import OutboxItem, Timer

log = logging.getLogger(__name__)

_sessions = cast(Table, BotSession.__table__)
_versions = cast(Table, BotFlowVersion.__table__)
_conversations = cast(Table, Conversation.__table__)
_contacts = cast(Table, Contact.__table__)
_messages = cast(Table, Message.__table__)
_channels = cast(Table, Channel.__table__)
_identities = cast(Table, Identity.__table__)
_outbox = cast(Table, OutboxItem.__table__)
_timers = cast(Table, Timer.__table__)
_queues = cast(Table, Queue.__table__)
_skills = cast(Table, Skill.__table__)
_conv_skills = cast(Table, ConversationSkill.__table__)

SESSION = (select(_sessions.c.status, _sessions.c.last_input_id, _sessions.c.timeout_due, _sessions.c.state)
           .where(_sessions.c.conversation_id == bindparam("cid")).with_for_update(key_share=True))
# The conversation (locked) and its customer in one statement: what the apply reads besides the session.
# FOR UPDATE OF the conversation only (PostgreSQL refuses to lock the nullable side of an outer join).
CONVERSATION_AND_CONTACT = (
    select(_conversations.c.id, _conversations.c.status, _conversations.c.assignee_id, _conversations.c.team_id,
           _conversations.c.queue_id, _conversations.c.priority, _conversations.c.contact_id,
           _conversations.c.last_inbound_channel_id, _contacts.c.id.label("contact_row_id"),
           _contacts.c.attributes.label("contact_attributes"), _contacts.c.manager_id.label("contact_manager_id"))
    .select_from(_conversations.outerjoin(_contacts, _contacts.c.id == _conversations.c.contact_id))
    .where(_conversations.c.id == bindparam("cid")).with_for_update(of=_conversations, key_share=True))
_CONVERSATION_KEYS = ("id", "status", "assignee_id", "team_id", "queue_id", "priority", "contact_id",
                      "last_inbound_channel_id")
SET_ATTRIBUTES = _contacts.update().where(_contacts.c.id == bindparam("contact_id_")).values(
    attributes=bindparam("attributes_"), updated_at=bindparam("ts"))
INSERT_MESSAGE = _messages.insert().returning(_messages.c.id)
# The channel to answer on and the customer's id there (their newest identity of its type), in one statement.
CHANNEL_AND_EXTERNAL_ID = select(
    _channels.c.id, _channels.c.type, _channels.c.enabled,
    select(_identities.c.external_id)
    .where(_identities.c.contact_id == bindparam("contact_id_"), _identities.c.channel_type == _channels.c.type)
    .order_by(_identities.c.id.desc()).limit(1).scalar_subquery().label("external_id"),
).where(_channels.c.id == bindparam("channel_id_"))
INSERT_OUTBOX = _outbox.insert()
TOUCH = _conversations.update().where(_conversations.c.id == bindparam("cid")).values(
    last_message_at=bindparam("ts"))
QUEUE_BY_ID = select(_queues.c.id, _queues.c.name, _queues.c.team_id).where(_queues.c.id == bindparam("ref"))
QUEUE_BY_NAME = select(_queues.c.id, _queues.c.name, _queues.c.team_id).where(
    func.lower(_queues.c.name) == bindparam("ref"))
SKILL_BY_NAME = select(_skills.c.id).where(func.lower(_skills.c.name) == bindparam("name_"))
HAS_SKILL = select(_conv_skills.c.skill_id).where(_conv_skills.c.conversation_id == bindparam("cid"),
                                                  _conv_skills.c.skill_id == bindparam("skill_id_"))
INSERT_SKILL = _conv_skills.insert()
UPDATE_SESSION = _sessions.update().where(_sessions.c.conversation_id == bindparam("cid"))
_timer_match = (_timers.c.kind == bindparam("kind_"), _timers.c.subject_type == "conversation",
                _timers.c.subject_id == bindparam("cid"), _timers.c.status == "pending")
MOVE_TIMER = _timers.update().where(*_timer_match).values(due_at=bindparam("due"))
CANCEL_TIMER = _timers.update().where(*_timer_match).values(status="cancelled")
INSERT_TIMER = _timers.insert()
MORE_INPUT = (select(_messages.c.id).where(_messages.c.conversation_id == bindparam("cid"),
                                           _messages.c.direction == "in", _messages.c.id > bindparam("after"))
              .limit(1))


def insert_message(conn: Connection, conv: dict[str, Any], events: list[Event], *, direction: str,
                   sender_type: str, kind: str, text: str, payload: dict[str, Any], ts: dt.datetime,
                   status: str = "received", channel_id: int | None = None) -> int:
    """A message in the conversation's timeline, and its event."""
    message_id = int(conn.execute(INSERT_MESSAGE, {
        "conversation_id": conv["id"], "direction": direction, "sender_type": sender_type, "sender_user_id": None,
        "kind": kind, "channel_id": channel_id, "provider_message_id": None, "text": text, "payload": payload,
        "status": status, "status_reason": "", "created_at": ts,
        "status_updated_at": ts if status == "queued" else None}).scalar_one())
    events.append(MessageCreated(conversation_id=conv["id"], team_id=conv["team_id"], assignee_id=conv["assignee_id"],
                                 message_id=message_id, direction=direction, sender_type=sender_type,
                                 message_kind=kind, channel_id=channel_id))
    return message_id


def conversation_for_step(conn: Connection, conversation_id: int) -> tuple[dict[str, Any], Any] | None:
    """The conversation (locked, as a dict) and its contact (``id``, ``attributes``, ``manager_id``; None when
    the contact is gone); None when there is no such conversation."""
    row = conn.execute(CONVERSATION_AND_CONTACT, {"cid": conversation_id}).first()
    if row is None:
        return None
    conv = {key: row._mapping[key] for key in _CONVERSATION_KEYS}
    contact = None if row.contact_row_id is None else SimpleNamespace(
        id=row.contact_row_id, attributes=row.contact_attributes, manager_id=row.contact_manager_id)
    return conv, contact


@dataclass
class ReplyTarget:
    """Where one step's messages to the customer go, looked up once per step; ``touched``: the conversation's
    ``last_message_at`` is set already in this step."""

    channel_id: int | None
    external_id: str | None
    touched: bool = False


def reply_target(conn: Connection, conv: dict[str, Any]) -> ReplyTarget:
    """The conversation's latest channel and the customer's id on it (None: no channel to answer on)."""
    if not conv["last_inbound_channel_id"]:
        return ReplyTarget(None, None)
    row = conn.execute(CHANNEL_AND_EXTERNAL_ID, {"channel_id_": conv["last_inbound_channel_id"],
                                                 "contact_id_": conv["contact_id"]}).first()
    if row is None or not row.enabled or row.external_id is None:
        return ReplyTarget(None, None)
    return ReplyTarget(int(row.id), str(row.external_id))


def send_text(conn: Connection, conv: dict[str, Any], events: list[Event], text: str, *,
              buttons: Sequence[tuple[str, str]], ts: dt.datetime, target: ReplyTarget | None = None) -> None:
    """The bot's message to the customer, queued in the outbox on the conversation's latest channel (as
    conversations/automatic.py does for the ORM); a note when there is no channel to answer on. ``target``:
    the step's ``reply_target`` (looked up here when not given)."""
    if target is None:
        target = reply_target(conn, conv)
    channel_id, external_id = target.channel_id, target.external_id
    payload: dict[str, Any] = {"automatic": "bot"}
    if buttons:
        payload["buttons"] = [{"id": b, "label": label} for b, label in buttons]
    if channel_id is None or external_id is None:
        log.info("conversation %s: no channel to send the bot notice on", conv["id"])
        conn.execute(INSERT_MESSAGE, {
            "conversation_id": conv["id"], "direction": "internal", "sender_type": "system", "sender_user_id": None,
            "kind": "note", "channel_id": None, "provider_message_id": None,
            "text": f"Could not tell the customer (no channel to answer on): {text}", "payload": payload,
            "status": "received", "status_reason": "", "created_at": ts, "status_updated_at": None})
        return
    message_id = insert_message(conn, conv, events, direction="out", sender_type="bot", kind="text", text=text,
                                payload=payload, ts=ts, status="queued", channel_id=channel_id)
    conn.execute(INSERT_OUTBOX, {
        "kind": "message", "message_id": message_id, "channel_id": channel_id,
        "ordering_key": f"{channel_id}:{external_id}", "payload": {"to": external_id}, "next_attempt_at": ts,
        "created_at": ts, "updated_at": ts})
    if not target.touched:  # every message of the step has the same ts: one update sets it
        conn.execute(TOUCH, {"cid": conv["id"], "ts": ts})
        target.touched = True


def set_attributes(conn: Connection, contact: Any, attrs: dict[str, Any], events: list[Event],
                   ts: dt.datetime) -> None:
    if contact is None:
        return
    conn.execute(SET_ATTRIBUTES, {"contact_id_": contact.id, "attributes_": {**(contact.attributes or {}), **attrs},
                                  "ts": ts})
    events.append(ContactChanged(contact_id=contact.id, action="updated"))


def find_queue(conn: Connection, ref: str | int | None) -> Any:
    if ref is None or ref == "":
        return None
    if isinstance(ref, int) or str(ref).isdigit():
        return conn.execute(QUEUE_BY_ID, {"ref": int(ref)}).first()
    return conn.execute(QUEUE_BY_NAME, {"ref": str(ref).lower()}).first()


def add_skills(conn: Connection, conversation_id: int, names: Sequence[str]) -> list[str]:
    """Skills the hand-off asks for; the names that do not exist."""
    missing: list[str] = []
    for name in dict.fromkeys(names):
        skill_id = conn.execute(SKILL_BY_NAME, {"name_": name.lower()}).scalar()
        if skill_id is None:
            missing.append(f"skill {name!r} does not exist")
        elif conn.execute(HAS_SKILL, {"cid": conversation_id, "skill_id_": skill_id}).first() is None:
            conn.execute(INSERT_SKILL, {"conversation_id": conversation_id, "skill_id": skill_id, "min_level": 1})
    return missing


def arm_timer(conn: Connection, kind: str, conversation_id: int, due: dt.datetime, ts: dt.datetime) -> None:
    """Move the pending timer of ``kind`` to ``due``, or make one."""
    if not conn.execute(MOVE_TIMER, {"kind_": kind, "cid": conversation_id, "due": due}).rowcount:
        conn.execute(INSERT_TIMER, {"kind": kind, "subject_type": "conversation", "subject_id": conversation_id,
                                    "due_at": due, "payload": {}, "status": "pending", "created_at": ts})


def cancel_timer(conn: Connection, kind: str, conversation_id: int) -> None:
    conn.execute(CANCEL_TIMER, {"kind_": kind, "cid": conversation_id})


# --- What the worker reads before a step -------------------------------------------------------------------------

CLAIM = (_sessions.update()
         .where(_sessions.c.conversation_id == bindparam("cid"), _sessions.c.status == "active",
                _sessions.c.due_at.is_not(None),
                or_(_sessions.c.claimed_until.is_(None), _sessions.c.claimed_until <= bindparam("ts")))
         .values(claimed_until=bindparam("until")).returning(_sessions.c.conversation_id))
# The session, its conversation, the customer and the channel they wrote on, in one statement.
TAKE = (select(_sessions.c.status, _sessions.c.last_input_id, _sessions.c.timeout_due, _sessions.c.state,
               _sessions.c.flow_id, _sessions.c.flow_version, _conversations.c.status.label("conv_status"),
               _contacts.c.id.label("contact_id"), _contacts.c.attributes, _contacts.c.name, _contacts.c.email,
               _contacts.c.phone, _contacts.c.language, _channels.c.type.label("channel_type"))
        .select_from(_sessions.join(_conversations, _conversations.c.id == _sessions.c.conversation_id)
                     .outerjoin(_contacts, _contacts.c.id == _conversations.c.contact_id)
                     .outerjoin(_channels, _channels.c.id == _conversations.c.last_inbound_channel_id))
        .where(_sessions.c.conversation_id == bindparam("cid")))
NEXT_INPUT = (select(_messages.c.id, _messages.c.text, _messages.c.payload)
              .where(_messages.c.conversation_id == bindparam("cid"), _messages.c.direction == "in",
                     _messages.c.id > bindparam("after")).order_by(_messages.c.id).limit(1))
FLOW_DEFINITION = select(_versions.c.definition).where(_versions.c.flow_id == bindparam("flow_id_"),
                                                       _versions.c.version == bindparam("version_"))
NOTHING_DUE = _sessions.update().where(_sessions.c.conversation_id == bindparam("cid")).values(
    due_at=None, claimed_until=None)
