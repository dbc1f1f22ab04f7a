"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from kommutator.db import Base


async def test_models_and_migrations_agree(database_url):
    import kommutator.models  # noqa: F401
    from kommutator.knowledge.search import is_search_object

    # The knowledge base's search index (FTS5 table, tsvector column and its GIN index) is made by migration
    # 0007 per dialect and has no model.
    opts = {"include_name": lambda name, type_, parents: not is_search_object(name, type_, parents)}
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c, opts=opts),
                                                              Base.metadata))
    await engine.dispose()
    assert diff == [], f"models differ from migrations; add a migration: {diff}"


async def test_audit_log_is_append_only_in_the_database(runtime):
    async def insert(tx):  # type: ignore[no-untyped-def]
        await tx.session.execute(text("INSERT INTO audit_log (at, action, subject_type, subject_id, ip, detail) "
                                      "VALUES (CURRENT_TIMESTAMP, 'x', 'y', '1', '', '{}')"))
    await runtime.db.write(insert)
    for statement in ("UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"):
        async def tamper(tx, statement=statement):  # type: ignore[no-untyped-def]
            await tx.session.execute(text(statement))
        with pytest.raises(DBAPIError, match="append-only"):
            await runtime.db.write(tamper)


async def test_upgrading_keeps_existing_rows_and_their_links(tmp_path):
    """A table rebuild in a SQLite migration must not null or cascade the rows that reference it."""
    from kommutator.migrate import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await upgrade(url, "0001")
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("PRAGMA foreign_keys=ON"))
        await conn.execute(text("INSERT INTO channels (id, type, name, settings, credentials_encrypted, enabled, "
                                "created_at, updated_at) "
                                "VALUES (1, 'api', 'c', '{}', '', 1, '2026-01-01', '2026-01-01')"))
        await conn.execute(text("INSERT INTO contacts (id, name, attributes, created_at, updated_at) "
                                "VALUES (1, 'x', '{}', '2026-01-01', '2026-01-01')"))
        await conn.execute(text("INSERT INTO conversations (id, contact_id, status, priority, subject, created_at, "
                                "updated_at, last_message_at, last_inbound_channel_id) "
                                "VALUES (1, 1, 'queued', 'normal', '', '2026-01-01', '2026-01-01', '2026-01-01', 1)"))
        await conn.execute(text("INSERT INTO messages (id, conversation_id, direction, sender_type, kind, channel_id, "
                                "text, payload, status, status_reason, created_at) "
                                "VALUES (1, 1, 'in', 'contact', 'text', 1, 'hi', '{}', 'received', '', '2026-01-01')"))
    await engine.dispose()
    await upgrade(url)
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT channel_id FROM messages WHERE id = 1"))).scalar() == 1
        assert (await conn.execute(text("SELECT last_inbound_channel_id FROM conversations"))).scalar() == 1
    await engine.dispose()
