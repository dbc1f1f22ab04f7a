"""The one order in which transactions lock a conversation's rows on PostgreSQL (docs/recovery.md):

    contact → conversation → the conversation's bot session → its other rows (messages, timers, outbox)

Intake (conversations/inbound.py) locks the contact, then writes the conversation and wakes the bot session;
the bot worker, routing and timers about a conversation lock the conversation before its session or timers,
and the contact first when they will write it. A transaction may skip a level, never go back up one, so no two
of them can wait for each other: no deadlock. Locks are ``FOR NO KEY UPDATE``: a plain ``FOR UPDATE`` would
also wait for (and be waited for by) the key-share locks that every insert of a message or conversation takes
on the row it refers to. On SQLite the single writer serialises everything and these are no-ops.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Connection

from kommutator.contacts.models import Contact
from kommutator.conversations.models import Conversation
from kommutator.db import Tx

_contacts = cast(Table, Contact.__table__)
_conversations = cast(Table, Conversation.__table__)

# The conversation's contact, found by a sub-select: only the contact's row is locked by this statement.
_LOCK_CONTACT_OF = (select(_contacts.c.id)
                    .where(_contacts.c.id == select(_conversations.c.contact_id)
                           .where(_conversations.c.id == bindparam("cid")).scalar_subquery())
                    .with_for_update(key_share=True))
_LOCK_CONVERSATION = (select(_conversations.c.contact_id).where(_conversations.c.id == bindparam("cid"))
                      .with_for_update(key_share=True))


def lock_conversation(conn: Connection, conversation_id: int, *, with_contact: bool = False) -> None:
    """Lock the conversation (and first its contact, ``with_contact``) in the documented order (PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return
    for _ in range(3):  # a merge may move the conversation to another contact between the two statements
        contact_id = conn.execute(_LOCK_CONTACT_OF, {"cid": conversation_id}).scalar() if with_contact else None
        locked = conn.execute(_LOCK_CONVERSATION, {"cid": conversation_id}).first()
        if locked is None or not with_contact or locked.contact_id == contact_id:
            return


async def do_lock_conversation(tx: Tx, conversation_id: int, *, with_contact: bool = False) -> None:
    """``lock_conversation`` for async callers."""
    await tx.conn.run_sync(lambda c: lock_conversation(c, conversation_id, with_contact=with_contact))
