"""Shared fixtures: a migrated database (SQLite, or PostgreSQL when KOMMUTATOR_TEST_DATABASE_URL is set),
the app on an in-process ASGI transport, and users to act as.

Tests talk only to loopback; the PostgreSQL run gets a database of its own, created and dropped here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from kommutator.agents.actions import do_create_team, do_create_user, do_set_team_members
from kommutator.agents.schemas import TeamCreate, UserCreate
from kommutator.app import create_app
from kommutator.auth.actions import do_create_api_token
from kommutator.auth.passwords import hash_password
from kommutator.auth.principal import Principal
from kommutator.clock import set_clock
from kommutator.config import Settings, load_settings
from kommutator.db import Tx
from kommutator.migrate import upgrade
from kommutator.runtime import Runtime

PG_URL = os.environ.get("KOMMUTATOR_TEST_DATABASE_URL", "")
PASSWORD = "correct-horse-battery"
_HASH = hash_password(PASSWORD)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to reach beyond this machine."""
    real = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else ""
        if isinstance(host, str) and host and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"test tried to connect to {address!r}; tests may only talk to loopback")
        return real(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


def _admin_url(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for the session: a SQLite file to copy, or a fresh PostgreSQL database."""
    if not PG_URL:
        path = tmp_path_factory.mktemp("template") / "template.db"
        asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
        yield str(path)
        return
    name = f"kommutator_test_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await engine.dispose()
        await upgrade(_admin_url(PG_URL, name))

    async def drop() -> None:
        engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()

    asyncio.run(create())
    try:
        yield _admin_url(PG_URL, name)
    finally:
        asyncio.run(drop())


async def _truncate_all(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        tables = (await conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'alembic_version'"
        ))).scalars().all()
        await conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture
async def database_url(database_template: str, tmp_path: Path) -> str:
    if PG_URL:
        await _truncate_all(database_template)
        return database_template
    path = tmp_path / "kommutator.db"
    shutil.copy(database_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data", database_url=database_url,
                         secret_key="test-secret-key-" + "x" * 32, public_base_url="http://testserver",
                         max_body_bytes=64_000)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = Runtime.build(settings)
    await rt.db.start()
    yield rt
    await rt.db.close()


@pytest.fixture
async def app(runtime: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=runtime)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class Actor:
    """A user to act as in tests, with an API token."""

    id: int
    email: str
    role: str
    token: str
    principal: Principal

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Factory:
    """Create users, teams and channels through the real actions."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.n = 0

    async def user(self, role: str = "agent", *, teams: list[int] | None = None, name: str = "") -> Actor:
        self.n += 1
        email = f"{role}{self.n}@example.com"

        async def job(tx: Tx) -> Actor:
            user = await do_create_user(tx, None, UserCreate(email=email, name=name or f"{role.title()} {self.n}",
                                                             password=PASSWORD, role=role),  # type: ignore[arg-type]
                                        password_hash=_HASH)
            p = Principal(user_id=user.id, name=user.name, role=role, team_ids=frozenset(teams or []))
            for team_id in teams or []:
                from kommutator.agents.models import TeamMember

                tx.session.add(TeamMember(team_id=team_id, user_id=user.id))
            _, token = await do_create_api_token(tx, p, "tests")
            return Actor(user.id, email, role, token, p)

        return await self.rt.db.write(job)

    async def team(self, name: str, members: list[int] | None = None) -> int:
        admin = Principal(user_id=0, name="factory", role="admin", team_ids=frozenset())

        async def job(tx: Tx) -> int:
            team = await do_create_team(tx, None, TeamCreate(name=name))  # type: ignore[arg-type]
            if members:
                await do_set_team_members(tx, admin, team.id, members)
            return team.id

        return await self.rt.db.write(job)


class Clock:
    """A clock the test moves by hand (kommutator.clock), so no test sleeps to see time pass."""

    def __init__(self) -> None:
        self.t = dt.datetime(2031, 3, 1, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.t

    def tick(self, seconds: float = 1) -> dt.datetime:
        self.t += dt.timedelta(seconds=seconds)
        return self.t


@pytest.fixture
def clock() -> Iterator[Clock]:
    c = Clock()
    set_clock(c)
    yield c
    set_clock(None)


@pytest.fixture
def factory(runtime: Runtime) -> Factory:
    return Factory(runtime)


@pytest.fixture
async def admin(factory: Factory) -> Actor:
    return await factory.user("admin")


@pytest.fixture
async def api_channel(client: httpx.AsyncClient, admin: Actor) -> dict[str, object]:
    """An API channel, with its generated inbound token."""
    r = await client.post("/api/v1/channels", json={"type": "api", "name": "CRM"}, headers=admin.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def post_inbound(client: httpx.AsyncClient, channel: dict[str, object], *, msg_id: str, contact: str,
                       text: str = "hello", **extra: object) -> httpx.Response:
    token = channel["generated_credentials"]["inbound_token"]  # type: ignore[index]
    body = {"id": msg_id, "contact": {"id": contact, "name": extra.pop("name", contact)}, "text": text, **extra}
    return await client.post(f"/webhooks/{channel['id']}", json=body, headers={"Authorization": f"Bearer {token}"})
