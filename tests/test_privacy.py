"""A person's data: every table says whether and how it holds data about a contact (a new table missing from the
registry fails here), and the export gives one archive with all of it and the files, for supervisors only,
audited, with nothing of another customer."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

import kommutator.models  # noqa: F401  (every table in the metadata)
from kommutator.audit.models import AuditEntry
from kommutator.db import Base
from kommutator.privacy.registry import HOLDINGS, UNRELATED
from kommutator.runtime import Runtime

from .conftest import Actor, Factory, post_inbound


def _linked_to_contacts() -> set[str]:
    """Tables that reach contacts through foreign keys, however indirectly."""
    linked = {"contacts"}
    changed = True
    while changed:
        changed = False
        for table in Base.metadata.sorted_tables:
            if table.name not in linked and any(fk.column.table.name in linked for fk in table.foreign_keys):
                linked.add(table.name)
                changed = True
    return linked


def test_every_table_says_whether_it_holds_personal_data() -> None:
    tables = set(Base.metadata.tables)
    unclassified = tables - set(HOLDINGS) - set(UNRELATED)
    assert not unclassified, f"add these tables to privacy/registry.py (HOLDINGS or UNRELATED): {sorted(unclassified)}"
    assert not (set(HOLDINGS) & set(UNRELATED))
    assert not (set(HOLDINGS) | set(UNRELATED)) - tables, "the registry names tables that no longer exist"
    for name, holding in HOLDINGS.items():
        assert holding.column in Base.metadata.tables[name].c, f"{name}.{holding.column}"
    wrongly_unrelated = _linked_to_contacts() & set(UNRELATED)
    assert not wrongly_unrelated, f"these reach contacts by foreign key, so they hold personal data: " \
                                  f"{wrongly_unrelated}"


async def test_the_export_has_everything_about_the_person_and_nothing_else(
        client: httpx.AsyncClient, runtime: Runtime, factory: Factory, admin: Actor,
        api_channel: dict[str, Any]) -> None:
    team = await factory.team("Support")
    agent = await factory.user("agent", teams=[team])
    supervisor = await factory.user("supervisor", teams=[team])
    r = await post_inbound(client, api_channel, msg_id="p1", contact="irina-77", text="Мой телефон +7 912 000-11-22",
                           name="Ирина")
    cid = int(r.json()["conversation_id"])
    await post_inbound(client, api_channel, msg_id="p2", contact="someone-else", text="чужой секрет")
    r = await client.post(f"/api/v1/conversations/{cid}/attachments", headers=admin.headers,
                          files={"file": ("Акт №7.pdf", b"%PDF-1.4 act", "application/pdf")},
                          data={"text": "Ваш акт", "kind": "text"})
    assert r.status_code == 201, r.text
    contact_id = (await client.get(f"/api/v1/conversations/{cid}", headers=admin.headers)).json()["contact_id"]

    r = await client.get(f"/api/v1/contacts/{contact_id}/export", headers=agent.headers)
    assert r.status_code == 403 and r.json()["code"] == "supervisor_required"
    r = await client.get("/api/v1/contacts/999999/export", headers=supervisor.headers)
    assert r.status_code == 404

    r = await client.get(f"/api/v1/contacts/{contact_id}/export", headers=supervisor.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert f"contact-{contact_id}.zip" in r.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    data = json.loads(archive.read("data.json"))
    tables = data["tables"]
    assert set(tables) == set(HOLDINGS)
    assert [c["name"] for c in tables["contacts"]] == ["Ирина"]
    assert [i["external_id"] for i in tables["contact_identities"]] == ["irina-77"]
    texts = [m["text"] for m in tables["messages"]]
    assert "Мой телефон +7 912 000-11-22" in texts and "Ваш акт" in texts
    assert "чужой секрет" not in archive.read("data.json").decode()
    assert tables["inbound_events"], "the raw provider payload is part of it"
    (att,) = tables["attachments"]
    assert archive.read(f"files/{att['id']}-{att['filename']}") == b"%PDF-1.4 act"
    async with runtime.db.read() as s:
        actions = (await s.execute(select(AuditEntry.action, AuditEntry.actor_user_id)
                                   .where(AuditEntry.subject_id == str(contact_id)))).all()
    assert ("contact.exported", supervisor.id) in actions


async def test_after_erasure_no_trace_of_the_person_is_left(
        client: httpx.AsyncClient, runtime: Runtime, factory: Factory, admin: Actor, settings: Any,
        api_channel: dict[str, Any]) -> None:
    phone, email, secret_text = "+79120001122", "irina.erase@example.com", "заказ 55501 на улицу Ленина 7"
    r = await post_inbound(client, api_channel, msg_id="e1", contact="irina-erase", text=secret_text,
                           name="Ирина Эрасова")
    cid = int(r.json()["conversation_id"])
    contact_id = (await client.get(f"/api/v1/conversations/{cid}", headers=admin.headers)).json()["contact_id"]
    r = await client.patch(f"/api/v1/contacts/{contact_id}", json={"phone": phone, "email": email},
                           headers=admin.headers)
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/conversations/{cid}/attachments", headers=admin.headers,
                          files={"file": ("договор.txt", f"Договор с {email}".encode(), "text/plain")},
                          data={"text": f"Перезвоню на {phone}", "kind": "text"})
    assert r.status_code == 201, r.text
    keep = await post_inbound(client, api_channel, msg_id="e2", contact="someone-else", text="остаётся")
    assert keep.status_code == 200
    r = await client.get(f"/api/v1/contacts/{contact_id}/export", headers=admin.headers)  # audited, with a row count
    assert r.status_code == 200

    supervisor = await factory.user("supervisor")
    r = await client.delete(f"/api/v1/contacts/{contact_id}", headers=supervisor.headers)
    assert r.status_code == 403 and r.json()["code"] == "admin_required"
    r = await client.delete(f"/api/v1/contacts/{contact_id}", headers=admin.headers)
    assert r.status_code == 204, r.text
    r = await client.get(f"/api/v1/contacts/{contact_id}", headers=admin.headers)
    assert r.status_code == 404

    traces = [phone, email, secret_text, "Ирина Эрасова", "irina-erase", f"Договор с {email}"]
    async with runtime.db.read() as s:
        for table in Base.metadata.sorted_tables:
            for row in (await s.execute(select(table))).all():
                text = " ".join(str(v) for v in row)
                assert not [t for t in traces if t in text], f"{table.name} still has {row}"
        assert "остаётся" in " ".join((await s.execute(select(Base.metadata.tables["messages"].c.text)))
                                      .scalars()), "another customer's data stays"
        erased = (await s.execute(select(AuditEntry.action).where(AuditEntry.subject_id == str(contact_id)))) \
            .scalars().all()
    assert "contact.erased" in erased and "contact.exported" in erased, "what was done stays in the audit log"
    for path in settings.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [t for t in traces if t.encode() in data], f"{path} still has the person's data"
    if runtime.db.is_sqlite:  # the database file itself, free pages and the write-ahead log included
        db_file = Path(runtime.db.url.split(":///", 1)[1])
        for f in (db_file, db_file.with_name(db_file.name + "-wal")):
            if f.exists():
                data = f.read_bytes()
                assert not [t for t in traces if t.encode() in data], f"{f.name} still has the person's data"


async def test_retention_removes_exactly_what_expired(
        client: httpx.AsyncClient, runtime: Runtime, admin: Actor, clock: Any, settings: Any,
        api_channel: dict[str, Any]) -> None:
    from kommutator.conversations.models import Attachment, Conversation
    from kommutator.ingest.models import InboundEvent

    async def counts() -> tuple[int, ...]:
        found = []
        async with runtime.db.read() as s:
            for model in (Conversation, Attachment, InboundEvent):
                found.append(int(await s.scalar(select(func.count()).select_from(model)) or 0))
        return tuple(found)

    old = await post_inbound(client, api_channel, msg_id="r-old", contact="old", text="давнее")
    old_cid = int(old.json()["conversation_id"])
    r = await client.post(f"/api/v1/conversations/{old_cid}/attachments", headers=admin.headers,
                          files={"file": ("old.txt", b"old file", "text/plain")}, data={"text": "файл"})
    assert r.status_code == 201
    old_key = r.json()["attachments"][0]["id"]
    await client.post(f"/api/v1/conversations/{old_cid}/status", json={"status": "resolved"}, headers=admin.headers)
    clock.tick(40 * 86400)
    open_old = await post_inbound(client, api_channel, msg_id="r-open", contact="still-open", text="открытое")
    assert open_old.status_code == 200
    clock.tick(20 * 86400)  # "давнее" is 60 days old, "открытое" 20 days and not resolved
    fresh = await post_inbound(client, api_channel, msg_id="r-new", contact="new", text="свежее")
    assert fresh.status_code == 200
    before = await counts()

    r = await client.post("/api/v1/retention-policies", json={"kind": "conversations", "days": 30},
                          headers=admin.headers)
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/retention-policies", json={"kind": "raw_events", "days": 10,
                                                              "channel_id": api_channel["id"]}, headers=admin.headers)
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/retention-policies", json={"kind": "raw_events", "days": 10, "channel_id": 9999},
                          headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "channel_not_found"

    r = await client.post("/api/v1/retention/run", headers=admin.headers)  # a dry run by default
    # each policy counts on its own: the 60-day-old conversation's raw event is older than 10 days too
    assert [(o["kind"], o["count"]) for o in r.json()] == [("conversations", 1), ("raw_events", 2)]
    assert await counts() == before, "a dry run changes nothing"

    r = await client.post("/api/v1/retention/run?dry_run=false", headers=admin.headers)
    # applied in order: the conversation took its raw event with it, the raw-event policy the remaining one
    assert [(o["kind"], o["count"]) for o in r.json()] == [("conversations", 1), ("raw_events", 1)]
    conversations, attachments, events = await counts()
    assert (conversations, attachments) == (before[0] - 1, 0)
    assert events == before[2] - 2, "the old conversation's raw event went with it, the 20-day-old one by age"
    async with runtime.db.read() as s:
        left = (await s.execute(select(Conversation.id))).scalars().all()
    assert old_cid not in left and len(left) == 2
    assert not [p for p in (settings.data_dir / "files").rglob("*") if p.is_file()], f"file {old_key} removed"
    r = await client.post("/api/v1/retention/run?dry_run=false", headers=admin.headers)
    assert [o["count"] for o in r.json()] == [0, 0], "applied again, nothing more goes"
    r = await client.get("/api/v1/retention-policies", headers=admin.headers)
    assert r.json()[0]["last_run_at"] and r.json()[0]["last_removed"] == 0, "the last run removed nothing more"


async def test_audit_entries_expire_by_retention_and_the_log_stays_append_only(
        client: httpx.AsyncClient, runtime: Runtime, admin: Actor, clock: Any, factory: Factory) -> None:
    from sqlalchemy import delete

    from kommutator.db import Tx

    await factory.user("agent")  # an audited change, now "old"
    clock.tick(400 * 86400)
    await factory.user("agent")  # a new one
    async with runtime.db.read() as s:
        before = int(await s.scalar(select(func.count()).select_from(AuditEntry)) or 0)
        newest = await s.scalar(select(func.max(AuditEntry.at)))
    r = await client.post("/api/v1/retention-policies", json={"kind": "audit", "days": 365, "channel_id": 1},
                          headers=admin.headers)
    assert r.status_code == 422 and "channel_id" in r.json()["detail"]
    r = await client.post("/api/v1/retention-policies", json={"kind": "audit", "days": 365}, headers=admin.headers)
    assert r.status_code == 201, r.text
    (dry,) = (await client.post("/api/v1/retention/run", headers=admin.headers)).json()
    assert 0 < dry["count"] < before
    (done,) = (await client.post("/api/v1/retention/run?dry_run=false", headers=admin.headers)).json()
    assert done["count"] == dry["count"]
    async with runtime.db.read() as s:
        left = (await s.execute(select(AuditEntry.at))).scalars().all()
    assert left and min(left) >= newest - dt.timedelta(days=365)

    async def tamper(tx: Tx) -> None:  # anything newer than the cut-off still cannot be deleted
        await tx.session.execute(delete(AuditEntry))

    with pytest.raises(Exception, match="append-only"):
        await runtime.db.write(tamper)
