"""The generic API channel: an integrator posts customer messages; nothing lost, nothing doubled."""

from __future__ import annotations

from sqlalchemy import func, select

from kommutator.channels.models import Channel
from kommutator.contacts.models import Contact
from kommutator.conversations.models import Message
from kommutator.ingest.models import InboundEvent

from .conftest import post_inbound


async def count(runtime, model) -> int:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_message_creates_contact_and_conversation_and_shows_to_agents(client, admin, api_channel):
    r = await post_inbound(client, api_channel, msg_id="m-1", contact="crm-42", text="Где мой заказ?",
                           name="Иван")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] and body["duplicate"] is False and body["message_id"]
    conv = (await client.get(f"/api/v1/conversations/{body['conversation_id']}", headers=admin.headers)).json()
    assert conv["status"] == "queued"
    assert conv["contact"]["name"] == "Иван"
    assert conv["contact"]["identities"][0] == {**conv["contact"]["identities"][0], "channel_type": "api",
                                                 "external_id": "crm-42"}
    assert [m["text"] for m in conv["messages"]] == ["Где мой заказ?"]
    assert conv["messages"][0]["channel_id"] == api_channel["id"]


async def test_provider_retry_is_a_no_op(client, runtime, api_channel):
    first = await post_inbound(client, api_channel, msg_id="m-1", contact="c1")
    again = await post_inbound(client, api_channel, msg_id="m-1", contact="c1")
    assert first.status_code == again.status_code == 200
    assert again.json()["duplicate"] is True
    assert await count(runtime, Message) == 1
    assert await count(runtime, InboundEvent) == 1


async def test_next_message_joins_the_open_conversation(client, api_channel):
    a = (await post_inbound(client, api_channel, msg_id="a", contact="c1")).json()
    b = (await post_inbound(client, api_channel, msg_id="b", contact="c1")).json()
    other = (await post_inbound(client, api_channel, msg_id="c", contact="c2")).json()
    assert a["conversation_id"] == b["conversation_id"] != other["conversation_id"]


async def test_wrong_token_is_refused_and_nothing_is_stored(client, runtime, api_channel):
    r = await client.post(f"/webhooks/{api_channel['id']}", json={"id": "x", "contact": {"id": "c"}, "text": "t"},
                          headers={"Authorization": "Bearer kmi_wrong"})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "invalid_channel_token"
    assert await count(runtime, InboundEvent) == 0


async def test_bad_bodies_get_clear_errors_and_leave_nothing(client, runtime, api_channel):
    token = api_channel["generated_credentials"]["inbound_token"]
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    url = f"/webhooks/{api_channel['id']}"
    r = await client.post(url, content=b"{not json", headers=headers)
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"
    r = await client.post(url, json={"id": "x", "contact": {"id": "c"}}, headers=headers)
    assert r.status_code == 422 and r.json()["code"] == "validation_failed"
    assert "text" in r.json()["detail"]
    r = await client.post(url, json={"id": "x", "contact": {"id": "c", "email": "nope"}, "text": "t"},
                          headers=headers)
    assert r.status_code == 422
    assert await count(runtime, InboundEvent) == 0
    assert await count(runtime, Contact) == 0


async def test_unknown_or_disabled_channel_is_404(client, admin, api_channel):
    r = await client.post("/webhooks/999999", json={})
    assert r.status_code == 404 and r.json()["code"] == "channel_not_found"
    await client.patch(f"/api/v1/channels/{api_channel['id']}", json={"enabled": False}, headers=admin.headers)
    r = await post_inbound(client, api_channel, msg_id="m", contact="c")
    assert r.status_code == 404 and r.json()["code"] == "channel_disabled"


async def test_channel_credentials_are_encrypted_at_rest(client, runtime, admin, api_channel):
    token = api_channel["generated_credentials"]["inbound_token"]
    async with runtime.db.read() as s:
        stored = (await s.execute(select(Channel.credentials_encrypted))).scalar_one()
    assert token not in stored and "inbound_token" not in stored
    listed = (await client.get("/api/v1/channels", headers=admin.headers)).json()
    assert token not in str(listed), "credentials must never be returned after creation"
    assert listed[0]["credential_fields"] == ["inbound_token", "outbound_secret"]


async def test_concurrent_redeliveries_store_one_message(client, runtime, api_channel):
    import asyncio

    results = await asyncio.gather(*[post_inbound(client, api_channel, msg_id="same", contact="c") for _ in range(20)])
    assert all(r.status_code == 200 for r in results)
    assert sum(1 for r in results if not r.json()["duplicate"]) == 1
    assert await count(runtime, Message) == 1


async def test_nul_characters_are_refused_before_anything_is_stored(client, runtime, api_channel):
    r = await post_inbound(client, api_channel, msg_id="nul", contact="c", text="bad\x00text")
    assert r.status_code == 422 and r.json()["code"] == "validation_failed"
    assert await count(runtime, InboundEvent) == 0


async def test_simultaneous_first_messages_make_one_contact_and_one_conversation(client, runtime, admin,
                                                                                 api_channel):
    """On PostgreSQL these run in parallel transactions; the identity insert and the contact lock keep them
    one story: first for a new customer, then for a known one whose last conversation was resolved."""
    import asyncio

    from kommutator.conversations.models import Conversation

    async def burst(tag: str) -> set[int]:
        results = await asyncio.gather(*[post_inbound(client, api_channel, msg_id=f"{tag}-{i}", contact="customer",
                                                      text=f"part {i}") for i in range(20)])
        assert [r.status_code for r in results] == [200] * 20, [r.text for r in results if r.status_code != 200]
        return {r.json()["conversation_id"] for r in results}

    (first,) = await burst("new")
    assert await count(runtime, Contact) == 1
    r = await client.post(f"/api/v1/conversations/{first}/status", json={"status": "resolved"}, headers=admin.headers)
    assert r.status_code == 200
    (second,) = await burst("known")
    assert second != first
    assert await count(runtime, Contact) == 1
    assert await count(runtime, Conversation) == 2
    assert await count(runtime, Message) == 40


async def test_a_failure_while_processing_keeps_the_event_and_asks_for_a_retry(client, runtime, api_channel,
                                                                                 monkeypatch):
    import kommutator.ingest.actions as ingest_actions

    real = ingest_actions.receive_message
    calls = {"n": 0}

    def flaky(conn, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database hiccup")
        return real(conn, **kw)

    monkeypatch.setattr(ingest_actions, "receive_message", flaky)
    first = await post_inbound(client, api_channel, msg_id="flaky-1", contact="c", text="please keep me")
    assert first.status_code == 503 and first.json()["code"] == "processing_failed"
    assert first.headers["retry-after"]
    async with runtime.db.read() as s:
        (event,) = (await s.execute(select(InboundEvent))).scalars().all()
    assert event.status == "failed" and "database hiccup" in event.error and "please keep me" in event.body
    assert await count(runtime, Message) == 0
    retry = await post_inbound(client, api_channel, msg_id="flaky-1", contact="c", text="please keep me")
    assert retry.status_code == 200 and retry.json()["duplicate"] is False
    again = await post_inbound(client, api_channel, msg_id="flaky-1", contact="c", text="please keep me")
    assert again.json()["duplicate"] is True
    assert await count(runtime, Message) == 1
