"""Notifications reach their recipient only: over the REST API (list, unread count, read) and the socket hub."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from kommutator.auth.principal import Principal
from kommutator.db import Tx
from kommutator.events import InProcessBus, NotificationCreated
from kommutator.notifications.actions import do_notify
from kommutator.realtime.hub import Hub
from kommutator.runtime import Runtime

from .conftest import Factory


async def notify(rt: Runtime, user_ids: list[int], **kw: object) -> list[int]:
    async def job(tx: Tx) -> list[int]:
        rows = await do_notify(tx, user_ids=user_ids, **kw)  # type: ignore[arg-type]
        return [n.id for n in rows]

    return await rt.db.write(job)


async def test_each_recipient_lists_and_reads_only_their_own(client: httpx.AsyncClient, runtime: Runtime,
                                                           factory: Factory) -> None:
    anna, boris = await factory.user(), await factory.user()
    ids = await notify(runtime, [anna.id, boris.id, anna.id], kind="bot.served", title="Served automatically",
                       body="order status for 12345", conversation_id=7, severity="info")
    assert len(ids) == 2, "a user named twice gets one notification"
    r = await client.get("/api/v1/notifications", headers=anna.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["unread"] == 1 and [n["title"] for n in body["items"]] == ["Served automatically"]
    mine = body["items"][0]
    assert mine["kind"] == "bot.served" and mine["conversation_id"] == 7 and mine["read_at"] is None
    # Boris's notification is not Anna's to read: 404, and it stays unread for him.
    boris_id = next(i for i in ids if i != mine["id"])
    r = await client.post(f"/api/v1/notifications/{boris_id}/read", headers=anna.headers)
    assert r.status_code == 404 and r.json()["code"] == "notification_not_found"
    assert (await client.get("/api/v1/notifications", headers=boris.headers)).json()["unread"] == 1
    r = await client.post(f"/api/v1/notifications/{mine['id']}/read", headers=anna.headers)
    assert r.status_code == 204
    body = (await client.get("/api/v1/notifications?unread=true", headers=anna.headers)).json()
    assert body == {"items": [], "unread": 0}


async def test_read_all_and_bad_input(client: httpx.AsyncClient, runtime: Runtime, factory: Factory) -> None:
    anna = await factory.user()
    await notify(runtime, [anna.id], kind="sla.breach", title="First response overdue", severity="critical")
    await notify(runtime, [anna.id], kind="sla.warning", title="First response due soon", severity="warning")
    assert (await client.get("/api/v1/notifications", headers=anna.headers)).json()["unread"] == 2
    assert (await client.post("/api/v1/notifications/read-all", headers=anna.headers)).status_code == 204
    assert (await client.get("/api/v1/notifications", headers=anna.headers)).json()["unread"] == 0
    r = await client.get("/api/v1/notifications?limit=0", headers=anna.headers)
    assert r.status_code == 422
    assert (await client.get("/api/v1/notifications")).status_code == 401
    with pytest.raises(ValueError, match="severity"):
        await notify(runtime, [anna.id], kind="x", title="x", severity="loud")


async def test_the_hub_sends_a_notification_to_its_recipient_only() -> None:
    bus = InProcessBus()
    hub = Hub(bus)
    admin = hub.open(Principal(user_id=1, name="Admin", role="admin", team_ids=frozenset()))
    anna = hub.open(Principal(user_id=2, name="Anna", role="agent", team_ids=frozenset()))
    await bus.publish(NotificationCreated(user_id=2, notification_id=5, notification_kind="csat.negative",
                                          severity="critical", title="Rating 1 of 5", conversation_id=9))
    got = await asyncio.wait_for(anna.queue.get(), 1)
    assert got is not None and got["kind"] == "notification.created" and got["notification_id"] == 5
    assert got["notification_kind"] == "csat.negative"
    assert admin.queue.empty(), "even an administrator does not get someone else's notifications"
