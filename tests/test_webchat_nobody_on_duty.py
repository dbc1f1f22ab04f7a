"""The website chat with nobody on duty: with a bot attached the visitor talks to the bot (the chat stays open,
not only the offline form); a message left through the offline form goes to people and never gets the bot's
menu after "we'll answer by email"."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kommutator.bot.worker import BotWorker
from kommutator.runtime import Runtime
from kommutator.workers.outbox import OutboxWorker

from .bot_helpers import attach_flow, conversation, drain, messages
from .conftest import Actor


@pytest.fixture
async def workers(runtime: Runtime) -> AsyncIterator[tuple[BotWorker, OutboxWorker]]:
    bot, outbox = BotWorker(runtime), OutboxWorker(runtime, name="webchat-outbox")
    yield bot, outbox
    await outbox.stop()


async def chat_with_bot(client: httpx.AsyncClient, admin: Actor, *, bot: bool) -> dict[str, Any]:
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "webchat", "name": "Shop chat", "settings": {"offline_form": True}})
    assert r.status_code == 201, r.text
    chat = dict(r.json())
    if bot:
        await attach_flow(client, admin, chat["id"], "http://127.0.0.1:9/crm")
    return chat


async def open_session(client: httpx.AsyncClient, chat: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(f"/widget/{chat['id']}/session", json={"token": None})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_with_a_bot_the_chat_stays_open_when_nobody_is_on_duty(client: httpx.AsyncClient, admin: Actor,
                                                                      runtime: Runtime, workers: Any) -> None:
    plain = await open_session(client, await chat_with_bot(client, admin, bot=False))
    assert (plain["channel"]["online"], plain["channel"]["bot"]) == (False, False)  # the widget shows the form
    chat = await chat_with_bot(client, admin, bot=True)
    s = await open_session(client, chat)
    assert (s["channel"]["online"], s["channel"]["bot"]) == (False, True)  # the widget shows the chat
    r = await client.post(f"/widget/{chat['id']}/messages", headers={"Authorization": f"Bearer {s['token']}"},
                          json={"client_id": uuid.uuid4().hex, "text": "Здравствуйте"})
    assert r.status_code == 200, r.text
    await drain(*workers)
    conv = await conversation(runtime)
    assert conv.status == "bot"
    said = await messages(runtime, conv.id, direction="out")
    assert said and said[0].sender_type == "bot"


async def test_a_message_left_in_the_offline_form_goes_to_people_not_to_the_bot(
        client: httpx.AsyncClient, admin: Actor, runtime: Runtime, workers: Any) -> None:
    chat = await chat_with_bot(client, admin, bot=True)
    s = await open_session(client, chat)
    r = await client.post(f"/widget/{chat['id']}/offline", headers={"Authorization": f"Bearer {s['token']}"},
                          json={"client_id": uuid.uuid4().hex, "email": "anna@example.com", "name": "Anna",
                                "text": "Please call me back about order 17"})
    assert r.status_code == 200, r.text
    await drain(*workers)
    conv = await conversation(runtime)
    assert conv.status == "queued", "left for a person: it waits for one"
    assert await messages(runtime, conv.id, direction="out") == [], "no bot menu after 'we will answer by email'"
