"""Routing decision benchmark: the heap-indexed RoutingIndex beside a brute-force scan of every agent. Target P6.

``python bench/routing.py`` (about 30 s) builds 10,000 online agents and 100,000 waiting conversations, then for
each strategy takes the queue head, chooses, assigns and now and then resolves a conversation, timing every
decision; the brute-force scan runs in lock-step on the same state for a sample of the decisions (and must pick the
same agent). Prints a table and writes ``bench/results/routing.json``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import heapq
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kommutator.routing import strategies
from kommutator.routing.engine import EPS, Agent, Need, RoutingIndex

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
TARGETS = {"P6": "routing decision with 10,000 agents online and 100,000 queued: p99 per decision <= 1 ms"}
CHANNELS = ["chat"] * 12 + ["email"] * 5 + ["telegram"] * 2 + ["voice"]


def percentiles(values: list[int]) -> dict[str, float | None]:
    """p50/p95/p99/max/mean (nearest rank) of nanosecond ``values`` in microseconds."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    s = sorted(values)
    n = len(s)

    def rank(q: float) -> float:
        return round(s[min(n - 1, max(0, int(q * n + 0.999999) - 1))] / 1000, 1)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": round(s[-1] / 1000, 1),
            "mean": round(sum(s) / n / 1000, 1)}


# -- the world ---------------------------------------------------------------------------------------------------

@dataclass
class World:
    agents: list[Agent]              # initial state, copied for each strategy
    conversations: list[tuple[int, float]]  # initial (agent id, weight) in progress
    needs: list[Need]
    queue: list[tuple[int, int, int]]  # heap of (-priority, queued_at, index into needs)


def make_world(args: argparse.Namespace) -> World:
    rng = random.Random(args.seed)
    skills = list(range(1, args.skills + 1))
    popular = [s for s in skills for _ in range(1 + (s <= 5) * 3)]  # a few skills most agents have
    agents: list[Agent] = []
    conversations: list[tuple[int, float]] = []
    for aid in range(1, args.agents + 1):
        capacity = rng.randint(3, 8)
        own = {s: rng.randint(1, 5) for s in rng.sample(popular, rng.randint(2, 6))}
        teams = frozenset(rng.sample(range(1, args.teams + 1), 1 if rng.random() < 0.9 else 2))
        r = rng.random()
        weights = {"email": 0.5} if r < 0.3 else {"email": 0.5, "voice": 2.0} if r < 0.4 else {}
        busy = min(capacity, round(capacity * rng.uniform(2 * args.fill - 1, 1)))
        agents.append(Agent(aid, float(capacity), float(busy), True, own, teams, -rng.uniform(0, 3600), weights))
        conversations += [(aid, 1.0)] * busy
    needs: list[Need] = []
    queue: list[tuple[int, int, int]] = []
    for i in range(args.queued):
        required = tuple((s, rng.choice((1, 1, 2, 2, 3, 4))) for s in rng.sample(popular, rng.choice((0, 1, 1, 2))))
        team = rng.randint(1, args.teams) if rng.random() < 0.3 else None
        exclude = frozenset({rng.randint(1, args.agents)}) if rng.random() < 0.02 else frozenset()
        needs.append(Need(i, tuple(dict(required).items()), team, rng.choice(CHANNELS), exclude))
        queue.append((-rng.choice((0, 0, 0, 1, 2)), i, i))
    heapq.heapify(queue)
    return World(agents, conversations, needs, queue)


# -- the baseline: what the index replaces ------------------------------------------------------------------------

def scan(agents: list[Agent], need: Need, key: Callable[[Agent, int], tuple[Any, ...]]) -> tuple[Agent, float] | None:
    """Every agent, every rule, the strategy's key for the eligible ones, the smallest wins."""
    best: tuple[Any, ...] | None = None
    found: tuple[Agent, float] | None = None
    exclude, team, required, channel = need.exclude, need.team_id, need.required, need.channel_type
    for a in agents:
        if not a.online or a.load >= a.capacity - EPS:
            continue
        w = a.weights.get(channel, 1.0) if a.weights else 1.0
        if a.load + w > a.capacity + EPS or a.id in exclude or (team is not None and team not in a.teams):
            continue
        skills = a.skills
        for s, level in required:
            if skills.get(s, 0) < level:
                break
        else:
            k = key(a, a.turn)
            if best is None or k < best:
                best, found = k, (a, w)
    return found


# -- one strategy --------------------------------------------------------------------------------------------------

def run_strategy(world: World, name: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed + 1)
    key = strategies.get(name).key
    t0 = time.perf_counter()
    index = RoutingIndex() if args.direct is None else RoutingIndex(direct=args.direct)
    for a in world.agents:
        index.upsert(a)
    upsert_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    index.warm(name)
    build_ms = (time.perf_counter() - t0) * 1000
    base = [replace(a, skills=dict(a.skills), weights=dict(a.weights)) for a in world.agents]
    by_id = {a.id: a for a in base}
    base_turn = 0
    ours_q, base_q = list(world.queue), list(world.queue)
    active_ours, active_base = list(world.conversations), list(world.conversations)
    needs = world.needs
    # Resolutions are drawn up front so that both sides release the same conversation at the same step.
    plan = [(rng.random() < args.release_rate, rng.random()) for _ in range(args.decisions)]
    ours_ns: list[int] = []
    ours_cpu: list[int] = []
    choose_ns: list[int] = []
    base_ns: list[int] = []
    base_cpu: list[int] = []
    considered: list[int] = []
    aside = assigned = mismatches = 0
    now = 0.0
    clock, cpu = time.perf_counter_ns, time.thread_time_ns
    gc.collect()
    gc.freeze()  # the world is long-lived; a real server's heap of old objects is not re-scanned either
    for step in range(args.decisions):
        now += 0.01
        release, pick = plan[step]
        # ours
        t_start = clock()
        c_start = cpu()
        _, _, k = heapq.heappop(ours_q)
        need = needs[k]
        t_choose = clock()
        d = index.choose(need, name, now)
        t_chosen = clock()
        if d is not None:
            index.assign(d.agent_id, d.weight, now)
            active_ours.append((d.agent_id, d.weight))
        if release and active_ours:
            j = int(pick * len(active_ours))
            active_ours[j], active_ours[-1] = active_ours[-1], active_ours[j]
            aid, w = active_ours.pop()
            index.release(aid, w, now)
        c_end = cpu()
        t_end = clock()
        ours_ns.append(t_end - t_start)
        ours_cpu.append(c_end - c_start)
        choose_ns.append(t_chosen - t_choose)
        if d is None:
            aside += 1
        else:
            assigned += 1
            considered.append(d.considered)
        # the baseline, on its own copy of the same state
        timed = step % args.baseline_every == 0
        t_start = clock()
        c_start = cpu()
        _, _, k = heapq.heappop(base_q)
        if timed:
            found = scan(base, needs[k], key)
            chosen_id = found[0].id if found else None
            if chosen_id != (d.agent_id if d else None):
                mismatches += 1
        else:
            found = (by_id[d.agent_id], d.weight) if d else None
        if found is not None:
            a, w = found
            a.load = round(a.load + w, 9)
            a.idle_since = now
            base_turn += 1
            a.turn = base_turn
            active_base.append((a.id, w))
        if release and active_base:
            j = int(pick * len(active_base))
            active_base[j], active_base[-1] = active_base[-1], active_base[j]
            aid, w = active_base.pop()
            r = by_id[aid]
            r.load = max(0.0, round(r.load - w, 9))
        if timed:
            c_end = cpu()
            base_ns.append(clock() - t_start)
            base_cpu.append(c_end - c_start)
    gc.unfreeze()
    ours, baseline = percentiles(ours_ns), percentiles(base_ns)
    considered.sort()
    return {
        "strategy": name, "decisions": args.decisions, "assigned": assigned, "set_aside": aside,
        "ours_us": ours, "ours_cpu_us": percentiles(ours_cpu), "ours_choose_us": percentiles(choose_ns),
        "baseline_us": baseline, "baseline_cpu_us": percentiles(base_cpu),
        "baseline_samples": len(base_ns), "baseline_mismatches": mismatches,
        "ratio_p50": _ratio(baseline["p50"], ours["p50"]), "ratio_p99": _ratio(baseline["p99"], ours["p99"]),
        "considered": {"mean": round(sum(considered) / max(1, len(considered)), 2),
                       "p99": considered[int(0.99 * (len(considered) - 1))] if considered else None,
                       "max": considered[-1] if considered else None},
        "setup_ms": {"upsert_all": round(upsert_ms, 1), "build_heaps": round(build_ms, 1)},
        "available_after": index.available(), "index": index.stats(),
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 1) if a and b else None


# -- report ----------------------------------------------------------------------------------------------------

def table(report: dict[str, Any]) -> str:
    def f(v: float | None) -> str:
        return f"{v:8.1f}" if v is not None else "       -"

    lines = ["", "Per decision (pop the head, choose, assign, sometimes release), microseconds:",
             f"{'strategy':<13} {'side':<9} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'mean':>8}  notes"]
    for r in report["results"]:
        o, c, b = r["ours_us"], r["ours_choose_us"], r["baseline_us"]
        lines.append(f"{r['strategy']:<13} {'ours':<9} {f(o['p50'])} {f(o['p95'])} {f(o['p99'])} {f(o['max'])} "
                     f"{f(o['mean'])}  {r['decisions']} decisions: {r['assigned']} assigned, {r['set_aside']} set "
                     f"aside; considered mean {r['considered']['mean']}, p99 {r['considered']['p99']}, "
                     f"max {r['considered']['max']}")
        u = r["ours_cpu_us"]
        lines.append(f"{'':<13} {'ours cpu':<9} {f(u['p50'])} {f(u['p95'])} {f(u['p99'])} {f(u['max'])} "
                     f"{f(u['mean'])}  the same decisions in CPU time of this thread (without preemption)")
        lines.append(f"{'':<13} {'choose()':<9} {f(c['p50'])} {f(c['p95'])} {f(c['p99'])} {f(c['max'])} "
                     f"{f(c['mean'])}  setup: upsert {r['setup_ms']['upsert_all']} ms, heaps "
                     f"{r['setup_ms']['build_heaps']} ms")
        lines.append(f"{'':<13} {'baseline':<9} {f(b['p50'])} {f(b['p95'])} {f(b['p99'])} {f(b['max'])} "
                     f"{f(b['mean'])}  full scan, {r['baseline_samples']} samples, {r['baseline_mismatches']} "
                     f"different choices; baseline / ours: p50 x{r['ratio_p50']}, p99 x{r['ratio_p99']}")
        u = r["baseline_cpu_us"]
        lines.append(f"{'':<13} {'base cpu':<9} {f(u['p50'])} {f(u['p95'])} {f(u['p99'])} {f(u['max'])} "
                     f"{f(u['mean'])}")
    lines += ["", "Targets:", f"{'#':<3} {'measured':<70} {'target':<24} verdict"]
    for k, t in report["targets"].items():
        lines.append(f"{k:<3} {t['measured']:<70} {t['target']:<24} {t['verdict']}")
    return "\n".join(lines)


def targets(report: dict[str, Any]) -> dict[str, Any]:
    results = report["results"]
    if not results:
        return {}
    worst = max(results, key=lambda r: r["ours_us"]["p99"] or 0)
    p99 = worst["ours_us"]["p99"]
    agree = all(r["baseline_mismatches"] == 0 for r in results)
    return {
        "P6": {"measured": "p99 " + ", ".join(f"{r['strategy']} {r['ours_us']['p99']}" for r in results) + " us",
               "target": "p99 <= 1000 us", "value": p99,
               "verdict": "PASS" if p99 is not None and p99 <= 1000 else "FAIL"},
        "same": {"measured": "index and full scan chose the same agent every time" if agree
                 else "index and full scan disagreed: " + ", ".join(
                     f"{r['strategy']} {r['baseline_mismatches']}" for r in results if r["baseline_mismatches"]),
                 "target": "0 different", "value": agree, "verdict": "PASS" if agree else "FAIL"},
    }


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=10_000)
    p.add_argument("--queued", type=int, default=100_000, help="waiting conversations (default 100,000)")
    p.add_argument("--decisions", type=int, default=20_000, help="decisions timed per strategy")
    p.add_argument("--strategies", default=",".join(strategies.names()), help="comma-separated (default: all)")
    p.add_argument("--skills", type=int, default=20)
    p.add_argument("--teams", type=int, default=5)
    p.add_argument("--fill", type=float, default=0.8, help="initial share of capacity in use, on average")
    p.add_argument("--release-rate", type=float, default=0.95,
                   help="chance that a conversation is resolved after each decision")
    p.add_argument("--baseline-every", type=int, default=10, help="time the full scan on every n-th decision")
    p.add_argument("--direct", type=int, help="RoutingIndex(direct=...), for tuning (default: the engine's)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cpu", type=int, help="pin this process to one CPU")
    p.add_argument("--out", type=Path, default=RESULTS / "routing.json")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    names = [n.strip() for n in args.strategies.split(",") if n.strip()]
    for n in names:
        strategies.get(n)
    print(f"Routing benchmark: {args.agents} agents, {args.queued} queued, {args.decisions} decisions per strategy, "
          f"full scan on every {args.baseline_every}th", flush=True)
    world = make_world(args)
    print(f"[world] built in {time.monotonic() - t0:.1f} s", flush=True)
    report: dict[str, Any] = {
        "started_at": started.isoformat(), "args": {k: str(v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                    "pinned_cpu": args.cpu},
        "targets_definition": TARGETS, "results": [],
    }
    try:
        for name in names:
            t1 = time.monotonic()
            r = run_strategy(world, name, args)
            report["results"].append(r)
            print(f"[{name}] p50 {r['ours_us']['p50']} p99 {r['ours_us']['p99']} max {r['ours_us']['max']} us; "
                  f"full scan p50 {r['baseline_us']['p50']} p99 {r['baseline_us']['p99']} us "
                  f"({time.monotonic() - t1:.1f} s)", flush=True)
    finally:
        report["targets"] = targets(report)
        report["wall_seconds"] = round(time.monotonic() - t0, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(table(report))
        print(f"\nWrote {args.out} ({report['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
