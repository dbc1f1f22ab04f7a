"""The bot report's top intents, end to end: customers write through the webhook, the bot recognises intents
(announced as ``IntentHeard``), the reporting worker stores them in report_intents, the bot report counts them per
intent with how the conversations ended — the same after ``reports rebuild`` — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io

from sqlalchemy import select

from kommutator.clock import now
from kommutator.events import Event, IntentHeard
from kommutator.reports.actions import rebuild
from kommutator.reports.models import ReportIntent
from kommutator.reports.worker import reports_worker_of

from .bot_helpers import conversation, session_of
from .test_bot_inbound import Customer
from .test_bot_intents import channel, crm, settings, trained, workers  # noqa: F401  (fixtures)

R = "/api/v1/reports"


async def rows(runtime):  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        found = (await s.execute(select(ReportIntent.conversation_id, ReportIntent.message_id, ReportIntent.intent,
                                        ReportIntent.heard_at, ReportIntent.contained, ReportIntent.handed_off,
                                        ReportIntent.bot_flow_id))).all()
    return sorted(tuple(r) for r in found)


async def test_top_intents_count_what_the_bot_recognised_and_how_it_ended(  # type: ignore[no-untyped-def]
        client, runtime, admin, factory, channel, workers, crm):  # noqa: F811
    heard: list[IntentHeard] = []

    async def listen(event: Event) -> None:
        assert isinstance(event, IntentHeard)
        heard.append(event)

    runtime.bus.subscribe(listen, kinds=(IntentHeard,))
    served = Customer(client, channel, workers, crm)
    await served.say("где мой заказ 12345")  # the first message says what it wants: order status
    await served.say("нет, спасибо")
    first = await conversation(runtime)
    assert (await session_of(runtime, first.id)).outcome == "contained"
    handed = Customer(client, channel, workers, crm, contact="crm-9")
    await handed.say("Здравствуйте")
    await handed.say("где мой заказ")
    await handed.say("позовите живого человека, пожалуйста")
    second = max(c for c in {e.conversation_id for e in heard} | {first.id})
    assert second != first.id
    assert (await session_of(runtime, second)).outcome == "handed_off"
    assert {(e.conversation_id, e.intent) for e in heard} >= {(first.id, "order_status"), (second, "order_status")}
    assert len({(e.message_id, e.intent) for e in heard}) == len(heard), "once per message and intent"

    worker = reports_worker_of(runtime)
    await worker.catch_up()
    await worker.drain()
    live = await rows(runtime)
    assert {(r[0], r[2]) for r in live} == {(e.conversation_id, e.intent) for e in heard}

    day = now().date().isoformat()
    r = await client.get(f"{R}/bot", params={"start": day, "end": day, "tz": "UTC"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    top = {i["name"]: i for i in r.json()["top_intents"]}
    assert top["order_status"] == {"name": "order_status", "count": 2, "contained": 1, "handed_off": 1}
    counts = [i["count"] for i in r.json()["top_intents"]]
    assert counts == sorted(counts, reverse=True) and sum(counts) == len(heard)
    # an agent sees only their own conversations' figures: nobody was assigned to these
    agent = await factory.user("agent")
    r = await client.get(f"{R}/bot", params={"start": day, "end": day, "tz": "UTC"}, headers=agent.headers)
    assert r.status_code == 200 and r.json()["top_intents"] == []
    # another day has none; the CSV carries them too
    other = (now() - dt.timedelta(days=3)).date().isoformat()
    r = await client.get(f"{R}/bot", params={"start": other, "end": other, "tz": "UTC"}, headers=admin.headers)
    assert r.json()["top_intents"] == []
    r = await client.get(f"{R}/bot", params={"start": day, "end": day, "tz": "UTC", "format": "csv"},
                         headers=admin.headers)
    intents = [row for row in csv.DictReader(io.StringIO(r.text)) if row["kind"] == "intent"]
    assert {row["name"]: (int(row["count"]), int(row["contained"]), int(row["handed_off"]))
            for row in intents}["order_status"] == (2, 1, 1)

    # a rebuild from history gives the same rows, twice over
    await rebuild(runtime.db)
    assert await rows(runtime) == live
    await rebuild(runtime.db)
    assert await rows(runtime) == live
