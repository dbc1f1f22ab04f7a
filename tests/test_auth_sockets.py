"""Open WebSockets lose their rights with their session, token or user, at once (real sockets on loopback)."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from kommutator.agents.actions import do_create_team, do_create_user
from kommutator.agents.schemas import TeamCreate, UserCreate
from kommutator.auth.actions import do_create_api_token
from kommutator.auth.principal import Principal
from kommutator.config import load_settings
from kommutator.db import Tx
from kommutator.runtime import Runtime

from .conftest import _HASH, PASSWORD, PG_URL
from .live_server import bound_socket, run_server

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="sockets live in one process; the SQLite run covers them")

_n = itertools.count(1)


async def _seed(settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    rt = Runtime.build(settings)
    await rt.db.start()

    async def job(tx: Tx) -> dict[str, Any]:
        user = await do_create_user(tx, None, UserCreate(email="root@example.com", name="Root", password=PASSWORD,
                                                         role="admin"), password_hash=_HASH)
        p = Principal(user_id=user.id, name=user.name, role="admin", team_ids=frozenset())
        team = await do_create_team(tx, None, TeamCreate(name="Support"))  # type: ignore[arg-type]
        return {"token": (await do_create_api_token(tx, p, "root"))[1], "team_id": team.id}

    try:
        return await rt.db.write(job)
    finally:
        await rt.db.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, database_template: str):  # type: ignore[no-untyped-def]
    tmp = Path(tmp_path_factory.mktemp("auth-sockets"))
    shutil.copy(database_template, tmp / "rt.db")
    sock, port = bound_socket()
    settings = load_settings(data_dir=tmp / "data", database_url=f"sqlite+aiosqlite:///{tmp / 'rt.db'}",
                             listen_port=port, public_base_url=f"http://127.0.0.1:{port}",
                             secret_key="auth-sockets-" + "s" * 32)
    seed = asyncio.run(_seed(settings))
    with run_server(settings, sock) as served:
        admin = {"Authorization": f"Bearer {seed['token']}"}
        channel = httpx.post(f"{served}/api/v1/channels", headers=admin,
                             json={"type": "api", "name": "Shop", "team_id": seed["team_id"]}).json()
        yield {"base": served, "admin": admin, "team_id": seed["team_id"], "channel": channel}


async def call(live: dict[str, Any], method: str, path: str, *, headers: dict[str, str] | None = None,
               **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=live["base"]) as c:
        return await c.request(method, path, headers=headers or live["admin"], **kwargs)


async def person(live: dict[str, Any], role: str = "agent", *, team: bool = False) -> dict[str, Any]:
    """A new user (in the Support team if ``team``) with an API token of their own."""
    email = f"{role}-{next(_n)}@example.com"
    r = await call(live, "POST", "/api/v1/users", json={"email": email, "name": email, "password": PASSWORD,
                                                        "role": role})
    assert r.status_code == 201, r.text
    user = {"id": r.json()["id"], "email": email}
    if team:
        await set_team(live, user["id"], member=True)
    user["token"] = (await new_token(live, user))["token"]
    return user


async def set_team(live: dict[str, Any], user_id: int, *, member: bool) -> None:
    path = f"/api/v1/teams/{live['team_id']}"
    ids = set((await call(live, "GET", path)).json()["member_ids"])
    ids = ids | {user_id} if member else ids - {user_id}
    r = await call(live, "PUT", f"{path}/members", json={"user_ids": sorted(ids)})
    assert r.status_code == 200, r.text


async def log_in(live: dict[str, Any], user: dict[str, Any], password: str = PASSWORD) -> dict[str, str]:
    """A browser session: the Cookie and X-CSRF-Token headers to send."""
    async with httpx.AsyncClient(base_url=live["base"]) as c:
        r = await c.post("/api/v1/auth/login", json={"email": user["email"], "password": password})
        assert r.status_code == 200, r.text
        return {"Cookie": f"kmt_session={r.cookies['kmt_session']}", "X-CSRF-Token": r.json()["csrf_token"]}


async def new_token(live: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    session = await log_in(live, user)
    r = await call(live, "POST", "/api/v1/api-tokens", json={"name": f"t{next(_n)}"}, headers=session)
    assert r.status_code == 201, r.text
    return dict(r.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def connect(live: dict[str, Any], headers: dict[str, str]) -> Any:
    url = live["base"].replace("http://", "ws://") + "/api/v1/realtime"
    if "Cookie" in headers:
        return websockets.connect(url, additional_headers={"Cookie": headers["Cookie"]}, origin=live["base"])
    return websockets.connect(url, additional_headers=headers)


async def next_event(ws: Any, seconds: float = 5.0) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), seconds)))


async def closed_with(ws: Any, seconds: float = 5.0) -> int:
    """Read until the server closes the socket; return the close code (events before it are moot)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), seconds)
    except ConnectionClosed as exc:
        return int(exc.rcvd.code) if exc.rcvd else -1


async def inbound(live: dict[str, Any]) -> int:
    """A customer writes to the Support team's channel; return the conversation id."""
    ch, n = live["channel"], next(_n)
    r = await call(live, "POST", f"/webhooks/{ch['id']}", json={"id": f"m-{n}", "contact": {"id": f"c-{n}"},
                                                                 "text": "hi"},
                   headers=bearer(ch["generated_credentials"]["inbound_token"]))
    assert r.status_code == 200, r.text
    return int(r.json()["conversation_id"])


async def hears(ws: Any, conversation_id: int) -> dict[str, Any]:
    """The next event of this conversation on the socket (others before it are skipped)."""
    while True:
        event = await next_event(ws)
        if event.get("conversation_id") == conversation_id:
            return event


async def test_revoking_a_token_closes_the_sockets_opened_with_it(live):
    agent = await person(live, team=True)
    second = await new_token(live, agent)
    async with connect(live, bearer(agent["token"])) as kept, connect(live, bearer(second["token"])) as revoked:
        assert (await next_event(kept))["kind"] == (await next_event(revoked))["kind"] == "hello"
        r = await call(live, "DELETE", f"/api/v1/api-tokens/{second['id']}", headers=bearer(agent["token"]))
        assert r.status_code == 204, r.text
        assert await closed_with(revoked) == 4401, "a revoked token's socket hears nothing more"
        cid = await inbound(live)
        assert (await hears(kept, cid))["kind"] == "conversation.created", "the user's other token still works"


async def test_changing_your_password_closes_your_other_sessions_sockets_but_not_this_ones(live):
    agent = await person(live, team=True)
    here, there = await log_in(live, agent), await log_in(live, agent)
    async with connect(live, here) as mine, connect(live, there) as other:
        assert (await next_event(mine))["kind"] == (await next_event(other))["kind"] == "hello"
        r = await call(live, "PATCH", f"/api/v1/users/{agent['id']}", headers=here,
                       json={"password": "changed-password-1", "current_password": PASSWORD})
        assert r.status_code == 200, r.text
        assert await closed_with(other) == 4401
        cid = await inbound(live)
        assert (await hears(mine, cid))["kind"] == "conversation.created", "the session that changed it stays"


@pytest.mark.parametrize("change", [{"password": "reset-password-1"}, {"active": False}])
async def test_a_reset_or_deactivation_closes_every_socket_of_the_user(live, change):
    agent = await person(live, team=True)
    session = await log_in(live, agent)
    async with connect(live, session) as browser, connect(live, bearer(agent["token"])) as integration:
        assert (await next_event(browser))["kind"] == (await next_event(integration))["kind"] == "hello"
        r = await call(live, "PATCH", f"/api/v1/users/{agent['id']}", json=change)
        assert r.status_code == 200, r.text
        assert await closed_with(browser) == 4401
        assert await closed_with(integration) == 4401


async def test_a_demoted_supervisors_socket_stops_hearing_what_they_may_no_longer_see(live):
    boss = await person(live, "supervisor")  # in no team: as a supervisor they see everything
    async with connect(live, bearer(boss["token"])) as ws:
        assert (await next_event(ws))["kind"] == "hello"
        before = await inbound(live)
        assert (await hears(ws, before))["kind"] == "conversation.created"
        r = await call(live, "PATCH", f"/api/v1/users/{boss['id']}", json={"role": "agent"})
        assert r.status_code == 200, r.text
        while (event := await next_event(ws))["kind"] != "access.changed":
            pass
        assert event["role"] == "agent", "the screen is told to read its lists again"
        hidden = await inbound(live)
        # A conversation handed to them is theirs to see: its event marks how far the socket has got.
        r = await call(live, "POST", f"/api/v1/conversations/{before}/assign", json={"assignee_id": boss["id"]})
        assert r.status_code == 200, r.text
        seen = []
        while (event := await next_event(ws)).get("assignee_id") != boss["id"]:
            seen.append(event)
        assert all(e.get("conversation_id") != hidden for e in seen), f"the demoted socket heard {seen}"


async def test_leaving_a_team_stops_its_conversations_reaching_the_open_socket(live):
    agent = await person(live, team=True)
    async with connect(live, bearer(agent["token"])) as ws:
        assert (await next_event(ws))["kind"] == "hello"
        first = await inbound(live)
        assert (await hears(ws, first))["kind"] == "conversation.created"
        await set_team(live, agent["id"], member=False)
        while (event := await next_event(ws))["kind"] != "access.changed":
            pass
        assert event["team_ids"] == []
        hidden = await inbound(live)
        r = await call(live, "POST", f"/api/v1/conversations/{first}/assign", json={"assignee_id": agent["id"]})
        assert r.status_code == 200, r.text
        seen = []
        while (event := await next_event(ws)).get("assignee_id") != agent["id"]:
            seen.append(event)
        assert all(e.get("conversation_id") != hidden for e in seen), f"the socket still heard the team: {seen}"
