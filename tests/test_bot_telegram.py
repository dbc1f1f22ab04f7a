"""The bot on a channel with buttons (Telegram, through its fake Bot API): options arrive as an inline keyboard,
presses come back as the button's id; a knowledge-base answer asks "did this help?" and "no" reaches a person."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kommutator.bot.worker import BotWorker, bot_worker_of
from kommutator.channels.registry import get_adapter
from kommutator.channels.types.telegram.outbound import Progress
from kommutator.cluster.local import LocalPacing
from kommutator.knowledge.actions import do_create_article
from kommutator.knowledge.schemas import ArticleCreate
from kommutator.workers.outbox import OutboxWorker
from kommutator.workers.pacing import Pacer

from .bot_helpers import attach_flow, conversation, drain, messages, session_of
from .fakes.crm import FakeCrm
from .fakes.telegram import TOKEN, FakeTelegram


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    return settings


@pytest.fixture
async def telegram(runtime) -> AsyncIterator[FakeTelegram]:  # type: ignore[no-untyped-def]
    fake = FakeTelegram()
    await fake.start()
    get_adapter("telegram").progress = Progress()  # type: ignore[attr-defined]
    yield fake
    await fake.stop()


@pytest.fixture
async def crm() -> AsyncIterator[FakeCrm]:
    fake = FakeCrm()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def channel(client, admin, telegram, crm) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "telegram", "name": "Shop bot", "settings": {"api_base_url": telegram.url},
        "credentials": {"bot_token": TOKEN}})
    assert r.status_code == 201, r.text
    await attach_flow(client, admin, r.json()["id"], f"{crm.url}/crm")
    return dict(r.json())


@pytest.fixture
async def workers(runtime, app) -> AsyncIterator[tuple[BotWorker, OutboxWorker]]:  # type: ignore[no-untyped-def]
    bot, outbox = bot_worker_of(runtime), OutboxWorker(runtime, name="bot-tg")
    ticks = itertools.count(step=10)
    # Telegram's per-chat pacing is not under test here
    outbox.pacer = LocalPacing(Pacer(clock=lambda: float(next(ticks))))
    yield bot, outbox
    await bot.stop()
    await outbox.stop()


class TelegramUser:
    def __init__(self, client: Any, channel: dict[str, Any], telegram: FakeTelegram,
                 workers: tuple[BotWorker, OutboxWorker], *, user_id: int, language: str) -> None:
        self.client, self.channel, self.telegram, self.workers = client, channel, telegram, workers
        self.user = {"id": user_id, "is_bot": False, "first_name": "Алина" if language == "ru" else "Alice",
                     "language_code": language}
        self.chat = {"id": user_id, "first_name": self.user["first_name"], "type": "private"}
        self.update_id = 800000 + user_id % 1000 * 100

    async def _post(self, update: dict[str, Any]) -> list[dict[str, Any]]:
        self.update_id += 1
        before = len(self.telegram.sent())
        secret = self.channel["generated_credentials"]["webhook_secret"]
        r = await self.client.post(f"/webhooks/{self.channel['id']}", content=json.dumps(update).encode(),
                                   headers={"content-type": "application/json",
                                            "x-telegram-bot-api-secret-token": secret})
        assert r.status_code == 200, r.text
        await drain(*self.workers)
        return [c.params for c in self.telegram.sent()[before:]]

    async def write(self, text: str) -> list[dict[str, Any]]:
        return await self._post({"update_id": self.update_id + 1, "message": {
            "message_id": self.update_id, "from": self.user, "chat": self.chat, "date": 1709283600, "text": text}})

    async def press(self, sent: dict[str, Any], data: str) -> list[dict[str, Any]]:
        """Press the button ``data`` under the message the bot sent as ``sent``."""
        number = len(self.telegram.sent()) - 1 - next(i for i, c in enumerate(reversed(self.telegram.sent()))
                                                      if c.params is sent)
        return await self._post({"update_id": self.update_id + 1, "callback_query": {
            "id": f"cb{self.update_id}", "from": self.user, "chat_instance": "-87312", "data": data,
            "message": {"message_id": 1000 + number, "from": {"id": 1, "is_bot": True, "first_name": "Shop"},
                        "chat": self.chat, "date": 1709284000, "text": sent["text"],
                        "reply_markup": sent["reply_markup"]}}})


def keyboard(params: dict[str, Any]) -> list[tuple[str, str]]:
    return [(b["callback_data"], b["text"]) for row in params["reply_markup"]["inline_keyboard"] for b in row]


async def test_options_arrive_as_buttons_and_a_press_checks_the_order(client, runtime, channel, telegram, workers,
                                                                      crm, clock):
    alina = TelegramUser(client, channel, telegram, workers, user_id=5551234567, language="ru")
    greeting, menu = await alina.write("Здравствуйте")
    assert greeting["text"].startswith("Здравствуйте! Я виртуальный помощник") and "reply_markup" not in greeting
    assert menu["text"] == "Чем могу помочь?", "no numbered lines where the channel has buttons"
    assert keyboard(menu) == [("new_order", "Новый заказ"), ("order_status", "Статус заказа"),
                              ("offices", "Ближайшие офисы"), ("complaint", "Оставить жалобу"),
                              ("agent", "Связаться с оператором")]
    (prompt,) = await alina.press(menu, "order_status")
    assert prompt["text"] == "Напишите, пожалуйста, номер заказа."
    found, more = await alina.write("12345")
    assert found["text"] == "Заказ 12345: передан в доставку."
    assert [b for b, _ in keyboard(more)] == ["more", "done", "agent"]
    (bye,) = await alina.press(more, "done")
    assert bye["text"] == "Спасибо за обращение! Хорошего дня."
    conv = await conversation(runtime)
    assert conv.status == "resolved" and (await session_of(runtime, conv.id)).outcome == "contained"
    heard = [m.payload.get("button") for m in await messages(runtime, conv.id, direction="in")]
    assert heard == [None, "order_status", None, "done"], "presses are stored with their button ids"


async def test_an_english_telegram_user_gets_english_buttons(client, runtime, channel, telegram, workers, crm, clock):
    alice = TelegramUser(client, channel, telegram, workers, user_id=5550001111, language="en")
    _, menu = await alice.write("hi")
    assert menu["text"] == "How can I help you?"
    assert keyboard(menu)[1] == ("order_status", "Order status")
    (prompt,) = await alice.press(menu, "order_status")
    assert prompt["text"] == "Please write your order number."
    found, _ = await alice.write("it is 12345")
    assert found["text"] == "Order 12345: out for delivery."


async def test_a_knowledge_base_answer_and_no_reaches_a_person(client, runtime, admin, channel, telegram, workers, crm,
                                                               clock):
    await runtime.db.write(lambda tx: do_create_article(tx, admin.principal, ArticleCreate(
        title="Адреса офисов", language="ru", status="published", tags=["офисы"],
        body="Москва, Ленинградский проспект, 76, с 9:00 до 21:00.\n\nСанкт-Петербург, Невский проспект, 28.")))
    alina = TelegramUser(client, channel, telegram, workers, user_id=5552223333, language="ru")
    _, menu = await alina.write("Добрый день")
    answer, ask = await alina.press(menu, "offices")
    assert answer["text"].startswith("Адреса офисов\nМосква, Ленинградский проспект, 76")
    assert "/help/" in answer["text"], "the answer links the article on the public help page"
    assert ask["text"] == "Это помогло?" and keyboard(ask) == [("yes", "Да"), ("no", "Нет")]
    handed = await alina.press(ask, "no")
    assert handed[-1]["text"].startswith("Соединяю с оператором")
    conv = await conversation(runtime)
    session = await session_of(runtime, conv.id)
    assert conv.status == "queued" and session.outcome == "handed_off"
    assert "the answer «Адреса офисов» did not help" in session.summary  # what happened, no step names
    notes = " ".join(m.text for m in await messages(runtime, conv.id, kind="note"))
    assert "answered from the knowledge base: «Адреса офисов»" in notes
