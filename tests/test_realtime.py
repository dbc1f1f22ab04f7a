"""Live updates over a real WebSocket: each screen gets exactly the events its user may see."""

from __future__ import annotations

import asyncio
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
from kommutator.config import load_settings
from kommutator.db import Tx
from kommutator.runtime import Runtime

from .conftest import _HASH, PASSWORD, PG_URL
from .live_server import bound_socket, run_server

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="sockets live in one process; the SQLite run covers them")


async def _seed(settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    rt = Runtime.build(settings)
    await rt.db.start()

    async def job(tx: Tx) -> dict[str, Any]:
        people: dict[str, Any] = {}
        for name, role in (("admin", "admin"), ("anna", "agent"), ("boris", "agent")):
            user = await do_create_user(tx, None, UserCreate(email=f"{name}@example.com", name=name.title(),
                                                             password=PASSWORD, role=role),  # type: ignore[arg-type]
                                        password_hash=_HASH)
            p = Principal(user_id=user.id, name=user.name, role=role, team_ids=frozenset())
            people[name] = {"id": user.id, "token": (await do_create_api_token(tx, p, "rt"))[1]}
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
    tmp = Path(tmp_path_factory.mktemp("realtime"))
    shutil.copy(database_template, tmp / "rt.db")
    sock, port = bound_socket()
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(data_dir=tmp / "data", database_url=f"sqlite+aiosqlite:///{tmp / 'rt.db'}",
                             listen_port=port, public_base_url=base, secret_key="realtime-" + "s" * 32)
    people = asyncio.run(_seed(settings))
    with run_server(settings, sock) as served:
        admin = {"Authorization": f"Bearer {people['admin']['token']}"}
        channel = httpx.post(f"{served}/api/v1/channels", headers=admin,
                             json={"type": "api", "name": "Shop", "team_id": people["team_id"]}).json()
        yield {"base": served, "people": people, "channel": channel, "admin": admin}


def bearer(person: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {person['token']}"}


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/api/v1/realtime"


async def next_event(ws, seconds: float = 5.0) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return json.loads(await asyncio.wait_for(ws.recv(), seconds))


async def post_inbound(live: dict[str, Any], msg_id: str, contact: str) -> dict[str, Any]:
    ch = live["channel"]
    async with httpx.AsyncClient() as c:
        r = await c.post(f"{live['base']}/webhooks/{ch['id']}", json={"id": msg_id, "contact": {"id": contact},
                                                                       "text": "hi"},
                         headers={"Authorization": f"Bearer {ch['generated_credentials']['inbound_token']}"})
    assert r.status_code == 200, r.text
    return r.json()


async def test_team_agent_sees_new_conversation_live_and_outsider_does_not(live):
    people = live["people"]
    async with websockets.connect(ws_url(live["base"]), additional_headers=bearer(people["anna"])) as anna, \
            websockets.connect(ws_url(live["base"]), additional_headers=bearer(people["boris"])) as boris:
        assert (await next_event(anna))["kind"] == "hello"
        assert (await next_event(boris))["kind"] == "hello"
        sent = await post_inbound(live, "rt-1", "c-rt-1")
        created = await next_event(anna)
        message = await next_event(anna)
        assert created["kind"] == "conversation.created" and created["conversation_id"] == sent["conversation_id"]
        assert message["kind"] == "message.created" and message["message_id"] == sent["message_id"]
        assert message["seq"] > created["seq"]
        # Boris is in no team: he hears nothing until a conversation is transferred to him ...
        async with httpx.AsyncClient() as c:
            r = await c.post(f"{live['base']}/api/v1/conversations/{sent['conversation_id']}/assign",
                             json={"assignee_id": people["boris"]["id"], "team_id": None}, headers=live["admin"])
            assert r.status_code == 200, r.text
        moved = await next_event(boris)
        assert moved["kind"] == "conversation.updated" and moved["assignee_id"] == people["boris"]["id"]
        # ... and Anna, who loses it with her team, is told it left her screen.
        left = await next_event(anna)
        assert left["kind"] == "conversation.updated" and left["team_id"] is None


async def test_unauthenticated_and_cross_site_sockets_are_refused(live):
    with pytest.raises((ConnectionClosed, websockets.InvalidStatus)) as err:
        async with websockets.connect(ws_url(live["base"])) as ws:
            await ws.recv()
    assert "4401" in str(err.value) or "403" in str(err.value)
    login = httpx.post(f"{live['base']}/api/v1/auth/login", json={"email": "anna@example.com", "password": PASSWORD})
    cookie = f"kmt_session={login.cookies['kmt_session']}"
    with pytest.raises((ConnectionClosed, websockets.InvalidStatus)):
        async with websockets.connect(ws_url(live["base"]), additional_headers={"Cookie": cookie},
                                      origin="https://evil.example") as ws:  # type: ignore[arg-type]
            await ws.recv()


async def test_presence_follows_the_screens_of_a_logged_in_agent(live):
    base = live["base"]
    login = httpx.post(f"{base}/api/v1/auth/login", json={"email": "anna@example.com", "password": PASSWORD})
    cookie = f"kmt_session={login.cookies['kmt_session']}"
    me = live["people"]["anna"]["id"]

    def presence() -> str:
        return str(httpx.get(f"{base}/api/v1/users/{me}", headers=live["admin"]).json()["presence"])

    async with websockets.connect(ws_url(base), additional_headers={"Cookie": cookie}, origin=base) as one:  # type: ignore[arg-type]
        await next_event(one)
        assert presence() == "online"
        async with websockets.connect(ws_url(base), additional_headers={"Cookie": cookie}, origin=base) as two:  # type: ignore[arg-type]
            await next_event(two)
        await asyncio.sleep(0.2)
        assert presence() == "online", "one tab still open"
    for _ in range(50):
        if presence() == "away":
            break
        await asyncio.sleep(0.05)
    assert presence() == "away", "all tabs closed: away"
