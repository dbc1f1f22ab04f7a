"""A person's data: every table says whether and how it holds data about a contact (a new table missing from the
registry fails here), and the export gives one archive with all of it and the files, for supervisors only,
audited, with nothing of another customer."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx
from sqlalchemy import select

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
