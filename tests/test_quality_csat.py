"""Customer ratings: asked once on resolution in the customer's channel and language (buttons on Telegram,
numbered lines over SMS), answers understood and recorded without reopening, a comment follow-up, NPS per
channel, and a negative rating alerting the supervisor over a real SMTP exchange and to a fake Telegram."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from kommutator.conversations.models import Conversation, Transition
from kommutator.events import ConversationUpdated, RatingRecorded
from kommutator.quality.csat_answers import parse_answer
from kommutator.quality.delivery import AlertDeliveryWorker
from kommutator.quality.models import AlertDelivery, Rating
from kommutator.runtime import Runtime
from kommutator.workers.outbox import OutboxWorker

from .conftest import Actor, Clock, Factory
from .fakes.telegram import TOKEN, FakeTelegram
from .fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio
from .quality_support import Q, alerts, reply, set_status, settle

ANNA = {"id": 5551234567, "is_bot": False, "first_name": "Анна", "username": "anna_p", "language_code": "ru"}
ANNA_CHAT = {"id": 5551234567, "first_name": "Анна", "username": "anna_p", "type": "private"}
ALERT_BOT_TOKEN = "987654321:AAEalertsBotTokenForSupervisors12345"
_updates = itertools.count(804211001)


# --- Understanding answers ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "button", "scale", "expected"), [
    ("", "csat:4", "csat", (4, "")),
    ("5", None, "csat", (5, "")),
    ("5 - всё отлично, спасибо", None, "csat", (5, "всё отлично, спасибо")),
    ("2. Долго ждал ответа", None, "csat", (2, "Долго ждал ответа")),
    ("4/5", None, "csat", (4, "")),
    ("Отлично!", None, "csat", (5, "")),
    ("плохо", None, "csat", (2, "")),
    ("очень плохо", None, "csat", (1, "")),
    ("very good", None, "csat", (5, "")),
    ("Хорошо", None, "csat", (4, "")),
    ("6", None, "csat", None),
    ("12:30 доставят?", None, "csat", None),
    ("плохо что заказ до сих пор не пришёл, когда его привезут?", None, "csat", None),
    ("а где мой заказ", None, "csat", None),
    ("9", None, "nps", (9, "")),
    ("0", "", "nps", (0, "")),
    ("", "nps:10", "nps", (10, "")),
    ("отлично", None, "nps", None),
    ("", "csat:9", "csat", None),
])
def test_answers_are_understood(text: str, button: str | None, scale: str, expected: tuple[int, str] | None) -> None:
    assert parse_answer(text, button, scale) == expected


# --- Fixtures -------------------------------------------------------------------------------------------

@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    return settings


@pytest.fixture
async def telegram(runtime: Runtime) -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    yield fake
    client, runtime.channel_client = runtime.channel_client, None
    if isinstance(client, httpx.AsyncClient):
        await client.aclose()
    await fake.stop()


@pytest.fixture
async def alert_bot(runtime: Runtime) -> AsyncIterator[FakeTelegram]:
    """The supervisor's own Telegram bot that alerts go out through (another token, another server)."""
    fake = FakeTelegram(token=ALERT_BOT_TOKEN)
    await fake.start()
    runtime.settings.telegram_api_base_url = fake.url
    yield fake
    await fake.stop()


class Inbox:
    """An SMTP server on loopback (aiosmtpd) that keeps what it receives."""

    def __init__(self) -> None:
        self.mails: list[Envelope] = []
        self.helo_names: list[str] = []

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        self.helo_names.append(hostname)
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.mails.append(envelope)
        return "250 OK"


@pytest.fixture
async def smtp(runtime: Runtime) -> AsyncIterator[Inbox]:
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(inbox, hostname="relay.test"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    runtime.settings.alert_smtp_host, runtime.settings.alert_smtp_port = "127.0.0.1", port
    runtime.settings.alert_email_from = "alerts@shop.example"
    yield inbox
    server.close()
    await server.wait_closed()


@pytest.fixture
async def world(client: httpx.AsyncClient, factory: Factory, admin: Actor, telegram: FakeTelegram) -> dict[str, Any]:
    team = await factory.team("Support")
    agent = await factory.user("agent", teams=[team], name="Anna Agent")
    supervisor = await factory.user("supervisor", teams=[team], name="Sergey Supervisor")
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "telegram", "name": "Shop bot", "team_id": team, "settings": {"api_base_url": telegram.url},
        "credentials": {"bot_token": TOKEN}})
    assert r.status_code == 201, r.text
    channel = r.json()
    r = await client.put(f"{Q}/csat/default", json={"scale": "csat", "ask_comment": True}, headers=supervisor.headers)
    assert r.status_code == 200, r.text
    return {"team": team, "agent": agent, "supervisor": supervisor, "tg": channel}


async def telegram_says(client: httpx.AsyncClient, channel: dict[str, Any], text: str = "",
                        button: str | None = None, on_message: int = 1000) -> None:
    update_id = next(_updates)
    if button is None:
        update: dict[str, Any] = {"update_id": update_id, "message": {
            "message_id": update_id % 100000, "from": ANNA, "chat": ANNA_CHAT, "date": 1709283600, "text": text}}
    else:
        update = {"update_id": update_id, "callback_query": {
            "id": f"cb{update_id}", "from": ANNA, "chat_instance": "-87312", "data": button,
            "message": {"message_id": on_message, "from": {"id": 123456789, "is_bot": True, "first_name": "Shop"},
                        "chat": ANNA_CHAT, "date": 1709284000, "text": "…"}}}
    secret = channel["generated_credentials"]["webhook_secret"]
    r = await client.post(f"/webhooks/{channel['id']}", json=update,
                          headers={"x-telegram-bot-api-secret-token": secret})
    assert r.status_code == 200, r.text


async def conversation(runtime: Runtime, cid: int) -> Conversation:
    async with runtime.db.read() as s:
        conv = await s.get(Conversation, cid)
    assert conv is not None
    return conv


async def only_conversation_id(runtime: Runtime) -> int:
    async with runtime.db.read() as s:
        return int((await s.execute(select(Conversation.id))).scalar_one())


@pytest.fixture
async def tg_channel(world: dict[str, Any]) -> dict[str, Any]:
    return dict(world["tg"])


# --- The whole story on Telegram ----------------------------------------------------------------------

async def test_rating_on_telegram_with_buttons_negative_alert_by_email_and_telegram(
        client: httpx.AsyncClient, runtime: Runtime, clock: Clock, world: dict[str, Any], tg_channel: dict[str, Any],
        telegram: FakeTelegram, alert_bot: FakeTelegram, smtp: Inbox) -> None:
    agent, supervisor = world["agent"], world["supervisor"]
    r = await client.post(f"{Q}/rules", headers=supervisor.headers, json={
        "team_id": world["team"], "kind": "csat.negative", "to_supervisors": True, "threshold": 2,
        "emails": ["quality@shop.example"], "telegram_chat_id": "-1009876543210",
        "telegram_bot_token": ALERT_BOT_TOKEN})
    assert r.status_code == 201, r.text
    assert r.json()["telegram_bot_token_set"] is True and "telegram_bot_token" not in r.json()
    outbox = OutboxWorker(runtime, name="csat-test")
    heard: list[RatingRecorded] = []

    async def listen(event: Any) -> None:
        heard.append(event)

    runtime.bus.subscribe(listen, kinds=(RatingRecorded,))

    await telegram_says(client, tg_channel, "Где мой заказ?")
    cid = await only_conversation_id(runtime)
    await reply(client, agent, cid, "Здравствуйте! Заказ уже в пути.")
    await set_status(client, agent, cid, "resolved")
    await settle(runtime)
    await outbox.run_due()
    question = telegram.sent()[-1]
    assert question.params["text"].startswith("Оцените, пожалуйста"), "in the customer's language (ru)"
    keyboard = question.params["reply_markup"]["inline_keyboard"]
    assert [b["callback_data"] for row in keyboard for b in row] == [f"csat:{n}" for n in range(1, 6)]
    assert [b["text"] for row in keyboard for b in row][-1] == "Отлично"

    await telegram_says(client, tg_channel, button="csat:2")
    conv = await conversation(runtime, cid)
    assert conv.status == "resolved", "a rating does not reopen the conversation"
    await settle(runtime)
    async with runtime.db.read() as s:
        rating = (await s.execute(select(Rating))).scalar_one()
    assert (rating.conversation_id, rating.score, rating.scale, rating.agent_id) == (cid, 2, "csat", agent.id)
    (alert,) = await alerts(runtime, "csat.negative")
    assert alert.recipients["user_ids"] == [supervisor.id] and alert.conversation_id == cid
    assert [e.score for e in heard] == [2], "integrators hear of the rating on the bus"

    # The alert goes out: over SMTP to the quality manager, and to the supervisor's Telegram chat.
    worker = AlertDeliveryWorker(runtime)
    assert await worker.run_due() == 2
    await worker.stop()
    (mail,) = smtp.mails
    assert mail.rcpt_tos == ["quality@shop.example"] and mail.mail_from == "alerts@shop.example"
    parsed = message_from_bytes(mail.original_content or b"", policy=default_policy)
    body = parsed.get_content()  # type: ignore[attr-defined]
    assert f"Conversation #{cid}: the customer rated 2 of 5" in parsed["Subject"]
    assert f"http://testserver/#conversation/{cid}" in body and "клиент поставил 2 из 5" in body
    (tg,) = alert_bot.sent()
    assert tg.params["chat_id"] == "-1009876543210" and f"#{cid}" in tg.params["text"]
    async with runtime.db.read() as s:
        assert {d.status for d in (await s.execute(select(AlertDelivery))).scalars()} == {"sent"}

    # The comment follow-up: recorded, still resolved, thanked; then a new question reopens as before.
    await outbox.run_due()
    assert telegram.sent()[-1].params["text"].startswith("Спасибо! Расскажете")
    await telegram_says(client, tg_channel, "Курьер опоздал на два дня")
    assert (await conversation(runtime, cid)).status == "resolved"
    await settle(runtime)
    async with runtime.db.read() as s:
        assert (await s.execute(select(Rating.comment))).scalar_one() == "Курьер опоздал на два дня"
    await outbox.run_due()
    assert telegram.sent()[-1].params["text"] == "Спасибо, мы учтём ваш отзыв."
    await telegram_says(client, tg_channel, "А можно ещё вопрос про возврат?")
    async with runtime.db.read() as s:
        statuses = [tuple(r) for r in (await s.execute(select(Conversation.id, Conversation.status)
                                                       .order_by(Conversation.id))).all()]
    assert statuses == [(cid, "resolved"), (cid + 1, "queued")], \
        "after the rating, a message is a new request, as on Telegram without ratings"
    assert len(await alerts(runtime, "csat.negative")) == 1

    # The rating is on the contact's card and the conversation.
    r = await client.get(f"{Q}/contacts/{conv.contact_id}/ratings", headers=agent.headers)
    assert [(x["score"], x["comment"]) for x in r.json()] == [(2, "Курьер опоздал на два дня")]
    r = await client.get(f"{Q}/conversations/{cid}", headers=agent.headers)
    assert r.json()["rating"]["score"] == 2
    r = await client.get(f"/api/v1/contacts/{conv.contact_id}", headers=agent.headers)
    assert [(x["conversation_id"], x["score"], x["scale"]) for x in r.json()["ratings"]] == [(cid, 2, "csat")]
    await outbox.stop()


async def test_a_comment_sent_right_after_the_score_is_the_ratings_comment(
        client: httpx.AsyncClient, runtime: Runtime, clock: Clock, world: dict[str, Any],
        tg_channel: dict[str, Any], telegram: FakeTelegram) -> None:
    """Customers often send the score and the reason at once: the text that arrives before the follow-up has run
    is the comment, the low rating still raises its alert (with the comment), and no comment question follows."""
    agent = world["agent"]
    outbox = OutboxWorker(runtime, name="csat-test")
    await telegram_says(client, tg_channel, "Где мой заказ?")
    cid = await only_conversation_id(runtime)
    await reply(client, agent, cid, "Заказ уже в пути.")
    await set_status(client, agent, cid, "resolved")
    await settle(runtime)
    await telegram_says(client, tg_channel, "2")
    await telegram_says(client, tg_channel, "Курьер нагрубил")  # before the follow-up: no settle in between
    await telegram_says(client, tg_channel, "И ещё вопрос про возврат")  # a second text is a new request
    await settle(runtime)
    async with runtime.db.read() as s:
        assert [tuple(r) for r in (await s.execute(select(Rating.score, Rating.comment))).all()] == \
            [(2, "Курьер нагрубил")]
        assert (await s.execute(select(Conversation.status).order_by(Conversation.id))).scalars().all() == \
            ["resolved", "queued"], "the comment is not a new request; the text after it is"
    (alert,) = await alerts(runtime, "csat.negative")
    assert "Курьер нагрубил" in alert.body
    await outbox.run_due()
    said = [c.params["text"] for c in telegram.sent()]
    assert said[-1] == "Спасибо, мы учтём ваш отзыв." and not any(t.startswith("Спасибо! Расскажете") for t in said)
    await outbox.stop()


async def test_never_asked_twice_and_a_non_answer_is_a_new_request(client: httpx.AsyncClient, runtime: Runtime,
                                                         clock: Clock, world: dict[str, Any],
                                                         tg_channel: dict[str, Any], telegram: FakeTelegram) -> None:
    agent = world["agent"]
    outbox = OutboxWorker(runtime, name="csat-test")
    await telegram_says(client, tg_channel, "Здравствуйте")
    cid = await only_conversation_id(runtime)
    await reply(client, agent, cid, "Добрый день!")
    await set_status(client, agent, cid, "resolved")
    await settle(runtime)
    r = await client.post(f"/api/v1/conversations/{cid}/status", json={"status": "open"}, headers=agent.headers)
    assert r.status_code == 200, r.text
    await reply(client, agent, cid, "Конечно, слушаю")
    await set_status(client, agent, cid, "resolved")
    await settle(runtime)
    await telegram_says(client, tg_channel, "подождите, у меня ещё вопрос про доставку")
    async with runtime.db.read() as s:
        statuses = [r.status for r in (await s.execute(select(Conversation.status).order_by(Conversation.id))).all()]
    assert statuses == ["resolved", "queued"], "not a rating: a new request, the rated conversation stays closed"
    await outbox.run_due()
    questions = [c for c in telegram.sent() if c.params["text"].startswith("Оцените")]
    assert len(questions) == 1, "never more than one question per conversation"
    async with runtime.db.read() as s:
        assert (await s.execute(select(Rating))).first() is None
    await outbox.stop()


async def test_not_asked_after_the_bot_resolved_it(client: httpx.AsyncClient, runtime: Runtime, clock: Clock,
                                                   world: dict[str, Any], tg_channel: dict[str, Any],
                                                   telegram: FakeTelegram) -> None:
    await telegram_says(client, tg_channel, "Какой у вас режим работы?")
    cid = await only_conversation_id(runtime)

    async def bot_resolves(tx: Any) -> None:  # what the bot's resolve node does
        conv = await tx.session.get(Conversation, cid)
        tx.session.add(Transition(conversation_id=cid, from_status=conv.status, to_status="resolved",
                                  reason="resolved by the bot", at=clock.t))
        conv.status, conv.resolved_at = "resolved", clock.t
        tx.publish(ConversationUpdated(conversation_id=cid, team_id=conv.team_id, assignee_id=None,
                                       status="resolved", changes={"status": ["bot", "resolved"],
                                                                   "resolved_by": "bot"}))

    await runtime.db.write(bot_resolves)
    await settle(runtime)
    r = await client.get(f"{Q}/conversations/{cid}", headers=world["supervisor"].headers)
    assert r.json()["rating"] is None
    async with runtime.db.read() as s:
        from kommutator.quality.models import QualityState

        assert (await s.get(QualityState, cid)).csat_state == "skipped"  # type: ignore[union-attr]


# --- SMS: numbered lines, NPS ---------------------------------------------------------------------------

@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    await fake.start()
    yield fake
    await fake.stop()


async def test_nps_over_sms_is_numbered_and_answered_by_number(client: httpx.AsyncClient, runtime: Runtime,
                                                               clock: Clock, factory: Factory, admin: Actor,
                                                               twilio: FakeTwilio) -> None:
    supervisor = await factory.user("supervisor")
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "sms", "name": "SMS", "settings": {"api_base_url": twilio.url, "account_sid": ACCOUNT_SID,
                                                   "from_number": FROM_NUMBER},
        "credentials": {"auth_token": AUTH_TOKEN}})
    assert r.status_code == 201, r.text
    sms = r.json()
    r = await client.put(f"{Q}/csat/{sms['id']}", json={"scale": "nps", "ask_comment": False},
                         headers=supervisor.headers)
    assert r.status_code == 200, r.text
    hook = f"http://testserver/webhooks/{sms['id']}"
    r = await twilio.post_signed(client, hook, twilio.inbound_params(sender="+14155550123", to=FROM_NUMBER,
                                                                      body="Hello, where is my order?"))
    assert r.status_code == 200, r.text
    cid = await only_conversation_id(runtime)
    await reply(client, supervisor, cid, "Hello! It ships today.")
    await set_status(client, supervisor, cid, "resolved")
    await settle(runtime)
    outbox = OutboxWorker(runtime, name="sms-test")
    await outbox.run_due()
    question = twilio.messages[-1].body
    assert question.startswith("How likely are you to recommend us")
    assert question.splitlines()[1:] == [f"{n + 1}. {n}" for n in range(11)], "no buttons on SMS: numbered lines"
    r = await twilio.post_signed(client, hook, twilio.inbound_params(sender="+14155550123", to=FROM_NUMBER,
                                                                      body="9"))
    assert r.status_code == 200
    await settle(runtime)
    assert (await conversation(runtime, cid)).status == "resolved"
    async with runtime.db.read() as s:
        rating = (await s.execute(select(Rating))).scalar_one()
    assert (rating.scale, rating.score) == ("nps", 9)
    assert await alerts(runtime, "csat.negative") == [], "9 is a promoter"
    await outbox.run_due()
    assert twilio.messages[-1].body == "Thank you for your rating!"
    await outbox.stop()
