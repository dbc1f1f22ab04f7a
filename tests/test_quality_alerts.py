"""Alerts and who sees them, acknowledgement, communication standards on agents' replies, alert rules and
their validation, the supervisor's live view and whispers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kommutator.conversations.models import Message
from kommutator.quality.models import StandardViolation
from kommutator.runtime import Runtime

from .conftest import Actor, Clock, Factory
from .quality_support import Q, alerts, customer_writes, policy, reply, settle


@pytest.fixture
async def two_teams(client: httpx.AsyncClient, factory: Factory, admin: Actor) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("sales", "support"):
        team = await factory.team(name.title())
        r = await client.post("/api/v1/channels", json={"type": "api", "name": f"{name} CRM", "team_id": team},
                              headers=admin.headers)
        assert r.status_code == 201, r.text
        out[name] = {"team": team, "channel": r.json(),
                     "agent": await factory.user("agent", teams=[team], name=f"{name} agent"),
                     "supervisor": await factory.user("supervisor", teams=[team], name=f"{name} supervisor")}
    return out


async def breach(client: httpx.AsyncClient, runtime: Runtime, clock: Clock, side: dict[str, Any],
                 contact: str) -> int:
    cid = await customer_writes(client, side["channel"], contact)
    r = await client.post(f"/api/v1/conversations/{cid}/assign", json={"assignee_id": side["agent"].id},
                          headers=side["supervisor"].headers)
    assert r.status_code == 200, r.text
    await settle(runtime)
    return cid


async def test_agents_see_only_their_teams_alerts_and_ack_is_recorded(
        client: httpx.AsyncClient, runtime: Runtime, clock: Clock, admin: Actor, two_teams: dict[str, Any]) -> None:
    await policy(client, admin, first_response_seconds=60, warn_percent=0)
    sales, support = two_teams["sales"], two_teams["support"]
    sales_conv = await breach(client, runtime, clock, sales, "s1")
    support_conv = await breach(client, runtime, clock, support, "p1")
    clock.tick(61)
    await settle(runtime)
    by_conv = {a.conversation_id: a for a in await alerts(runtime, "sla.breach")}
    assert set(by_conv) == {sales_conv, support_conv}

    r = await client.get(f"{Q}/alerts", headers=sales["agent"].headers)
    assert [a["conversation_id"] for a in r.json()["items"]] == [sales_conv]
    assert r.json()["unacknowledged"] == 1
    other = by_conv[support_conv].id
    r = await client.post(f"{Q}/alerts/{other}/ack", headers=sales["agent"].headers)
    assert (r.status_code, r.json()["code"]) == (404, "alert_not_found"), "another team's alert does not exist for me"
    r = await client.get(f"{Q}/alerts", headers=support["supervisor"].headers)
    assert {a["conversation_id"] for a in r.json()["items"]} == {sales_conv, support_conv}, "supervisors see all"

    clock.tick(5)
    mine = by_conv[sales_conv].id
    r = await client.post(f"{Q}/alerts/{mine}/ack", headers=sales["agent"].headers)
    assert r.status_code == 200, r.text
    assert (r.json()["acknowledged_by"], dt.datetime.fromisoformat(r.json()["acknowledged_at"])) == (
        sales["agent"].id, clock.t)
    again = await client.post(f"{Q}/alerts/{mine}/ack", headers=sales["agent"].headers)
    assert again.status_code == 200, "acknowledging twice is harmless"
    r = await client.post(f"{Q}/alerts/{mine}/ack", headers=sales["supervisor"].headers)
    assert (r.status_code, r.json()["code"]) == (409, "alert_already_acknowledged")
    r = await client.get(f"{Q}/alerts?unacknowledged=true", headers=sales["agent"].headers)
    assert r.json()["items"] == []
    r = await client.get(f"{Q}/conversations/{support_conv}", headers=sales["agent"].headers)
    assert r.status_code == 404


async def test_communication_standards_on_replies(client: httpx.AsyncClient, runtime: Runtime, clock: Clock,
                                                  two_teams: dict[str, Any]) -> None:
    support = two_teams["support"]
    r = await client.put(f"{Q}/standards/{support['team']}", headers=support["supervisor"].headers, json={
        "greeting_required": True, "forbidden": {"ru": ["не знаю", "это не ко мне"], "en": ["calm down"]},
        "max_reply_gap_seconds": 300})
    assert r.status_code == 200, r.text
    cid = await customer_writes(client, support["channel"], "p2", "Заказ не пришёл")
    agent = support["agent"]
    await reply(client, agent, cid, "Номер заказа?")  # no greeting
    await customer_writes(client, support["channel"], "p2", "12345")
    clock.tick(301)
    await reply(client, agent, cid, "Я не знаю, где он")  # forbidden phrase (another word form) and late
    await customer_writes(client, support["channel"], "p2", "ок")
    clock.tick(10)
    await reply(client, agent, cid, "Здравствуйте ещё раз! Уже проверяю.")  # fine: greeting not needed, in time
    await settle(runtime)
    async with runtime.db.read() as s:
        found = [(v.rule, v.agent_id) for v in (await s.execute(select(StandardViolation)
                                                                 .order_by(StandardViolation.id))).scalars()]
    assert found == [("greeting", agent.id), ("forbidden_phrase", agent.id), ("reply_gap", agent.id)]
    raised = await alerts(runtime, "standard.violation")
    assert len(raised) == 3
    assert set(raised[1].recipients["user_ids"]) == {agent.id, support["supervisor"].id}
    assert "не знаю" in raised[1].title
    await settle(runtime)
    assert len(await alerts(runtime, "standard.violation")) == 3, "each reply is checked once"
    r = await client.get(f"{Q}/conversations/{cid}", headers=agent.headers)
    assert [v["rule"] for v in r.json()["violations"]] == ["greeting", "forbidden_phrase", "reply_gap"]


async def test_rules_are_for_supervisors_and_validated(client: httpx.AsyncClient, two_teams: dict[str, Any]) -> None:
    sup, agent = two_teams["support"]["supervisor"], two_teams["support"]["agent"]
    body = {"team_id": two_teams["support"]["team"], "kind": "sla.breach", "telegram_chat_id": "-100123",
            "telegram_bot_token": "123456:" + "A" * 30}
    r = await client.post(f"{Q}/rules", json=body, headers=agent.headers)
    assert (r.status_code, r.json()["code"]) == (403, "supervisor_required")
    r = await client.post(f"{Q}/rules", json=body, headers=sup.headers)
    assert r.status_code == 201, r.text
    assert r.json()["telegram_bot_token_set"] and "A" * 30 not in r.text
    r = await client.post(f"{Q}/rules", json=body, headers=sup.headers)
    assert (r.status_code, r.json()["code"]) == (409, "rule_exists")
    for bad in ({"kind": "sla.nope"}, {"kind": "sla.breach", "emails": ["not an address"]},
                {"kind": "sla.breach", "telegram_chat_id": "chat; drop"}, {"kind": "sla.breach", "user_ids": [999]}):
        r = await client.post(f"{Q}/rules", json=bad, headers=sup.headers)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["code"] in ("validation_failed", "user_not_found"), r.text
    r = await client.post(f"{Q}/policies", json={"name": "empty"}, headers=sup.headers)
    assert (r.status_code, r.json()["code"]) == (422, "policy_without_targets")
    r = await client.post(f"{Q}/policies", json={"name": "x", "first_response_seconds": 60, "clock": "business",
                                                  "business_hours": {"timezone": "Mars/Olympus"}}, headers=sup.headers)
    assert r.status_code == 422 and "timezone" in r.text


async def test_live_view_and_whisper(client: httpx.AsyncClient, runtime: Runtime, clock: Clock, admin: Actor,
                                     two_teams: dict[str, Any]) -> None:
    support = two_teams["support"]
    r = await client.post("/api/v1/queues", json={"name": "Support line", "team_id": support["team"],
                                                  "sl_target_seconds": 60}, headers=admin.headers)
    assert r.status_code == 201, r.text
    queue = r.json()["id"]
    r = await client.patch(f"/api/v1/channels/{support['channel']['id']}", json={"queue_id": queue},
                           headers=admin.headers)
    assert r.status_code == 200, r.text
    await policy(client, admin, first_response_seconds=120)
    fast = await customer_writes(client, support["channel"], "fast")
    slow = await customer_writes(client, support["channel"], "slow")
    clock.tick(30)
    await reply(client, support["agent"], fast, "Hello!")
    clock.tick(60)
    await settle(runtime)
    r = await client.get(f"{Q}/live", headers=support["agent"].headers)
    assert (r.status_code, r.json()["code"]) == (403, "supervisor_required")
    r = await client.get(f"{Q}/live", headers=support["supervisor"].headers)
    assert r.status_code == 200, r.text
    live = r.json()
    (line,) = [q for q in live["queues"] if q["id"] == queue]
    assert (line["waiting"], line["longest_wait_seconds"]) == (1, 90)
    assert line["service_level"]["percent"] == 50.0, "one answered in 30 s, one waiting 90 s against a 60 s target"
    (anna,) = [a for a in live["agents"] if a["id"] == support["agent"].id]
    assert (anna["in_progress"], anna["since_last_reply_seconds"]) == (1, 60)
    assert live["at_risk"][0]["conversation_id"] == slow and live["at_risk"][0]["seconds_left"] == 30

    r = await client.post(f"{Q}/conversations/{fast}/whisper", json={"text": "Offer the discount code"},
                          headers=support["supervisor"].headers)
    assert r.status_code == 201, r.text
    async with runtime.db.read() as s:
        note = await s.get(Message, r.json()["message_id"])
    assert note is not None and (note.kind, note.direction, note.payload) == (
        "note", "internal", {"whisper_to": support["agent"].id})
    r = await client.get("/api/v1/notifications", headers=support["agent"].headers)
    assert r.json()["items"][0]["kind"] == "supervisor.whisper"
    r = await client.post(f"{Q}/conversations/{slow}/whisper", json={"text": "x"},
                          headers=support["supervisor"].headers)
    assert (r.status_code, r.json()["code"]) == (409, "no_assignee")


async def test_an_alert_email_waits_for_the_relay_and_is_sent_once(client: httpx.AsyncClient, runtime: Runtime,
                                                                 clock: Clock, admin: Actor,
                                                                 two_teams: dict[str, Any]) -> None:
    import asyncio

    from aiosmtpd.smtp import SMTP as SMTPServer

    from kommutator.quality.delivery import AlertDeliveryWorker
    from kommutator.quality.models import AlertDelivery
    from kommutator.workers.retry import RetryPolicy

    from .live_server import free_port
    from .test_quality_csat import Inbox

    support = two_teams["support"]
    port = free_port()  # nothing listens there yet: the relay is down
    runtime.settings.alert_smtp_host, runtime.settings.alert_smtp_port = "127.0.0.1", port
    runtime.settings.outbound_allow_hosts = [f"127.0.0.1:{port}"]  # the relay on loopback, listed as operators do
    r = await client.post(f"{Q}/rules", headers=support["supervisor"].headers, json={
        "team_id": support["team"], "kind": "sla.breach", "emails": ["night-lead@shop.example"]})
    assert r.status_code == 201, r.text
    await policy(client, admin, first_response_seconds=60, warn_percent=0)
    await customer_writes(client, support["channel"], "p9")
    await settle(runtime)
    clock.tick(61)
    await settle(runtime)
    worker = AlertDeliveryWorker(runtime, policy=RetryPolicy(jitter=0))  # the outbox's schedule, without jitter
    assert await worker.run_due() == 1
    async with runtime.db.read() as s:
        (d,) = (await s.execute(select(AlertDelivery))).scalars()
    assert (d.status, d.attempts, d.claimed_until) == ("pending", 1, None)
    assert "cannot send through 127.0.0.1" in d.last_error
    assert d.next_attempt_at == clock.t + dt.timedelta(seconds=RetryPolicy().base_delay), "the outbox's first wait"
    assert await worker.run_due() == 0, "not before the backoff"

    inbox = Inbox()
    server = await asyncio.get_running_loop().create_server(lambda: SMTPServer(inbox), "127.0.0.1", port)
    runtime.settings.public_base_url = "https://support.shop.example"
    try:
        clock.tick(RetryPolicy().base_delay)
        assert await worker.run_due() == 1
        clock.tick(3600)
        assert await worker.run_due() == 0
    finally:
        server.close()
        await server.wait_closed()
    assert [m.rcpt_tos for m in inbox.mails] == [["night-lead@shop.example"]]
    assert inbox.helo_names == ["support.shop.example"], "the relay must hear the public name, not 'localhost'"
    async with runtime.db.read() as s:
        (d,) = (await s.execute(select(AlertDelivery))).scalars()
    assert (d.status, d.attempts, d.last_error) == ("sent", 2, "")


async def test_alert_mail_greets_the_relay_with_alert_smtp_helo_name(client: httpx.AsyncClient, runtime: Runtime,
                                                                     clock: Clock, admin: Actor,
                                                                     two_teams: dict[str, Any]) -> None:
    import asyncio

    from aiosmtpd.smtp import SMTP as SMTPServer

    from kommutator.config import Settings
    from kommutator.quality.delivery import AlertDeliveryWorker

    from .live_server import free_port
    from .test_quality_csat import Inbox

    with pytest.raises(ValueError, match="alert_smtp_helo_name"):
        Settings(alert_smtp_helo_name="no spaces allowed")
    support = two_teams["support"]
    port = free_port()
    runtime.settings.alert_smtp_host, runtime.settings.alert_smtp_port = "127.0.0.1", port
    runtime.settings.outbound_allow_hosts = [f"127.0.0.1:{port}"]
    # A public URL that names no host the relay could accept: the setting gives the name instead.
    runtime.settings.public_base_url = "http://localhost:8000"
    runtime.settings.alert_smtp_helo_name = "alerts.shop.example"
    r = await client.post(f"{Q}/rules", headers=support["supervisor"].headers, json={
        "team_id": support["team"], "kind": "sla.breach", "emails": ["night-lead@shop.example"]})
    assert r.status_code == 201, r.text
    await policy(client, admin, first_response_seconds=60, warn_percent=0)
    await customer_writes(client, support["channel"], "p9")
    await settle(runtime)
    clock.tick(61)
    await settle(runtime)
    inbox = Inbox()
    server = await asyncio.get_running_loop().create_server(lambda: SMTPServer(inbox), "127.0.0.1", port)
    try:
        assert await AlertDeliveryWorker(runtime).run_due() == 1
    finally:
        server.close()
        await server.wait_closed()
    assert [m.rcpt_tos for m in inbox.mails] == [["night-lead@shop.example"]]
    assert inbox.helo_names == ["alerts.shop.example"]


async def test_alerts_to_a_loopback_relay_or_bot_api_fail_at_once_unless_allowed(
        client: httpx.AsyncClient, runtime: Runtime, clock: Clock, admin: Actor, two_teams: dict[str, Any]) -> None:
    from kommutator.quality.delivery import AlertDeliveryWorker
    from kommutator.quality.models import AlertDelivery

    support = two_teams["support"]
    runtime.settings.alert_smtp_host, runtime.settings.alert_smtp_port = "127.0.0.1", 2525
    runtime.settings.telegram_api_base_url = "http://127.1:8081"
    r = await client.post(f"{Q}/rules", headers=support["supervisor"].headers, json={
        "team_id": support["team"], "kind": "sla.breach", "emails": ["night-lead@shop.example"],
        "telegram_chat_id": "-100123", "telegram_bot_token": "123456:" + "A" * 30})
    assert r.status_code == 201, r.text
    await policy(client, admin, first_response_seconds=60, warn_percent=0)
    await customer_writes(client, support["channel"], "p10")
    await settle(runtime)
    clock.tick(61)
    await settle(runtime)
    assert await AlertDeliveryWorker(runtime).run_due() == 2
    async with runtime.db.read() as s:
        rows = {d.channel: d for d in (await s.execute(select(AlertDelivery))).scalars()}
    assert {k: (d.status, d.attempts) for k, d in rows.items()} == {"email": ("failed", 1), "telegram": ("failed", 1)}
    assert rows["email"].last_error.startswith("alert_smtp_host: 127.0.0.1 is a loopback address")
    assert rows["telegram"].last_error.startswith("telegram_api_base_url: 127.1 (127.0.0.1) is a loopback address")
    assert "outbound_allow_hosts" in rows["telegram"].last_error


async def test_each_person_gets_an_alert_in_their_own_interface_language_only(
        client: httpx.AsyncClient, runtime: Runtime, clock: Clock, admin: Actor, two_teams: dict[str, Any]) -> None:
    await policy(client, admin, first_response_seconds=60, warn_percent=0)
    sales = two_teams["sales"]
    r = await client.patch(f"/api/v1/users/{sales['supervisor'].id}", json={"locale": "ru"},
                           headers=sales["supervisor"].headers)
    assert r.status_code == 200, r.text
    await breach(client, runtime, clock, sales, "s9")
    clock.tick(61)
    await settle(runtime)
    [alert] = await alerts(runtime, "sla.breach")
    assert "\n" in alert.body, "the record (and its emails) keeps both languages for readers we do not know"

    async def notification(who: Actor) -> dict[str, Any]:
        items = (await client.get("/api/v1/notifications", headers=who.headers)).json()["items"]
        [found] = [n for n in items if n["kind"] == "sla.breach"]
        return dict(found)

    ru, en = await notification(sales["supervisor"]), await notification(sales["agent"])
    cyrillic = [any("\u0400" <= ch <= "\u04ff" for ch in n["title"] + n["body"]) for n in (ru, en)]
    assert cyrillic == [True, False], (ru, en)
    assert "\n" not in ru["body"] and "\n" not in en["body"], "one language, not both at once"
