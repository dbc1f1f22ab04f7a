"""Agents' typing indicators over the socket, published only for conversations the typist may see; screens closed
when their session ends or their user is deactivated."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from .conftest import PASSWORD
from .test_realtime import bearer, live, next_event, post_inbound, ws_url  # noqa: F401  (live is a fixture)

pytestmark = pytest.mark.skipif(bool(__import__("os").environ.get("KOMMUTATOR_TEST_DATABASE_URL")),
                                reason="sockets live in one process; the SQLite run covers them")


async def quiet(ws, seconds: float = 0.6) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    """Everything the socket says within the time (nothing, when all is well)."""
    said = []
    try:
        while True:
            said.append(json.loads(await asyncio.wait_for(ws.recv(), seconds)))
    except TimeoutError:
        return said


async def test_an_agent_types_and_those_who_may_see_it_are_told(live):  # noqa: F811
    people = live["people"]
    admin = {"token": live["admin"]["Authorization"].split(" ", 1)[1]}
    async with websockets.connect(ws_url(live["base"]), additional_headers=bearer(people["anna"])) as anna, \
            websockets.connect(ws_url(live["base"]), additional_headers=bearer(people["boris"])) as boris, \
            websockets.connect(ws_url(live["base"]), additional_headers=bearer(admin)) as boss:
        for ws in (anna, boris, boss):
            assert (await next_event(ws))["kind"] == "hello"
        sent = await post_inbound(live, "typing-1", "c-typing-1")
        cid = sent["conversation_id"]
        await quiet(anna, 0.3)
        await quiet(boss, 0.3)

        # Anna (the conversation's team) types: the supervisor sees it; Boris (no team) does not.
        await anna.send(json.dumps({"type": "typing", "conversation_id": cid, "typing": True}))
        typing = await next_event(boss)
        assert typing["kind"] == "conversation.typing"
        assert (typing["conversation_id"], typing["who"], typing["user_id"], typing["name"], typing["typing"]) == \
            (cid, "agent", people["anna"]["id"], "Anna", True)
        assert await quiet(boris) == []
        echo = await quiet(anna)  # her own screens hear it too (the workspace skips its own user)
        assert [(e["kind"], e["user_id"]) for e in echo] == [("conversation.typing", people["anna"]["id"])]

        # Boris may not see the conversation: his frames publish nothing, and his socket stays open.
        await boris.send(json.dumps({"type": "typing", "conversation_id": cid, "typing": True}))
        for junk in ("not json", json.dumps([1]), json.dumps({"type": "typing", "conversation_id": "7"}),
                     json.dumps({"type": "typing", "conversation_id": cid, "typing": "yes"}), "x" * 5000):
            await anna.send(junk)
        assert await quiet(boss) == []
        assert await quiet(anna) == []

        # Stopping is passed on at once; a repeat of the same state within two seconds is not.
        await anna.send(json.dumps({"type": "typing", "conversation_id": cid, "typing": False}))
        await anna.send(json.dumps({"type": "typing", "conversation_id": cid, "typing": False}))
        stopped = await next_event(boss)
        assert (stopped["kind"], stopped["typing"]) == ("conversation.typing", False)
        assert await quiet(boss) == []
        await boris.send(json.dumps({"type": "typing", "conversation_id": cid, "typing": False}))
        assert await quiet(boss, 0.3) == []


async def test_a_flood_of_typing_frames_is_cut_quietly(live, clock):  # noqa: F811
    """Toggling typing 500 times publishes a handful of events; the budget refills with time."""
    people = live["people"]
    admin = {"token": live["admin"]["Authorization"].split(" ", 1)[1]}
    async with websockets.connect(ws_url(live["base"]), additional_headers=bearer(people["anna"])) as anna, \
            websockets.connect(ws_url(live["base"]), additional_headers=bearer(admin)) as boss:
        for ws in (anna, boss):
            assert (await next_event(ws))["kind"] == "hello"
        cid = (await post_inbound(live, "typing-flood", "c-typing-flood"))["conversation_id"]
        await quiet(boss, 0.3)
        for n in range(500):
            await anna.send(json.dumps({"type": "typing", "conversation_id": cid, "typing": n % 2 == 0}))
        flood = [e for e in await quiet(boss) if e["kind"] == "conversation.typing"]
        assert 1 <= len(flood) <= 5, f"{len(flood)} typing events were published"
        clock.tick(10)
        await anna.send(json.dumps({"type": "typing", "conversation_id": cid, "typing": True}))
        assert [e["typing"] for e in await quiet(boss) if e["kind"] == "conversation.typing"] == [True]


async def closed_with(ws) -> int:  # type: ignore[no-untyped-def]
    """Wait for the server to close the socket; return the close code."""
    with pytest.raises(ConnectionClosed) as err:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    return int(err.value.rcvd.code) if err.value.rcvd else 0


async def test_logging_out_or_being_deactivated_closes_the_screens(live):  # noqa: F811
    base = live["base"]
    login = httpx.post(f"{base}/api/v1/auth/login", json={"email": "anna@example.com", "password": PASSWORD})
    cookie, csrf = login.cookies["kmt_session"], login.json()["csrf_token"]
    other = httpx.post(f"{base}/api/v1/auth/login", json={"email": "anna@example.com", "password": PASSWORD})
    headers = {"Cookie": f"kmt_session={cookie}"}
    second = {"Cookie": f"kmt_session={other.cookies['kmt_session']}"}
    async with websockets.connect(ws_url(base), additional_headers=headers, origin=base) as tab, \
            websockets.connect(ws_url(base), additional_headers=second, origin=base) as elsewhere:  # type: ignore[arg-type]
        await next_event(tab)
        await next_event(elsewhere)
        r = httpx.post(f"{base}/api/v1/auth/logout", headers={**headers, "X-CSRF-Token": csrf})
        assert r.status_code == 204
        assert await closed_with(tab) == 4401
        await post_inbound(live, "after-logout", "c-after-logout")
        assert (await next_event(elsewhere))["kind"] == "conversation.created", "her other login still hears"

    people = live["people"]
    async with websockets.connect(ws_url(base), additional_headers=bearer(people["boris"])) as boris:
        await next_event(boris)
        r = httpx.patch(f"{base}/api/v1/users/{people['boris']['id']}", json={"active": False}, headers=live["admin"])
        assert r.status_code == 200, r.text
        assert await closed_with(boris) == 4401
    httpx.patch(f"{base}/api/v1/users/{people['boris']['id']}", json={"active": True}, headers=live["admin"])
