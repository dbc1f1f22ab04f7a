"""The report pages' own API beyond the summary: traffic by hour of the week, the bot's hand-offs, the ratings'
distribution and comments — as a supervisor and an agent meet them."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any, cast

import httpx
from sqlalchemy import Table, insert

from kommutator.clock import now
from kommutator.conversations.models import Message, Transition
from kommutator.db import Tx
from kommutator.reports.worker import reports_worker_of
from kommutator.runtime import Runtime

from .conftest import Clock
from .quality_support import customer_writes, settle
from .test_reports_api import DAY, R, get, story, world  # noqa: F401  (world is a fixture)


async def test_heatmap_puts_traffic_in_its_local_hour_of_the_week(client: httpx.AsyncClient, runtime: Runtime,
                                                                   clock: Clock, world: dict[str, Any]  # noqa: F811
                                                                   ) -> None:
    await story(client, clock, world)
    await reports_worker_of(runtime).drain()
    body = await get(client, world["sup"], "heatmap", start=DAY, end=DAY, tz="Europe/Moscow")
    assert len(body["cells"]) == 7 * 24
    saturday = dt.date.fromisoformat(DAY).weekday()
    busy = {(c["weekday"], c["hour"]): c["value"] for c in body["cells"] if c["value"]}
    assert busy == {(saturday, 12): 2}  # both conversations started at 09:00 UTC: noon in Moscow
    frt = await get(client, world["sup"], "heatmap", start=DAY, end=DAY, tz="UTC", metric="first_response_time")
    cell = next(c for c in frt["cells"] if c["count"])
    assert (cell["weekday"], cell["hour"], cell["value"], cell["count"]) == (saturday, 9, 60.0, 2)
    r = await client.get(f"{R}/heatmap", params={"start": DAY, "end": DAY, "tz": "Europe/Moscow", "format": "csv"},
                         headers=world["sup"].headers)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 168 and sum(float(row["value"] or 0) for row in rows) == 2
    # An agent's heatmap counts only their own conversations.
    own = await get(client, world["anna"], "heatmap", start=DAY, end=DAY, tz="Europe/Moscow")
    assert sum(c["value"] or 0 for c in own["cells"]) == 1
    r = await client.get(f"{R}/heatmap", params={"metric": "speed"}, headers=world["sup"].headers)
    assert r.status_code == 422 and r.json()["code"] == "unknown_metric"


async def test_ratings_distribution_and_comments_link_their_conversation(
        client: httpx.AsyncClient, runtime: Runtime, clock: Clock, world: dict[str, Any]) -> None:  # noqa: F811
    r = await client.put("/api/v1/quality/csat/default", json={"scale": "csat", "ask_comment": False},
                         headers=world["sup"].headers)
    assert r.status_code == 200, r.text
    c1, c2 = await story(client, clock, world)
    await settle(runtime)  # the rating questions go out
    clock.tick(60)
    await customer_writes(client, world["channel"], "alice", "5")
    await customer_writes(client, world["channel"], "alice", "Fast and kind, thank you")
    await customer_writes(client, world["channel"], "bob", "2")
    await settle(runtime)
    await reports_worker_of(runtime).drain()
    body = await get(client, world["sup"], "ratings", start=DAY, end=DAY, tz="UTC")
    csat = {d["score"]: d["count"] for d in body["distribution"] if d["scale"] == "csat"}
    assert csat == {1: 0, 2: 1, 3: 0, 4: 0, 5: 1}
    assert all(d["count"] == 0 for d in body["distribution"] if d["scale"] == "nps")
    assert [(c["conversation_id"], c["score"], c["comment"], c["agent"]) for c in body["comments"]] == [
        (c1, 5, "Fast and kind, thank you", "Anna")]
    boris = await get(client, world["boris"], "ratings", start=DAY, end=DAY, tz="UTC")
    assert {d["score"]: d["count"] for d in boris["distribution"] if d["scale"] == "csat"}[5] == 0
    assert boris["comments"] == []
    del c2


async def test_bot_handoff_reasons_and_menu_choices(client: httpx.AsyncClient, runtime: Runtime, clock: Clock,
                                                    world: dict[str, Any]) -> None:  # noqa: F811
    c1, c2 = await story(client, clock, world)
    trans = cast(Table, Transition.__table__)
    at = now()

    async def job(tx: Tx) -> None:  # the bot's hand-offs as apply.py records them
        await tx.session.execute(insert(trans), [
            {"conversation_id": cid, "from_status": "bot", "to_status": "queued", "at": at, "reason": "handed off",
             "reason_code": "bot_handoff", "reason_params": {"queue": "", "why": "the customer asked for a person"}}
            for cid in (c1, c2)])
        for cid, chose in ((c1, ["Delivery", "Where is my order"]), (c2, ["Delivery"])):
            tx.session.add(Message(conversation_id=cid, direction="internal", sender_type="bot", kind="note",
                                   text="summary", created_at=at,
                                   payload={"pinned": True, "bot": {"event": "handoff", "chose": chose,
                                                                    "reason": "the customer asked for a person"}}))

    await runtime.db.write(job)
    await reports_worker_of(runtime).drain()
    body = await get(client, world["sup"], "bot", start=DAY, end=DAY, tz="UTC")
    assert body["handoff_reasons"] == [{"name": "the customer asked for a person", "count": 2}]
    assert body["menu_choices"] == [{"name": "Delivery", "count": 2}, {"name": "Where is my order", "count": 1}]
    own = await get(client, world["anna"], "bot", start=DAY, end=DAY, tz="UTC")
    assert own["handoff_reasons"] == [{"name": "the customer asked for a person", "count": 1}]
    assert own["menu_choices"] == [{"name": "Delivery", "count": 1}, {"name": "Where is my order", "count": 1}]
