"""Attachments stored safely and served as downloads; durable timers wake snoozed conversations exactly once."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import func, select

from kommutator.conversations.models import Attachment
from kommutator.workers.models import Timer
from kommutator.workers.timers import TimerWorker, do_schedule

from .conftest import post_inbound


@pytest.fixture
async def conversation(client, api_channel) -> int:  # type: ignore[no-untyped-def]
    r = await post_inbound(client, api_channel, msg_id="m1", contact="c1", text="hi")
    return int(r.json()["conversation_id"])


async def test_agent_sends_a_file_and_downloads_it_as_an_attachment(client, admin, conversation, settings):
    payload = b"%PDF-1.4 invoice"
    r = await client.post(f"/api/v1/conversations/{conversation}/attachments", headers=admin.headers,
                          files={"file": ("../../etc/Счёт <b>.pdf", payload, "application/pdf")},
                          data={"text": "Your invoice", "kind": "text"})
    assert r.status_code == 201, r.text
    msg = r.json()
    (att,) = msg["attachments"]
    assert att["filename"] == "Счёт _b_.pdf" and att["size"] == len(payload)
    assert msg["status"] == "queued" and msg["text"] == "Your invoice"
    d = await client.get(f"/api/v1/attachments/{att['id']}", headers=admin.headers)
    assert d.status_code == 200 and d.content == payload
    assert d.headers["content-disposition"].startswith("attachment;")
    assert d.headers["x-content-type-options"] == "nosniff"
    stored = list((settings.data_dir / "files").rglob("*"))
    assert any(p.is_file() and p.read_bytes() == payload for p in stored)
    assert not any(p.suffix == ".part" for p in stored)


async def test_files_are_capped_and_failures_leave_nothing(client, admin, conversation, runtime, settings):
    runtime.settings.max_upload_bytes = 1000
    r = await client.post(f"/api/v1/conversations/{conversation}/attachments", headers=admin.headers,
                          files={"file": ("big.bin", b"x" * 5000, "application/octet-stream")})
    assert r.status_code == 413 and r.json()["code"] == "file_too_large"
    r = await client.post("/api/v1/conversations/99999/attachments", headers=admin.headers,
                          files={"file": ("a.txt", b"abc", "text/plain")})
    assert r.status_code == 404
    async with runtime.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Attachment)) == 0
    leftovers = [p for p in (settings.data_dir / "files").rglob("*") if p.is_file()]
    assert leftovers == [], "a refused upload must not leave a file behind"


async def test_others_cannot_download(client, admin, factory, conversation):
    r = await client.post(f"/api/v1/conversations/{conversation}/attachments", headers=admin.headers,
                          files={"file": ("a.txt", b"secret", "text/plain")}, data={"kind": "note"})
    att = r.json()["attachments"][0]["id"]
    outsider = await factory.user("agent")
    assert (await client.get(f"/api/v1/attachments/{att}", headers=outsider.headers)).status_code == 404


async def test_snoozed_conversation_wakes_once_when_due(client, admin, conversation, runtime, clock):
    until = clock.t + dt.timedelta(hours=2)
    r = await client.post(f"/api/v1/conversations/{conversation}/status", headers=admin.headers,
                          json={"status": "snoozed", "snoozed_until": until.isoformat()})
    assert r.json()["status"] == "snoozed"
    worker = TimerWorker(runtime.db)
    clock.tick(3600)
    assert await worker.run_due() == 0
    clock.tick(3601)
    assert await worker.run_due() == 1
    assert await worker.run_due() == 0, "a timer fires exactly once"
    conv = (await client.get(f"/api/v1/conversations/{conversation}", headers=admin.headers)).json()
    assert conv["status"] == "queued" and conv["snoozed_until"] is None
    assert conv["transitions"][-1]["reason"] == "the snooze ended"


async def test_moving_or_ending_a_snooze_cancels_the_old_timer(client, admin, conversation, runtime, clock,
                                                               api_channel):
    url = f"/api/v1/conversations/{conversation}/status"
    await client.post(url, headers=admin.headers,
                      json={"status": "snoozed", "snoozed_until": (clock.t + dt.timedelta(hours=1)).isoformat()})
    await client.post(url, headers=admin.headers,
                      json={"status": "snoozed", "snoozed_until": (clock.t + dt.timedelta(hours=5)).isoformat()})
    async with runtime.db.read() as s:
        pending = (await s.execute(select(Timer.due_at).where(Timer.status == "pending"))).scalars().all()
    assert pending == [clock.t + dt.timedelta(hours=5)]
    clock.tick(7200)
    assert await TimerWorker(runtime.db).run_due() == 0
    # The customer writes: the conversation wakes now and the timer is cancelled.
    await post_inbound(client, api_channel, msg_id="m2", contact="c1", text="any news?")
    async with runtime.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Timer).where(Timer.status == "pending")) == 0


async def test_a_restart_does_not_lose_a_timer(client, admin, conversation, settings, clock):
    """The timer is a row: a new runtime (a restarted server) fires it."""
    from kommutator.runtime import Runtime

    until = clock.t + dt.timedelta(minutes=10)
    await client.post(f"/api/v1/conversations/{conversation}/status", headers=admin.headers,
                      json={"status": "snoozed", "snoozed_until": until.isoformat()})
    clock.tick(660)
    fresh = Runtime.build(settings)
    await fresh.db.start()
    try:
        assert await TimerWorker(fresh.db).run_due() == 1
    finally:
        await fresh.db.close()


async def test_channel_team_gets_new_conversations(client, admin, factory):
    team = await factory.team("Support")
    agent = await factory.user("agent", teams=[team])
    r = await client.post("/api/v1/channels", json={"type": "api", "name": "Shop", "team_id": team},
                          headers=admin.headers)
    channel = r.json()
    assert channel["team_id"] == team
    conv = (await post_inbound(client, channel, msg_id="x", contact="c9")).json()["conversation_id"]
    listed = (await client.get("/api/v1/conversations", params={"view": "unassigned"}, headers=agent.headers)).json()
    assert [c["id"] for c in listed["items"]] == [conv]
    bad = await client.patch(f"/api/v1/channels/{channel['id']}", json={"team_id": 9999}, headers=admin.headers)
    assert bad.status_code == 422 and bad.json()["code"] == "team_not_found"


async def test_erasing_a_contact_erases_their_raw_inbound_events(client, admin, runtime, api_channel):
    from kommutator.ingest.models import InboundEvent

    r = await post_inbound(client, api_channel, msg_id="pii", contact="c-erase", text="my passport is 4510 123456")
    contact_id = (await client.get(f"/api/v1/conversations/{r.json()['conversation_id']}",
                                   headers=admin.headers)).json()["contact_id"]
    await post_inbound(client, api_channel, msg_id="other", contact="c-keep", text="unrelated")
    assert (await client.delete(f"/api/v1/contacts/{contact_id}", headers=admin.headers)).status_code == 204
    async with runtime.db.read() as s:
        bodies = (await s.execute(select(InboundEvent.body))).scalars().all()
    assert len(bodies) == 1 and "passport" not in bodies[0]


async def test_a_timer_without_a_handler_stays_pending_and_is_reported(runtime, clock, caplog):
    async def schedule(tx):
        await do_schedule(tx, kind="nobody.handles", subject_type="conversation", subject_id=1,
                          due_at=clock.t + dt.timedelta(minutes=1))
    await runtime.db.write(schedule)
    clock.tick(120)
    with caplog.at_level(logging.ERROR, logger="kommutator.workers.timers"):
        assert await TimerWorker(runtime.db).run_due() == 0
    async with runtime.db.read() as s:
        assert await s.scalar(select(Timer.status).where(Timer.kind == "nobody.handles")) == "pending"
    assert any("'nobody.handles'" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records), \
        "an unhandled timer kind must be logged as an error"
