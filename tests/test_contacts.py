"""Contacts: one customer across channels, searchable, mergeable, erasable, and every read audited."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from kommutator.audit.models import AuditEntry
from kommutator.contacts.models import Consent, Contact, Identity
from kommutator.conversations.models import Conversation, Message
from kommutator.workers.models import OutboxItem

from .conftest import Actor, post_inbound

C = "/api/v1/contacts"


async def create(client: httpx.AsyncClient, actor: Actor, **body: Any) -> dict[str, Any]:
    r = await client.post(C, json=body, headers=actor.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def count(runtime, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def idents(contact: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i["channel_type"], i["external_id"]) for i in contact["identities"]}


def consents(contact: dict[str, Any]) -> dict[str, bool]:
    return {c["channel_type"]: c["granted"] for c in contact["consents"]}


async def test_create_with_identities_and_consents_then_read_it_back(client, admin):
    made = await create(
        client, admin, name="Анна Смирнова", email="Anna@Example.COM", phone="+7 912 345-67-89", language="ru",
        attributes={"tier": "gold", "orders": 3},
        identities=[{"channel_type": "telegram", "external_id": "1001", "display": "@anna"},
                    {"channel_type": "email", "external_id": "anna@example.com"}],
        consents=[{"channel_type": "email", "granted": True, "source": "web form"},
                  {"channel_type": "sms", "granted": False}],
    )
    assert made["email"] == "anna@example.com", "emails are stored lower-case so search and dedupe work"
    assert idents(made) == {("telegram", "1001"), ("email", "anna@example.com")}
    assert consents(made) == {"email": True, "sms": False}
    got = (await client.get(f"{C}/{made['id']}", headers=admin.headers)).json()
    assert got == made
    assert [c["source"] for c in got["consents"] if c["channel_type"] == "email"] == ["web form"]


async def test_unknown_contact_is_404_problem(client, admin):
    r = await client.get(f"{C}/987654", headers=admin.headers)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "contact_not_found"


async def test_patch_merges_attributes_and_null_removes_one(client, admin):
    made = await create(client, admin, name="Boris", attributes={"tier": "gold", "city": "Kazan", "orders": 5})
    url = f"{C}/{made['id']}"
    r = await client.patch(url, json={"attributes": {"city": None, "tier": "platinum", "vip": True}},
                           headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["attributes"] == {"tier": "platinum", "orders": 5, "vip": True}
    r = await client.patch(url, json={"name": "Boris P.", "consents": [{"channel_type": "sms", "granted": True}]},
                           headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["attributes"] == {"tier": "platinum", "orders": 5, "vip": True}, "untouched without attributes"
    assert r.json()["name"] == "Boris P."
    assert consents(r.json()) == {"sms": True}
    got = (await client.get(url, headers=admin.headers)).json()
    assert got["attributes"] == {"tier": "platinum", "orders": 5, "vip": True}


@pytest.mark.parametrize("body", [{"name": None}, {"attributes": None}, {"attributes": {"nested": {"a": 1}}},
                                  {"phone": "call me"}, {"unknown_field": 1}])
async def test_patch_with_an_invalid_body_is_422_and_changes_nothing(client, admin, body):
    made = await create(client, admin, name="Vera", attributes={"a": 1})
    r = await client.patch(f"{C}/{made['id']}", json=body, headers=admin.headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    got = (await client.get(f"{C}/{made['id']}", headers=admin.headers)).json()
    assert (got["name"], got["attributes"], got["phone"]) == ("Vera", {"a": 1}, None)


SEARCHES = [
    ("Петров", "ivan"),
    ("иван", "ivan"),  # another case, in Cyrillic: the product serves Russian-speaking customers
    ("ИВАН ПЕТРОВ", "ivan"),
    ("lopez", "maria"),
    ("IVAN.PETROV@SHOP", "ivan"),
    ("maria@example.com", "maria"),
    ("345-67", "ivan"),
    ("600 111", "maria"),
    ("tg-777001", "ivan"),
    ("ID500", "maria"),
    ("nobody-here", None),
]


async def test_search_finds_by_name_email_phone_and_identity(client, admin):
    people = {
        "ivan": await create(client, admin, name="Иван Петров", email="ivan.petrov@shop.ru", phone="+7 912 345-67-89",
                             identities=[{"channel_type": "telegram", "external_id": "tg-777001"}]),
        "maria": await create(client, admin, name="Maria Lopez", email="maria@example.com", phone="+34 600 111 222",
                              identities=[{"channel_type": "vk", "external_id": "id500"}]),
    }
    wrong = []
    for q, who in SEARCHES:
        r = await client.get(C, params={"q": q}, headers=admin.headers)
        assert r.status_code == 200, r.text
        got = [c["id"] for c in r.json()["items"]]
        if got != ([people[who]["id"]] if who else []):
            wrong.append(f"q={q!r}: expected {who}, got contact ids {got}")
    assert not wrong, "\n".join(wrong)
    listed = (await client.get(C, headers=admin.headers)).json()["items"]
    assert {c["id"] for c in listed} == {p["id"] for p in people.values()}, "no query lists everyone"


async def test_identity_owned_by_another_contact_is_409_and_nothing_is_created(client, runtime, admin):
    owner = await create(client, admin, name="Owner", identities=[{"channel_type": "telegram", "external_id": "42"}])
    r = await client.post(C, json={"name": "Copy", "identities": [{"channel_type": "telegram", "external_id": "42"}]},
                          headers=admin.headers)
    assert r.status_code == 409
    assert r.json()["code"] == "identity_taken"
    assert r.json()["contact_id"] == owner["id"], "the error names the owner so the caller can merge"
    assert await count(runtime, Contact) == 1
    other = await create(client, admin, name="Other")
    r = await client.post(f"{C}/{other['id']}/identities", json={"channel_type": "telegram", "external_id": "42"},
                          headers=admin.headers)
    assert r.status_code == 409 and r.json()["code"] == "identity_taken"
    assert await count(runtime, Identity, Identity.contact_id == other["id"]) == 0
    # The same external id on another channel type is a different identity.
    r = await client.post(f"{C}/{other['id']}/identities", json={"channel_type": "vk", "external_id": "42"},
                          headers=admin.headers)
    assert r.status_code == 201 and idents(r.json()) == {("vk", "42")}


async def test_the_same_identity_twice_in_one_body_is_422(client, runtime, admin):
    twice = [{"channel_type": "vk", "external_id": "7"}, {"channel_type": "vk", "external_id": "7"}]
    r = await client.post(C, json={"name": "X", "identities": twice}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "duplicate_identity"
    assert await count(runtime, Contact) == 0


async def test_merge_moves_identities_conversations_and_consents(client, runtime, admin, api_channel, clock):
    keep = await create(client, admin, name="", email="olga@example.com", attributes={"tier": "gold"},
                        identities=[{"channel_type": "email", "external_id": "olga@example.com"}],
                        consents=[{"channel_type": "email", "granted": True}])
    sent = (await post_inbound(client, api_channel, msg_id="m1", contact="crm-9", name="Ольга", text="привет")).json()
    conv = (await client.get(f"/api/v1/conversations/{sent['conversation_id']}", headers=admin.headers)).json()
    dup_id = conv["contact_id"]
    clock.tick()
    r = await client.patch(f"{C}/{dup_id}", json={"attributes": {"tier": "silver", "crm": "9"},
                                                  "consents": [{"channel_type": "api", "granted": True}]},
                           headers=admin.headers)
    assert r.status_code == 200, r.text

    r = await client.post(f"{C}/{keep['id']}/merge", json={"other_id": dup_id}, headers=admin.headers)
    assert r.status_code == 200, r.text
    merged = r.json()
    assert idents(merged) == {("email", "olga@example.com"), ("api", "crm-9")}
    assert consents(merged) == {"email": True, "api": True}
    assert merged["name"] == "Ольга", "blank fields are filled from the duplicate"
    assert merged["attributes"] == {"tier": "gold", "crm": "9"}, "the kept contact's own values win"
    assert (await client.get(f"{C}/{dup_id}", headers=admin.headers)).status_code == 404
    assert dup_id not in {c["id"] for c in (await client.get(C, headers=admin.headers)).json()["items"]}
    again = await client.post(f"{C}/{keep['id']}/merge", json={"other_id": dup_id}, headers=admin.headers)
    assert again.status_code == 404
    convs = (await client.get("/api/v1/conversations", params={"contact_id": keep["id"]},
                              headers=admin.headers)).json()["items"]
    assert [c["id"] for c in convs] == [sent["conversation_id"]]
    assert await count(runtime, Consent, Consent.contact_id == dup_id) == 0
    # The customer writes again from the moved identity: it is the kept contact's conversation.
    nxt = (await post_inbound(client, api_channel, msg_id="m2", contact="crm-9")).json()
    assert nxt["conversation_id"] == sent["conversation_id"]
    async with runtime.db.read() as s:
        assert (await s.get(Conversation, nxt["conversation_id"])).contact_id == keep["id"]


async def test_merge_keeps_the_latest_consent_decision(client, admin, clock):
    a = await create(client, admin, name="A", consents=[{"channel_type": "email", "granted": True},
                                                         {"channel_type": "sms", "granted": True}])
    clock.tick()
    b = await create(client, admin, name="B", consents=[{"channel_type": "email", "granted": False},
                                                         {"channel_type": "sms", "granted": False},
                                                         {"channel_type": "vk", "granted": True}])
    clock.tick()
    r = await client.patch(f"{C}/{a['id']}", json={"consents": [{"channel_type": "sms", "granted": True,
                                                                  "source": "phone call"}]},
                           headers=admin.headers)
    assert r.status_code == 200
    merged = (await client.post(f"{C}/{a['id']}/merge", json={"other_id": b["id"]}, headers=admin.headers)).json()
    # email: B revoked after A granted -> revoked; sms: A confirmed after B revoked -> granted; vk: only B.
    assert consents(merged) == {"email": False, "sms": True, "vk": True}
    assert {c["channel_type"]: c["source"] for c in merged["consents"]}["sms"] == "phone call"


async def test_merge_into_itself_or_a_missing_contact_is_refused(client, admin):
    a = await create(client, admin, name="A")
    r = await client.post(f"{C}/{a['id']}/merge", json={"other_id": a["id"]}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "merge_into_self"
    r = await client.post(f"{C}/{a['id']}/merge", json={"other_id": 999999}, headers=admin.headers)
    assert r.status_code == 404 and r.json()["code"] == "contact_not_found"


async def test_erase_removes_the_person_with_conversations_and_messages(client, runtime, admin, api_channel):
    first = (await post_inbound(client, api_channel, msg_id="e1", contact="gone", name="Gone Person")).json()
    conv_id = first["conversation_id"]
    gone = (await client.get(f"/api/v1/conversations/{conv_id}", headers=admin.headers)).json()["contact_id"]
    r = await client.post(f"/api/v1/conversations/{conv_id}/messages", json={"text": "we will help"},
                          headers=admin.headers)
    assert r.status_code == 201
    await client.post(f"/api/v1/conversations/{conv_id}/status", json={"status": "resolved"}, headers=admin.headers)
    second = (await post_inbound(client, api_channel, msg_id="e2", contact="gone")).json()
    assert second["conversation_id"] != conv_id
    # A duplicate merged into the person is part of them and goes too.
    dup = await create(client, admin, name="Gone dup", identities=[{"channel_type": "vk", "external_id": "gone"}],
                       consents=[{"channel_type": "vk", "granted": True}])
    assert (await client.post(f"{C}/{gone}/merge", json={"other_id": dup["id"]}, headers=admin.headers)).status_code \
        == 200
    stay = (await post_inbound(client, api_channel, msg_id="s1", contact="stays")).json()

    r = await client.delete(f"{C}/{gone}", headers=admin.headers)
    assert r.status_code == 204, r.text
    assert (await client.get(f"{C}/{gone}", headers=admin.headers)).status_code == 404
    for cid in (conv_id, second["conversation_id"]):
        assert (await client.get(f"/api/v1/conversations/{cid}", headers=admin.headers)).status_code == 404
    assert await count(runtime, Contact, Contact.id.in_([gone, dup["id"]])) == 0
    assert await count(runtime, Identity, Identity.contact_id.in_([gone, dup["id"]])) == 0
    assert await count(runtime, Consent) == 0
    assert await count(runtime, Conversation, Conversation.id.in_([conv_id, second["conversation_id"]])) == 0
    assert await count(runtime, Message, Message.conversation_id.in_([conv_id, second["conversation_id"]])) == 0
    assert await count(runtime, OutboxItem) == 0, "a reply not yet sent must not go out after erasure"
    # Everyone else is untouched, and the erasure itself is on record.
    assert (await client.get(f"/api/v1/conversations/{stay['conversation_id']}", headers=admin.headers)).status_code \
        == 200
    assert await count(runtime, AuditEntry, AuditEntry.action == "contact.erased",
                       AuditEntry.subject_id == str(gone)) == 1


async def test_only_an_administrator_may_erase(client, runtime, factory, admin):
    made = await create(client, admin, name="Keep me")
    for role in ("agent", "supervisor"):
        actor = await factory.user(role)
        r = await client.delete(f"{C}/{made['id']}", headers=actor.headers)
        assert r.status_code == 403 and r.json()["code"] == "admin_required", role
    assert await count(runtime, Contact) == 1


async def test_manager_must_be_an_existing_active_user(client, admin, factory):
    r = await client.post(C, json={"name": "M", "manager_id": 999999}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "manager_not_found"
    manager = await factory.user("agent")
    made = await create(client, admin, name="M", manager_id=manager.id)
    assert made["manager_id"] == manager.id
    url = f"{C}/{made['id']}"
    r = await client.patch(url, json={"manager_id": 999999}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "manager_not_found"
    retired = await factory.user("agent")
    assert (await client.patch(f"/api/v1/users/{retired.id}", json={"active": False},
                               headers=admin.headers)).status_code == 200
    r = await client.patch(url, json={"manager_id": retired.id}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "manager_not_found"
    assert (await client.get(url, headers=admin.headers)).json()["manager_id"] == manager.id
    r = await client.patch(url, json={"manager_id": None}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["manager_id"] is None
    listed = (await client.get(C, params={"manager_id": manager.id}, headers=admin.headers)).json()["items"]
    assert listed == []


async def test_every_read_of_a_contact_is_in_the_audit_log(client, runtime, admin, factory, api_channel):
    agent = await factory.user("agent")
    made = await create(client, admin, name="Read me", manager_id=agent.id)  # agents read contacts they can see
    for actor in (admin, agent, agent):  # the agent's screen re-reads: one access within the window
        assert (await client.get(f"{C}/{made['id']}", headers=actor.headers)).status_code == 200
    conv = (await post_inbound(client, api_channel, msg_id="m", contact="crm-1")).json()["conversation_id"]
    assert (await client.get(f"/api/v1/conversations/{conv}", headers=admin.headers)).status_code == 200
    async with runtime.db.read() as s:
        rows = list((await s.execute(select(AuditEntry).where(AuditEntry.action.like("%.viewed"))
                                     .order_by(AuditEntry.id))).scalars())
    assert [(r.actor_user_id, r.action, r.subject_id) for r in rows] == [
        (admin.id, "contact.viewed", str(made["id"])), (agent.id, "contact.viewed", str(made["id"])),
        (admin.id, "conversation.viewed", str(conv))]
    assert all(r.actor_token_id is not None and r.ip == "127.0.0.1" for r in rows)


async def test_the_audit_log_is_append_only_in_the_database(client, runtime, admin):
    await create(client, admin, name="Audited")
    before = await count(runtime, AuditEntry)
    assert before >= 2  # token issued for admin, contact created

    for statement in ("UPDATE audit_log SET action = 'tampered'", "DELETE FROM audit_log"):
        async def job(tx, sql=statement):  # type: ignore[no-untyped-def]
            await tx.session.execute(text(sql))

        with pytest.raises(DBAPIError, match="append-only"):
            await runtime.db.write(job)
    assert await count(runtime, AuditEntry) == before
    assert await count(runtime, AuditEntry, AuditEntry.action == "tampered") == 0
