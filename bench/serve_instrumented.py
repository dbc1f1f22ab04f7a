"""Run ``kommutator serve`` unchanged, with optional measurements the product does not make itself.

* ``--gc-stats FILE``: time spent in the cyclic garbage collector, per generation (gc.callbacks); the
  totals are written to FILE every second and at exit.
* ``--phase-stats FILE``: wall time of each stage of the inbound path, written every second: the whole ASGI
  request, the webhook handler's ``ingest`` call (queue wait + writer job + commit), the writer job
  (``do_ingest_message``), ``do_receive_message``, each SQL statement (count and time, through SQLAlchemy's
  cursor events) and each group commit. Drive the server at a low rate (requests do not overlap) to read the
  figures as the cost of one request.
* ``--cprofile FILE``: a deterministic profile (cProfile, pstats format) of the whole server, written at exit
  (SIGINT/SIGTERM). It slows the server down several times: use it for call counts and relative costs only.

Everything else (settings, migrations, the app, uvicorn options) is exactly ``kommutator serve``:
``python bench/serve_instrumented.py --gc-stats gc.json -- --data-dir DIR --port 8101``.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import signal
import sys
import threading
import time
from typing import Any


def install_gc_stats(path: str) -> None:
    stats: dict[str, Any] = {"collections": [0, 0, 0], "seconds": [0.0, 0.0, 0.0], "collected": [0, 0, 0],
                             "max_pause_ms": [0.0, 0.0, 0.0]}
    started: list[float] = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        gen = info["generation"]
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        stats["collections"][gen] += 1
        stats["seconds"][gen] += took
        stats["collected"][gen] += info.get("collected", 0)
        stats["max_pause_ms"][gen] = max(stats["max_pause_ms"][gen], took * 1000)

    def dump() -> None:
        snapshot = dict(stats, thresholds=gc.get_threshold(), tracked_objects=len(gc.get_objects()),
                        at=time.time())
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(snapshot, fh)

    def loop() -> None:
        while True:
            time.sleep(1.0)
            stats_copy = {k: list(v) for k, v in stats.items()}
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(dict(stats_copy, thresholds=gc.get_threshold(), at=time.time()), fh)

    gc.callbacks.append(callback)
    threading.Thread(target=loop, daemon=True, name="gc-stats").start()
    atexit.register(dump)


class _Timer:
    """Wall time and the calling thread's CPU time (time.thread_time) of one stage."""

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0
        self.cpu = 0.0
        self.max = 0.0

    def add(self, seconds: float, cpu: float = 0.0) -> None:
        self.n += 1
        self.total += seconds
        self.cpu += cpu
        self.max = max(self.max, seconds)

    def as_dict(self) -> dict[str, float]:
        n = self.n or 1
        return {"count": self.n, "wall_mean_ms": round(self.total * 1000 / n, 4),
                "cpu_mean_ms": round(self.cpu * 1000 / n, 4), "wall_max_ms": round(self.max * 1000, 3)}


def install_phase_stats(path: str) -> None:
    """Wrap the stages of the inbound path with timers (no change to the code under src/)."""
    import functools

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    import kommutator.app as app_mod
    import kommutator.channels.api as channels_api
    import kommutator.ingest.actions as ingest_mod
    from kommutator.db import Database

    timers: dict[str, _Timer] = {}
    batch_sizes: list[int] = []

    def timer(name: str) -> _Timer:
        return timers.setdefault(name, _Timer())

    def wrap_async(owner: Any, attr: str, name: str, size_arg: int | None = None) -> None:
        original = getattr(owner, attr)

        @functools.wraps(original)
        async def wrapped(*a: Any, **kw: Any) -> Any:
            if size_arg is not None:
                batch_sizes.append(len(a[size_arg]))
            t, c = time.perf_counter(), time.thread_time()
            try:
                return await original(*a, **kw)
            finally:
                timer(name).add(time.perf_counter() - t, time.thread_time() - c)

        setattr(owner, attr, wrapped)

    for owner, attr, name in ((channels_api, "ingest", "2 handler: ingest() (queue wait + job + commit)"),
                              (ingest_mod, "ingest", "2 ingest() (queue wait + job + commit)"),
                              (ingest_mod, "do_ingest_message", "3 writer job: do_ingest_message"),
                              (ingest_mod, "do_receive_message", "4 do_receive_message (inside the job)")):
        if hasattr(owner, attr):  # the stages move as the code does; time those that exist
            wrap_async(owner, attr, name)
    wrap_async(Database, "_run_batch", "5 writer: _run_batch (jobs + BEGIN/COMMIT)", size_arg=2)
    run_job = Database._run_job

    current_job: list[str] = [""]

    async def timed_run_job(self: Any, conn: Any, job: Any) -> Any:
        # Each write job by the function that made it: which service writes how often and how dearly.
        name = getattr(job, "__qualname__", type(job).__name__).replace(".<locals>", "")
        t, c = time.perf_counter(), time.thread_time()
        current_job[0] = name
        try:
            return await run_job(self, conn, job)
        finally:
            current_job[0] = ""
            timer(f"9 job {name}").add(time.perf_counter() - t, time.thread_time() - c)

    def owner() -> str:
        """Who runs a statement: the write job on the single writer, else the asyncio task (a service's loop or
        a request)."""
        import asyncio

        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        name = task.get_name() if task is not None else "?"
        if name == "kommutator-sqlite-writer" and current_job[0]:
            return f"job {current_job[0]}"
        return "request" if name.startswith("Task-") else name

    Database._run_job = timed_run_job  # type: ignore[method-assign]
    try:  # every call into aiosqlite's worker thread (one queue put, one thread wake-up, one future each)
        import aiosqlite.core

        wrap_async(aiosqlite.core.Connection, "_execute", "8 aiosqlite thread round trip")
    except (ImportError, AttributeError):
        pass

    starts: dict[int, tuple[float, float]] = {}

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        starts[id(cursor)] = (time.perf_counter(), time.thread_time())

    @event.listens_for(Engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        started = starts.pop(id(cursor), None)
        if started is not None:
            verb = statement.lstrip().split(None, 1)[0].upper()
            table = ""
            words = statement.replace("\n", " ").split()
            for kw in ("INTO", "FROM", "UPDATE"):
                if kw in words:
                    i = words.index(kw)
                    table = words[i + 1]
                    break
            timer(f"6 SQL {verb} {table}").add(time.perf_counter() - started[0], time.thread_time() - started[1])
            timer(f"10 by {owner()}: {verb} {table}").add(0.0)

    @event.listens_for(Engine, "commit")
    def _commit(conn: Any) -> None:
        timer("7 COMMIT issued").add(0.0)

    create_app = app_mod.create_app

    def timed_create_app(*a: Any, **kw: Any) -> Any:
        inner = create_app(*a, **kw)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await inner(scope, receive, send)
                return
            t, c = time.perf_counter(), time.thread_time()
            try:
                await inner(scope, receive, send)
            finally:
                timer("1 ASGI request (whole app)").add(time.perf_counter() - t, time.thread_time() - c)
                timer(f"1 ASGI {scope.get('method', '')} {scope.get('path', '')[:40]}").add(
                    time.perf_counter() - t, time.thread_time() - c)

        return app

    app_mod.create_app = timed_create_app

    def loop() -> None:
        while True:
            time.sleep(1.0)
            sizes = list(batch_sizes)
            snapshot = {"timers": {k: v.as_dict() for k, v in sorted(timers.items())},
                        "batches": len(sizes), "mean_batch_size": round(sum(sizes) / len(sizes), 2) if sizes else 0,
                        "at": time.time()}
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(snapshot, fh, indent=1)

    threading.Thread(target=loop, daemon=True, name="phase-stats").start()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gc-stats")
    p.add_argument("--phase-stats")
    p.add_argument("--cprofile")
    p.add_argument("serve_args", nargs=argparse.REMAINDER)
    args = p.parse_args()
    serve_args = [a for a in args.serve_args if a != "--"]
    if args.gc_stats:
        install_gc_stats(args.gc_stats)
    if args.phase_stats:
        install_phase_stats(args.phase_stats)
    from kommutator.cli import main as cli_main

    if not args.cprofile:
        cli_main(["serve", *serve_args], standalone_mode=True)
        return
    import cProfile

    prof = cProfile.Profile()

    def stop(*_: object) -> None:
        prof.disable()
        prof.dump_stats(args.cprofile)
        sys.exit(0)

    prof.enable()
    try:
        cli_main(["serve", *serve_args], standalone_mode=False)
    finally:
        stop()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    main()
