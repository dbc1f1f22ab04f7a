"""A canned response created, changed or deleted reaches the open screens of those who may use it (and nobody
else's) as a ``canned.changed`` event after the commit, so workspaces read the list again without a reload."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from kommutator.realtime.api import hub_of
from kommutator.realtime.hub import Connection
from kommutator.runtime import Runtime

from .conftest import Actor, Factory


def drained(conn: Connection) -> list[dict[str, Any]]:
    out = []
    while not conn.queue.empty():
        item = conn.queue.get_nowait()
        if item is not None:
            out.append(item)
    return out


async def settle() -> None:
    for _ in range(5):  # events go out after the commit, on the bus's task
        await asyncio.sleep(0)


async def test_canned_changes_reach_those_who_may_use_them(client: httpx.AsyncClient, runtime: Runtime,
                                                           factory: Factory, admin: Actor) -> None:
    sales = await factory.team("Sales")
    support = await factory.team("Support")
    seller = await factory.user("agent", teams=[sales])
    helper = await factory.user("agent", teams=[support])
    boss = await factory.user("supervisor")
    hub = hub_of(runtime)
    screens = {who.id: hub.open(who.principal) for who in (seller, helper, boss)}

    def heard() -> dict[int, list[tuple[str, int]]]:
        return {uid: [(e["action"], e["canned_id"]) for e in drained(c) if e.get("kind") == "canned.changed"]
                for uid, c in screens.items()}

    r = await client.post("/api/v1/canned-responses", json={"shortcut": "offer", "title": "Offer",
                                                              "body": "10% off", "team_id": sales},
                          headers=admin.headers)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    await settle()
    assert heard() == {seller.id: [("created", cid)], helper.id: [], boss.id: [("created", cid)]}

    # Moved to the other team: both teams hear (one gains it, the other loses it).
    r = await client.patch(f"/api/v1/canned-responses/{cid}", json={"team_id": support}, headers=admin.headers)
    assert r.status_code == 200, r.text
    await settle()
    assert heard() == {seller.id: [("updated", cid)], helper.id: [("updated", cid)], boss.id: [("updated", cid)]}

    # Everyone's: everybody hears it go.
    r = await client.patch(f"/api/v1/canned-responses/{cid}", json={"team_id": None}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert (await client.delete(f"/api/v1/canned-responses/{cid}", headers=admin.headers)).status_code == 204
    await settle()
    everyone = [("updated", cid), ("deleted", cid)]
    assert heard() == {seller.id: everyone, helper.id: everyone, boss.id: everyone}

    # A refused change is no event.
    r = await client.post("/api/v1/canned-responses", json={"shortcut": "x", "title": "x", "body": "x"},
                          headers=seller.headers)
    assert r.status_code == 403
    await settle()
    assert heard() == {seller.id: [], helper.id: [], boss.id: []}
