"""Open-loop HTTP/1.1 load generator for the inbound webhook (and the baseline's equivalent endpoint).

Run it as its own process, pinned to a core of its own (``taskset -c 1 python bench/load.py ...``); it prints
one JSON object with the figures of the step.

* Open loop: request ``i`` is due at ``start + i / rate`` whatever the server does. Latency is measured from
  that intended time, so a slow server cannot slow the generator down and hide its queueing
  (no coordinated omission).
* Keep-alive connections, one request in flight per connection, opened before the step; when every
  connection is busy a new one is opened (up to ``--max-conns``) and the request waits for it.
* The generator measures itself: its CPU use over the step and the lag between a request's intended and
  actual send time. A high lag or a CPU share near 100 % means the figures describe the generator, not
  the server.
* A step whose backlog grows beyond ``--abort-after`` seconds of arrivals stops sending (the server is
  overloaded; going on would only build a queue that takes long to drain), then waits for every request
  it sent so that the stored-versus-answered check stays exact.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
from collections import deque
from typing import Any


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/max (nearest rank) of ``values`` in milliseconds."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    s = sorted(values)
    n = len(s)

    def rank(q: float) -> float:
        return round(s[min(n - 1, max(0, int(q * n + 0.999999) - 1))] * 1000, 3)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": round(s[-1] * 1000, 3),
            "mean": round(sum(s) / n * 1000, 3)}


class Conn(asyncio.Protocol):
    """One keep-alive connection; parses responses with Content-Length (what uvicorn sends)."""

    __slots__ = ("buf", "current", "gen", "transport")

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.current: float | None = None  # intended send time of the request in flight

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport
        self.gen.on_ready(self)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            i = head.find(b"\r\ncontent-length:")
            if i < 0:
                self.gen.on_protocol_error(self, "response without content-length")
                return
            j = head.find(b"\r\n", i + 2)
            length = int(head[i + 17: j if j >= 0 else end])
            total = end + 4 + length
            if len(buf) < total:
                return
            status = int(buf[9:12])
            body = bytes(buf[end + 4: total])
            del buf[:total]
            self.gen.on_response(self, status, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.on_lost(self)


class Generator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.host: str = args.host
        self.port: int = args.port
        self.path: str = args.path
        self.rate: float = args.rate
        self.duration: float = args.duration
        self.prefix: str = args.prefix
        self.max_conns: int = args.max_conns
        self.abort_after: float = args.abort_after
        self.drain_timeout: float = args.drain_timeout
        self.total = max(1, round(args.rate * args.duration))
        rnd = random.Random(args.seed)
        self.contacts = [rnd.randrange(args.contacts) for _ in range(min(self.total, 100_000))]
        self.head = (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                     f"Authorization: Bearer {args.token}\r\nContent-Type: application/json\r\n").encode()
        self.loop = asyncio.get_running_loop()
        self.idle: deque[Conn] = deque()
        self.pending: deque[float] = deque()
        self.conns: set[Conn] = set()
        self.opening = 0
        self.peak_conns = 0
        self.sent = 0
        self.dispatched = 0
        self.dropped = 0
        self.answered = 0
        self.failed = 0  # connection lost with a request in flight
        self.statuses: dict[int, int] = {}
        self.new_messages = 0  # 200 with "duplicate":false
        self.without_message = 0  # of those, how many carried "message_id":null
        self.latencies: list[float] = []
        self.lags: list[float] = []
        self.last_answer = 0.0
        self.done_sending = False
        self.aborted = False
        self.drained = asyncio.Event()
        self.errors: list[str] = []

    def body(self, idx: int) -> bytes:
        c = self.contacts[idx % len(self.contacts)]
        return (b'{"id":"%s-%d","contact":{"id":"cust-%d","name":"Customer %d"},'
                b'"text":"Hello! Where is my order %d? It was promised for yesterday."}'
                % (self.prefix.encode(), idx, c, c, idx))

    # -- connections -------------------------------------------------------------------------
    def open_conn(self) -> None:
        self.opening += 1

        async def connect() -> None:
            try:
                await self.loop.create_connection(lambda: Conn(self), self.host, self.port)
            except OSError as exc:
                self.errors.append(f"connect: {exc}")
            finally:
                self.opening -= 1
            if self.pending and not self.conns and not self.opening:
                self.dropped += len(self.pending)  # nowhere to send them
                self.pending.clear()
                self.check_drained()

        self.loop.create_task(connect())

    def on_ready(self, conn: Conn) -> None:
        self.conns.add(conn)
        self.peak_conns = max(self.peak_conns, len(self.conns))
        if self.pending:
            self.send(conn, self.pending.popleft())
        else:
            self.idle.append(conn)

    def on_lost(self, conn: Conn) -> None:
        self.conns.discard(conn)
        try:
            self.idle.remove(conn)
        except ValueError:
            pass
        if conn.current is not None:
            conn.current = None
            self.failed += 1
            self.check_drained()
        if self.pending and not self.idle and len(self.conns) + self.opening < self.max_conns:
            self.open_conn()

    def on_protocol_error(self, conn: Conn, what: str) -> None:
        self.errors.append(what)
        assert conn.transport is not None
        conn.transport.close()

    # -- requests ------------------------------------------------------------------------------
    def dispatch(self, intended: float) -> None:
        if self.idle:
            self.send(self.idle.popleft(), intended)
            return
        self.pending.append(intended)
        if len(self.conns) + self.opening < self.max_conns:
            self.open_conn()

    def send(self, conn: Conn, intended: float) -> None:
        idx = self.sent
        self.sent += 1
        body = self.body(idx)
        conn.current = intended
        assert conn.transport is not None
        conn.transport.write(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.lags.append(time.perf_counter() - intended)

    def on_response(self, conn: Conn, status: int, body: bytes) -> None:
        now = time.perf_counter()
        intended = conn.current
        conn.current = None
        if intended is not None:
            self.latencies.append(now - intended)
        self.answered += 1
        self.last_answer = now
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200 and b'"duplicate":false' in body:
            self.new_messages += 1
            if b'"message_id":null' in body:
                self.without_message += 1  # acknowledged, but no message was created
        elif status != 200 and len(self.errors) < 20:
            self.errors.append(f"HTTP {status}: {body[:300]!r}")
        if self.pending:
            self.send(conn, self.pending.popleft())
        else:
            self.idle.append(conn)
        self.check_drained()

    def check_drained(self) -> None:
        if self.done_sending and not self.pending and self.answered + self.failed >= self.sent:
            self.drained.set()

    # -- the step ---------------------------------------------------------------------------
    async def run(self, initial_conns: int) -> dict[str, Any]:
        loop = self.loop
        await asyncio.gather(*[loop.create_connection(lambda: Conn(self), self.host, self.port)
                               for _ in range(min(initial_conns, self.max_conns))])
        cpu0 = _cpu_seconds()
        clock = time.perf_counter
        start = clock() + 0.01
        interval = 1.0 / self.rate
        backlog_limit = max(50, int(self.rate * self.abort_after))
        i = 0
        while i < self.total:
            now = clock()
            due = start + i * interval
            if due > now:
                # The event loop's timers have a resolution of 1 ms: sleeping less only spins.
                await asyncio.sleep(max(due - now, 0.001))
                continue
            while i < self.total and start + i * interval <= now:
                self.dispatch(start + i * interval)
                self.dispatched += 1
                i += 1
            if self.dispatched - self.answered - self.failed > backlog_limit:
                self.aborted = True
                break
        send_end = clock()
        self.done_sending = True
        self.check_drained()
        try:
            await asyncio.wait_for(self.drained.wait(), self.drain_timeout)
        except TimeoutError:
            self.errors.append(f"drain timeout: {self.sent - self.answered - self.failed} sent requests unanswered, "
                               f"{len(self.pending)} never sent")
        end = clock()
        cpu = _cpu_seconds() - cpu0
        for conn in list(self.conns):
            if conn.transport is not None:
                conn.transport.close()
        unanswered = self.sent - self.answered - self.failed
        window = (self.last_answer or end) - start
        ok = self.statuses.get(200, 0)
        return {
            "rate": self.rate, "duration": self.duration, "scheduled": self.total, "sent": self.sent,
            "not_sent": self.dispatched - self.sent, "answered": self.answered, "ok": ok,
            "new_messages": self.new_messages, "acked_without_message": self.without_message,
            "failed": self.failed, "unanswered": unanswered,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())}, "aborted": self.aborted,
            "latency_ms": percentiles(self.latencies),
            "send_lag_ms": percentiles(self.lags),
            "achieved_rps": round(ok / window, 1) if window > 0 else 0.0,
            "send_seconds": round(send_end - start, 3), "wall_seconds": round(end - start, 3),
            "gen_cpu_seconds": round(cpu, 3), "gen_cpu_share": round(cpu / max(end - start, 1e-9), 3),
            "peak_conns": self.peak_conns, "errors": self.errors[:20], "prefix": self.prefix,
        }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/webhooks/1")
    p.add_argument("--token", default="kmi_demo_inbound_token_for_the_website_2026")
    p.add_argument("--rate", type=float, required=True, help="arrivals per second (open loop)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of arrivals")
    p.add_argument("--contacts", type=int, default=1000, help="messages are spread over this many contacts")
    p.add_argument("--prefix", default=f"b{os.getpid()}-{int(time.time())}", help="message id prefix (unique)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--conns", type=int, default=0, help="connections opened before the step (default: by rate)")
    p.add_argument("--max-conns", type=int, default=1000)
    p.add_argument("--abort-after", type=float, default=1.0,
                   help="stop sending when more than this many seconds of arrivals are outstanding")
    p.add_argument("--drain-timeout", type=float, default=30.0)
    return p.parse_args(argv)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    gen = Generator(args)
    initial = args.conns or max(16, min(256, int(args.rate * 0.02)))
    return await gen.run(initial)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard]
        result = asyncio.run(main_async(args))
    else:
        result = uvloop.run(main_async(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
