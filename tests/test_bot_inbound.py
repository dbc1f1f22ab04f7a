"""The bot greets every new conversation on a channel with a flow, end to end through the webhook: a channel
without buttons (the generic API channel, delivering to a fake CRM's inbox) in Russian and English, order lookups
against a fake CRM on loopback (found, 404, 500, timeout), hand-offs with a summary, nonsense that ends with a
person, timeouts, and a crash in the middle of a step."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, update

from kommutator.bot.apply import TIMEOUT_TIMER
from kommutator.bot.models import BotSession
from kommutator.bot.worker import LEASE, BotWorker, bot_worker_of
from kommutator.events import ConversationUpdated, Event
from kommutator.notifications.models import Notification
from kommutator.routing.models import ConversationSkill
from kommutator.workers.models import Timer
from kommutator.workers.outbox import OutboxWorker
from kommutator.workers.timers import TimerWorker

from .bot_helpers import attach_flow, conversation, drain, messages, session_of
from .conftest import post_inbound
from .fakes.crm import FakeCrm


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]  # the fake CRM is on loopback
    return settings


@pytest.fixture
async def crm() -> AsyncIterator[FakeCrm]:
    fake = FakeCrm()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def channel(client, admin, crm):  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "api", "name": "Website", "settings": {"outbound_url": crm.inbox}})
    assert r.status_code == 201, r.text
    ch = r.json()
    await attach_flow(client, admin, ch["id"], f"{crm.url}/crm")
    return ch


@pytest.fixture
async def workers(runtime, app) -> AsyncIterator[tuple[BotWorker, OutboxWorker]]:  # type: ignore[no-untyped-def]
    bot, outbox = bot_worker_of(runtime), OutboxWorker(runtime, name="bot-tests")
    yield bot, outbox
    await bot.stop()
    await outbox.stop()


@pytest.fixture
def updates(runtime) -> list[ConversationUpdated]:  # type: ignore[no-untyped-def]
    seen: list[ConversationUpdated] = []

    async def record(event: Event) -> None:
        assert isinstance(event, ConversationUpdated)
        seen.append(event)

    runtime.bus.subscribe(record, kinds=(ConversationUpdated,))
    return seen


class Customer:
    """A customer writing on the API channel; ``say`` posts a message and lets the bot and the outbox run."""

    def __init__(self, client: Any, channel: dict[str, Any], workers: tuple[BotWorker, OutboxWorker], crm: FakeCrm,
                 contact: str = "crm-7", language: str = "ru") -> None:
        self.client, self.channel, self.workers, self.crm = client, channel, workers, crm
        self.contact, self.language, self.n = contact, language, 0

    async def say(self, text: str) -> list[str]:
        """What the customer received in answer."""
        self.n += 1
        before = len(self.crm.delivered)
        token = self.channel["generated_credentials"]["inbound_token"]
        r = await self.client.post(f"/webhooks/{self.channel['id']}", headers={"Authorization": f"Bearer {token}"},
                                   json={"id": f"{self.contact}-{self.n}", "text": text,
                                         "contact": {"id": self.contact, "name": "Irina", "language": self.language}})
        assert r.status_code == 200, r.text
        await drain(*self.workers)
        return self.crm.texts()[before:]


MENU_RU = "Чем могу помочь?\n1. Новый заказ\n2. Статус заказа\n3. Ближайшие офисы\n4. Оставить жалобу\n" \
          "5. Связаться с оператором"
MENU_EN = "How can I help you?\n1. New order\n2. Order status\n3. Nearest offices\n4. Leave a complaint\n" \
          "5. Talk to an agent"


async def test_a_new_conversation_meets_the_bot_with_numbered_options_in_russian(client, runtime, admin, channel,
                                                                                 workers, crm, clock, updates):
    me = Customer(client, channel, workers, crm)
    assert await me.say("Здравствуйте") == [
        "Здравствуйте! Я виртуальный помощник. Отвечу сразу или позову оператора.", MENU_RU]
    conv = await conversation(runtime)
    assert conv.status == "bot" and conv.queued_at is None, "the bot serves first; nobody waits in a queue yet"
    assert await me.say("2") == ["Напишите, пожалуйста, номер заказа."]
    assert await me.say("мой заказ 12345") == [
        "Заказ 12345: передан в доставку.",
        "Могу ли я помочь чем-то ещё?\n1. Да, главное меню\n2. Нет, спасибо\n3. Связаться с оператором"]
    assert crm.lookups == ["12345"]
    assert await me.say("нет, спасибо") == ["Спасибо за обращение! Хорошего дня."]
    conv = await conversation(runtime, conv.id)
    session = await session_of(runtime, conv.id)
    assert (conv.status, session.status, session.outcome) == ("resolved", "resolved", "contained")
    assert [u.changes for u in updates if u.conversation_id == conv.id][-1]["resolved_by"] == "bot"
    assert updates[-1].changes["status"] == ["bot", "resolved"]
    timeline = await messages(runtime, conv.id)
    said = [m.text for m in timeline if m.sender_type == "bot" and m.direction == "out"]
    assert len(said) == 6 and said[0].startswith("Здравствуйте! Я виртуальный"), "each bot message stored once"
    assert all(m.status == "sent" for m in timeline if m.direction == "out"), "delivered through the outbox"
    notes = [m.text for m in timeline if m.kind == "note"]
    assert any(f"GET {crm.url}/crm/orders/12345?lang=ru → HTTP 200" in n for n in notes), notes
    r = await client.get(f"/api/v1/bot/conversations/{conv.id}", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert "main: chose «Статус заказа»" in r.json()["trail"], "what the bot understood is in its trail"
    assert (r.json()["outcome"], r.json()["vars"]["order_number"]) == ("contained", "12345")


async def test_english_customer_gets_english_texts_and_asks_for_an_agent(client, runtime, channel, workers, crm,
                                                                          clock, updates):
    me = Customer(client, channel, workers, crm, contact="crm-en", language="en")
    assert (await me.say("Hello"))[1] == MENU_EN
    assert await me.say("order status") == ["Please write your order number."]
    answer = await me.say("12345")
    notes = [m.text for m in await messages(runtime, (await conversation(runtime)).id, kind="note")]
    assert answer[0] == "Order 12345: out for delivery.", notes
    answer = await me.say("I want to talk to an agent")
    assert answer == ["I am connecting you to an agent. They will see our conversation, so no need to repeat "
                      "anything."]
    conv = await conversation(runtime)
    session = await session_of(runtime, conv.id)
    assert (conv.status, session.outcome) == ("queued", "handed_off")
    assert conv.queued_at is not None
    assert "Collected: order_number = 12345, order_status = out for delivery." in session.summary
    assert updates[-1].changes["status"] == ["bot", "queued"]
    pinned = [m for m in await messages(runtime, conv.id, kind="note") if m.payload.get("pinned")]
    assert [m.text for m in pinned] == [session.summary], "the summary is pinned at the top for the agent"
    assert await me.say("hello?") == [], "after the hand-off the bot is silent; people answer"


@pytest.mark.parametrize(("number", "recorded"), [
    ("404040", "HTTP 404"), ("50000", "HTTP 500"), ("77777", "no answer within 0.3 s")])
async def test_a_failed_lookup_offers_a_retry_an_agent_or_the_menu(client, runtime, channel, workers, crm, clock,
                                                                    number, recorded):
    me = Customer(client, channel, workers, crm, contact=f"crm-{number}")
    await me.say("Привет")
    await me.say("статус заказа")
    assert await me.say(number) == [
        "Не получилось найти этот заказ. Что сделаем?\n1. Ввести номер ещё раз\n2. Связаться с оператором\n"
        "3. Главное меню"]
    conv = await conversation(runtime)
    notes = " ".join(m.text for m in await messages(runtime, conv.id, kind="note"))
    assert f"/crm/orders/{number}?lang=ru → {recorded}" in notes
    assert await me.say("оператор") == ["Соединяю с оператором. Он увидит нашу переписку, повторять ничего не нужно."]
    session = await session_of(runtime, conv.id)
    assert "Also: request failed" in session.summary or "Also: HTTP" in session.summary, session.summary


async def test_operator_as_the_first_word_reaches_a_person_at_once(client, runtime, channel, workers, crm, clock):
    me = Customer(client, channel, workers, crm, contact="crm-op")
    answer = await me.say("оператор")
    assert answer[-1] == "Соединяю с оператором. Он увидит нашу переписку, повторять ничего не нужно."
    conv = await conversation(runtime)
    assert conv.status == "queued"
    assert "the customer asked for an agent" in (await session_of(runtime, conv.id)).summary


async def test_a_customer_typing_nonsense_ends_with_a_person_not_in_a_loop(client, runtime, channel, workers, crm,
                                                                           clock):
    me = Customer(client, channel, workers, crm, contact="crm-nonsense")
    await me.say("ыварыв")
    answers = []
    for text in ["фывапр", "qwzx", "лорпа ждл", "zzzz", "ъъъ", "пппп", "xcvb", "йцук"]:
        answers.append(await me.say(text))
        if (await conversation(runtime)).status != "bot":
            break
    conv = await conversation(runtime)
    assert conv.status == "queued", answers
    assert len(answers) <= 3, f"handed off after the flow's limit of misunderstandings, not later: {answers}"
    session = await session_of(runtime, conv.id)
    assert "did not understand the customer" in session.summary
    assert await me.say("asdf") == [], "no more bot messages once people have it"


async def test_a_complaint_is_saved_on_the_contact_and_goes_to_the_complaints_skill(client, runtime, admin, channel,
                                                                                    workers, crm, clock):
    r = await client.post("/api/v1/skills", headers=admin.headers, json={"name": "complaints"})
    assert r.status_code == 201, r.text
    me = Customer(client, channel, workers, crm, contact="crm-complaint")
    await me.say("здравствуйте")
    assert await me.say("4") != []
    await me.say("Курьер опоздал на три часа")
    conv = await conversation(runtime)
    assert (conv.status, conv.priority) == ("queued", "high")
    r = await client.get(f"/api/v1/contacts/{conv.contact_id}", headers=admin.headers)
    assert r.json()["attributes"]["last_complaint"] == "Курьер опоздал на три часа"
    async with runtime.db.read() as s:
        skills = list((await s.execute(select(ConversationSkill.skill_id)
                                       .where(ConversationSkill.conversation_id == conv.id))).scalars())
    assert skills == [r2["id"] for r2 in (await client.get("/api/v1/skills", headers=admin.headers)).json()
                      if r2["name"] == "complaints"]


async def test_the_skills_a_hand_off_names_decide_who_gets_it(client, runtime, admin, factory, channel, workers,
                                                               crm, clock):
    from kommutator.routing.service import router_of

    skill = (await client.post("/api/v1/skills", headers=admin.headers, json={"name": "complaints"})).json()
    generalist = await factory.user("agent", name="Generalist")
    specialist = await factory.user("agent", name="Specialist")
    r = await client.put(f"/api/v1/users/{specialist.id}/skills", headers=admin.headers,
                         json={"skills": [{"skill_id": skill["id"], "level": 3}]})
    assert r.status_code in (200, 204), r.text
    for who in (generalist, specialist):
        r = await client.patch(f"/api/v1/users/{who.id}", headers=who.headers, json={"presence": "online"})
        assert r.status_code == 200, r.text
    me = Customer(client, channel, workers, crm, contact="crm-skills")
    await me.say("здравствуйте")
    await me.say("Оставить жалобу")
    await me.say("Курьер нагрубил")
    await router_of(runtime).run_until_idle()
    conv = await conversation(runtime)
    assert (conv.status, conv.assignee_id) == ("assigned", specialist.id), "only an agent with the skill fits"


async def test_a_vip_asking_for_a_person_goes_to_their_personal_manager(client, runtime, admin, factory, channel,
                                                                         workers, crm, clock):
    from kommutator.routing.service import router_of

    manager = await factory.user("agent", name="Olga Manager")
    other = await factory.user("agent", name="Someone Else")
    for who in (other, manager):
        r = await client.patch(f"/api/v1/users/{who.id}", headers=who.headers, json={"presence": "online"})
        assert r.status_code == 200, r.text
    me = Customer(client, channel, workers, crm, contact="crm-vip-person")
    await me.say("Добрый день")
    conv = await conversation(runtime)
    r = await client.patch(f"/api/v1/contacts/{conv.contact_id}", headers=admin.headers,
                           json={"manager_id": manager.id, "attributes": {"vip": True}})
    assert r.status_code == 200, r.text
    await me.say("позовите живого человека")
    conv = await conversation(runtime, conv.id)
    assert (conv.status, conv.preferred_agent_id, conv.priority) == ("queued", manager.id, "normal")
    await router_of(runtime).run_until_idle()
    assert (await conversation(runtime, conv.id)).assignee_id == manager.id


async def test_the_personal_manager_is_told_the_bot_served_their_customer(client, runtime, admin, factory, channel,
                                                                          workers, crm, clock):
    manager = await factory.user("agent", name="Anna Manager")
    me = Customer(client, channel, workers, crm, contact="crm-vip")
    await me.say("Добрый день")
    conv = await conversation(runtime)
    r = await client.patch(f"/api/v1/contacts/{conv.contact_id}", headers=admin.headers,
                           json={"manager_id": manager.id})
    assert r.status_code == 200, r.text
    await me.say("Статус заказа")
    await me.say("12345")
    await me.say("Нет, спасибо")
    r = await client.get("/api/v1/notifications", headers=manager.headers)
    assert r.status_code == 200, r.text
    (note,) = r.json()["items"]
    assert (note["kind"], note["conversation_id"]) == ("bot.served", conv.id)
    assert note["title"] == "Обслужен автоматически: Статус заказа 12345"
    async with runtime.db.read() as s:
        assert await s.scalar(select(Notification.id).where(Notification.user_id == admin.id)) is None


async def test_a_silent_customer_times_out_durably(client, runtime, channel, workers, crm, clock):
    me = Customer(client, channel, workers, crm, contact="crm-silent")
    await me.say("Привет")
    conv = await conversation(runtime)
    async with runtime.db.read() as s:
        due = await s.scalar(select(Timer.due_at).where(Timer.kind == TIMEOUT_TIMER, Timer.subject_id == conv.id,
                                                        Timer.status == "pending"))
    assert due == clock.t + dt.timedelta(minutes=15)
    timers = TimerWorker(runtime.db)
    assert await timers.run_due() == 0
    clock.tick(15 * 60 + 1)
    assert await timers.run_due() == 1
    before = len(crm.delivered)
    await drain(*workers)
    assert crm.texts()[before:] and (await conversation(runtime, conv.id)).status == "resolved"
    assert (await session_of(runtime, conv.id)).outcome == "abandoned", "left before being served: not contained"


async def test_the_silent_customer_timer_is_one_row_moved_by_each_answer(client, runtime, channel, workers, crm,
                                                                          clock):
    me = Customer(client, channel, workers, crm, contact="crm-timer")
    await me.say("Привет")
    conv = await conversation(runtime)
    timers = TimerWorker(runtime.db)
    clock.tick(15 * 60 + 1)
    async with runtime.db.read() as s:
        (timer_id,) = (await s.execute(select(Timer.id).where(Timer.kind == TIMEOUT_TIMER,
                                                              Timer.status == "pending"))).scalars()
    # The timer worker picked the due timer; before it fires, the customer answers and the step moves it later.
    clock.tick(1)
    assert await me.say("2") == ["Напишите, пожалуйста, номер заказа."]
    assert await runtime.db.write(lambda tx: timers._fire(tx, timer_id)) == 1
    await drain(*workers)
    assert (await conversation(runtime, conv.id)).status == "bot", "the answer came first: no timeout"
    async with runtime.db.read() as s:
        rows = (await s.execute(select(Timer.status, Timer.due_at).where(Timer.kind == TIMEOUT_TIMER))).all()
    assert [(st, due) for st, due in rows if st == "pending"] == [("pending", clock.t + dt.timedelta(minutes=15))]
    assert len(rows) == 2, "one row moved by every answer (plus the one that found it was not due yet)"


async def test_a_crash_in_the_middle_of_a_step_neither_loses_nor_repeats_the_input(client, runtime, channel, workers,
                                                                                   crm, clock):
    bot, outbox = workers
    r = await post_inbound(client, channel, msg_id="crash-1", contact="crm-crash", text="Здравствуйте")
    assert r.status_code == 200
    conv = await conversation(runtime)
    # A worker claimed the session and died before applying: the input waits for the lease to run out.
    assert await runtime.db.write(lambda tx: bot._claim(tx, conv.id))
    assert await bot.run_due() == 0
    clock.tick(LEASE.total_seconds() + 1)
    # A worker computed the step and crashed right after committing it: applying it again changes nothing.
    work = await bot._load(conv.id)
    assert work is not None
    step = await bot.compute(work)
    assert await runtime.db.write(lambda tx: bot._claim(tx, conv.id))
    await runtime.db.write(lambda tx: __import__("kommutator.bot.apply", fromlist=["x"]).do_apply_step(tx, step))
    await runtime.db.write(lambda tx: __import__("kommutator.bot.apply", fromlist=["x"]).do_apply_step(tx, step))
    clock.tick(LEASE.total_seconds() + 1)
    await drain(bot, outbox)
    said = [m.text for m in await messages(runtime, conv.id, sender_type="bot", direction="out")]
    assert said == ["Здравствуйте! Я виртуальный помощник. Отвечу сразу или позову оператора.", MENU_RU.split("\n")[0]]
    assert crm.texts() == [said[0], MENU_RU]
    assert (await session_of(runtime, conv.id)).due_at is None


async def test_an_agent_taking_the_conversation_stops_the_bot(client, runtime, admin, channel, workers, crm, clock):
    me = Customer(client, channel, workers, crm, contact="crm-take")
    await me.say("Привет")
    conv = await conversation(runtime)
    r = await client.post(f"/api/v1/conversations/{conv.id}/assign", headers=admin.headers,
                          json={"assignee_id": admin.id})
    assert r.status_code == 200, r.text
    assert await me.say("2") == []
    session = await session_of(runtime, conv.id)
    assert (session.status, session.outcome) == ("stopped", "taken_over")


async def test_a_conversation_keeps_the_flow_version_it_started_with(client, runtime, admin, channel, workers, crm,
                                                                     clock):
    first = Customer(client, channel, workers, crm, contact="crm-v1")
    await first.say("Привет")
    conv1 = await conversation(runtime)
    flow = (await client.get("/api/v1/bot/flows", headers=admin.headers)).json()["items"][0]
    defn = (await client.get(f"/api/v1/bot/flows/{flow['id']}", headers=admin.headers)).json()["definition"]
    defn["nodes"]["ask_order"]["prompt"] = {"ru": "Номер заказа, пожалуйста.", "en": "Your order number, please."}
    r = await client.put(f"/api/v1/bot/flows/{flow['id']}", headers=admin.headers, json={"definition": defn})
    assert r.json()["version"] == 2
    assert await first.say("2") == ["Напишите, пожалуйста, номер заказа."], "version 1 to the end"
    second = Customer(client, channel, workers, crm, contact="crm-v2")
    await second.say("Привет")
    assert await second.say("2") == ["Номер заказа, пожалуйста."]
    async with runtime.db.read() as s:
        versions = dict((await s.execute(select(BotSession.conversation_id, BotSession.flow_version))).all())
    assert versions[conv1.id] == 1 and sorted(versions.values()) == [1, 2]


async def test_a_channel_without_a_flow_queues_as_before(client, runtime, admin, workers, clock):
    r = await client.post("/api/v1/channels", headers=admin.headers, json={"type": "api", "name": "Plain"})
    plain = r.json()
    assert (await post_inbound(client, plain, msg_id="p-1", contact="c-plain")).status_code == 200
    conv = await conversation(runtime)
    assert conv.status == "queued" and conv.queued_at is not None
    async with runtime.db.read() as s:
        assert await s.get(BotSession, conv.id) is None


async def test_a_disabled_flow_greets_nobody_new(client, runtime, admin, channel, workers, crm, clock):
    flow = (await client.get("/api/v1/bot/flows", headers=admin.headers)).json()["items"][0]
    r = await client.put(f"/api/v1/bot/flows/{flow['id']}", headers=admin.headers, json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    me = Customer(client, channel, workers, crm, contact="crm-off")
    assert await me.say("Привет") == []
    assert (await conversation(runtime)).status == "queued"
    async with runtime.db.read() as s:
        await s.execute(update(BotSession).values(due_at=None))  # nothing to do anyway
