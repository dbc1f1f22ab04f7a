"""What the workspace needs from the API: unread counts per agent, canned responses, list filters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import Actor, Factory, post_inbound


async def inbound(client: httpx.AsyncClient, channel: dict[str, Any], n: str, contact: str = "c1",
                  text: str = "hello", **extra: object) -> dict[str, Any]:
    r = await post_inbound(client, channel, msg_id=f"m-{n}", contact=contact, text=text, **extra)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def listed(client: httpx.AsyncClient, who: Actor, **params: object) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/conversations", params={"view": "all", **params}, headers=who.headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


# ---- unread counts -----------------------------------------------------------------------------------------

async def test_unread_counts_are_per_agent_and_drop_when_read(client, factory: Factory, admin, api_channel):
    boss = await factory.user("supervisor")
    first = await inbound(client, api_channel, "1")
    await inbound(client, api_channel, "2")
    cid = first["conversation_id"]
    assert [c["unread"] for c in await listed(client, admin)] == [2]
    assert [c["unread"] for c in await listed(client, boss)] == [2]

    r = await client.post(f"/api/v1/conversations/{cid}/read", json={}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["unread"] == 0
    assert [c["unread"] for c in await listed(client, admin)] == [0]
    assert [c["unread"] for c in await listed(client, boss)] == [2], "another agent's mark is their own"

    # The agent's own reply and notes never count; the customer's next message does.
    await client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "on it"}, headers=admin.headers)
    await client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "n", "kind": "note"},
                      headers=admin.headers)
    (item,) = await listed(client, admin)
    assert (item["unread"], item["last_message"]) == (0, {"text": "n", "direction": "internal", "kind": "note"})
    third = await inbound(client, api_channel, "3", text="x" * 300)
    (item,) = await listed(client, admin)
    assert (item["unread"], item["last_message"]) == (1, {"text": "x" * 200, "direction": "in", "kind": "text"})

    # Marking up to an older message never moves the mark back.
    r = await client.post(f"/api/v1/conversations/{cid}/read", json={"message_id": third["message_id"]},
                          headers=admin.headers)
    assert r.json() == {"conversation_id": cid, "last_read_message_id": third["message_id"], "unread": 0}
    r = await client.post(f"/api/v1/conversations/{cid}/read", json={"message_id": first["message_id"]},
                          headers=admin.headers)
    assert r.json()["last_read_message_id"] == third["message_id"]


async def test_marking_read_checks_the_conversation_and_the_message(client, factory: Factory, admin, api_channel):
    outsider = await factory.user("agent")
    sent = await inbound(client, api_channel, "1")
    cid = sent["conversation_id"]
    r = await client.post(f"/api/v1/conversations/{cid}/read", json={}, headers=outsider.headers)
    assert r.status_code == 404 and r.json()["code"] == "conversation_not_found"
    r = await client.post(f"/api/v1/conversations/{cid}/read", json={"message_id": sent["message_id"] + 1000},
                          headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "message_not_in_conversation"
    r = await client.post(f"/api/v1/conversations/{cid}/read", json={"message_id": 0}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "validation_failed"


# ---- filters -----------------------------------------------------------------------------------------------

async def test_search_finds_message_text_and_contact_names_in_both_scripts(client, admin, api_channel):
    await inbound(client, api_channel, "1", contact="a", name="Ivan Petrov", text="Где мой заказ 48213?")
    await inbound(client, api_channel, "2", contact="b", name="Emily", text="I was charged twice")
    await inbound(client, api_channel, "3", contact="c", name="Olga", text="100% off_sale?")

    def names(items: list[dict[str, Any]]) -> list[str]:
        return sorted(c["contact_name"] for c in items)

    assert names(await listed(client, admin, q="CHARGED")) == ["Emily"]
    assert names(await listed(client, admin, q="заказ")) == ["Ivan Petrov"]
    assert names(await listed(client, admin, q="Заказ")) == ["Ivan Petrov"]
    assert names(await listed(client, admin, q="petrov")) == ["Ivan Petrov"]
    assert names(await listed(client, admin, q="0% o")) == ["Olga"]  # % and _ are the customer's characters
    assert names(await listed(client, admin, q="f_s")) == ["Olga"]
    assert names(await listed(client, admin, q="nobody-wrote-this")) == []


async def test_list_filters_by_queue_and_team(client, factory: Factory, admin, api_channel):
    team = await factory.team("Sales")
    r = await client.post("/api/v1/queues", json={"name": "Orders", "team_id": team}, headers=admin.headers)
    assert r.status_code == 201, r.text
    queue = r.json()["id"]
    one = await inbound(client, api_channel, "1", contact="a")
    await inbound(client, api_channel, "2", contact="b")
    r = await client.post(f"/api/v1/conversations/{one['conversation_id']}/assign",
                          json={"assignee_id": None, "queue_id": queue}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert [c["id"] for c in await listed(client, admin, queue_id=queue)] == [one["conversation_id"]]
    assert [c["id"] for c in await listed(client, admin, team_id=team)] == [one["conversation_id"]]
    r = await client.get("/api/v1/conversations", params={"queue_id": 0}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "validation_failed"


# ---- canned responses ----------------------------------------------------------------------------------------

async def test_canned_responses_crud_and_who_sees_which(client, factory: Factory, admin):
    sales = await factory.team("Sales")
    support = await factory.team("Support")
    agent = await factory.user("agent", teams=[sales])
    stranger = await factory.user("agent", teams=[support])
    boss = await factory.user("supervisor")
    made = []
    for body in ({"shortcut": "greet", "title": "Greeting", "body": "Hello {contact.name}, I am {agent.name}."},
                 {"shortcut": "price", "title": "Prices", "body": "Our prices: …", "team_id": sales}):
        r = await client.post("/api/v1/canned-responses", json=body, headers=boss.headers)
        assert r.status_code == 201, r.text
        made.append(r.json())
    assert made[0]["team_id"] is None and made[0]["created_by_id"] == boss.id

    def shortcuts(r: httpx.Response) -> list[str]:
        assert r.status_code == 200, r.text
        return [c["shortcut"] for c in r.json()]

    assert shortcuts(await client.get("/api/v1/canned-responses", headers=agent.headers)) == ["greet", "price"]
    assert shortcuts(await client.get("/api/v1/canned-responses", headers=stranger.headers)) == ["greet"]
    assert shortcuts(await client.get("/api/v1/canned-responses", params={"q": "PRIC"}, headers=admin.headers)) \
        == ["price"]
    r = await client.get(f"/api/v1/canned-responses/{made[1]['id']}", headers=stranger.headers)
    assert r.status_code == 404

    r = await client.patch(f"/api/v1/canned-responses/{made[1]['id']}", json={"body": "New prices", "team_id": None},
                           headers=admin.headers)
    assert r.status_code == 200 and (r.json()["body"], r.json()["team_id"]) == ("New prices", None)
    assert shortcuts(await client.get("/api/v1/canned-responses", headers=stranger.headers)) == ["greet", "price"]
    r = await client.delete(f"/api/v1/canned-responses/{made[1]['id']}", headers=boss.headers)
    assert r.status_code == 204
    assert shortcuts(await client.get("/api/v1/canned-responses", headers=agent.headers)) == ["greet"]
    audit = (await client.get("/api/v1/audit-log", headers=admin.headers)).json()
    actions = {e["action"] for e in audit["items"]}
    assert {"canned.created", "canned.updated", "canned.deleted"} <= actions


async def test_agents_cannot_edit_canned_responses(client, factory: Factory):
    agent = await factory.user("agent")
    boss = await factory.user("supervisor")
    made = (await client.post("/api/v1/canned-responses", json={"shortcut": "bye", "title": "Bye", "body": "Bye!"},
                              headers=boss.headers)).json()
    for r in (await client.post("/api/v1/canned-responses", json={"shortcut": "x", "title": "x", "body": "x"},
                                headers=agent.headers),
              await client.patch(f"/api/v1/canned-responses/{made['id']}", json={"body": "mine"},
                                 headers=agent.headers),
              await client.delete(f"/api/v1/canned-responses/{made['id']}", headers=agent.headers)):
        assert r.status_code == 403 and r.json()["code"] == "supervisor_required"
    r = await client.get(f"/api/v1/canned-responses/{made['id']}", headers=agent.headers)
    assert r.json()["body"] == "Bye!"


@pytest.mark.parametrize(("body", "code", "field"), [
    ({"shortcut": "Has Space", "title": "t", "body": "b"}, "validation_failed", "shortcut"),
    ({"shortcut": "/greet", "title": "t", "body": "b"}, "validation_failed", "shortcut"),
    ({"shortcut": "ok", "title": "", "body": "b"}, "validation_failed", "title"),
    ({"shortcut": "ok", "title": "t", "body": ""}, "validation_failed", "body"),
    ({"shortcut": "ok", "title": "t", "body": "x" * 5001}, "validation_failed", "body"),
    ({"shortcut": "ok", "title": "t", "body": "b", "team_id": 987654}, "team_not_found", "team_id"),
    ({"shortcut": "ok", "title": "t", "body": "b", "extra": 1}, "validation_failed", "extra"),
])
async def test_bad_canned_response_is_refused_with_the_field_named(client, admin, body, code, field):
    r = await client.post("/api/v1/canned-responses", json=body, headers=admin.headers)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code and r.json()["detail"].startswith(f"{field}:"), r.json()
    assert (await client.get("/api/v1/canned-responses", headers=admin.headers)).json() == []


async def test_one_shortcut_means_one_answer(client, factory: Factory, admin):
    team = await factory.team("Sales")
    other = await factory.team("Support")
    ok = {"title": "t", "body": "b"}
    assert (await client.post("/api/v1/canned-responses", json={"shortcut": "a", **ok, "team_id": team},
                              headers=admin.headers)).status_code == 201
    # Another team may reuse it; a global one would shadow the team's and is refused.
    assert (await client.post("/api/v1/canned-responses", json={"shortcut": "a", **ok, "team_id": other},
                              headers=admin.headers)).status_code == 201
    r = await client.post("/api/v1/canned-responses", json={"shortcut": "a", **ok}, headers=admin.headers)
    assert r.status_code == 409 and r.json()["code"] == "shortcut_taken"
    glob = (await client.post("/api/v1/canned-responses", json={"shortcut": "g", **ok}, headers=admin.headers)).json()
    r = await client.post("/api/v1/canned-responses", json={"shortcut": "g", **ok, "team_id": team},
                          headers=admin.headers)
    assert r.status_code == 409 and r.json()["code"] == "shortcut_taken"
    r = await client.patch(f"/api/v1/canned-responses/{glob['id']}", json={"shortcut": "a"}, headers=admin.headers)
    assert r.status_code == 409
    r = await client.patch(f"/api/v1/canned-responses/{glob['id']}", json={"title": None}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "validation_failed"
