"""The website chat channel over HTTP (through the ASGI app, on SQLite and PostgreSQL): visitor tokens, what a
visitor may read, exactly-once messages, upload limits, the offline form, origins and bad input. The socket's
behaviour is in test_channel_webchat_socket.py."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from kommutator.channels.types.webchat.models import WebchatVisitor
from kommutator.contacts.models import Contact
from kommutator.conversations.models import Conversation, Message
from kommutator.crypto import token_hash
from kommutator.ingest.models import InboundEvent
from kommutator.runtime import Runtime
from kommutator.workers.outbox import OutboxWorker

from .conftest import Actor, Factory

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


async def make_chat(client: httpx.AsyncClient, admin: Actor, **settings: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "webchat", "name": "Shop chat", "settings": settings}
    if "team_id" in settings:
        body["team_id"] = settings.pop("team_id")
    r = await client.post("/api/v1/channels", json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def session(client: httpx.AsyncClient, chat: dict[str, Any], token: str | None = None,
                  **headers: str) -> dict[str, Any]:
    r = await client.post(f"/widget/{chat['id']}/session", json={"token": token}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def bearer(s: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {s['token']}"}


async def say(client: httpx.AsyncClient, chat: dict[str, Any], s: dict[str, Any], text: str,
              client_id: str | None = None) -> httpx.Response:
    return await client.post(f"/widget/{chat['id']}/messages", headers=bearer(s),
                             json={"client_id": client_id or uuid.uuid4().hex, "text": text})


async def test_session_issues_a_token_kept_only_as_a_hash_and_recognises_it(client, admin, runtime: Runtime):
    chat = await make_chat(client, admin)
    first = await session(client, chat)
    assert first["token"].startswith("kmw_") and first["renewed"] is True
    assert first["channel"]["id"] == chat["id"] and first["channel"]["color"] == "#4f46e5"
    async with runtime.db.read() as s:
        visitor = (await s.execute(select(WebchatVisitor))).scalar_one()
    assert visitor.token_hash == token_hash(first["token"]) and first["token"] not in visitor.token_hash
    again = await session(client, chat, first["token"])
    assert again["token"] == first["token"] and again["renewed"] is False
    stranger = await session(client, chat, "kmw_" + "x" * 43)
    assert stranger["token"] != first["token"] and stranger["renewed"] is True
    # The token of one chat is nobody on another.
    other = await make_chat(client, admin)
    assert (await session(client, other, first["token"]))["token"] != first["token"]
    r = await client.get(f"/widget/{chat['id']}/messages", headers={"Authorization": "Bearer kmw_forged"})
    assert r.status_code == 401 and r.json()["code"] == "invalid_visitor_token"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["access-control-allow-origin"] == "*", "the widget must be able to read the refusal"


async def test_a_resent_message_with_the_same_client_id_is_taken_once(client, admin, runtime: Runtime):
    chat = await make_chat(client, admin)
    s = await session(client, chat)
    first = await say(client, chat, s, "Where is my order?", "client-msg-0001")
    again = await say(client, chat, s, "Where is my order?", "client-msg-0001")
    assert first.status_code == again.status_code == 200, again.text
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    assert again.json()["message_id"] == first.json()["message_id"]
    async with runtime.db.read() as db:
        assert await db.scalar(select(func.count()).select_from(Message)) == 1
        assert await db.scalar(select(func.count()).select_from(InboundEvent)
                               .where(InboundEvent.channel_id == chat["id"])) == 1
    listed = (await client.get(f"/widget/{chat['id']}/messages", headers=bearer(s))).json()["messages"]
    assert [(m["text"], m["client_id"]) for m in listed] == [("Where is my order?", "client-msg-0001")]


async def test_a_visitor_sees_their_replies_but_never_notes_or_another_visitors_chat(
        client, admin, factory: Factory, runtime: Runtime):
    chat = await make_chat(client, admin)
    agent = await factory.user("agent", name="Anna Petrova")
    alice, bob = await session(client, chat), await session(client, chat)
    sent = (await say(client, chat, alice, "Hello from Alice")).json()
    async with runtime.db.read() as db:
        conv_id = await db.scalar(select(Message.conversation_id).where(Message.id == sent["message_id"]))
    for body in ({"text": "Hi Alice, Anna here."}, {"kind": "note", "text": "SECRET internal note"}):
        r = await client.post(f"/api/v1/conversations/{conv_id}/messages", json=body, headers=admin.headers)
        assert r.status_code == 201, r.text
    r = await client.post(f"/api/v1/conversations/{conv_id}/assign", json={"assignee_id": agent.id},
                          headers=admin.headers)
    assert r.status_code == 200, r.text
    before = (await client.get(f"/widget/{chat['id']}/messages", headers=bearer(alice))).json()
    assert [m["text"] for m in before["messages"]] == ["Hello from Alice"], "a reply shows once the outbox sent it"
    r = await client.post(f"/api/v1/conversations/{conv_id}/attachments", headers=admin.headers,
                          data={"text": "Your invoice"},
                          files={"file": ("invoice.pdf", b"%PDF-1.4 demo", "application/pdf")})
    assert r.status_code == 201, r.text
    assert await OutboxWorker(runtime).run_due() == 2
    seen = (await client.get(f"/widget/{chat['id']}/messages", headers=bearer(alice))).json()
    assert [(m["direction"], m["text"]) for m in seen["messages"]] == [("in", "Hello from Alice"),
                                                                        ("out", "Hi Alice, Anna here."),
                                                                        ("out", "Your invoice")]
    [invoice] = seen["messages"][2]["attachments"]
    got = await client.get(f"/widget/{chat['id']}/attachments/{invoice['id']}", headers=bearer(alice))
    assert got.status_code == 200 and got.content == b"%PDF-1.4 demo"
    theirs = await client.get(f"/widget/{chat['id']}/attachments/{invoice['id']}", headers=bearer(bob))
    assert theirs.status_code == 404
    assert seen["messages"][1]["name"] == admin.principal.name and seen["agent"] == "Anna Petrova"
    assert "SECRET" not in str(seen)
    assert (await client.get(f"/widget/{chat['id']}/messages", headers=bearer(bob))).json()["messages"] == []
    after = (await client.get(f"/widget/{chat['id']}/messages?after_id={seen['messages'][0]['id']}",
                              headers=bearer(alice))).json()
    assert [m["text"] for m in after["messages"]] == ["Hi Alice, Anna here.", "Your invoice"]


async def test_files_within_the_channels_limits_arrive_and_others_are_refused_clearly(client, admin,
                                                                                    runtime: Runtime):
    chat = await make_chat(client, admin, max_file_mb=1, file_types=["image/*", "application/pdf"])
    s, other = await session(client, chat), await session(client, chat)
    assert s["channel"]["max_file_bytes"] == 1_000_000 and s["channel"]["file_types"] == ["image/*", "application/pdf"]
    url = f"/widget/{chat['id']}/files"
    big = await client.post(url, headers=bearer(s), data={"client_id": "upload-big-1"},
                            files={"file": ("huge.png", b"\x89PNG" + b"0" * 1_000_001, "image/png")})
    assert big.status_code == 413 and big.json()["code"] == "file_too_large", big.text
    assert "at most 1 MB" in big.json()["detail"]
    html = await client.post(url, headers=bearer(s), data={"client_id": "upload-html-1"},
                             files={"file": ("page.html", b"<script>alert(1)</script>", "text/html")})
    assert html.status_code == 415 and html.json()["code"] == "file_type_not_allowed"
    assert "text/html" in html.json()["detail"] and html.json()["allowed"] == ["image/*", "application/pdf"]
    empty = await client.post(url, headers=bearer(s), data={"client_id": "upload-empty-1"},
                              files={"file": ("nothing.png", b"", "image/png")})
    assert empty.status_code == 422 and empty.json()["code"] == "empty_file"
    ok = await client.post(url, headers=bearer(s), data={"client_id": "upload-ok-1", "text": "my receipt"},
                           files={"file": ("../../receipt.png", PNG, "image/png")})
    assert ok.status_code == 200, ok.text
    again = await client.post(url, headers=bearer(s), data={"client_id": "upload-ok-1", "text": "my receipt"},
                              files={"file": ("receipt.png", PNG, "image/png")})
    assert again.json()["duplicate"] is True and again.json()["message_id"] == ok.json()["message_id"]
    [msg] = (await client.get(f"/widget/{chat['id']}/messages", headers=bearer(s))).json()["messages"]
    [att] = msg["attachments"]
    assert msg["text"] == "my receipt" and att["filename"] == "receipt.png" and att["size"] == len(PNG)
    got = await client.get(f"/widget/{chat['id']}/attachments/{att['id']}", headers=bearer(s))
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-disposition"].startswith("attachment")
    assert got.headers["x-content-type-options"] == "nosniff"
    theirs = await client.get(f"/widget/{chat['id']}/attachments/{att['id']}", headers=bearer(other))
    assert theirs.status_code == 404 and theirs.json()["code"] == "attachment_not_found"


async def test_offline_form_opens_a_conversation_with_the_email_on_the_contact(client, admin, factory: Factory,
                                                                             runtime: Runtime):
    team = await factory.team("Support")
    chat = await make_chat(client, admin, team_id=team)
    agent = await factory.user("agent", teams=[team])
    s = await session(client, chat)
    assert s["channel"]["online"] is False and s["channel"]["offline_form"] is True
    r = await client.post(f"/widget/{chat['id']}/offline", headers=bearer(s), json={
        "client_id": "offline-0001", "email": "Visitor@Example.com", "name": "Pavel", "text": "Call me back"})
    assert r.status_code == 200, r.text
    async with runtime.db.read() as db:
        msg = await db.get(Message, r.json()["message_id"])
        assert msg is not None and msg.payload["offline"] is True
        assert msg.payload["reply_to_email"] == "visitor@example.com"
        conv = await db.get(Conversation, msg.conversation_id)
        assert conv is not None and conv.status == "queued" and conv.team_id == team
        contact = await db.get(Contact, conv.contact_id)
        assert contact is not None and contact.email == "visitor@example.com" and contact.name == "Pavel"
    bad = await client.post(f"/widget/{chat['id']}/offline", headers=bearer(s),
                            json={"client_id": "offline-0002", "email": "not-an-email", "text": "x"})
    assert bad.status_code == 422 and bad.json()["code"] == "validation_failed" and "email" in bad.json()["detail"]
    r = await client.patch(f"/api/v1/users/{agent.id}", json={"presence": "online"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert (await session(client, chat, s["token"]))["channel"]["online"] is True


async def test_only_allowed_websites_may_use_the_chat(client, admin):
    chat = await make_chat(client, admin, allowed_origins=["https://shop.example.com"])
    refused = await client.post(f"/widget/{chat['id']}/session", json={}, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and refused.json()["code"] == "origin_not_allowed"
    assert "https://evil.example" in refused.json()["detail"]
    assert refused.headers["access-control-allow-origin"] == "*"
    ok = await session(client, chat, Origin="https://shop.example.com")
    r = await client.get(f"/widget/{chat['id']}/messages", headers={**bearer(ok), "Origin": "https://evil.example"})
    assert r.status_code == 403, "a stolen token is no use on another website"
    pre = await client.options(f"/widget/{chat['id']}/session", headers={
        "Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert pre.status_code == 204 and "authorization" in pre.headers["access-control-allow-headers"]
    assert pre.headers["access-control-allow-origin"] == "*" and "POST" in pre.headers["access-control-allow-methods"]
    bad = await client.patch(f"/api/v1/channels/{chat['id']}", headers=admin.headers,
                             json={"settings": {"allowed_origins": ["https://shop.example.com/path"]}})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_channel_config"
    assert "allowed_origins" in bad.json()["detail"]


async def test_bad_input_gets_a_problem_that_says_what_to_fix(client, admin, api_channel):
    chat = await make_chat(client, admin, prechat_fields=["name", "email"])
    assert (await client.post("/widget/999999/session", json={})).json()["code"] == "chat_not_found"
    r = await client.post(f"/widget/{api_channel['id']}/session", json={})
    assert r.status_code == 404 and r.json()["code"] == "chat_not_found", "an API channel is not a website chat"
    s = await session(client, chat)
    assert s["missing"] == ["name", "email"]
    r = await client.post(f"/widget/{chat['id']}/messages", headers=bearer(s), json={"client_id": "no", "text": "x"})
    assert r.status_code == 422 and r.json()["code"] == "validation_failed" and "client_id" in r.json()["detail"]
    r = await client.post(f"/widget/{chat['id']}/messages", headers={**bearer(s), "content-type": "application/json"},
                          content=b"{not json")
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"
    r = await say(client, chat, s, "hello")
    assert r.status_code == 422 and r.json()["code"] == "prechat_required" and r.json()["missing"] == ["name", "email"]
    r = await client.patch(f"/widget/{chat['id']}/visitor", headers=bearer(s), json={"phone": "call me"})
    assert r.status_code == 422 and "phone" in r.json()["detail"]
    r = await client.patch(f"/widget/{chat['id']}/visitor", headers=bearer(s),
                           json={"name": "<img src=x onerror=alert(1)>", "email": "v@example.com"})
    assert r.status_code == 200 and r.json()["missing"] == []
    r = await client.post(f"/widget/{chat['id']}/messages", headers=bearer(s),
                          json={"client_id": "empty-000001", "text": ""})
    assert r.status_code == 422 and r.json()["code"] == "empty_message"
    r = await say(client, chat, s, "<script>alert('x')</script>")
    assert r.status_code == 200, r.text
    [m] = (await client.get(f"/widget/{chat['id']}/messages", headers=bearer(s))).json()["messages"]
    assert m["text"] == "<script>alert('x')</script>", "kept verbatim; the widget renders it as text"


async def test_button_press_arrives_as_the_buttons_id(client, admin, runtime: Runtime):
    chat = await make_chat(client, admin)
    s = await session(client, chat)
    r = await client.post(f"/widget/{chat['id']}/messages", headers=bearer(s),
                          json={"client_id": "press-000001", "text": "Track my order", "button": "track"})
    assert r.status_code == 200, r.text
    async with runtime.db.read() as db:
        msg = await db.get(Message, r.json()["message_id"])
    assert msg is not None and msg.text == "Track my order" and msg.payload["button"] == "track"


async def test_channel_setup_shows_the_embed_snippet(client, admin):
    chat = await make_chat(client, admin)
    assert f'<script src="http://testserver/widget.js" data-channel="{chat["id"]}" async></script>' in chat["setup"]
    assert chat["generated_credentials"] == {}
    types = (await client.get("/api/v1/channel-types", headers=admin.headers)).json()
    webchat = next(t for t in types if t["type"] == "webchat")
    fields = set(webchat["settings_schema"]["properties"])
    assert {"allowed_origins", "prechat_fields", "color", "max_file_mb"} <= fields
    js = await client.get("/widget.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "attachShadow" in js.text and "innerHTML" not in js.text
    hook = await client.post(f"/webhooks/{chat['id']}", json={})
    assert hook.status_code == 404 and hook.json()["code"] == "no_webhooks_on_webchat"
    css = await client.get("/widget.css")
    assert css.status_code == 200 and css.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("bad", [{"color": "red"}, {"prechat_fields": ["age"]}, {"file_types": ["images"]},
                                 {"max_file_mb": 0}, {"language": "de"}])
async def test_invalid_settings_are_refused(client, admin, bad):
    r = await client.post("/api/v1/channels", json={"type": "webchat", "name": "x", "settings": bad},
                          headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "invalid_channel_config", r.text


async def test_one_address_cannot_start_endless_chats_nor_one_visitor_flood(client, admin):
    chat = await make_chat(client, admin)
    first = await session(client, chat)
    for _ in range(29):
        await session(client, chat)
    refused = await client.post(f"/widget/{chat['id']}/session", json={})
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_requests"
    assert int(refused.headers["retry-after"]) > 0 and refused.headers["access-control-allow-origin"] == "*"
    assert (await session(client, chat, first["token"]))["token"] == first["token"], "a known visitor still gets in"
    for n in range(40):
        assert (await say(client, chat, first, f"message {n}")).status_code == 200
    flood = await say(client, chat, first, "one too many")
    assert flood.status_code == 429 and "messages" in flood.json()["detail"]
