"""Engines, sessions and the single write path.

Every state change goes through ``Database.write(job)``. On SQLite one writer connection takes the
jobs that are waiting, runs them in one transaction and commits once (group commit): SQLite has one
writer, and one BEGIN/COMMIT per request through a thread bridge is several times slower. If any job
in a batch fails, the batch is rolled back and each job is rerun alone, so one bad request never
spoils its neighbours. On PostgreSQL each job runs in its own transaction from the pool.

Domain events a job records are published only after its transaction commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import aiosqlite
from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from kommutator.events import Bus, Event

log = logging.getLogger(__name__)
T = TypeVar("T")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Integer primary keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")
JsonType = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use kommutator.clock.now()")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# Errors of the driver that mean the server is unreachable or the connection died (not a bad statement).
_UNREACHABLE = ("ConnectionDoesNotExistError", "CannotConnectNowError", "ConnectionFailureError",
                "ConnectionRejectionError", "PostgresConnectionError", "AdminShutdownError", "CrashShutdownError",
                "InternalClientError", "TooManyConnectionsError")


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now (answer 503 and retry), rather than a bug."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, ConnectionError | TimeoutError) or type(current).__name__ in _UNREACHABLE:
            return True
        if isinstance(current, OSError) and current.errno is not None and current.filename is None:
            return True  # a socket's error (refused, unreachable), not a file's
        if type(current).__name__ == "InterfaceError" and "connection" in str(current).lower():
            return True
        current = current.__cause__ or getattr(current, "orig", None)
    return False


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UtcDateTime()}


class Tx:
    """What a write job gets: the transaction's connection, an ORM session on it (made on first use),
    and a place to record events for after the commit."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.events: list[Event] = []
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = AsyncSession(bind=self.conn, expire_on_commit=False,
                                         join_transaction_mode="rollback_only")
        return self._session

    def publish(self, event: Event) -> None:
        """Queue an event; it is delivered only if this job's transaction commits."""
        self.events.append(event)

    async def finish(self) -> None:
        """Flush what the ORM session holds into the transaction and let the session go."""
        if self._session is not None:
            try:
                await self._session.flush()
            finally:
                self._session.expunge_all()
                await self._session.close()
                self._session = None


Job = Callable[[Tx], Awaitable[T]]


class _NotCommitted(Exception):
    """A job's connection died before its commit (PostgreSQL): nothing of it was stored."""

    def __init__(self, error: DBAPIError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _Pending(Generic[T]):
    job: Job[T]
    future: asyncio.Future[T]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    # Deleted content is overwritten with zeros, so an erased person's data does not linger in free pages.
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


class _InlineWriterConnection(aiosqlite.Connection):
    """An aiosqlite connection whose statements run on the event loop's own thread.

    SQLite in WAL mode with synchronous=NORMAL answers a statement in microseconds, far less than the
    round trip to aiosqlite's worker thread that every execute, fetch and cursor close would otherwise
    cost (about 30 per message). Only COMMIT, which may write a checkpoint to disk, goes to a thread.
    Used for the single writer connection alone; readers keep aiosqlite's thread.
    """

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        if getattr(fn, "__name__", "") == "commit":
            return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args, **kwargs))
        return fn(*args, **kwargs)

    async def _connect(self) -> _InlineWriterConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, _InlineWriterConnection]:
        return self._connect().__await__()

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def _sqlite_path(url: str) -> str:
    path = url.split(":///", 1)[1] if ":///" in url else ":memory:"
    return path.split("?", 1)[0] or ":memory:"


def make_engine(url: str, *, echo: bool = False, sqlite_pool: bool = True, inline_writer: bool = False) -> AsyncEngine:
    """Create an engine with the right pragmas (SQLite) or pool (PostgreSQL)."""
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {} if sqlite_pool else {"poolclass": NullPool}
        if inline_writer:
            path = _sqlite_path(url)

            async def creator() -> aiosqlite.Connection:
                conn = _InlineWriterConnection(lambda: sqlite3.connect(path, check_same_thread=False), 64)
                return await conn

            kwargs = {"async_creator": creator, "poolclass": NullPool}
        engine = create_async_engine(url, echo=echo, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it costs a round trip per checkout on the hot path; stale connections are recycled.
    return create_async_engine(url, echo=echo, pool_size=20, max_overflow=20, pool_recycle=1800)


class Database:
    """Engines, read sessions and the write path for one process."""

    def __init__(self, url: str, *, bus: Bus, echo: bool = False, max_batch: int = 256) -> None:
        self.url = url
        self.bus = bus
        self.is_sqlite = url.startswith("sqlite")
        self.engine = make_engine(url, echo=echo)
        self._write_engine = make_engine(url, echo=echo, inline_writer=True) if self.is_sqlite else None
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Pending[Any]] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._writer_conn: AsyncConnection | None = None
        self.batches = 0  # observed by tests and benchmarks
        # Run inside every write job's transaction after the job, with its events known (the subscriptions'
        # journal writes the deliveries it owes there); a hook's failure fails the job like the job's own.
        self.before_commit: list[Callable[[Tx], Awaitable[None]]] = []

    async def start(self) -> None:
        if self._write_engine is not None and self._writer_task is None:
            self._writer_conn = await self._write_engine.connect()
            self._writer_task = asyncio.create_task(self._writer_loop(), name="kommutator-sqlite-writer")

    async def close(self) -> None:
        if self._writer_task is not None:
            self._writer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer_task
            self._writer_task = None
        if self._writer_conn is not None:
            await self._writer_conn.close()
            self._writer_conn = None
        if self._write_engine is not None:
            await self._write_engine.dispose()
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; never commit through it."""
        async with AsyncSession(self.engine, expire_on_commit=False, autoflush=False) as session:
            yield session

    async def write(self, job: Job[T]) -> T:
        """Run ``job`` in a transaction, commit, publish its events, and return its result."""
        if not self.is_sqlite:
            try:
                async with self.engine.connect() as conn:
                    result, events = await self._run_alone(conn, job)
            except _NotCommitted:
                # The pooled connection had died (the server restarted, or the backend was terminated): nothing
                # was committed, so the job runs again, once, on a fresh connection (jobs may be rerun: the
                # SQLite batches rerun them too). A second failure means the server is down: raised (503).
                log.warning("database connection lost before the commit; running the job again on a new one")
                async with self.engine.connect() as conn:
                    try:
                        result, events = await self._run_alone(conn, job)
                    except _NotCommitted as again:
                        raise again.error from None
            await self._publish(events)
            return result
        if self._writer_task is None:
            raise RuntimeError("Database.start() was not awaited")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(job, future))
        return await future

    async def _run_job(self, conn: AsyncConnection, job: Job[T]) -> tuple[T, list[Event]]:
        tx = Tx(conn)
        try:
            result = await job(tx)
        except BaseException:
            if tx._session is not None:
                tx._session.expunge_all()
                await tx._session.close()
            raise
        await tx.finish()
        for hook in self.before_commit:
            await hook(tx)
        return result, tx.events

    async def _run_alone(self, conn: AsyncConnection, job: Job[T]) -> tuple[T, list[Event]]:
        try:
            await conn.begin()
            result = await self._run_job(conn, job)
        except BaseException as exc:
            with contextlib.suppress(Exception):  # on a dead connection the rollback fails too
                await conn.rollback()
            if not self.is_sqlite and isinstance(exc, DBAPIError) and exc.connection_invalidated:
                raise _NotCommitted(exc) from exc
            raise
        await conn.commit()  # a connection lost here leaves the outcome unknown: raised, never rerun
        return result

    async def _publish(self, events: list[Event]) -> None:
        for ev in events:
            try:
                await self.bus.publish(ev)
            except Exception:  # a listener failure must not fail the committed request
                log.exception("publishing %s failed", type(ev).__name__)

    async def _writer_loop(self) -> None:
        assert self._writer_conn is not None
        conn = self._writer_conn
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batch = [p for p in batch if not p.future.cancelled()]
            if not batch:
                continue
            self.batches += 1
            try:
                await self._run_batch(conn, batch)
            except asyncio.CancelledError:
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(RuntimeError("the database is shutting down"))
                raise
            except Exception:
                log.exception("writer batch failed unexpectedly")

    async def _run_batch(self, conn: AsyncConnection, batch: list[_Pending[Any]]) -> None:
        if len(batch) > 1:
            results: list[tuple[Any, list[Event]]] = []
            await conn.begin()
            try:
                for p in batch:
                    results.append(await self._run_job(conn, p.job))
                await conn.commit()
            except Exception:
                await conn.rollback()
            else:
                for p, (result, _events) in zip(batch, results, strict=True):
                    if not p.future.done():
                        p.future.set_result(result)
                for _, events in results:
                    await self._publish(events)
                return
        # A single job, or a batch where something failed: each job alone.
        for p in batch:
            try:
                result, events = await self._run_alone(conn, p.job)
            except Exception as exc:
                if not p.future.done():
                    p.future.set_exception(exc)
                continue
            if not p.future.done():
                p.future.set_result(result)
            await self._publish(events)
