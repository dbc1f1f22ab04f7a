"""The visitor's WebSocket against a real uvicorn server (its outbox worker running): messages acknowledged
only once committed and taken once however often they are resent, replies arriving live, catch-up after a
reconnect, typing both ways, delivery reports, refusals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from kommutator.agents.actions import do_create_team, do_create_user, do_set_team_members
from kommutator.agents.schemas import TeamCreate, UserCreate
from kommutator.auth.actions import do_create_api_token
from kommutator.auth.principal import Principal
from kommutator.channels.types.webchat.socket import VisitorConnection, WidgetHub
from kommutator.config import load_settings
from kommutator.db import Tx
from kommutator.events import ConversationTyping, InProcessBus, MessageCreated
from kommutator.runtime import Runtime

from .conftest import _HASH, PASSWORD, PG_URL, _truncate_all
from .live_server import bound_socket, run_server


async def _seed(settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    rt = Runtime.build(settings)
    await rt.db.start()

    async def job(tx: Tx) -> dict[str, Any]:
        people: dict[str, Any] = {}
        for name, role in (("admin", "admin"), ("anna", "agent")):
            user = await do_create_user(tx, None, UserCreate(email=f"{name}@example.com", name=f"{name.title()} K",
                                                             password=PASSWORD, role=role),  # type: ignore[arg-type]
                                        password_hash=_HASH)
            p = Principal(user_id=user.id, name=user.name, role=role, team_ids=frozenset())
            people[name] = {"id": user.id, "token": (await do_create_api_token(tx, p, "wc"))[1]}
        team = await do_create_team(tx, None, TeamCreate(name="Support"))  # type: ignore[arg-type]
        admin = Principal(user_id=people["admin"]["id"], name="Admin", role="admin", team_ids=frozenset())
        await do_set_team_members(tx, admin, team.id, [people["anna"]["id"]])
        people["team_id"] = team.id
        return people

    try:
        return await rt.db.write(job)
    finally:
        await rt.db.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, database_template: str):  # type: ignore[no-untyped-def]
    tmp = Path(tmp_path_factory.mktemp("webchat"))
    if PG_URL:  # the session's PostgreSQL database, emptied (earlier tests leave their rows)
        asyncio.run(_truncate_all(database_template))
        url = database_template
    else:
        shutil.copy(database_template, tmp / "wc.db")
        url = f"sqlite+aiosqlite:///{tmp / 'wc.db'}"
    sock, port = bound_socket()
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(data_dir=tmp / "data", database_url=url,
                             listen_port=port, public_base_url=base, secret_key="webchat-" + "s" * 32)
    people = asyncio.run(_seed(settings))
    with run_server(settings, sock) as served:
        admin = {"Authorization": f"Bearer {people['admin']['token']}"}
        chat = httpx.post(f"{served}/api/v1/channels", headers=admin, json={
            "type": "webchat", "name": "Shop", "team_id": people["team_id"],
            "settings": {"allowed_origins": ["https://shop.example.com"]}}).json()
        yield {"base": served, "people": people, "chat": chat, "admin": admin}


def socket_url(live: dict[str, Any]) -> str:
    return live["base"].replace("http://", "ws://") + f"/widget/{live['chat']['id']}/socket"


async def new_visitor(live: dict[str, Any]) -> str:
    async with httpx.AsyncClient() as c:
        r = await c.post(f"{live['base']}/widget/{live['chat']['id']}/session", json={})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


_skipped: dict[int, list[dict[str, Any]]] = {}


async def frame(ws, kind: str, seconds: float = 6.0) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The next frame of this type; frames of other types are kept for later calls, in order."""
    backlog = _skipped.setdefault(id(ws), [])
    for data in backlog:
        if data["type"] == kind:
            backlog.remove(data)
            return data

    async def wait() -> dict[str, Any]:
        while True:
            data = json.loads(await ws.recv())
            if data["type"] == kind:
                return data  # type: ignore[no-any-return]
            backlog.append(data)

    return await asyncio.wait_for(wait(), seconds)


async def hello(ws, token: str, after_id: int = 0) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    await ws.send(json.dumps({"type": "hello", "token": token, "after_id": after_id}))
    return await frame(ws, "ready")


async def agent_reply(live: dict[str, Any], conversation_id: int, text: str) -> None:
    anna = {"Authorization": f"Bearer {live['people']['anna']['token']}"}
    async with httpx.AsyncClient() as c:
        r = await c.post(f"{live['base']}/api/v1/conversations/{conversation_id}/messages", json={"text": text},
                         headers=anna)
    assert r.status_code == 201, r.text


async def conversation_of(live: dict[str, Any], message_id: int) -> int:
    async with httpx.AsyncClient() as c:
        r = await c.get(f"{live['base']}/api/v1/conversations", headers=live["admin"])
    for conv in r.json()["items"]:
        async with httpx.AsyncClient() as c:
            msgs = (await c.get(f"{live['base']}/api/v1/conversations/{conv['id']}/messages",
                                headers=live["admin"])).json()["items"]
        if any(m["id"] == message_id for m in msgs):
            return int(conv["id"])
    raise AssertionError(f"message {message_id} is in no conversation")


QUESTION = "Is the blue one in stock?"


async def test_messages_are_acknowledged_once_taken_once_and_replies_arrive_live(live):
    token = await new_visitor(live)
    async with websockets.connect(socket_url(live)) as ws:
        ready = await hello(ws, token)
        assert ready["online"] is False and ready["missing"] == []
        await ws.send(json.dumps({"type": "message", "client_id": "sock-msg-0001", "text": QUESTION}))
        ack = await frame(ws, "ack")
        assert ack["client_id"] == "sock-msg-0001" and ack["duplicate"] is False
        shown = await frame(ws, "messages")
        assert [(m["id"], m["client_id"]) for m in shown["messages"]] == [(ack["message_id"], "sock-msg-0001")]
        # The widget did not hear the ack (say the connection dropped) and sends again: the same message.
        await ws.send(json.dumps({"type": "message", "client_id": "sock-msg-0001", "text": QUESTION}))
        again = await frame(ws, "ack")
        assert again["duplicate"] is True and again["message_id"] == ack["message_id"]
        conv = await conversation_of(live, ack["message_id"])
        await agent_reply(live, conv, "Yes, three left!")
        reply = await frame(ws, "messages", seconds=8)  # the server's outbox polls every second
        [m] = reply["messages"]
        assert (m["direction"], m["sender"], m["text"], m["name"]) == ("out", "agent", "Yes, three left!", "Anna K")
        assert (await frame(ws, "agent"))["name"] == "Anna K", "the agent who replied was assigned by replying"
        await ws.send(json.dumps({"type": "seen", "ids": [m["id"]]}))
        for _ in range(50):
            async with httpx.AsyncClient() as c:
                items = (await c.get(f"{live['base']}/api/v1/conversations/{conv}/messages",
                                     headers=live["admin"])).json()["items"]
            if next(i for i in items if i["id"] == m["id"])["status"] == "delivered":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the reply the widget showed was not marked delivered")
    async with httpx.AsyncClient() as c:
        items = (await c.get(f"{live['base']}/api/v1/conversations/{conv}/messages", headers=live["admin"])).json()
    assert [i["text"] for i in items["items"] if i["direction"] == "in"] == [QUESTION]


async def test_a_reconnecting_widget_catches_up_from_the_last_message_it_saw(live):
    token = await new_visitor(live)
    async with websockets.connect(socket_url(live)) as ws:
        await hello(ws, token)
        await ws.send(json.dumps({"type": "message", "client_id": "catch-up-001", "text": "first"}))
        ack = await frame(ws, "ack")
    conv = await conversation_of(live, ack["message_id"])
    await agent_reply(live, conv, "while you were away")
    await asyncio.sleep(2.5)  # let the server's outbox hand it over while no socket is open
    async with websockets.connect(socket_url(live)) as ws:
        await hello(ws, token, after_id=ack["message_id"])
        missed = await frame(ws, "messages")
        assert [m["text"] for m in missed["messages"]] == ["while you were away"]
    async with websockets.connect(socket_url(live)) as ws:
        await hello(ws, token, after_id=0)
        everything = await frame(ws, "messages")
        assert [m["text"] for m in everything["messages"]] == ["first", "while you were away"]


async def test_visitor_typing_reaches_the_agents_screen(live):
    token = await new_visitor(live)
    anna = {"Authorization": f"Bearer {live['people']['anna']['token']}"}
    agent_ws_url = live["base"].replace("http://", "ws://") + "/api/v1/realtime"
    async with websockets.connect(socket_url(live)) as ws, \
            websockets.connect(agent_ws_url, additional_headers=anna) as agent:
        await hello(ws, token)
        await ws.send(json.dumps({"type": "message", "client_id": "typing-0001", "text": "hi"}))
        ack = await frame(ws, "ack")
        await ws.send(json.dumps({"type": "typing", "typing": True}))

        async def typing_event() -> dict[str, Any]:
            while True:
                event = json.loads(await agent.recv())
                if event["kind"] == "conversation.typing":
                    return event  # type: ignore[no-any-return]

        event = await asyncio.wait_for(typing_event(), 5)
        assert event["who"] == "contact" and event["typing"] is True
        assert event["conversation_id"] == await conversation_of(live, ack["message_id"])


async def test_agent_typing_is_forwarded_only_to_that_conversations_visitor():
    bus = InProcessBus()
    hub = WidgetHub(bus)
    mine, other = VisitorConnection("wv_a", 1, {10}), VisitorConnection("wv_b", 2, {20})
    hub.connections |= {mine, other}
    await bus.publish(ConversationTyping(conversation_id=10, team_id=None, assignee_id=5, who="agent", name="Anna"))
    await bus.publish(ConversationTyping(conversation_id=10, team_id=None, assignee_id=5, who="contact"))
    assert mine.queue.get_nowait() == {"type": "typing", "typing": True, "name": "Anna"}
    assert mine.queue.empty() and other.queue.empty(), "the visitor's own typing is not echoed; others hear nothing"
    await bus.publish(MessageCreated(conversation_id=20, team_id=None, assignee_id=None, message_id=7))
    await bus.publish(MessageCreated(conversation_id=20, team_id=None, assignee_id=None, message_id=8))
    assert other.queue.qsize() == 1 and mine.queue.empty(), "changes coalesce into one read of the database"


async def test_sockets_without_a_valid_token_or_from_other_websites_are_refused(live):
    async with websockets.connect(socket_url(live)) as ws:
        await ws.send(json.dumps({"type": "hello", "token": "kmw_forged", "after_id": 0}))
        assert (await frame(ws, "error"))["code"] == "invalid_visitor_token"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    with pytest.raises((ConnectionClosed, websockets.InvalidStatus)):
        async with websockets.connect(socket_url(live), origin="https://evil.example") as ws:  # type: ignore[arg-type]
            await ws.recv()
    token = await new_visitor(live)
    async with websockets.connect(socket_url(live), origin="https://shop.example.com") as ws:  # type: ignore[arg-type]
        await hello(ws, token)
        await ws.send("not json")
        assert (await frame(ws, "error"))["code"] == "invalid_json"
        await ws.send(json.dumps({"type": "message", "client_id": "x", "text": "hi"}))
        bad = await frame(ws, "error")
        assert bad["code"] == "validation_failed" and "client_id" in bad["detail"]


async def test_a_flood_of_visitor_typing_frames_is_cut_quietly(live, clock):
    """1,000 typing frames reach the agents as a handful; the socket stays open and later typing passes."""
    token = await new_visitor(live)
    anna = {"Authorization": f"Bearer {live['people']['anna']['token']}"}
    agent_ws_url = live["base"].replace("http://", "ws://") + "/api/v1/realtime"
    async with websockets.connect(socket_url(live)) as ws, \
            websockets.connect(agent_ws_url, additional_headers=anna) as agent:
        await hello(ws, token)
        await ws.send(json.dumps({"type": "message", "client_id": "flood-0001", "text": "hi"}))
        await frame(ws, "ack")

        async def typing_events(seconds: float) -> list[dict[str, Any]]:
            seen: list[dict[str, Any]] = []
            with contextlib.suppress(TimeoutError):
                while True:
                    event = json.loads(await asyncio.wait_for(agent.recv(), seconds))
                    if event["kind"] == "conversation.typing":
                        seen.append(event)
            return seen

        await typing_events(0.3)
        for n in range(1000):
            await ws.send(json.dumps({"type": "typing", "typing": n % 2 == 0}))
        await ws.send(json.dumps({"type": "message", "client_id": "flood-0002", "text": "still here"}))
        await frame(ws, "ack")  # the socket is open and served after the flood
        flood = await typing_events(0.6)
        assert 1 <= len(flood) <= 5, f"{len(flood)} typing events reached the agent"

        clock.tick(10)  # the budget refills with time
        await ws.send(json.dumps({"type": "typing", "typing": True}))
        later = await typing_events(0.6)
        assert [e["typing"] for e in later] == [True]


async def test_a_deeply_nested_frame_is_an_error_frame_not_a_closed_socket(live):
    token = await new_visitor(live)
    async with websockets.connect(socket_url(live)) as ws:
        await hello(ws, token)
        await ws.send("[" * 50_000 + "]" * 50_000)
        assert (await frame(ws, "error"))["code"] == "too_deep"
        await ws.send(json.dumps({"type": "message", "client_id": "deep-0001", "text": "hi"}))
        await frame(ws, "ack")
