"""The write path: group commit on SQLite, isolation of failing jobs, events only after commit."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, insert, select

from kommutator.agents.models import Team
from kommutator.db import Tx
from kommutator.events import ContactChanged, Event


async def teams(runtime) -> list[str]:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return sorted((await s.execute(select(Team.name))).scalars())


async def test_concurrent_writes_share_commits_on_sqlite(runtime):
    if not runtime.db.is_sqlite:
        pytest.skip("group commit is the SQLite writer's strategy; PostgreSQL commits per job")
    before = runtime.db.batches

    def job(i: int):  # type: ignore[no-untyped-def]
        async def run(tx: Tx) -> int:
            await tx.session.execute(insert(Team).values(name=f"t{i}", description=""))
            return i
        return run

    results = await asyncio.gather(*[runtime.db.write(job(i)) for i in range(200)])
    assert results == list(range(200))
    assert len(await teams(runtime)) == 200
    assert runtime.db.batches - before < 50, "200 concurrent writes should share a handful of commits"


async def test_a_failing_job_does_not_spoil_its_batch(runtime):
    def good(i: int):  # type: ignore[no-untyped-def]
        async def run(tx: Tx) -> None:
            await tx.session.execute(insert(Team).values(name=f"good{i}", description=""))
        return run

    async def bad(tx: Tx) -> None:
        await tx.session.execute(insert(Team).values(name="half-written", description=""))
        raise ValueError("boom")

    jobs = [good(i) for i in range(5)] + [bad] + [good(i) for i in range(5, 10)]
    results = await asyncio.gather(*[runtime.db.write(j) for j in jobs], return_exceptions=True)
    assert [type(r).__name__ for r in results].count("ValueError") == 1
    names = await teams(runtime)
    assert "half-written" not in names
    assert len(names) == 10


async def test_events_are_published_after_commit_and_never_on_rollback(runtime):
    seen: list[tuple[str, int]] = []

    async def listener(event: Event) -> None:
        assert isinstance(event, ContactChanged)
        async with runtime.db.read() as s:  # the change must already be visible to others
            count = int(await s.scalar(select(func.count()).select_from(Team)) or 0)
        seen.append((event.action, count))

    runtime.bus.subscribe(listener, kinds=(ContactChanged,))

    async def ok(tx: Tx) -> None:
        await tx.session.execute(insert(Team).values(name="committed", description=""))
        tx.publish(ContactChanged(contact_id=1, action="created"))

    async def rolled_back(tx: Tx) -> None:
        tx.publish(ContactChanged(contact_id=2, action="deleted"))
        raise RuntimeError("abort")

    await runtime.db.write(ok)
    with pytest.raises(RuntimeError):
        await runtime.db.write(rolled_back)
    assert seen == [("created", 1)]
