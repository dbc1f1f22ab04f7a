"""Two real server processes (``kommutator serve``) on one PostgreSQL database and one Redis: what happens on
one is live on the other. The Redis here is the test's own redis-server, so it may be restarted under traffic."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
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

from .conftest import _HASH, PASSWORD, PG_URL, _truncate_all
from .live_server import free_port
from .redis_support import private_redis, unique_prefix
from .test_cli import kommutator

pytestmark = pytest.mark.skipif(not PG_URL, reason="several processes share a PostgreSQL database; the PostgreSQL "
                                                   "run (KOMMUTATOR_TEST_DATABASE_URL) covers this")

SECRET = "web-cluster-" + "s" * 40


async def _seed(database_url: str, data_dir: Path) -> dict[str, Any]:
    rt = Runtime.build(load_settings(data_dir=data_dir, database_url=database_url, secret_key=SECRET))
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


def _start(port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    log = (cwd / f"server-{port}.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "kommutator.cli", "serve", "--port", str(port)],
                            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 300  # a loaded CI machine takes its time to import and migrate
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server at {base} exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server at {base} did not become healthy")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, database_template: str) -> Iterator[dict[str, Any]]:
    tmp = Path(tmp_path_factory.mktemp("web-cluster"))
    asyncio.run(_truncate_all(database_template))  # the session's database, as the last test left it
    seed = asyncio.run(_seed(database_template, tmp / "data"))
    with private_redis() as redis_server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMUTATOR_")}
        env.update({"KOMMUTATOR_DATABASE_URL": database_template, "KOMMUTATOR_REDIS_URL": redis_server.url,
                    "KOMMUTATOR_REDIS_PREFIX": unique_prefix(), "KOMMUTATOR_SECRET_KEY": SECRET,
                    "KOMMUTATOR_DATA_DIR": str(tmp / "data")})
        ports = [free_port(), free_port()]
        procs = [_start(port, env, tmp) for port in ports]
        try:
            bases = [f"http://127.0.0.1:{port}" for port in ports]
            for base, proc in zip(bases, procs, strict=True):
                _wait_healthy(base, proc)
            admin = {"Authorization": f"Bearer {seed['token']}"}
            channel = httpx.post(f"{bases[0]}/api/v1/channels", headers=admin,
                                 json={"type": "api", "name": "Shop", "team_id": seed["team_id"]}).json()
            yield {"a": bases[0], "b": bases[1], "admin": admin, "channel": channel, "redis": redis_server}
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


def webhook(cluster: dict[str, Any], base: str, msg_id: str, text: str = "hello") -> dict[str, Any]:
    channel = cluster["channel"]
    r = httpx.post(f"{base}/webhooks/{channel['id']}", json={"id": msg_id, "contact": {"id": "c-1"}, "text": text},
                   headers={"Authorization": f"Bearer {channel['generated_credentials']['inbound_token']}"},
                   timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def log_in(base: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/v1/auth/login", json={"email": "root@example.com", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Cookie": f"kmt_session={r.cookies['kmt_session']}", "X-CSRF-Token": r.json()["csrf_token"]}


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/api/v1/realtime"


async def frame_for(ws: Any, message_id: int) -> dict[str, Any]:
    """Read frames until the message.created of ``message_id`` (bounded: the test fails, it does not hang)."""
    async with asyncio.timeout(20):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("kind") == "message.created" and frame.get("message_id") == message_id:
                return dict(frame)


async def test_a_webhook_on_a_reaches_the_agent_s_socket_on_b_and_logout_on_a_closes_it(cluster) -> None:  # type: ignore[no-untyped-def]
    session = log_in(cluster["a"])
    async with websockets.connect(ws_url(cluster["b"]), additional_headers={"Cookie": session["Cookie"]}) as ws:
        assert json.loads(await ws.recv())["kind"] == "hello"
        sent = await asyncio.to_thread(webhook, cluster, cluster["a"], "cross-1", "Где мой заказ?")
        frame = await frame_for(ws, sent["message_id"])
        assert frame["conversation_id"] == sent["conversation_id"]
        # Logged out on A: the socket on B closes at once, saying why.
        r = httpx.post(f"{cluster['a']}/api/v1/auth/logout", headers=session)
        assert r.status_code == 204, r.text
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(20):
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_a_team_change_on_a_refilters_the_agent_s_socket_on_b(cluster) -> None:  # type: ignore[no-untyped-def]
    a, b, admin = cluster["a"], cluster["b"], cluster["admin"]
    r = httpx.post(f"{a}/api/v1/users", headers=admin, json={"email": "agent@example.com", "name": "Agent",
                                                            "password": PASSWORD, "role": "agent"})
    assert r.status_code == 201, r.text
    agent_id = r.json()["id"]
    login = httpx.post(f"{b}/api/v1/auth/login", json={"email": "agent@example.com", "password": PASSWORD})
    assert login.status_code == 200, login.text
    cookie = {"Cookie": f"kmt_session={login.cookies['kmt_session']}"}
    team_id = cluster["channel"]["team_id"]
    async with websockets.connect(ws_url(b), additional_headers=cookie) as ws:
        assert json.loads(await ws.recv())["kind"] == "hello"
        r = httpx.put(f"{a}/api/v1/teams/{team_id}/members", headers=admin, json={"user_ids": [agent_id]})
        assert r.status_code == 200, r.text
        async with asyncio.timeout(20):
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("kind") == "access.changed":
                    break
        assert frame["team_ids"] == [team_id], "the socket on B follows the change committed on A"
        sent = await asyncio.to_thread(webhook, cluster, a, "team-1", "now in my team")
        await frame_for(ws, sent["message_id"])  # the new rights let it hear the team's conversations


async def test_a_redis_restart_under_traffic_loses_nothing_and_sockets_recover(cluster) -> None:  # type: ignore[no-untyped-def]
    session = log_in(cluster["b"])
    headers = {"Cookie": session["Cookie"]}
    async with websockets.connect(ws_url(cluster["b"]), additional_headers=headers) as ws:
        assert json.loads(await ws.recv())["kind"] == "hello"
        first = await asyncio.to_thread(webhook, cluster, cluster["a"], "restart-0")
        await frame_for(ws, first["message_id"])
        cluster["redis"].stop()
        # Webhooks go on while Redis is away: stored and answered (each process works alone meanwhile).
        during = [await asyncio.to_thread(webhook, cluster, cluster["a"], f"restart-{i}") for i in range(1, 6)]
        cluster["redis"].start()
        # The socket on B is told to reconnect (its process may have missed events) ...
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(30):
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
    # ... and catches up over REST: nothing was lost.
    cid = first["conversation_id"]
    r = httpx.get(f"{cluster['b']}/api/v1/conversations/{cid}/messages", headers=cluster["admin"],
                  params={"after_id": first["message_id"]})
    assert r.status_code == 200, r.text
    ids = {m["id"] for m in r.json()["items"]}
    assert {d["message_id"] for d in during} <= ids
    # A new socket hears what arrives on the other process again. Each process learns of the gap on its own
    # schedule (B when it listens again, A's notice when its unsent events could not go out), so a socket may be
    # told to catch up once more: it reconnects, as a screen does, until a message gets through.
    deadline = time.monotonic() + 60
    for n in range(1, 1000):
        assert time.monotonic() < deadline, "events never flowed again after the Redis restart"
        try:
            async with websockets.connect(ws_url(cluster["b"]), additional_headers=headers) as ws:
                assert json.loads(await ws.recv())["kind"] == "hello"
                after = await asyncio.to_thread(webhook, cluster, cluster["a"], f"after-{n}")
                await asyncio.wait_for(frame_for(ws, after["message_id"]), 5)
                break
        except ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 4408, exc
        except TimeoutError:
            pass


def test_serve_with_several_workers_needs_postgresql_and_redis(tmp_path: Path) -> None:
    base = {"KOMMUTATOR_DATA_DIR": str(tmp_path / "data")}
    r = kommutator("serve", "--workers", "2", cwd=tmp_path, env=base)
    assert r.returncode != 0 and "needs PostgreSQL" in r.stderr and "Traceback" not in r.stderr
    r = kommutator("serve", "--workers", "2", cwd=tmp_path, env={**base, "KOMMUTATOR_DATABASE_URL": PG_URL})
    assert r.returncode != 0 and "KOMMUTATOR_REDIS_URL" in r.stderr and "Traceback" not in r.stderr
    with private_redis() as server:
        url = server.url
    r = kommutator("serve", "--workers", "2", cwd=tmp_path,
                   env={**base, "KOMMUTATOR_DATABASE_URL": PG_URL, "KOMMUTATOR_REDIS_URL": url})
    assert r.returncode != 0 and "does not answer" in r.stderr and "Traceback" not in r.stderr


def test_serve_workers_starts_processes_on_one_port(tmp_path: Path, database_template: str) -> None:
    with private_redis() as server:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMUTATOR_")}
        env.update({"KOMMUTATOR_DATABASE_URL": database_template, "KOMMUTATOR_REDIS_URL": server.url,
                    "KOMMUTATOR_REDIS_PREFIX": unique_prefix(), "KOMMUTATOR_DATA_DIR": str(tmp_path / "data")})
        log = (tmp_path / "serve.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "kommutator.cli", "serve", "--workers", "2", "--port",
                                 str(port)], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_healthy(base, proc)
            health = httpx.get(f"{base}/healthz").json()
            assert health["status"] == "ok" and health["cluster"] == "redis" and health["redis"] == "ok"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        output = (tmp_path / "serve.log").read_text(errors="replace")
        assert output.count("Application startup complete") == 2, output[-3000:]
