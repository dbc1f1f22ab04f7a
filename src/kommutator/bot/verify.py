"""The bot's one-time codes, carried out in the step's transaction after the step itself (bot/apply.py):
``SendCode`` records the proof and queues the code in the outbox (sent after the commit, outside any transaction);
``CodeTyped`` counts the try and, on the right code, links the value (outbound/proofs.py)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from kommutator.bot import step_sql as sql
from kommutator.bot.nodes.base import CodeTyped, SendCode
from kommutator.clock import now
from kommutator.contacts.models import Identity
from kommutator.conversations.models import Conversation
from kommutator.db import Tx
from kommutator.errors import ProblemError
from kommutator.events import Event
from kommutator.ingest.models import Channel
from kommutator.outbound import proofs


async def _identity_of(tx: Tx, conv: Conversation) -> int | None:
    """The identity the customer writes from in this conversation (its latest channel's type)."""
    if conv.last_inbound_channel_id is None:
        return None
    channel_type = await tx.session.scalar(select(Channel.type).where(Channel.id == conv.last_inbound_channel_id))
    found: int | None = await tx.session.scalar(select(Identity.id).where(
        Identity.contact_id == conv.contact_id, Identity.channel_type == channel_type)
        .order_by(Identity.id.desc()).limit(1))
    return found


async def _tell(tx: Tx, conversation_id: int, text: str) -> None:
    """Say why no code went out, on the conversation's channel, as the bot."""
    events: list[Event] = []

    def write(conn: Connection) -> None:
        found = sql.conversation_for_step(conn, conversation_id)
        if found is not None:
            sql.send_text(conn, found[0], events, text, buttons=(), ts=now())

    await tx.conn.run_sync(write)
    for event in events:
        tx.publish(event)


async def do_bot_proofs(tx: Tx, conversation_id: int, actions: tuple[SendCode | CodeTyped, ...]) -> None:
    conv = await tx.session.get(Conversation, conversation_id)
    if conv is None:
        return
    for action in actions:
        if isinstance(action, SendCode):
            try:
                await proofs.do_send_code(tx, contact_id=conv.contact_id, conversation_id=conv.id, kind=action.kind,
                                          value=action.value, code=action.code, code_hash=action.code_hash,
                                          language=action.language, source="bot")
            except ProblemError as exc:
                sentences = exc.extra.get("sentences") or {}
                await _tell(tx, conv.id, str(sentences.get(action.language) or exc.detail))
        else:
            await proofs.do_check_code(tx, contact_id=conv.contact_id, code_hash=action.code_hash,
                                       matches=action.matches, identity_id=await _identity_of(tx, conv))
