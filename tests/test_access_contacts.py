"""Contact writes and visibility grants against a hostile agent (docs/access.md).

Each hostile path here worked once: an agent of team Alpha made themselves the personal manager of a team
Beta customer (by editing, creating, merging or adding an identity) and then read that team's conversation,
its private notes and attachments. Every test acts over HTTP as a user would.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from kommutator.audit.models import AuditEntry
from kommutator.contacts.models import Consent, Contact, Identity
from kommutator.conversations.models import Conversation

from .conftest import Actor, post_inbound

C = "/api/v1/contacts"
CONV = "/api/v1/conversations"


async def count(runtime, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def contact_row(runtime, contact_id: int) -> Contact:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        row = await s.get(Contact, contact_id)
        assert row is not None
        return row


@pytest.fixture
async def world(client, factory, admin, api_channel) -> dict[str, Any]:
    """Team Alpha (agent Anna) and team Beta (agent Boris), each with a customer writing in; Beta's conversation
    has a private note with a file; a supervisor."""
    alpha, beta = await factory.team("Alpha"), await factory.team("Beta")
    anna = await factory.user("agent", teams=[alpha], name="Anna")
    boris = await factory.user("agent", teams=[beta], name="Boris")
    sup = await factory.user("supervisor", name="Sveta")
    conv: dict[str, int] = {}
    contact: dict[str, int] = {}
    for key, team in (("a", alpha), ("b", beta)):
        r = await post_inbound(client, api_channel, msg_id=f"w-{key}", contact=f"cust-{key}", name=f"Customer {key}")
        assert r.status_code == 200, r.text
        conv[key] = r.json()["conversation_id"]
        r = await client.post(f"{CONV}/{conv[key]}/assign", json={"team_id": team}, headers=admin.headers)
        assert r.status_code == 200, r.text
        contact[key] = r.json()["contact_id"]
    r = await client.post(f"{CONV}/{conv['b']}/attachments", headers=boris.headers, data={"kind": "note",
                          "text": "card number is on the scan"}, files={"file": ("scan.txt", b"4111", "text/plain")})
    assert r.status_code == 201, r.text
    return {"anna": anna, "boris": boris, "sup": sup, "admin": admin, "alpha": alpha, "beta": beta, "conv": conv,
            "contact": contact, "attachment": r.json()["attachments"][0]["id"]}


async def assert_sealed(client: httpx.AsyncClient, world: dict[str, Any], who: Actor | None = None) -> None:
    """The agent sees nothing of team Beta's conversation: not the thread, not the note, not the file."""
    who = who or world["anna"]
    cid = world["conv"]["b"]
    r = await client.get(f"{CONV}/{cid}", headers=who.headers)
    assert r.status_code == 404, f"team Beta's conversation leaked: {r.status_code} {r.text[:200]}"
    assert (await client.get(f"{CONV}/{cid}/messages", headers=who.headers)).status_code == 404
    assert (await client.get(f"/api/v1/attachments/{world['attachment']}", headers=who.headers)).status_code == 404
    listed = (await client.get(CONV, headers=who.headers)).json()["items"]
    assert cid not in {c["id"] for c in listed}
    r = await client.post(f"{CONV}/{cid}/messages", json={"text": "hello, I'm your manager now"}, headers=who.headers)
    assert r.status_code == 404, "a reply to a conversation the agent may not see must be refused, not assign it"


# --- the personal manager grant cannot be taken --------------------------------------------------------------


async def test_an_agent_cannot_make_themselves_manager_of_another_teams_customer(client, runtime, world):
    anna, target = world["anna"], world["contact"]["b"]
    r = await client.patch(f"{C}/{target}", json={"manager_id": anna.id}, headers=anna.headers)
    assert r.status_code == 404 and r.json()["code"] == "contact_not_found", \
        "an agent may not even see another team's customer, so the answer is the same as for a missing one"
    assert (await contact_row(runtime, target)).manager_id is None
    await assert_sealed(client, world)
    conv = (await client.get(f"{CONV}/{world['conv']['b']}", headers=world["boris"].headers)).json()
    assert (conv["status"], conv["assignee_id"]) == ("queued", None), "nothing was assigned to Anna"


async def test_an_agent_cannot_set_a_manager_even_on_a_customer_they_see(client, runtime, world):
    anna, boris, mine = world["anna"], world["boris"], world["contact"]["a"]
    for manager in (anna.id, boris.id, None):
        if manager is None:  # clearing a manager a supervisor chose is a manager change too
            await client.patch(f"{C}/{mine}", json={"manager_id": boris.id}, headers=world["sup"].headers)
        r = await client.patch(f"{C}/{mine}", json={"manager_id": manager, "name": "Renamed"}, headers=anna.headers)
        assert r.status_code == 403 and r.json()["code"] == "supervisor_required", (manager, r.text)
        row = await contact_row(runtime, mine)
        assert row.name == "Customer a", "nothing half-written: the name stays when the manager is refused"
    # Sending the manager the contact already has is no change and is allowed (a client echoing the card back).
    r = await client.patch(f"{C}/{mine}", json={"manager_id": boris.id, "name": "Renamed"}, headers=anna.headers)
    assert r.status_code == 200 and r.json()["name"] == "Renamed", r.text


async def test_an_agent_cannot_create_a_contact_managed_by_themselves(client, runtime, world):
    anna = world["anna"]
    before = await count(runtime, Contact)
    for body in ({"name": "Mine", "manager_id": anna.id},
                 {"name": "Claim", "identities": [{"channel_type": "api", "external_id": "cust-later"}]},
                 {"name": "Plain"}):
        r = await client.post(C, json=body, headers=anna.headers)
        assert r.status_code == 403 and r.json()["code"] == "supervisor_required", (body, r.text)
    assert await count(runtime, Contact) == before


async def test_an_agent_cannot_merge_another_teams_customer_into_their_own(client, runtime, world):
    anna, sup = world["anna"], world["sup"]
    managed = world["contact"]["a"]
    r = await client.patch(f"{C}/{managed}", json={"manager_id": anna.id}, headers=sup.headers)
    assert r.status_code == 200, r.text
    r = await client.post(f"{C}/{managed}/merge", json={"other_id": world["contact"]["b"]}, headers=anna.headers)
    assert r.status_code == 403 and r.json()["code"] == "supervisor_required", r.text
    async with runtime.db.read() as s:
        assert (await s.get(Conversation, world["conv"]["b"])).contact_id == world["contact"]["b"]  # type: ignore[union-attr]
    assert (await contact_row(runtime, world["contact"]["b"])).merged_into_id is None
    await assert_sealed(client, world)
    # The other way round (Anna's customer into Beta's) is refused the same way.
    r = await client.post(f"{C}/{world['contact']['b']}/merge", json={"other_id": managed}, headers=anna.headers)
    assert r.status_code == 403 and r.json()["code"] == "supervisor_required"


async def test_an_agent_cannot_add_an_identity_to_catch_a_customer_before_they_write(client, runtime, world,
                                                                                       api_channel):
    anna, sup = world["anna"], world["sup"]
    managed = world["contact"]["a"]
    await client.patch(f"{C}/{managed}", json={"manager_id": anna.id}, headers=sup.headers)
    r = await client.post(f"{C}/{managed}/identities", json={"channel_type": "api", "external_id": "cust-new"},
                          headers=anna.headers)
    assert r.status_code == 403 and r.json()["code"] == "supervisor_required", r.text
    assert await count(runtime, Identity, Identity.external_id == "cust-new") == 0
    r = await post_inbound(client, api_channel, msg_id="new-1", contact="cust-new", text="my passport is ...")
    new_conv = r.json()["conversation_id"]
    await client.post(f"{CONV}/{new_conv}/assign", json={"team_id": world["beta"]}, headers=world["admin"].headers)
    assert (await client.get(f"{CONV}/{new_conv}", headers=anna.headers)).status_code == 404
    async with runtime.db.read() as s:
        assert (await s.get(Conversation, new_conv)).contact_id != managed  # type: ignore[union-attr]


async def test_an_agent_cannot_split_an_identity_off(client, runtime, world, api_channel):
    anna, managed = world["anna"], world["contact"]["a"]
    await client.post(f"{C}/{managed}/identities", json={"channel_type": "vk", "external_id": "55"},
                      headers=world["sup"].headers)
    ident = next(i for i in (await client.get(f"{C}/{managed}", headers=anna.headers)).json()["identities"]
                 if i["channel_type"] == "vk")
    r = await client.post(f"{C}/{managed}/identities/{ident['id']}/split", headers=anna.headers)
    assert r.status_code == 403 and r.json()["code"] == "supervisor_required"
    assert await count(runtime, Identity, Identity.contact_id == managed) == 2


# --- what supervisors may do, and what the grant then gives ----------------------------------------------------


async def test_a_supervisor_sets_a_personal_manager_who_must_be_an_active_agent_or_supervisor(client, runtime,
                                                                                               world, factory):
    anna, sup, target = world["anna"], world["sup"], world["contact"]["b"]
    another_admin = await factory.user("admin")
    retired = await factory.user("agent")
    await client.patch(f"/api/v1/users/{retired.id}", json={"active": False}, headers=world["admin"].headers)
    for manager in (another_admin.id, retired.id, 999999):
        r = await client.patch(f"{C}/{target}", json={"manager_id": manager}, headers=sup.headers)
        assert r.status_code == 422 and r.json()["code"] == "manager_not_found", (manager, r.text)
        r = await client.post(C, json={"name": "X", "manager_id": manager}, headers=sup.headers)
        assert r.status_code == 422 and r.json()["code"] == "manager_not_found", (manager, r.text)
    assert (await contact_row(runtime, target)).manager_id is None
    # A supervisor's choice is the one way the grant comes: Anna then sees the customer's conversations ...
    r = await client.patch(f"{C}/{target}", json={"manager_id": anna.id}, headers=sup.headers)
    assert r.status_code == 200 and r.json()["manager_id"] == anna.id
    r = await client.get(f"{CONV}/{world['conv']['b']}", headers=anna.headers)
    assert r.status_code == 200 and any(m["kind"] == "note" for m in r.json()["messages"])
    assert (await client.get(f"/api/v1/attachments/{world['attachment']}", headers=anna.headers)).status_code == 200
    # ... and loses them when it is taken back (she did not reply, so nothing was assigned to her).
    r = await client.patch(f"{C}/{target}", json={"manager_id": None}, headers=sup.headers)
    assert r.status_code == 200, r.text
    await assert_sealed(client, world)


async def test_supervisors_merge_and_add_identities(client, runtime, world):
    sup = world["sup"]
    r = await client.post(f"{C}/{world['contact']['a']}/identities", json={"channel_type": "vk", "external_id": "9"},
                          headers=sup.headers)
    assert r.status_code == 201, r.text
    r = await client.post(f"{C}/{world['contact']['a']}/merge", json={"other_id": world["contact"]["b"]},
                          headers=sup.headers)
    assert r.status_code == 200, r.text
    r = await client.post(C, json={"name": "From the CRM", "manager_id": world["boris"].id}, headers=sup.headers)
    assert r.status_code == 201 and r.json()["manager_id"] == world["boris"].id


# --- what agents read and edit --------------------------------------------------------------------------------


async def test_agents_read_only_the_contacts_they_can_see(client, world):
    anna, sup = world["anna"], world["sup"]
    mine, theirs = world["contact"]["a"], world["contact"]["b"]
    r = await client.post(C, json={"name": "Managed by Anna", "manager_id": anna.id}, headers=sup.headers)
    managed = r.json()["id"]
    listed = {c["id"] for c in (await client.get(C, headers=anna.headers)).json()["items"]}
    assert listed == {mine, managed}
    assert {c["id"] for c in (await client.get(C, params={"q": "Customer"}, headers=anna.headers)).json()["items"]} \
        == {mine}
    assert (await client.get(C, params={"manager_id": anna.id}, headers=anna.headers)).json()["items"][0]["id"] \
        == managed
    for cid in (mine, managed):
        assert (await client.get(f"{C}/{cid}", headers=anna.headers)).status_code == 200
    hidden = await client.get(f"{C}/{theirs}", headers=anna.headers)
    missing = await client.get(f"{C}/987654", headers=anna.headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["code"] == missing.json()["code"] == "contact_not_found"
    r = await client.get(f"/api/v1/quality/contacts/{theirs}/ratings", headers=anna.headers)
    assert r.status_code == 404 and r.json()["code"] == "contact_not_found"
    everyone = {c["id"] for c in (await client.get(C, headers=sup.headers)).json()["items"]}
    assert everyone == {mine, theirs, managed}, "supervisors see every contact"


async def test_agents_edit_ordinary_fields_and_consents_of_contacts_they_see(client, runtime, world):
    anna, mine, theirs = world["anna"], world["contact"]["a"], world["contact"]["b"]
    body = {"name": "Анна К.", "email": "anna.k@example.com", "phone": "+7 900 000-00-00", "language": "ru",
            "attributes": {"city": "Казань"}, "consents": [{"channel_type": "sms", "granted": False}]}
    r = await client.patch(f"{C}/{mine}", json=body, headers=anna.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["attributes"]) == ("Анна К.", {"city": "Казань"})
    entries = await count(runtime, AuditEntry)
    r = await client.patch(f"{C}/{theirs}", json=body, headers=anna.headers)
    assert r.status_code == 404 and r.json()["code"] == "contact_not_found"
    row = await contact_row(runtime, theirs)
    assert (row.name, row.email, row.attributes) == ("Customer b", None, {})
    assert await count(runtime, Consent, Consent.contact_id == theirs) == 0
    assert await count(runtime, AuditEntry) == entries, "a refused write leaves no trace but the refusal"


async def test_an_agent_who_lost_the_conversation_loses_the_contact(client, world):
    anna, cid = world["anna"], world["conv"]["a"]
    r = await client.post(f"{CONV}/{cid}/assign", json={"team_id": world["beta"]}, headers=anna.headers)
    assert r.status_code == 200, r.text
    r = await client.patch(f"{C}/{world['contact']['a']}", json={"name": "Too late"}, headers=anna.headers)
    assert r.status_code == 404 and r.json()["code"] == "contact_not_found"


# --- a conversation the agent may not see is exactly a missing one ---------------------------------------------


def _same(hidden: httpx.Response, missing: httpx.Response, ids: tuple[int, int]) -> tuple[Any, Any]:
    """Both answers with the ids they were asked about blanked out."""
    def norm(r: httpx.Response, ident: int) -> Any:
        text = re.sub(rf"\b{ident}\b", "<id>", r.text)
        return r.status_code, r.headers.get("content-type"), text
    return norm(hidden, ids[0]), norm(missing, ids[1])


async def test_an_invisible_attachment_is_answered_exactly_like_a_missing_one(client, world):
    anna, att = world["anna"], world["attachment"]
    hidden = await client.get(f"/api/v1/attachments/{att}", headers=anna.headers)
    missing = await client.get(f"/api/v1/attachments/{att + 1000}", headers=anna.headers)
    a, b = _same(hidden, missing, (att, att + 1000))
    assert a == b, f"the 404 tells an invisible file from a missing one: {hidden.text} vs {missing.text}"
    assert str(world["conv"]["b"]) not in hidden.json()["detail"], "the answer names the hidden conversation"
    assert hidden.json()["code"] == "attachment_not_found"


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("GET", "", {}),
    ("GET", "/messages", {}),
    ("POST", "/messages", {"json": {"text": "hi"}}),
    ("POST", "/attachments", {"files": {"file": ("a.txt", b"abc", "text/plain")}}),
    ("POST", "/read", {"json": {}}),
    ("POST", "/assign", {"json": {"team_id": None}}),
    ("POST", "/status", {"json": {"status": "resolved"}}),
    ("PUT", "/labels", {"json": {"labels": ["x"]}}),
    ("PATCH", "", {"json": {"priority": "high"}}),
    ("GET", "@/api/v1/quality/conversations/{id}", {}),
    ("GET", "@/api/v1/bot/conversations/{id}", {}),
])
async def test_every_conversation_sub_resource_hides_an_invisible_conversation(client, world, method, path, kwargs):
    anna, cid, nowhere = world["anna"], world["conv"]["b"], world["conv"]["b"] + 1000

    def url(ident: int) -> str:
        return path[1:].format(id=ident) if path.startswith("@") else f"{CONV}/{ident}{path}"

    hidden = await client.request(method, url(cid), headers=anna.headers, **kwargs)
    missing = await client.request(method, url(nowhere), headers=anna.headers, **kwargs)
    assert hidden.status_code == 404, hidden.text
    a, b = _same(hidden, missing, (cid, nowhere))
    assert a == b, f"{method} {path}: {hidden.text} vs {missing.text}"
    assert await _unchanged(client, world)


async def _unchanged(client: httpx.AsyncClient, world: dict[str, Any]) -> bool:
    conv = (await client.get(f"{CONV}/{world['conv']['b']}", headers=world["boris"].headers)).json()
    return (conv["status"], conv["assignee_id"], conv["team_id"], conv["labels"], conv["priority"],
            len(conv["messages"])) == ("queued", None, world["beta"], [], "normal", 2)

