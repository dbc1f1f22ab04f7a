"""Inbound pipeline benchmark: our server beside a bare baseline, in one run. Targets P1, P3 and P4.

``python bench/run.py`` (about 5 minutes; ``--quick`` about 2) prints a table and writes
``bench/results/<timestamp>.json``. See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from demo_quiet import quiet  # noqa: E402

ROOT = BENCH.parent
RESULTS = BENCH / "results"
PY = sys.executable
DEMO_TOKEN = "kmi_demo_inbound_token_for_the_website_2026"  # kommutator.demo.seed.DEMO_INBOUND_TOKEN

TARGETS = {
    "P1": "SQLite saturation throughput, ours / bare Starlette + group-commit insert >= 0.5",
    "P3": "p99 webhook acknowledgement at half of our SQLite saturation rate <= 20 ms",
    "P4": "PostgreSQL saturation throughput, ours / asyncpg batched insert >= 0.1, and ours >= 1,000 msg/s",
    "CPU50": "server CPU per message at a low steady rate (50 msg/s, SQLite), background work included <= 3 ms",
}


# -- processes ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cmd: list[str], cpu: str | None) -> list[str]:
    return ["taskset", "-c", cpu, *cmd] if cpu is not None else cmd


def cpu_ticks(pid: int) -> int:
    """User + system CPU of a process, all its threads, in clock ticks."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


TICK = os.sysconf("SC_CLK_TCK")


def machine_busy_ticks() -> int:
    """CPU ticks spent by every process on the machine (user + nice + system + irq + softirq + steal)."""
    with open("/proc/stat", encoding="ascii") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    return f[0] + f[1] + f[2] + f[5] + f[6] + f[7]


@dataclass
class Server:
    name: str
    cmd: list[str]
    port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, **self.env}, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log}:\n"
                                   + self.log.read_text(errors="replace")[-3000:])
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer /healthz within {timeout:.0f} s; see {self.log}")

    def cpu(self) -> int:
        assert self.proc is not None
        return cpu_ticks(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def wait_idle(*servers: Server, share: float = 0.05, window: float = 0.5, settle: int = 3,
              timeout: float = 30.0) -> float:
    """Wait until every server has used under ``share`` of a core for ``settle`` windows in a row (the work
    earlier messages left to background services is done); return the seconds waited."""
    t0 = time.monotonic()
    calm = 0
    while calm < settle and time.monotonic() - t0 < timeout:
        before = [s.cpu() for s in servers]
        time.sleep(window)
        used = max((s.cpu() - b) / TICK / window for s, b in zip(servers, before, strict=True))
        calm = calm + 1 if used < share else 0
    return round(time.monotonic() - t0, 2)


# -- one step of load -----------------------------------------------------------------------------

@dataclass
class Bench:
    args: argparse.Namespace
    run_id: str
    load_cpu: str | None
    steps: list[dict[str, Any]] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)  # waited for until idle before every measured step

    def step(self, server: Server, rate: float, *, duration: float, phase: str,
             path: str = "/webhooks/1", tail: float = 0.0) -> dict[str, Any]:
        prefix = f"bk{self.run_id}-{server.name}-{len(self.steps)}"
        # The previous step's leftovers (bot answers, monitor, reports) must not be counted against this one,
        # nor slow it down: both servers share a core.
        waited = wait_idle(*[s for s in self.servers if s.proc]) if phase != "warmup" and self.servers else 0.0
        cmd = pinned([PY, str(BENCH / "load.py"), "--port", str(server.port), "--path", path,
                      "--rate", f"{rate:.3f}", "--duration", str(duration), "--prefix", prefix,
                      "--contacts", str(self.args.contacts), "--token", DEMO_TOKEN,
                      "--seed", str(len(self.steps) + 1)], self.load_cpu)
        cpu0, busy0, t0 = server.cpu() if server.proc else 0, machine_busy_ticks(), time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, timeout=duration + 120, check=False)
        if tail:
            time.sleep(tail)  # the work the step's messages left to background services is counted too
        cpu1, busy1, t1 = server.cpu() if server.proc else 0, machine_busy_ticks(), time.monotonic()
        if proc.returncode != 0:
            raise RuntimeError(f"load generator failed:\n{proc.stderr.decode(errors='replace')[-3000:]}")
        res: dict[str, Any] = json.loads(proc.stdout)
        res.update(server=server.name, phase=phase, idle_wait_seconds=waited)
        res["server_cpu_seconds"] = round((cpu1 - cpu0) / TICK, 2)
        # CPU that neither the server nor the generator used: other processes on this shared machine.
        others = (busy1 - busy0 - (cpu1 - cpu0)) / TICK - res["gen_cpu_seconds"]
        res["others_cpu_share"] = round(max(0.0, others) / max(t1 - t0, 1e-9), 2)
        res["server_cpu_ms_per_request"] = (round(1000 * res["server_cpu_seconds"] / res["ok"], 3)
                                            if res["ok"] else None)
        res["passed"], res["why"] = self.judge(res) if phase != "warmup" else (True, "")
        self.steps.append(res)
        lat = res["latency_ms"]
        print(f"  {server.name:<9} {phase:<10} {rate:8.0f}/s  ok {res['ok']:6d}/{res['scheduled']:<6d} "
              f"p50 {fmt(lat['p50'])} p99 {fmt(lat['p99'])} max {fmt(lat['max'])} ms  "
              f"got {res['achieved_rps']:8.1f}/s  cpu/req {fmt(res['server_cpu_ms_per_request'], 2)} ms  "
              f"gen {100 * res['gen_cpu_share']:3.0f}% others {100 * res['others_cpu_share']:3.0f}% cpu  "
              f"{'PASS' if res['passed'] else 'fail: ' + res['why']}",
              flush=True)
        return res

    def judge(self, res: dict[str, Any]) -> tuple[bool, str]:
        """Sustained: every request answered 200, p99 bounded, throughput kept up with arrivals."""
        if res["aborted"]:
            return False, "backlog grew past 1 s of arrivals"
        bad = res["scheduled"] - res["ok"]
        if bad:
            return False, f"{bad} requests not answered 200 ({res['statuses']}, failed {res['failed']})"
        p99 = res["latency_ms"]["p99"]
        if p99 is None or p99 > self.args.p99_limit:
            return False, f"p99 {p99} ms > {self.args.p99_limit} ms"
        if res["achieved_rps"] < 0.95 * res["rate"]:
            return False, f"throughput {res['achieved_rps']}/s < 95% of offered"
        return True, ""


def fmt(v: float | None, nd: int = 1) -> str:
    return f"{v:7.{nd}f}" if v is not None else "      -"


# -- saturation search ----------------------------------------------------------------------------

def saturation_search(start: float, max_rate: float, precision: float) -> Generator[float, bool, float]:
    """Yield rates to try (send back whether the step passed); return the highest sustained rate.

    Doubling until a step fails, then bisection (geometric) until hi / lo <= precision.
    """
    lo, hi = 0.0, 0.0
    rate = start
    while rate <= max_rate:
        if (yield rate):
            lo = rate
            rate *= 2
        else:
            hi = rate
            break
    if lo == 0.0:  # even the starting rate failed: go down
        rate = start / 2
        while rate >= 5 and lo == 0.0:
            if (yield rate):
                lo = rate
            else:
                hi = rate
                rate /= 2
        if lo == 0.0:
            return 0.0
    if hi == 0.0:
        return lo
    while hi / lo > precision:
        mid = float(round(math.sqrt(lo * hi)))
        if (yield mid):
            lo = mid
        else:
            hi = mid
    return lo


def interleaved(searches: dict[str, tuple[Generator[float, bool, float], Callable[[float], bool]]]
                ) -> dict[str, float]:
    """Run several searches step by step in turn, so both servers see the same machine conditions."""
    result: dict[str, float] = {}
    nexts: dict[str, float] = {}
    for name, (gen, _) in searches.items():
        nexts[name] = next(gen)
    while nexts:
        for name in list(nexts):
            gen, run = searches[name]
            passed = run(nexts[name])
            try:
                nexts[name] = gen.send(passed)
            except StopIteration as stop:
                result[name] = stop.value
                del nexts[name]
    return result


# -- one backend ------------------------------------------------------------------------------------

def count_sqlite(path: Path, sql: str, prefix: str) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return int(conn.execute(sql, (prefix + "%",)).fetchone()[0])


async def _pg(dsn: str, sql: str, *params: Any) -> Any:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return await conn.fetchval(sql, *params)
    finally:
        await conn.close()


def pg(dsn: str, sql: str, *params: Any) -> Any:
    return asyncio.run(_pg(dsn, sql, *params))


async def _pg_errors(dsn: str, prefix: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        rows = await conn.fetch("SELECT left(error, 300) AS e, count(*) AS n FROM inbound_events "
                                "WHERE status = 'failed' AND provider_event_id LIKE $1 "
                                "GROUP BY 1 ORDER BY 2 DESC LIMIT 5", prefix + "%")
        return [f"{r['n']} x {r['e']}" for r in rows]
    finally:
        await conn.close()


def pg_errors(dsn: str, prefix: str) -> list[str]:
    """The most frequent errors of raw events our server stored as failed (answered 200 all the same)."""
    return asyncio.run(_pg_errors(dsn, prefix))


def pg_dsn(url: str, database: str | None = None) -> str:
    """A plain libpq DSN from a SQLAlchemy URL (postgresql+asyncpg://...)."""
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    if database is not None:
        base, _, _ = dsn.rpartition("/")
        dsn = f"{base}/{database}"
    return dsn


def sqlalchemy_url(url: str, database: str) -> str:
    """The SQLAlchemy URL our server takes, for ``database`` on the server of ``url``."""
    rest = url.split("://", 1)[1]
    return f"postgresql+asyncpg://{rest.rpartition('/')[0]}/{database}"


def run_backend(b: Bench, backend: str, work: Path, server_cpu: str | None) -> dict[str, Any]:
    """Start the baseline and our server on ``backend``, find both saturation rates, run P3, check counts."""
    args = b.args
    base_port, ours_port = free_port(), free_port()
    ours_dir = work / f"ours-{backend}"
    base_env: dict[str, str] = {}
    ours_env = {"KOMMUTATOR_DATA_DIR": str(ours_dir), "KOMMUTATOR_LISTEN_PORT": str(ours_port),
                "KOMMUTATOR_CONFIG": str(work / "no-kommutator.toml")}
    if backend == "sqlite":
        base_target = ["--sqlite", str(work / "baseline.db")]
    else:
        admin = pg_dsn(args.pg_url)
        base_db, ours_db = f"kbench_{b.run_id}_base", f"kbench_{b.run_id}_ours"
        for name in (base_db, ours_db):
            pg(admin, f'CREATE DATABASE "{name}"')
        base_target = ["--pg", pg_dsn(args.pg_url, base_db)]
        ours_env["KOMMUTATOR_DATABASE_URL"] = sqlalchemy_url(args.pg_url, ours_db)
    kommutator = str(Path(PY).with_name("kommutator"))
    seed = subprocess.run([kommutator, "demo", "--no-serve", "--data-dir", str(ours_dir)], capture_output=True,
                          env={**os.environ, **ours_env}, cwd=ROOT, check=False, timeout=300)
    if seed.returncode != 0:
        raise RuntimeError(f"kommutator demo --no-serve failed:\n{seed.stdout.decode()}\n{seed.stderr.decode()}")
    baseline = Server("baseline", pinned([PY, str(BENCH / "baseline_app.py"), "--port", str(base_port),
                                          *base_target], server_cpu), base_port, work / f"baseline-{backend}.log",
                      base_env)
    ours = Server("ours", pinned([kommutator, "serve"], server_cpu), ours_port, work / f"ours-{backend}.log",
                  ours_env)
    out: dict[str, Any] = {"backend": backend}
    first_step = len(b.steps)
    try:
        baseline.start()
        ours.start()
        if not args.with_integrations:
            print(f"[{backend}] demo integrations turned off: {quiet(f'http://127.0.0.1:{ours_port}')}", flush=True)
        b.servers = [baseline, ours]
        print(f"[{backend}] baseline pid {baseline.proc.pid if baseline.proc else '?'} port {base_port}, "
              f"ours pid {ours.proc.pid if ours.proc else '?'} port {ours_port}", flush=True)
        for s in (baseline, ours):
            b.step(s, args.warmup_rate, duration=args.warmup, phase="warmup")
        if backend == "sqlite" and args.low_rate > 0:
            # Fixed and background costs that do not amortise show at a low rate: CPU per message at 50/s.
            out["at_low_rate"] = {s.name: _brief(b.step(s, args.low_rate, duration=args.low_duration, phase="low",
                                                         tail=args.low_tail)) for s in (baseline, ours)}

        def runner(s: Server) -> Callable[[float], bool]:
            def run(rate: float) -> bool:
                res = b.step(s, rate, duration=args.duration, phase="search")
                p50 = res["latency_ms"]["p50"] or 0.0
                if not res["passed"] and res["why"].startswith("p99") and p50 <= args.p99_limit / 4:
                    # Every request answered 200 and throughput kept up, only the tail was slow: on a shared
                    # machine that is often a stall of the host, not saturation. Decide on a second run.
                    res = b.step(s, rate, duration=args.duration, phase="retry")
                return bool(res["passed"])

            return run

        sat = interleaved({
            "baseline": (saturation_search(args.start_rate, args.max_rate, args.precision), runner(baseline)),
            "ours": (saturation_search(args.start_rate, args.max_rate, args.precision), runner(ours)),
        })
        out["saturation_rps"] = sat
        out["ratio"] = round(sat["ours"] / sat["baseline"], 4) if sat["baseline"] else None
        # A second, noise-robust estimate: server CPU per request at the highest rate each sustained.
        cpu = {}
        for name in ("baseline", "ours"):
            passed = [x for x in b.steps[first_step:] if x["server"] == name and x["passed"]
                      and x["phase"] in ("search", "retry") and x["server_cpu_ms_per_request"]]
            if passed:
                cpu[name] = max(passed, key=lambda x: x["rate"])["server_cpu_ms_per_request"]
        out["cpu_ms_per_request_at_best_rate"] = cpu
        if len(cpu) == 2:
            out["cpu_ratio_estimate"] = round(cpu["baseline"] / cpu["ours"], 4)
        # Confirm both saturation rates once more and keep the figures of those runs.
        out["at_saturation"] = {}
        for s in (baseline, ours):
            if sat[s.name] > 0:
                res = b.step(s, sat[s.name], duration=args.duration, phase="confirm")
                out["at_saturation"][s.name] = _brief(res)
        if backend == "sqlite" and sat["ours"] > 0:
            half = sat["ours"] / 2
            out["half_saturation_rps"] = half
            out["at_half"] = {s.name: _brief(b.step(s, half, duration=args.p3_duration, phase="P3"))
                              for s in (ours, baseline)}
    finally:
        b.servers = []
        baseline.stop()
        ours.stop()
    mine = b.steps[first_step:]
    out["correctness"] = check_counts(b, backend, mine, work, ours_env, base_target)
    if backend == "postgresql" and not args.keep:
        admin = pg_dsn(args.pg_url)
        for name in (f"kbench_{b.run_id}_base", f"kbench_{b.run_id}_ours"):
            with contextlib.suppress(Exception):
                pg(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return out


def _brief(res: dict[str, Any]) -> dict[str, Any]:
    return {k: res[k] for k in ("rate", "ok", "scheduled", "achieved_rps", "latency_ms", "server_cpu_ms_per_request",
                                "others_cpu_share", "passed", "why") if k in res}


def check_counts(b: Bench, backend: str, steps: list[dict[str, Any]], work: Path, ours_env: dict[str, str],
                 base_target: list[str]) -> dict[str, Any]:
    """Messages stored must equal 200 answers (all bench message ids are new, so each 200 stores one)."""
    out: dict[str, Any] = {}
    for name in ("baseline", "ours"):
        prefix = f"bk{b.run_id}-{name}-"
        answered = sum(s["ok"] for s in steps if s["server"] == name)
        no_message = sum(s.get("acked_without_message", 0) for s in steps if s["server"] == name)
        failed_events = 0
        errors: list[str] = []
        new = sum(s["new_messages"] for s in steps if s["server"] == name)
        unknown = sum(s["unanswered"] + s["failed"] for s in steps if s["server"] == name)
        if backend == "sqlite":
            if name == "ours":
                db = Path(ours_env["KOMMUTATOR_DATA_DIR"]) / "kommutator.db"
                stored = count_sqlite(db, "SELECT count(*) FROM messages WHERE direction = 'in' "
                                          "AND provider_message_id LIKE ?", prefix)
                events = count_sqlite(db, "SELECT count(*) FROM inbound_events WHERE provider_event_id LIKE ?",
                                      prefix)
                failed_events = count_sqlite(db, "SELECT count(*) FROM inbound_events WHERE status = 'failed' "
                                                 "AND provider_event_id LIKE ?", prefix)
            else:
                stored = count_sqlite(Path(base_target[1]), "SELECT count(*) FROM messages "
                                                            "WHERE provider_message_id LIKE ?", prefix)
                events = stored
        else:
            if name == "ours":
                dsn = pg_dsn(ours_env["KOMMUTATOR_DATABASE_URL"])
                stored = pg(dsn, "SELECT count(*) FROM messages WHERE direction = 'in' "
                                 "AND provider_message_id LIKE $1", prefix + "%")
                events = pg(dsn, "SELECT count(*) FROM inbound_events WHERE provider_event_id LIKE $1", prefix + "%")
                failed_events = pg(dsn, "SELECT count(*) FROM inbound_events WHERE status = 'failed' "
                                        "AND provider_event_id LIKE $1", prefix + "%")
                errors = pg_errors(dsn, prefix) if failed_events else []
            else:
                stored = pg(base_target[1], "SELECT count(*) FROM bench_messages WHERE provider_message_id LIKE $1",
                            prefix + "%")
                events = stored
        ok = stored == answered == new == events if unknown == 0 else answered <= stored <= answered + unknown
        out[name] = {"answered_200": answered, "answered_new": new, "answered_200_with_message_id_null": no_message,
                     "stored_messages": int(stored), "stored_events": int(events),
                     "stored_events_failed": int(failed_events), "failed_event_errors": errors,
                     "requests_with_unknown_outcome": unknown, "ok": ok}
        print(f"  [{backend}] {name}: answered 200 {answered} (message_id null in {no_message}), stored messages "
              f"{stored}, raw events {events} (status failed: {failed_events})"
              f"{', unknown outcome ' + str(unknown) if unknown else ''} -> {'OK' if ok else 'MISMATCH'}", flush=True)
        for e in errors:
            print("      failed event: " + " ".join(e.split()), flush=True)
    return out


def generator_check(b: Bench, work: Path, server_cpu: str | None) -> dict[str, Any]:
    """Drive the null server far above any saturation rate seen here: the generator must keep its schedule."""
    port = free_port()
    null = Server("null", pinned([PY, str(BENCH / "null_server.py"), "--port", str(port)], server_cpu), port,
                  work / "null.log")
    try:
        null.start()
        res = b.step(null, b.args.gen_check_rate, duration=b.args.gen_check_duration, phase="gen-check")
    finally:
        null.stop()
    return _brief(res) | {"send_lag_ms": res["send_lag_ms"], "gen_cpu_share": res["gen_cpu_share"]}


# -- report -------------------------------------------------------------------------------------------

def table(report: dict[str, Any]) -> str:
    lines = ["", "Steps (latency from the intended send time, ms):",
             f"{'backend':<10} {'server':<9} {'phase':<10} {'offered/s':>9} {'got/s':>8} {'ok':>7} {'p50':>7} "
             f"{'p95':>7} {'p99':>7} {'max':>8} {'cpu ms/req':>10} {'gen cpu':>7} {'others':>6}  result"]
    for s in report["steps"]:
        lat = s["latency_ms"]
        lines.append(f"{s.get('backend', ''):<10} {s['server']:<9} {s['phase']:<10} {s['rate']:9.0f} "
                     f"{s['achieved_rps']:8.1f} {s['ok']:7d} {fmt(lat['p50'])} {fmt(lat['p95'])} {fmt(lat['p99'])} "
                     f"{fmt(lat['max'])} {fmt(s['server_cpu_ms_per_request'], 3):>10} "
                     f"{100 * s['gen_cpu_share']:6.0f}% {100 * s.get('others_cpu_share', 0):5.0f}%  "
                     f"{'-' if s['phase'] == 'warmup' else 'pass' if s['passed'] else 'fail: ' + s['why']}")
    lines += ["", "Targets:", f"{'#':<3} {'measured':<70} {'target':<32} verdict"]
    for key, t in report["targets"].items():
        lines.append(f"{key:<3} {t['measured']:<70} {t['target']:<32} {t['verdict']}")
    return "\n".join(lines)


def targets(report: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sq = report.get("sqlite")
    if sq:
        sat = sq["saturation_rps"]
        ratio = sq["ratio"]
        est = sq.get("cpu_ratio_estimate")
        out["P1"] = {"measured": f"ours {sat['ours']:.0f}/s / baseline {sat['baseline']:.0f}/s = {ratio}"
                                 + (f" (CPU/request ratio {est})" if est else ""),
                     "target": ">= 0.5", "value": ratio,
                     "verdict": "PASS" if ratio is not None and ratio >= 0.5 else "FAIL"}
        half = sq.get("at_half", {}).get("ours")
        if half:
            p99 = half["latency_ms"]["p99"]
            ok = half["ok"] == half["scheduled"]
            base = sq["at_half"]["baseline"]["latency_ms"]
            out["P3"] = {"measured": f"ours p99 {p99} ms at {half['rate']:.0f}/s (baseline p99 {base['p99']} ms)"
                                    + ("" if ok else f", only {half['ok']}/{half['scheduled']} answered 200"),
                         "target": "<= 20 ms", "value": p99,
                         "verdict": "PASS" if ok and p99 is not None and p99 <= 20 else "FAIL"}
        low = sq.get("at_low_rate", {}).get("ours")
        if low and low["server_cpu_ms_per_request"] is not None:
            cpu = low["server_cpu_ms_per_request"]
            base = sq["at_low_rate"]["baseline"]["server_cpu_ms_per_request"]
            out["CPU50"] = {"measured": f"ours {cpu} ms CPU/msg at {low['rate']:.0f}/s (baseline {base} ms; "
                                        f"others {100 * low.get('others_cpu_share', 0):.0f}% CPU)",
                            "target": "<= 3 ms", "value": cpu, "verdict": "PASS" if cpu <= 3 else "FAIL"}
    pgr = report.get("postgresql")
    if pgr and "saturation_rps" in pgr:
        sat = pgr["saturation_rps"]
        ratio = pgr["ratio"]
        passed = ratio is not None and ratio >= 0.1 and sat["ours"] >= 1000
        out["P4"] = {"measured": f"ours {sat['ours']:.0f}/s / baseline {sat['baseline']:.0f}/s = {ratio}",
                     "target": ">= 0.1 and ours >= 1000/s", "value": ratio, "verdict": "PASS" if passed else "FAIL"}
    corr = [(k, v) for k in ("sqlite", "postgresql") for v in [(report.get(k) or {}).get("correctness")] if v]
    if corr:
        ok = all(c["ok"] for _, v in corr for c in v.values())
        out["stored"] = {"measured": "; ".join(f"{k} {n}: {c['stored_messages']} stored / {c['answered_200']} x 200"
                                               for k, v in corr for n, c in v.items()),
                         "target": "stored == answered 200", "value": ok, "verdict": "PASS" if ok else "FAIL"}
    return out


def pg_reachable(url: str) -> str | None:
    try:
        pg(pg_dsn(url), "SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=4.0, help="seconds of arrivals per search step (default 4)")
    p.add_argument("--quick", action="store_true", help="short steps and a coarser search (about 2 minutes)")
    p.add_argument("--start-rate", type=float, default=100.0, help="first rate of the doubling ladder")
    p.add_argument("--max-rate", type=float, default=40000.0)
    p.add_argument("--precision", type=float, default=1.15, help="stop the bisection when hi/lo <= this")
    p.add_argument("--p99-limit", type=float, default=100.0, help="p99 (ms) a sustained step must keep")
    p.add_argument("--p3-duration", type=float, default=10.0, help="seconds of the P3 run at half saturation")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--warmup-rate", type=float, default=50.0)
    p.add_argument("--contacts", type=int, default=1000)
    p.add_argument("--low-rate", type=float, default=50.0, help="rate of the CPU-per-message step (0: skip it)")
    p.add_argument("--low-duration", type=float, default=10.0, help="seconds of the low-rate step")
    p.add_argument("--low-tail", type=float, default=2.0,
                   help="seconds after the low-rate step whose server CPU still counts (background work)")
    p.add_argument("--gen-check-rate", type=float, default=12000.0)
    p.add_argument("--gen-check-duration", type=float, default=3.0)
    p.add_argument("--pg-url", default=os.environ.get("KOMMUTATOR_BENCH_PG_URL",
                                                      "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"),
                   help="PostgreSQL server (the bench creates and drops its own databases there)")
    p.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL part (P4)")
    p.add_argument("--no-sqlite", action="store_true", help="skip the SQLite part (P1, P3)")
    p.add_argument("--with-integrations", action="store_true",
                   help="keep the demo's event subscription and CRM integration on (demo_quiet.py)")
    p.add_argument("--no-pin", action="store_true", help="do not pin server and generator to separate cores")
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--load-cpu", default="1")
    p.add_argument("--keep", action="store_true", help="keep the data folders, logs and PostgreSQL databases")
    p.add_argument("--out", type=Path, help="JSON result path (default bench/results/<timestamp>.json)")
    args = p.parse_args()
    if args.quick:
        args.duration = min(args.duration, 2.0)
        args.precision = 1.25
        args.p3_duration = 4.0
        args.warmup = 1.0
        args.gen_check_duration = 1.5
        args.low_duration = min(args.low_duration, 6.0)
    return args


def main() -> int:
    args = parse_args()
    started = dt.datetime.now(dt.UTC)
    run_id = started.strftime("%H%M%S")
    pin = not args.no_pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    server_cpu, load_cpu = (args.server_cpu, args.load_cpu) if pin else (None, None)
    b = Bench(args, run_id, load_cpu)
    work = Path(tempfile.mkdtemp(prefix="kommutator-bench-"))
    (work / "no-kommutator.toml").touch()
    report: dict[str, Any] = {
        "started_at": started.isoformat(), "args": {k: str(v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                    "pinning": {"server_cpu": server_cpu, "load_cpu": load_cpu}},
        "targets_definition": TARGETS,
    }
    print(f"Kommutator inbound benchmark: work folder {work}; server on CPU {server_cpu}, generator on CPU "
          f"{load_cpu}; steps of {args.duration:g} s; sustained = all 200, p99 <= {args.p99_limit:g} ms", flush=True)
    t0 = time.monotonic()
    try:
        print("[generator] null server check", flush=True)
        report["generator_check"] = generator_check(b, work, server_cpu)
        for s in b.steps:
            s["backend"] = "-"
        if not args.no_sqlite:
            n = len(b.steps)
            report["sqlite"] = run_backend(b, "sqlite", work, server_cpu)
            for s in b.steps[n:]:
                s["backend"] = "sqlite"
        if not args.no_pg:
            why = pg_reachable(args.pg_url)
            if why:
                report["postgresql"] = {"skipped": f"{args.pg_url}: {why}"}
                print(f"[postgresql] skipped: {why}", flush=True)
            else:
                n = len(b.steps)
                report["postgresql"] = run_backend(b, "postgresql", work, server_cpu)
                for s in b.steps[n:]:
                    s["backend"] = "postgresql"
    finally:
        report["steps"] = b.steps
        report["targets"] = targets(report)
        report["wall_seconds"] = round(time.monotonic() - t0, 1)
        RESULTS.mkdir(exist_ok=True)
        out = args.out or RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        out.write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(table(report))
        print(f"\nWrote {out} ({report['wall_seconds']} s)")
        if args.keep:
            print(f"Kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
