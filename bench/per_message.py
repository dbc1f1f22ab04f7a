"""SQL statements and server CPU per inbound webhook message, through the real app, the demo's bot attached.

``python bench/per_message.py`` seeds a throw-away demo workspace (``kommutator demo --no-serve``), turns off
the demo's event subscription and CRM integration (``demo_quiet.py``; ``--with-integrations`` keeps them),
and sends ``--messages`` webhook messages on the demo API channel at a low steady rate, spread over
``--contacts`` customers (each one's first message opens a conversation the bot greets, the rest are
answered by the bot), then waits ``--tail`` seconds so the background work the messages caused is counted.

Two server processes, one after the other, each on a fresh copy of the seeded data:

* statements: ``serve_instrumented.py --phase-stats`` counts every SQL statement (both engines, all services);
  it prints statements per message and the statements by verb and table.
* CPU: a plain ``kommutator serve``; CPU per message from ``/proc/<pid>/stat`` (all threads).

Both subtract what the idle server does in the same time (pollers, heartbeats), measured just before the
messages, after the server has settled. Figures are for comparing one version of the code with another.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_quiet import quiet
from run import BENCH, DEMO_TOKEN, PY, ROOT, TICK, Server, cpu_ticks, free_port, wait_idle


def _stats(path: Path) -> dict[str, Any]:
    for _ in range(50):
        try:
            return dict(json.loads(path.read_text())["timers"])
        except (OSError, ValueError):
            time.sleep(0.1)
    return {}


def _fresh_stats(path: Path) -> dict[str, Any]:
    """The phase-stats file is rewritten every second: wait for the next write."""
    try:
        before = path.stat().st_mtime
    except OSError:
        before = 0.0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if path.stat().st_mtime > before:
                break
        except OSError:
            pass
        time.sleep(0.05)
    time.sleep(0.05)
    return _stats(path)


def _sql(timers: dict[str, Any], prefix: str = "6 SQL ") -> dict[str, int]:
    return {k[len(prefix):]: int(v["count"]) for k, v in timers.items() if k.startswith(prefix)}


def _diff(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b)}


def _load(port: int, args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    cmd = [PY, str(BENCH / "load.py"), "--port", str(port), "--rate", str(args.rate),
           "--duration", str(args.messages / args.rate), "--prefix", prefix, "--contacts", str(args.contacts),
           "--token", DEMO_TOKEN, "--conns", "4"]
    proc = subprocess.run(cmd, capture_output=True, timeout=args.messages / args.rate + 120, check=True)
    res: dict[str, Any] = json.loads(proc.stdout)
    if res["ok"] != args.messages:
        raise RuntimeError(f"only {res['ok']} of {args.messages} messages answered 200: {res['errors'][:3]}")
    return res


def _start(name: str, cmd: list[str], data: Path, work: Path) -> Server:
    port = free_port()
    env = {"KOMMUTATOR_DATA_DIR": str(data), "KOMMUTATOR_LISTEN_PORT": str(port),
           "KOMMUTATOR_CONFIG": str(work / "no-kommutator.toml")}
    server = Server(name, cmd, port, work / f"{name}.log", env)
    server.start()
    return server


def measure(args: argparse.Namespace, seeded: Path, work: Path, *, statements: bool) -> dict[str, Any]:
    name = "statements" if statements else "cpu"
    data = work / name
    shutil.copytree(seeded, data)
    stats_path = work / "phase-stats.json"
    kommutator = str(Path(PY).with_name("kommutator"))
    cmd = ([PY, str(BENCH / "serve_instrumented.py"), "--phase-stats", str(stats_path), "--"] if statements
           else [kommutator, "serve"])
    server = _start(name, cmd, data, work)
    try:
        if not args.with_integrations:
            quiet(f"http://127.0.0.1:{server.port}")
        # Warm up (imports, caches, the first conversations) on other contacts' ids, then let it settle.
        _load(server.port, argparse.Namespace(**{**vars(args), "messages": 20}), f"warm{os.getpid()}")
        wait_idle(server, settle=8)  # 4 s calm: the reports worker waits 2 s, the monitor 1 s
        assert server.proc is not None
        pid = server.proc.pid
        s0 = _fresh_stats(stats_path) if statements else {}
        c0, t0 = cpu_ticks(pid), time.monotonic()
        time.sleep(args.idle)
        s1 = _fresh_stats(stats_path) if statements else {}
        c1, t1 = cpu_ticks(pid), time.monotonic()
        idle_seconds, idle_cpu = t1 - t0, (c1 - c0) / TICK
        idle_sql = _diff(_sql(s0), _sql(s1))
        _load(server.port, args, f"pm{os.getpid()}")
        time.sleep(args.tail)
        s2 = _fresh_stats(stats_path) if statements else {}
        c2, t2 = cpu_ticks(pid), time.monotonic()
    finally:
        server.stop()
    busy_seconds = t2 - t1
    scale = busy_seconds / idle_seconds
    out: dict[str, Any] = {"messages": args.messages, "seconds": round(busy_seconds, 2)}
    if statements:
        busy_sql = _diff(_sql(s1), _sql(s2))
        net = {k: busy_sql.get(k, 0) - idle_sql.get(k, 0) * scale for k in busy_sql}
        out["idle_statements_per_second"] = round(sum(idle_sql.values()) / idle_seconds, 2)
        out["statements_per_message"] = round(sum(net.values()) / args.messages, 2)
        out["by_statement"] = {k: round(v / args.messages, 2)
                               for k, v in sorted(net.items(), key=lambda kv: -kv[1]) if abs(v) >= 0.5}
        idle_by = _diff(_sql(s0, "10 by "), _sql(s1, "10 by "))
        busy_by = _diff(_sql(s1, "10 by "), _sql(s2, "10 by "))
        out["idle_statements_per_second_by_owner"] = {
            k: round(v / idle_seconds, 2) for k, v in sorted(idle_by.items(), key=lambda kv: -kv[1]) if v}
        out["by_owner"] = {k: round((v - idle_by.get(k, 0) * scale) / args.messages, 2)
                           for k, v in sorted(busy_by.items(), key=lambda kv: -kv[1])
                           if abs(v - idle_by.get(k, 0) * scale) >= 0.5}
        jobs = _diff({k: int(v["count"]) for k, v in s1.items() if k.startswith("9 job ")},
                     {k: int(v["count"]) for k, v in s2.items() if k.startswith("9 job ")})
        out["write_jobs_per_message"] = {k[6:]: round(v / args.messages, 2)
                                         for k, v in sorted(jobs.items(), key=lambda kv: -kv[1]) if v}
    else:
        cpu = (c2 - c1) / TICK - idle_cpu * scale
        out["idle_cpu_share"] = round(idle_cpu / idle_seconds, 3)
        out["cpu_ms_per_message"] = round(1000 * cpu / args.messages, 2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=300)
    p.add_argument("--rate", type=float, default=20.0, help="messages per second (low: requests do not overlap)")
    p.add_argument("--contacts", type=int, default=100, help="customers the messages are spread over")
    p.add_argument("--idle", type=float, default=5.0, help="seconds of idle measured before the messages")
    p.add_argument("--tail", type=float, default=3.0, help="seconds counted after the last message")
    p.add_argument("--with-integrations", action="store_true",
                   help="keep the demo's event subscription and CRM integration on")
    p.add_argument("--verbose", action="store_true", help="statements by the job or service that ran them")
    p.add_argument("--no-cpu", action="store_true", help="count statements only")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="kperm-") as tmp:
        work = Path(tmp)
        seeded = work / "seeded"
        env = {**os.environ, "KOMMUTATOR_CONFIG": str(work / "no-kommutator.toml")}
        subprocess.run([str(Path(PY).with_name("kommutator")), "demo", "--no-serve", "--data-dir", str(seeded)],
                       capture_output=True, env=env, cwd=ROOT, check=True, timeout=300)
        result: dict[str, Any] = {"statements": measure(args, seeded, work, statements=True)}
        if not args.no_cpu:
            result["cpu"] = measure(args, seeded, work, statements=False)
    st = result["statements"]
    print(f"statements per message: {st['statements_per_message']}  "
          f"(idle server: {st['idle_statements_per_second']}/s subtracted)")
    for k, v in st["by_statement"].items():
        print(f"  {v:7.2f}  {k}")
    if args.verbose:
        print("statements per message by who ran them (net of idle):")
        for k, v in st["by_owner"].items():
            print(f"  {v:7.2f}  {k}")
        print("idle server, statements per second by who ran them:")
        for k, v in st["idle_statements_per_second_by_owner"].items():
            print(f"  {v:7.2f}  {k}")
    print("write jobs per message:")
    for k, v in st["write_jobs_per_message"].items():
        print(f"  {v:7.2f}  {k}")
    if "cpu" in result:
        c = result["cpu"]
        print(f"CPU per message: {c['cpu_ms_per_message']} ms  (idle server {100 * c['idle_cpu_share']:.1f}% "
              f"of a core subtracted; {args.messages} messages at {args.rate}/s over {args.contacts} contacts)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
