"""Shared pieces of the bot's end-to-end tests: a flow pointed at the fake CRM, running the workers, reading rows."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from kommutator.bot.flow import load_default
from kommutator.bot.models import BotSession
from kommutator.bot.worker import BotWorker
from kommutator.conversations.models import Conversation, Message
from kommutator.runtime import Runtime
from kommutator.workers.outbox import OutboxWorker

from .conftest import Actor

LOOKUP_TIMEOUT = 0.3  # seconds; the fake CRM's slow order answers after 0.6


def test_flow(crm_url: str) -> dict[str, Any]:
    defn = load_default()
    defn["settings"]["crm_url"] = crm_url
    defn["nodes"]["lookup_order"]["timeout"] = LOOKUP_TIMEOUT
    return defn


test_flow.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


async def attach_flow(client: httpx.AsyncClient, admin: Actor, channel_id: int, crm_url: str) -> dict[str, Any]:
    r = await client.post("/api/v1/bot/flows", headers=admin.headers, json={
        "name": f"Default {channel_id}", "definition": test_flow(crm_url), "channel_ids": [channel_id]})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def drain(bot: BotWorker, outbox: OutboxWorker, rounds: int = 10) -> None:
    """Run the bot and the outbox until neither has anything left to do."""
    for _ in range(rounds):
        served = await bot.run_due()
        sent = await outbox.run_due()
        if not served and not sent:
            return


async def conversation(rt: Runtime, conversation_id: int | None = None) -> Conversation:
    async with rt.db.read() as s:
        stmt = select(Conversation).order_by(Conversation.id.desc()).limit(1)
        if conversation_id is not None:
            stmt = select(Conversation).where(Conversation.id == conversation_id)
        conv = await s.scalar(stmt)
        assert conv is not None
        return conv


async def session_of(rt: Runtime, conversation_id: int) -> BotSession:
    async with rt.db.read() as s:
        row = await s.get(BotSession, conversation_id)
        assert row is not None
        return row


async def messages(rt: Runtime, conversation_id: int, **where: Any) -> list[Message]:
    async with rt.db.read() as s:
        stmt = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(Message, key) == value)
        return list((await s.execute(stmt)).scalars())
