"""The contacts list's filters (segment, label, manager, search) and its CSV export over HTTP: same filters,
streamed, supervisors only, recorded in the audit log, nothing a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io

import httpx
from sqlalchemy import select

from kommutator.audit.models import AuditEntry
from kommutator.runtime import Runtime

from .conftest import Actor, Factory, post_inbound


async def _customer(client: httpx.AsyncClient, channel: dict[str, object], admin: Actor, external: str, name: str,
                    **update: object) -> tuple[int, int]:
    r = await post_inbound(client, channel, msg_id=f"m-{external}", contact=external, name=name)
    assert r.status_code == 200, r.text
    conv_id = int(r.json()["conversation_id"])
    conv = (await client.get(f"/api/v1/conversations/{conv_id}", headers=admin.headers)).json()
    contact_id = int(conv["contact"]["id"])
    if update:
        r = await client.patch(f"/api/v1/contacts/{contact_id}", json=update, headers=admin.headers)
        assert r.status_code == 200, r.text
    return contact_id, conv_id


def _csv(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff"), "the byte-order mark makes spreadsheets read UTF-8"
    return list(csv.DictReader(io.StringIO(text[1:])))


async def test_filters_and_the_csv_export_agree(client: httpx.AsyncClient, api_channel: dict[str, object],
                                                admin: Actor, factory: Factory, runtime: Runtime) -> None:
    agent = await factory.user("agent", name="Mila Manager")
    vip, vip_conv = await _customer(client, api_channel, admin, "c-vip", "Вера Важная",
                                    attributes={"segment": "vip"}, manager_id=agent.id)
    regular, _ = await _customer(client, api_channel, admin, "c-reg", "=HYPERLINK(\"http://x\")",
                                 attributes={"segment": "regular"})
    other, other_conv = await _customer(client, api_channel, admin, "c-oth", "Oleg Other")
    r = await client.put(f"/api/v1/conversations/{other_conv}/labels", json={"labels": ["Refund"]},
                         headers=admin.headers)
    assert r.status_code == 200, r.text

    async def ids(**params: object) -> list[int]:
        r = await client.get("/api/v1/contacts", params=params, headers=admin.headers)
        assert r.status_code == 200, r.text
        return [int(c["id"]) for c in r.json()["items"]]

    assert await ids(segment="vip") == [vip]
    assert await ids(segment="regular") == [regular]
    assert await ids(label="refund") == [other]
    assert await ids(manager_id=agent.id) == [vip]
    assert await ids(q="важная") == [vip]
    assert set(await ids()) >= {vip, regular, other}

    r = await client.get("/api/v1/contacts/export", params={"segment": "vip"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = _csv(r.text)
    assert [int(x["id"]) for x in rows] == [vip]
    assert rows[0]["name"] == "Вера Важная" and rows[0]["segment"] == "vip"
    assert rows[0]["manager"] == "Mila Manager" and rows[0]["identities"] == "api:c-vip"
    assert rows[0]["preferred_channel"] == "api"

    everything = _csv((await client.get("/api/v1/contacts/export", headers=admin.headers)).text)
    assert {int(x["id"]) for x in everything} >= {vip, regular, other}
    formula = next(x for x in everything if int(x["id"]) == regular)
    assert formula["name"] == "'=HYPERLINK(\"http://x\")", "a name must never become a spreadsheet formula"
    labelled = _csv((await client.get("/api/v1/contacts/export", params={"label": "refund"},
                                      headers=admin.headers)).text)
    assert [int(x["id"]) for x in labelled] == [other]

    async with runtime.db.read() as s:
        audit = list((await s.execute(select(AuditEntry).where(AuditEntry.action == "contacts.exported"))).scalars())
    assert len(audit) == 3 and audit[0].actor_user_id == admin.id
    assert vip_conv  # the conversation exists; only the contact is exported


async def test_an_agent_may_not_export(client: httpx.AsyncClient, factory: Factory) -> None:
    agent = await factory.user("agent")
    r = await client.get("/api/v1/contacts/export", headers=agent.headers)
    assert r.status_code == 403 and r.json()["code"] == "supervisor_required"


async def test_the_export_streams_past_one_batch(client: httpx.AsyncClient, api_channel: dict[str, object],
                                                 admin: Actor, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from kommutator.contacts import export

    monkeypatch.setattr(export, "BATCH", 2)
    made = [(await _customer(client, api_channel, admin, f"c-b{n}", f"Batch {n}"))[0] for n in range(5)]
    rows = _csv((await client.get("/api/v1/contacts/export", params={"q": "Batch"}, headers=admin.headers)).text)
    assert [int(x["id"]) for x in rows] == sorted(made, reverse=True)
