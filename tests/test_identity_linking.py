"""One person across channels: a new identity with a verified email or phone joins the contact that already has
it verified; never on a name or an unverified value. A supervisor can split an identity off again.

Everything goes through the API channel's real webhook. A second channel *type* is the same adapter registered
as ``crm`` for the test, standing in for "Telegram and later email": identities are per channel type.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from kommutator.audit.models import AuditEntry
from kommutator.channels import registry
from kommutator.channels.types.api.adapter import ApiChannel
from kommutator.contacts.models import Contact, Identity
from kommutator.conversations.models import Conversation
from kommutator.events import ContactChanged

from .conftest import Actor

C = "/api/v1/contacts"
PHONE = "+79123456789"


class CrmChannel(ApiChannel):
    """The API channel's protocol under another channel type."""

    type = "crm"
    title = "CRM (test)"


@pytest.fixture
async def crm_channel(client: httpx.AsyncClient, admin: Actor,
                      monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    registry.discover()
    monkeypatch.setitem(registry._adapters, "crm", CrmChannel())
    r = await client.post("/api/v1/channels", json={"type": "crm", "name": "Shop CRM"}, headers=admin.headers)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def send(client: httpx.AsyncClient, channel: dict[str, Any], msg_id: str, contact: str, *,
               verified: tuple[str, ...] = (), text: str = "hello", **fields: str) -> dict[str, Any]:
    """``post_inbound`` with the contact's email, phone and what the integrator verified."""
    person: dict[str, Any] = {"id": contact, "name": fields.pop("name", contact), **fields}
    if verified:
        person["verified"] = list(verified)
    token = channel["generated_credentials"]["inbound_token"]
    r = await client.post(f"/webhooks/{channel['id']}", json={"id": msg_id, "contact": person, "text": text},
                          headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def contact_of(client: httpx.AsyncClient, admin: Actor, conversation_id: int) -> int:
    r = await client.get(f"/api/v1/conversations/{conversation_id}", headers=admin.headers)
    assert r.status_code == 200, r.text
    return int(r.json()["contact_id"])


async def conversations_of(client: httpx.AsyncClient, admin: Actor, contact_id: int) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/conversations", params={"contact_id": contact_id}, headers=admin.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def count(runtime, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def audit(runtime, action: str) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return list((await s.execute(select(AuditEntry).where(AuditEntry.action == action)
                                     .order_by(AuditEntry.id))).scalars())


async def resolve(client: httpx.AsyncClient, admin: Actor, conversation_id: int) -> None:
    r = await client.post(f"/api/v1/conversations/{conversation_id}/status", json={"status": "resolved"},
                          headers=admin.headers)
    assert r.status_code == 200, r.text


async def test_same_verified_phone_on_two_channel_types_is_one_contact_with_one_history(
        client, runtime, admin, api_channel, crm_channel):
    seen: list[ContactChanged] = []

    async def listen(e):  # type: ignore[no-untyped-def]
        seen.append(e)

    runtime.bus.subscribe(listen, kinds=(ContactChanged,))
    first = await send(client, api_channel, "a1", "crm-1", phone="+7 (912) 345-67-89", verified=("phone",),
                       name="Анна", text="Где мой заказ?")
    await resolve(client, admin, first["conversation_id"])
    second = await send(client, crm_channel, "b1", "shop-77", phone="+79123456789", verified=("phone",),
                        name="Anna S.", text="Ещё вопрос")
    contact_id = await contact_of(client, admin, first["conversation_id"])
    assert await contact_of(client, admin, second["conversation_id"]) == contact_id, \
        "a new identity with a phone another identity has verified joins that contact"
    assert await count(runtime, Contact) == 1

    card = (await client.get(f"{C}/{contact_id}", headers=admin.headers)).json()
    assert [(i["channel_type"], i["external_id"], i["verified_phone"], i["linked_by"])
            for i in card["identities"]] == [("api", "crm-1", PHONE, None), ("crm", "shop-77", PHONE, "phone")]
    assert card["name"] == "Анна", "the contact keeps its own name"
    history = await conversations_of(client, admin, contact_id)
    assert {c["id"] for c in history} == {first["conversation_id"], second["conversation_id"]}

    (entry,) = await audit(runtime, "contact.identity_linked")
    assert (entry.subject_id, entry.actor_user_id) == (str(contact_id), None)
    assert entry.detail == {"identity": "crm:shop-77", "linked_by": "phone"}
    # the first message made the contact (announced since integrations hear of new contacts), the second linked
    assert [(e.contact_id, e.action) for e in seen] == [(contact_id, "created"), (contact_id, "identity_linked")]
    # The next message on the linked identity is a known identity: it simply goes to the same contact.
    third = await send(client, crm_channel, "b2", "shop-77", phone=PHONE, verified=("phone",))
    assert third["conversation_id"] == second["conversation_id"]


async def test_an_open_conversation_continues_on_the_other_channel(client, admin, api_channel, crm_channel):
    first = await send(client, api_channel, "a1", "crm-1", email="Anna@Example.com", verified=("email",))
    second = await send(client, crm_channel, "b1", "shop-77", email="anna@example.COM", verified=("email",))
    assert second["conversation_id"] == first["conversation_id"], "the agent sees one history"
    conv = (await client.get(f"/api/v1/conversations/{first['conversation_id']}", headers=admin.headers)).json()
    assert [m["channel_id"] for m in conv["messages"]] == [api_channel["id"], crm_channel["id"]]
    assert [(i["verified_email"], i["linked_by"]) for i in conv["contact"]["identities"]] == [
        ("anna@example.com", None), ("anna@example.com", "email")]


@pytest.mark.parametrize("first_verified, second_verified", [(("phone",), ()), ((), ("phone",)), ((), ())])
async def test_a_phone_not_verified_on_both_sides_makes_two_contacts(client, runtime, admin, api_channel, crm_channel,
                                                                     first_verified, second_verified):
    first = await send(client, api_channel, "a1", "crm-1", phone=PHONE, verified=first_verified)
    second = await send(client, crm_channel, "b1", "shop-77", phone=PHONE, verified=second_verified)
    assert await contact_of(client, admin, first["conversation_id"]) != \
        await contact_of(client, admin, second["conversation_id"])
    assert await count(runtime, Contact) == 2
    assert await audit(runtime, "contact.identity_linked") == []


async def test_the_same_name_never_links(client, runtime, admin, api_channel, crm_channel):
    first = await send(client, api_channel, "a1", "crm-1", name="Иван Петров", email="ivan@example.com")
    second = await send(client, crm_channel, "b1", "shop-5", name="Иван Петров", email="ivan@example.com",
                        verified=("email",))
    assert await contact_of(client, admin, first["conversation_id"]) != \
        await contact_of(client, admin, second["conversation_id"])
    assert await count(runtime, Contact) == 2


async def test_an_email_typed_by_an_agent_is_not_verified(client, runtime, admin, crm_channel):
    r = await client.post(C, json={"name": "Typed", "email": "typed@example.com", "phone": PHONE,
                                   "identities": [{"channel_type": "vk", "external_id": "id1"}]},
                          headers=admin.headers)
    assert r.status_code == 201, r.text
    assert r.json()["identities"][0]["verified_email"] is None
    sent = await send(client, crm_channel, "b1", "shop-5", email="typed@example.com", phone=PHONE,
                      verified=("email", "phone"))
    assert await contact_of(client, admin, sent["conversation_id"]) != r.json()["id"]
    assert await count(runtime, Contact) == 2


async def test_a_value_shared_by_two_contacts_links_nowhere(client, runtime, admin, api_channel, crm_channel):
    a = await send(client, api_channel, "a1", "crm-1", email="a@example.com", verified=("email",))
    b = await send(client, crm_channel, "b1", "shop-1", phone=PHONE, verified=("phone",))
    # Email says contact A, phone says contact B: nobody can tell which person this is.
    c = await send(client, crm_channel, "b2", "shop-2", email="a@example.com", phone=PHONE,
                   verified=("email", "phone"))
    owners = {await contact_of(client, admin, x["conversation_id"]) for x in (a, b, c)}
    assert len(owners) == 3
    assert await audit(runtime, "contact.identity_linked") == []


async def test_a_value_verified_later_is_remembered_for_the_next_channel(client, runtime, admin, api_channel,
                                                                       crm_channel):
    """Like a Telegram user sharing their contact after the first messages: the known identity learns the
    phone (no merge of existing contacts), and a new identity with that phone joins its contact."""
    first = await send(client, api_channel, "a1", "crm-1", phone=PHONE)
    await send(client, api_channel, "a2", "crm-1", phone="+7 912 345 67 89", verified=("phone",))
    assert await count(runtime, Contact) == 1
    async with runtime.db.read() as s:
        assert await s.scalar(select(Identity.verified_phone)) == PHONE
    later = await send(client, crm_channel, "b1", "shop-1", phone=PHONE, verified=("phone",))
    assert await contact_of(client, admin, later["conversation_id"]) == \
        await contact_of(client, admin, first["conversation_id"])


async def test_a_phone_that_is_not_international_never_links(client, runtime, api_channel, crm_channel):
    await send(client, api_channel, "a1", "crm-1", phone="12345", verified=("phone",))
    await send(client, crm_channel, "b1", "shop-1", phone="12345", verified=("phone",))
    assert await count(runtime, Contact) == 2
    async with runtime.db.read() as s:
        assert list((await s.execute(select(Identity.verified_phone))).scalars()) == [None, None]


async def test_split_moves_the_identity_and_its_conversations_to_a_new_contact(
        client, runtime, admin, factory, api_channel, crm_channel):
    first = await send(client, api_channel, "a1", "crm-1", phone=PHONE, verified=("phone",), name="Мама")
    await resolve(client, admin, first["conversation_id"])
    second = await send(client, crm_channel, "b1", "shop-7", phone=PHONE, verified=("phone",), name="Дочь")
    await resolve(client, admin, second["conversation_id"])
    third = await send(client, crm_channel, "b2", "shop-7")  # a second conversation on the linked identity
    assert third["conversation_id"] != second["conversation_id"]
    contact_id = await contact_of(client, admin, first["conversation_id"])
    card = (await client.get(f"{C}/{contact_id}", headers=admin.headers)).json()
    linked = next(i for i in card["identities"] if i["channel_type"] == "crm")
    url = f"{C}/{contact_id}/identities/{linked['id']}/split"
    r = await client.patch(f"{C}/{contact_id}", json={"consents": [{"channel_type": "api", "granted": True},
                                                                   {"channel_type": "crm", "granted": False}]},
                           headers=admin.headers)
    assert r.status_code == 200, r.text

    supervisor = await factory.user("supervisor")
    r = await client.post(url, headers=supervisor.headers)
    assert r.status_code == 201, r.text
    split = r.json()
    new_id = split["contact"]["id"]
    assert new_id != contact_id and split["from_contact_id"] == contact_id
    assert sorted(split["moved_conversation_ids"]) == sorted([second["conversation_id"], third["conversation_id"]])
    assert [(i["channel_type"], i["external_id"], i["linked_by"]) for i in split["contact"]["identities"]] == [
        ("crm", "shop-7", None)]
    assert (split["contact"]["name"], split["contact"]["phone"]) == ("Дочь", PHONE)
    assert [(c["channel_type"], c["granted"]) for c in split["contact"]["consents"]] == [("crm", False)], \
        "the consent of the identity's channel type goes with it"
    old = (await client.get(f"{C}/{contact_id}", headers=admin.headers)).json()
    assert [i["external_id"] for i in old["identities"]] == ["crm-1"]
    assert [c["channel_type"] for c in old["consents"]] == ["api"]
    assert [c["id"] for c in await conversations_of(client, admin, contact_id)] == [first["conversation_id"]]
    assert {c["id"] for c in await conversations_of(client, admin, new_id)} == set(split["moved_conversation_ids"])

    (entry,) = await audit(runtime, "contact.identity_split")
    assert (entry.actor_user_id, entry.subject_id) == (supervisor.id, str(contact_id))
    assert entry.detail["new_contact"] == new_id and entry.detail["linked_by"] == "phone"
    assert sorted(entry.detail["conversations"]) == sorted(split["moved_conversation_ids"])

    # Later messages: the split identity writes to the new contact, the other to the old one.
    later = await send(client, crm_channel, "b3", "shop-7", phone=PHONE, verified=("phone",))
    assert later["conversation_id"] == third["conversation_id"]
    assert await contact_of(client, admin, later["conversation_id"]) == new_id
    back = await send(client, api_channel, "a2", "crm-1")
    assert await contact_of(client, admin, back["conversation_id"]) == contact_id
    # The phone is now verified on two contacts: a third channel identity with it joins neither.
    other = await send(client, api_channel, "a3", "crm-2", phone=PHONE, verified=("phone",))
    assert await contact_of(client, admin, other["conversation_id"]) not in (contact_id, new_id)


async def test_a_conversation_that_mixes_channels_stays(client, admin, api_channel, crm_channel):
    first = await send(client, api_channel, "a1", "crm-1", phone=PHONE, verified=("phone",))
    await send(client, crm_channel, "b1", "shop-7", phone=PHONE, verified=("phone",))  # joins the open one
    contact_id = await contact_of(client, admin, first["conversation_id"])
    card = (await client.get(f"{C}/{contact_id}", headers=admin.headers)).json()
    r = await client.post(f"{C}/{contact_id}/identities/{card['identities'][1]['id']}/split", headers=admin.headers)
    assert r.status_code == 201, r.text
    assert r.json()["moved_conversation_ids"] == []
    assert [c["id"] for c in await conversations_of(client, admin, contact_id)] == [first["conversation_id"]]


async def test_identities_of_one_channel_type_cannot_be_told_apart_so_no_conversation_moves(
        client, admin, api_channel):
    first = await send(client, api_channel, "a1", "crm-1", phone=PHONE, verified=("phone",))
    await resolve(client, admin, first["conversation_id"])
    second = await send(client, api_channel, "a2", "crm-2", phone=PHONE, verified=("phone",))
    contact_id = await contact_of(client, admin, second["conversation_id"])
    assert contact_id == await contact_of(client, admin, first["conversation_id"])
    card = (await client.get(f"{C}/{contact_id}", headers=admin.headers)).json()
    r = await client.post(f"{C}/{contact_id}/identities/{card['identities'][1]['id']}/split", headers=admin.headers)
    assert r.status_code == 201, r.text
    assert r.json()["moved_conversation_ids"] == []


async def test_merge_then_split_gives_the_duplicate_its_conversations_back(client, runtime, admin, api_channel,
                                                                          crm_channel):
    keep = await send(client, api_channel, "a1", "crm-1", name="Olga")
    await resolve(client, admin, keep["conversation_id"])  # two open ones would fold into one (test_identity_proof)
    dup = await send(client, crm_channel, "b1", "shop-1", name="Olga K.")
    keep_id = await contact_of(client, admin, keep["conversation_id"])
    dup_id = await contact_of(client, admin, dup["conversation_id"])
    r = await client.post(f"{C}/{keep_id}/merge", json={"other_id": dup_id}, headers=admin.headers)
    assert r.status_code == 200, r.text
    moved_identity = next(i for i in r.json()["identities"] if i["channel_type"] == "crm")
    (merged,) = await audit(runtime, "contact.merged")
    assert merged.detail == {"merged": dup_id, "identities": [moved_identity["id"]],
                             "conversations": [dup["conversation_id"]], "folded": []}

    r = await client.post(f"{C}/{keep_id}/identities/{moved_identity['id']}/split", headers=admin.headers)
    assert r.status_code == 201, r.text
    assert r.json()["moved_conversation_ids"] == [dup["conversation_id"]]
    assert [c["id"] for c in await conversations_of(client, admin, keep_id)] == [keep["conversation_id"]]
    assert len(await audit(runtime, "contact.identity_split")) == 1


async def test_split_is_for_supervisors_and_refuses_what_it_cannot_do(client, runtime, admin, factory, api_channel,
                                                                      crm_channel):
    first = await send(client, api_channel, "a1", "crm-1", phone=PHONE, verified=("phone",))
    await send(client, crm_channel, "b1", "shop-7", phone=PHONE, verified=("phone",))
    contact_id = await contact_of(client, admin, first["conversation_id"])
    ids = [i["id"] for i in (await client.get(f"{C}/{contact_id}", headers=admin.headers)).json()["identities"]]
    agent = await factory.user("agent")
    r = await client.post(f"{C}/{contact_id}/identities/{ids[1]}/split", headers=agent.headers)
    assert r.status_code == 403 and r.json()["code"] == "supervisor_required"
    assert r.headers["content-type"] == "application/problem+json"

    alone = await send(client, api_channel, "a9", "crm-9")
    alone_id = await contact_of(client, admin, alone["conversation_id"])
    alone_ident = (await client.get(f"{C}/{alone_id}", headers=admin.headers)).json()["identities"][0]["id"]
    r = await client.post(f"{C}/{alone_id}/identities/{alone_ident}/split", headers=admin.headers)
    assert r.status_code == 409 and r.json()["code"] == "only_identity"
    r = await client.post(f"{C}/{alone_id}/identities/{ids[1]}/split", headers=admin.headers)
    assert r.status_code == 404 and r.json()["code"] == "identity_not_found", "an identity of another contact"
    r = await client.post(f"{C}/987654/identities/{ids[1]}/split", headers=admin.headers)
    assert r.status_code == 404 and r.json()["code"] == "contact_not_found"
    assert await count(runtime, Contact) == 2, "nothing was created by the refused splits"
    assert await audit(runtime, "contact.identity_split") == []


async def test_simultaneous_first_messages_with_one_verified_phone_make_one_contact(client, runtime, admin,
                                                                                   api_channel, crm_channel):
    """On PostgreSQL the two first messages run in parallel transactions; the advisory lock on the verified
    value makes the second wait for the first and join its contact."""
    pairs = 10
    results = await asyncio.gather(*[
        send(client, channel, f"{tag}-{n}", f"{tag}-person-{n}", phone=f"+7912000{n:04d}", verified=("phone",))
        for n in range(pairs) for tag, channel in (("api", api_channel), ("crm", crm_channel))])
    owners: dict[str, set[int]] = {}
    for n in range(pairs):
        for r in results[2 * n:2 * n + 2]:
            owners.setdefault(str(n), set()).add(await contact_of(client, admin, r["conversation_id"]))
    assert all(len(o) == 1 for o in owners.values()), owners
    assert await count(runtime, Contact) == pairs
    assert await count(runtime, Identity) == 2 * pairs
    assert await count(runtime, Conversation) <= 2 * pairs


@contextmanager
def statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


async def test_linking_costs_one_lookup_and_only_for_a_new_identity_with_a_verified_value(
        client, runtime, api_channel):
    async def cost(msg_id: str, contact: str, **fields: Any) -> int:
        with statements() as seen:
            await send(client, api_channel, msg_id, contact, **fields)
        return len(seen)

    await send(client, api_channel, "w", "warm-up")  # the channel's row is cached after its first message
    plain_new = await cost("n1", "p1", phone=PHONE)
    verified_new = await cost("n2", "p2", phone="+79990000000", verified=("phone",))
    plain_known = await cost("k1", "p1", phone=PHONE)
    verified_known = await cost("k2", "p2", phone="+79990000000", verified=("phone",))
    extra = 1 if runtime.db.is_sqlite else 2  # PostgreSQL also takes the advisory lock
    assert verified_new == plain_new + extra, "a new identity with a verified value: one indexed lookup more"
    assert verified_known == plain_known, "a known identity costs nothing more, verified or not"
