"""Channel health as an administrator meets it: a mailbox with a wrong password, a revoked Telegram token and an
outbound URL that fails turn the channel degraded or failing with a sentence saying what to fix, alert the
administrators once, and clear with one "recovered" notice; the connection test checks each type against
its provider's fake; the API shows it all (tests/test_web_admin.py shows the screen)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kommutator.channels.host import Host
from kommutator.channels.models import ChannelHealth
from kommutator.channels.types.email import EmailServices
from kommutator.channels.types.telegram.polling import Poller
from kommutator.clock import now, set_clock
from kommutator.notifications.models import Notification
from kommutator.quality.models import AlertDelivery, AlertRule, QualityAlert
from kommutator.workers.outbox import OutboxWorker

from .fakes.imap_server import FakeImapServer, ImapState
from .fakes.telegram import TOKEN, FakeTelegram
from .fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from .fakes.vk import GROUP_ID, FakeVk
from .fakes.vk import TOKEN as VK_TOKEN
from .fakes.whatsapp import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, FakeWhatsApp
from .test_channel_email import SUPPORT, Provider, crlf, mail
from .test_channel_telegram import TEXT, post_update
from .test_outbox import Answer, Integrator, open_chat, reply

IMAP_PASSWORD = "imap-secret-1"


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    return settings


@pytest.fixture
def clock() -> Iterator[list[dt.datetime]]:
    current = [now()]
    set_clock(lambda: current[0])
    yield current
    set_clock(None)


@pytest.fixture
async def runtime(runtime):  # type: ignore[no-untyped-def]
    yield runtime
    client, runtime.channel_client = runtime.channel_client, None  # the connection test and polling use it
    if isinstance(client, httpx.AsyncClient):
        await client.aclose()


async def health(client: httpx.AsyncClient, admin: Any, channel_id: int) -> dict[str, Any]:
    r = await client.get(f"/api/v1/channels/{channel_id}", headers=admin.headers)
    assert r.status_code == 200, r.text
    return dict(r.json()["health"])


async def notifications(runtime: Any, user_id: int) -> list[Notification]:
    async with runtime.db.read() as s:
        return list((await s.execute(select(Notification).where(Notification.user_id == user_id)
                                     .order_by(Notification.id))).scalars())


async def run_test(client: httpx.AsyncClient, admin: Any, channel_id: int) -> dict[str, Any]:
    """POST /channels/{id}/test as an administrator; the result."""
    r = await client.post(f"/api/v1/channels/{channel_id}/test", headers=admin.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


# --- Email: IMAP with a wrong password ------------------------------------------------------------------


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    fake = Provider()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def mailbox() -> Iterator[tuple[ImapState, FakeImapServer]]:
    state = ImapState(SUPPORT, IMAP_PASSWORD)
    with FakeImapServer(state) as server:
        yield state, server


@pytest.fixture
async def mail_channel(client, admin, provider, mailbox) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    _, server = mailbox
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "email", "name": "Support mail",
        "settings": {"address": SUPPORT, "inbound": ["imap"], "smtp_host": "127.0.0.1", "smtp_port": provider.port,
                     "smtp_security": "none", "imap_host": "127.0.0.1", "imap_port": server.port,
                     "imap_security": "none", "poll_seconds": 30},
        "credentials": {"imap_password": IMAP_PASSWORD}})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_a_wrong_imap_password_fails_the_channel_alerts_admins_once_and_recovers(
        client, admin, factory, runtime, mail_channel, mailbox, clock):  # type: ignore[no-untyped-def]
    state, _ = mailbox
    agent = await factory.user("agent")
    second_admin = await factory.user("admin")
    r = await client.patch(f"/api/v1/users/{second_admin.id}", json={"locale": "ru"}, headers=second_admin.headers)
    assert r.status_code == 200, r.text
    channel_id = mail_channel["id"]
    r = await client.patch(f"/api/v1/channels/{channel_id}", headers=admin.headers,
                           json={"credentials": {"imap_password": "wrong-password"}})
    assert r.status_code == 200, r.text
    host = Host(runtime)
    services = EmailServices(host)
    (cfg,) = await host.channels("email")
    await services._poll(cfg)

    seen = await health(client, admin, channel_id)
    assert seen["status"] == "failing" and seen["error_code"] == "auth"
    assert "refused the login" in seen["last_error"] and "imap_password" in seen["last_error"], \
        "the sentence must say what to fix"
    assert seen["last_error_at"] is not None and seen["last_receive_at"] is None
    for person, said in ((admin, "Channel “Support mail” is failing"),
                         (second_admin, "Канал «Support mail» не работает")):
        (alert,) = await notifications(runtime, person.id)
        assert alert.kind == "channel.failing" and alert.severity == "critical"
        assert alert.title.startswith(said) and alert.body.startswith(said), "each admin in their own language"
        assert ("Канал" in alert.body) != ("Channel" in alert.body), "one language per notification, not both"
        assert "imap_password" in alert.body, "with the error that says what to fix"
    assert await notifications(runtime, agent.id) == [], "channel alerts go to administrators"

    clock[0] += dt.timedelta(minutes=5)  # the poller keeps failing: the error is kept fresh, no new alert
    await services._poll(cfg)
    assert len(await notifications(runtime, admin.id)) == 1, "one alert per transition, not per failed poll"
    assert (await health(client, admin, channel_id))["last_error_at"] > seen["last_error_at"]

    r = await client.patch(f"/api/v1/channels/{channel_id}", headers=admin.headers,
                           json={"credentials": {"imap_password": IMAP_PASSWORD}})
    assert r.status_code == 200, r.text
    state.add(crlf(mail()))
    (cfg,) = await host.channels("email")
    clock[0] += dt.timedelta(minutes=1)
    await services._poll(cfg)
    seen = await health(client, admin, channel_id)
    assert seen["status"] == "ok" and seen["last_receive_at"] is not None
    assert seen["last_error"], "the last error stays visible with its time after recovery"
    kinds = [n.kind for n in await notifications(runtime, admin.id)]
    assert kinds == ["channel.failing", "channel.recovered"]
    async with runtime.db.read() as s:
        alerts = list((await s.execute(select(QualityAlert.kind).order_by(QualityAlert.id))).scalars())
    assert alerts == ["channel.failing", "channel.recovered"]

    # Agents see the channel, not its health.
    r = await client.get(f"/api/v1/channels/{channel_id}", headers=agent.headers)
    assert r.status_code == 200 and r.json()["health"] is None
    r = await client.get("/api/v1/channels", headers=admin.headers)
    assert r.json()[0]["health"]["status"] == "ok"


async def test_an_alert_rule_sends_channel_failures_by_email_too(client, admin, runtime, mail_channel, clock):  # type: ignore[no-untyped-def]
    async def rule(tx):  # type: ignore[no-untyped-def]
        tx.session.add(AlertRule(kind="channel.failing", team_id=None, enabled=True, to_agent=False,
                                 to_supervisors=False, user_ids=[], emails=["oncall@shop.example"]))

    await runtime.db.write(rule)
    await client.patch(f"/api/v1/channels/{mail_channel['id']}", headers=admin.headers,
                       json={"credentials": {"imap_password": "wrong-password"}})
    host = Host(runtime)
    (cfg,) = await host.channels("email")
    await EmailServices(host)._poll(cfg)
    async with runtime.db.read() as s:
        targets = list((await s.execute(select(AlertDelivery.target))).scalars())
    assert targets == ["oncall@shop.example"]


async def test_the_connection_test_logs_in_to_smtp_and_imap(client, admin, runtime, mail_channel, provider):  # type: ignore[no-untyped-def]
    result = await run_test(client, admin, mail_channel["id"])
    assert result["ok"] is True, result
    assert [c["name"] for c in result["checks"]] == ["SMTP", "IMAP"]
    assert "INBOX" in result["checks"][1]["detail"]
    assert result["health"]["status"] == "ok"
    assert provider.delivered == [], "the test sends nothing"

    await client.patch(f"/api/v1/channels/{mail_channel['id']}", headers=admin.headers,
                       json={"credentials": {"imap_password": "wrong-password", "smtp_password": "wrong"}})
    provider.password = "right"  # the relay now asks for a login, and refuses ours
    result = await run_test(client, admin, mail_channel["id"])
    assert result["ok"] is False
    smtp, imap = result["checks"]
    assert not smtp["ok"] and "smtp_password" in smtp["detail"]
    assert not imap["ok"] and "refused the login" in imap["detail"]
    assert result["health"]["status"] == "failing" and result["health"]["error_code"] == "auth"


# --- Telegram: a revoked token --------------------------------------------------------------------------


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()


async def test_a_revoked_telegram_token_fails_the_channel(client, admin, runtime, telegram):  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "telegram", "name": "Shop bot",
        "settings": {"api_base_url": telegram.url, "mode": "polling", "poll_timeout": 0},
        "credentials": {"bot_token": TOKEN}})
    assert r.status_code == 201, r.text
    channel_id = r.json()["id"]
    telegram.token = "0:revoked-by-botfather"  # the fake now answers our token 401 Unauthorized
    host = Host(runtime)
    (cfg,) = await host.channels("telegram")
    poller = Poller("telegram", error_delay=0.001, idle_delay=0.001)
    task = asyncio.create_task(poller._poll_forever(host, cfg))
    try:
        for _ in range(500):
            async with runtime.db.read() as s:
                row = await s.get(ChannelHealth, channel_id)
            if row is not None:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    seen = await health(client, admin, channel_id)
    assert seen["status"] == "failing" and seen["error_code"] == "auth"
    assert "rejected the bot token" in seen["last_error"] and "bot_token" in seen["last_error"]

    result = await run_test(client, admin, channel_id)
    assert result["ok"] is False and result["checks"][0]["name"] == "getMe"
    assert "401" in result["checks"][0]["detail"]

    telegram.token = TOKEN  # the administrator saved the new token
    result = await run_test(client, admin, channel_id)
    assert result["ok"] is True and result["health"]["status"] == "ok"
    assert [c.method for c in telegram.calls if c.method != "getUpdates"] == ["getMe", "getMe"]


async def test_a_reply_refused_with_401_fails_a_webhook_bot(client, admin, runtime, telegram, worker):  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "telegram", "name": "Shop bot", "settings": {"api_base_url": telegram.url},
        "credentials": {"bot_token": TOKEN}})
    assert r.status_code == 201, r.text
    bot = r.json()
    assert (await post_update(client, bot, TEXT)).status_code == 200
    conversation = (await client.get("/api/v1/conversations", headers=admin.headers)).json()["items"][0]["id"]
    telegram.token = "0:revoked-by-botfather"
    await reply(client, admin, conversation, "Заказ в пути")
    await worker.run_due()
    seen = await health(client, admin, bot["id"])
    assert seen["status"] == "failing" and seen["error_code"] == "auth" and "bot_token" in seen["last_error"]
    assert seen["last_receive_at"] is not None and seen["last_send_at"] is None


# --- An API channel's outbound URL ----------------------------------------------------------------------


@pytest.fixture
async def integrator() -> AsyncIterator[Integrator]:
    fake = Integrator()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def api_out(client, admin, integrator) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/channels", headers=admin.headers,
                          json={"type": "api", "name": "CRM", "settings": {"outbound_url": integrator.url}})
    assert r.status_code == 201, r.text
    integrator.secret = r.json()["generated_credentials"]["outbound_secret"]
    return dict(r.json())


@pytest.fixture
async def worker(runtime) -> AsyncIterator[OutboxWorker]:  # type: ignore[no-untyped-def]
    w = OutboxWorker(runtime, name="health-worker")
    yield w
    await w.stop()


async def test_a_failing_outbound_url_degrades_then_fails_and_recovers(client, admin, runtime, api_out, integrator,
                                                                       worker, clock):  # type: ignore[no-untyped-def]
    conversation = await open_chat(client, api_out)
    assert (await health(client, admin, api_out["id"]))["last_receive_at"] is not None
    integrator.always = Answer(503)
    await reply(client, admin, conversation, "Заказ в пути")
    await worker.run_due()
    seen = await health(client, admin, api_out["id"])
    assert seen["status"] == "degraded" and seen["error_code"] == "connect"
    assert "answered HTTP 503" in seen["last_error"]
    assert await notifications(runtime, admin.id) == [], "degraded does not alert"
    statuses = []
    for _ in range(2):
        clock[0] += dt.timedelta(hours=1)  # the retry is due
        await worker.run_due()
        statuses.append((await health(client, admin, api_out["id"]))["status"])
    assert statuses == ["degraded", "failing"], "a failure that keeps repeating fails the channel"
    assert [n.kind for n in await notifications(runtime, admin.id)] == ["channel.failing"]

    integrator.always = None
    clock[0] += dt.timedelta(hours=1)
    await worker.run_due()
    seen = await health(client, admin, api_out["id"])
    assert seen["status"] == "ok" and seen["last_send_at"] is not None
    assert [n.kind for n in await notifications(runtime, admin.id)] == ["channel.failing", "channel.recovered"]


async def test_an_outbound_url_that_is_gone_fails_the_channel_at_once(client, admin, runtime, api_out, integrator,
                                                                      worker, clock):  # type: ignore[no-untyped-def]
    conversation = await open_chat(client, api_out)
    integrator.always = Answer(410)
    await reply(client, admin, conversation, "Заказ в пути")
    await worker.run_due()
    seen = await health(client, admin, api_out["id"])
    assert seen["status"] == "failing" and seen["error_code"] == "config" and "410 Gone" in seen["last_error"]


async def test_messages_received_do_not_clear_a_failing_channel(client, admin, runtime, api_out, integrator, worker,
                                                               clock):  # type: ignore[no-untyped-def]
    """A channel whose sends fail stays failing while customers keep writing: no failing/recovered flapping
    with an alert and a notice per message (only a send, a poll or a test that works clears it)."""
    conversation = await open_chat(client, api_out)
    integrator.always = Answer(503)
    await reply(client, admin, conversation, "Заказ в пути")
    await worker.run_due()
    for _ in range(2):
        clock[0] += dt.timedelta(hours=1)  # the retry is due
        await worker.run_due()
    assert (await health(client, admin, api_out["id"]))["status"] == "failing"
    for n in range(3):
        clock[0] += dt.timedelta(minutes=2)  # past RECORD_EVERY: each receive is written
        await open_chat(client, api_out, contact=f"crm-more-{n}")
        seen = await health(client, admin, api_out["id"])
        assert seen["status"] == "failing" and seen["error_code"] == "connect"
        assert dt.datetime.fromisoformat(seen["last_receive_at"]) == clock[0], "the receive is still stamped"
    assert [n.kind for n in await notifications(runtime, admin.id)] == ["channel.failing"]

    integrator.always = None
    clock[0] += dt.timedelta(hours=1)
    await worker.run_due()
    assert (await health(client, admin, api_out["id"]))["status"] == "ok", "a send that works clears it"
    assert [n.kind for n in await notifications(runtime, admin.id)] == ["channel.failing", "channel.recovered"]


async def test_inbound_messages_stamp_the_last_receive_at_most_once_a_minute(client, admin, runtime, api_out,
                                                                            clock):  # type: ignore[no-untyped-def]
    first = clock[0]
    for n in range(5):
        await open_chat(client, api_out, contact=f"crm-{n}")
        clock[0] += dt.timedelta(seconds=10)
    stamped = dt.datetime.fromisoformat((await health(client, admin, api_out["id"]))["last_receive_at"])
    assert stamped == first, "one write for the first message, none for the next four within the minute"
    clock[0] += dt.timedelta(seconds=30)
    await open_chat(client, api_out, contact="crm-late")
    stamped = dt.datetime.fromisoformat((await health(client, admin, api_out["id"]))["last_receive_at"])
    assert stamped == clock[0]


async def test_the_connection_test_reaches_the_outbound_url(client, admin, runtime, api_out, integrator):  # type: ignore[no-untyped-def]
    result = await run_test(client, admin, api_out["id"])
    assert result["ok"] is True and result["checks"][0]["name"] == "outbound_url"
    assert integrator.received == [], "the test delivers nothing"
    r = await client.patch(f"/api/v1/channels/{api_out['id']}", headers=admin.headers,
                           json={"settings": {"outbound_url": integrator.url + "/missing"}})
    assert r.status_code == 200, r.text
    result = await run_test(client, admin, api_out["id"])
    assert result["ok"] is False and "404" in result["checks"][0]["detail"]
    assert result["health"]["status"] == "failing" and result["health"]["error_code"] == "config"


# --- Token checks of the other types ---------------------------------------------------------------------


async def test_the_connection_test_checks_a_whatsapp_token(client, admin, runtime):  # type: ignore[no-untyped-def]
    fake = FakeWhatsApp()
    await fake.start()
    try:
        r = await client.post("/api/v1/channels", headers=admin.headers, json={
            "type": "whatsapp", "name": "WhatsApp",
            "settings": {"api_base_url": fake.base_url, "phone_number_id": PHONE_NUMBER_ID},
            "credentials": {"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET}})
        assert r.status_code == 201, r.text
        result = await run_test(client, admin, r.json()["id"])
        assert result["ok"] is True and "+1 555-078-3881" in result["checks"][0]["detail"]
        fake.access_token = "EAA-expired-" + "x" * 40
        result = await run_test(client, admin, r.json()["id"])
        assert result["ok"] is False and "access_token" in result["checks"][0]["detail"]
        assert result["health"]["error_code"] == "auth"
    finally:
        await fake.stop()


async def test_the_connection_test_checks_a_vk_token(client, admin, runtime):  # type: ignore[no-untyped-def]
    fake = FakeVk()
    await fake.start()
    try:
        r = await client.post("/api/v1/channels", headers=admin.headers, json={
            "type": "vk", "name": "VK", "settings": {"api_base_url": fake.url, "group_id": GROUP_ID,
                                                     "confirmation_code": "a1b2c3d4"},
            "credentials": {"access_token": VK_TOKEN}})
        assert r.status_code == 201, r.text
        result = await run_test(client, admin, r.json()["id"])
        assert result["ok"] is True and str(GROUP_ID) in result["checks"][0]["detail"]
        fake.token = "vk1.a.another-community-token-0123456789"
        result = await run_test(client, admin, r.json()["id"])
        assert result["ok"] is False and "VK error 5" in result["checks"][0]["detail"]
        assert result["health"]["status"] == "failing"
    finally:
        await fake.stop()


async def test_the_connection_test_checks_twilio_credentials(client, admin, runtime):  # type: ignore[no-untyped-def]
    fake = FakeTwilio()
    await fake.start()
    try:
        r = await client.post("/api/v1/channels", headers=admin.headers, json={
            "type": "sms", "name": "SMS", "settings": {"api_base_url": fake.url, "account_sid": ACCOUNT_SID,
                                                       "from_number": "+15550001111"},
            "credentials": {"auth_token": AUTH_TOKEN}})
        assert r.status_code == 201, r.text
        result = await run_test(client, admin, r.json()["id"])
        assert result["ok"] is True and "Shop account" in result["checks"][0]["detail"]
        fake.auth_token = "0" * 32
        result = await run_test(client, admin, r.json()["id"])
        assert result["ok"] is False and "auth_token" in result["checks"][0]["detail"]
    finally:
        await fake.stop()


async def test_a_web_chat_has_no_webhook_and_nothing_to_connect_to(client, admin, runtime):  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/channels", json={"type": "webchat", "name": "Shop"}, headers=admin.headers)
    assert r.status_code == 201, r.text
    assert r.json()["webhook_url"] == "", "visitors use the widget; /webhooks/{id} would answer 404"
    result = await run_test(client, admin, r.json()["id"])
    assert result["ok"] is True and result["health"]["status"] == "ok"


async def test_only_administrators_test_channels(client, admin, factory, runtime, api_out):  # type: ignore[no-untyped-def]
    supervisor = await factory.user("supervisor")
    r = await client.post(f"/api/v1/channels/{api_out['id']}/test", headers=supervisor.headers)
    assert r.status_code == 403
    r = await client.post("/api/v1/channels/999999/test", headers=admin.headers)
    assert r.status_code == 404
