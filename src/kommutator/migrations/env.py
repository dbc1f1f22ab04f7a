"""Alembic environment: runs on the connection kommutator.migrate hands over (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import kommutator.models  # noqa: F401  (register every table)
from kommutator.db import Base
from kommutator.knowledge.search import is_search_object

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    # The knowledge base's search index (made per dialect by migration 0007) has no model: autogenerate
    # must not propose dropping it.
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
                      include_name=lambda name, type_, parents: not is_search_object(name, type_, parents))
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # plain `alembic` command line with sqlalchemy.url set
    asyncio.run(_run_async(config.get_main_option("sqlalchemy.url") or ""))
