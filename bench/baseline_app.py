"""The bare baseline: a Starlette JSON POST on uvicorn that stores one row per request, group-committed.

It accepts the same request as the API channel (POST /webhooks/{channel_id}, bearer token, JSON body with
``id``, ``contact`` and ``text``), checks the token, parses the JSON, inserts one row and answers 200 with
``{"ok": true, "duplicate": ..., "message_id": ...}`` only after the row is committed. Nothing else: no
ORM, no validation models, no middleware. It is the "bare Starlette + group-commit insert" (SQLite) and
"asyncpg batched insert" (PostgreSQL) baseline of docs/performance targets P1 and P4.

* SQLite: WAL, synchronous=NORMAL, one writer connection in one dedicated thread. The writer takes every
  request waiting, inserts them and commits once (one thread hop per batch); each request awaits its
  batch's commit.
* PostgreSQL: one asyncpg connection; each batch is one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO
  NOTHING RETURNING`` in its own transaction.

Run: ``python bench/baseline_app.py --port 8100 --sqlite /tmp/base.db`` or ``--pg postgresql://...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TOKEN = "kmi_demo_inbound_token_for_the_website_2026"  # the demo channel's documented token
MAX_BATCH = 1000

Row = tuple[str, str, str, str]  # message id, contact id, contact name, text


class SqliteWriter:
    """Group commit on one SQLite connection owned by one thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.queue: asyncio.Queue[tuple[Row, asyncio.Future[tuple[bool, int]]]] = asyncio.Queue()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self.conn: sqlite3.Connection | None = None
        self.task: asyncio.Task[None] | None = None
        self.batches = 0

    def _open(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("""CREATE TABLE IF NOT EXISTS messages (
            id INTEGER PRIMARY KEY, provider_message_id TEXT NOT NULL UNIQUE, contact_external_id TEXT NOT NULL,
            contact_name TEXT NOT NULL, text TEXT NOT NULL, created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)""")
        self.conn = conn

    def _insert(self, rows: list[Row]) -> list[tuple[bool, int]]:
        conn = self.conn
        assert conn is not None
        out = []
        conn.execute("BEGIN")
        try:
            for row in rows:
                cur = conn.execute("INSERT OR IGNORE INTO messages (provider_message_id, contact_external_id, "
                                   "contact_name, text) VALUES (?, ?, ?, ?)", row)
                out.append((cur.rowcount == 0, cur.lastrowid or 0))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return out

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.pool, self._open)
        self.task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.conn is not None:
            await asyncio.get_running_loop().run_in_executor(self.pool, self.conn.close)
        self.pool.shutdown()

    async def write(self, row: Row) -> tuple[bool, int]:
        fut: asyncio.Future[tuple[bool, int]] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((row, fut))
        return await fut

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            while len(batch) < MAX_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            self.batches += 1
            try:
                results = await loop.run_in_executor(self.pool, self._insert, [row for row, _ in batch])
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), res in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(res)


class PgWriter:
    """Group commit on one asyncpg connection: one multi-row INSERT per batch."""

    SQL = ("INSERT INTO bench_messages (provider_message_id, contact_external_id, contact_name, text) "
           "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) "
           "ON CONFLICT (provider_message_id) DO NOTHING RETURNING id, provider_message_id")

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.queue: asyncio.Queue[tuple[Row, asyncio.Future[tuple[bool, int]]]] = asyncio.Queue()
        self.conn: Any = None
        self.task: asyncio.Task[None] | None = None
        self.batches = 0

    async def start(self) -> None:
        import asyncpg

        self.conn = await asyncpg.connect(self.dsn)
        await self.conn.execute("""CREATE TABLE IF NOT EXISTS bench_messages (
            id BIGSERIAL PRIMARY KEY, provider_message_id TEXT NOT NULL UNIQUE, contact_external_id TEXT NOT NULL,
            contact_name TEXT NOT NULL, text TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now())""")
        self.task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.conn is not None:
            await self.conn.close()

    async def write(self, row: Row) -> tuple[bool, int]:
        fut: asyncio.Future[tuple[bool, int]] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((row, fut))
        return await fut

    async def _loop(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < MAX_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            self.batches += 1
            cols = list(zip(*[row for row, _ in batch], strict=True))
            try:
                async with self.conn.transaction():
                    records = await self.conn.fetch(self.SQL, *[list(c) for c in cols])
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            ids = {r["provider_message_id"]: r["id"] for r in records}
            for row, fut in batch:
                if not fut.done():
                    new_id = ids.pop(row[0], None)  # a repeated id within one batch is a duplicate
                    fut.set_result((new_id is None, new_id or 0))


def create_app(writer: SqliteWriter | PgWriter) -> Starlette:
    expected = f"Bearer {TOKEN}"

    async def inbound(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != expected:
            return JSONResponse({"code": "invalid_channel_token"}, status_code=401)
        try:
            body = json.loads(await request.body())
            row = (str(body["id"]), str(body["contact"]["id"]), str(body["contact"].get("name", "")),
                   str(body["text"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return JSONResponse({"code": "invalid_body"}, status_code=422)
        duplicate, message_id = await writer.write(row)
        return JSONResponse({"ok": True, "duplicate": duplicate, "conversation_id": None,
                             "message_id": None if duplicate else message_id})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "batches": writer.batches})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await writer.start()
        try:
            yield
        finally:
            await writer.close()

    return Starlette(routes=[Route("/webhooks/{channel_id:int}", inbound, methods=["POST"]),
                             Route("/healthz", healthz)], lifespan=lifespan)


def main() -> None:
    p = argparse.ArgumentParser(description="Bare Starlette + group-commit insert baseline")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8100)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--sqlite", help="path of the SQLite file")
    g.add_argument("--pg", help="asyncpg DSN, e.g. postgresql://postgres@127.0.0.1:5432/bench")
    args = p.parse_args()
    writer: SqliteWriter | PgWriter = SqliteWriter(args.sqlite) if args.sqlite else PgWriter(args.pg)
    uvicorn.run(create_app(writer), host=args.host, port=args.port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
