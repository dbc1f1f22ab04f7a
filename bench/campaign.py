"""P9: a campaign to N contacts on SQLite against a Telegram simulator on loopback that enforces the documented
limits (30 messages a second per bot, 1 a second per chat; bench/provider_sim.py, its own process).

The server side runs in this process as it does in ``kommutator serve``: the API (in-process ASGI client), the
outbox worker and the campaign worker on one event loop over one SQLite file. While the campaign sends, an agent
replies every ``--reply-every`` seconds in one of five other conversations on the same bot, through
``POST /conversations/{id}/messages``. Reported: the simulator's 429 refusals (target 0), the share of the
allowed rate used while the campaign was sending (target ≥ 90%), this process's resident memory over time
(target: flat), and the agent replies' latency from the POST to the simulator's receipt, p50/p99/max (target p99
≤ 2 s).

    python bench/campaign.py                      # 100,000 contacts: about an hour at 30 a second
    python bench/campaign.py --contacts 3000      # about two minutes
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from kommutator.agents.schemas import UserCreate
from kommutator.app import create_app
from kommutator.auth.principal import Principal
from kommutator.config import load_settings
from kommutator.contacts.models import Consent, Contact, Identity
from kommutator.db import Tx
from kommutator.migrate import upgrade
from kommutator.outbound.campaign_worker import CampaignWorker
from kommutator.runtime import Runtime
from kommutator.workers.outbox import OutboxWorker

HERE = Path(__file__).resolve().parent
TOKEN = "123456:" + "B" * 35
AGENT_CHATS = 5
CHAT_BASE = 5_000_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def seed_contacts(rt: Runtime, n: int) -> None:
    """N contacts who wrote to the bot (a Telegram identity) and agreed to marketing there, plus the agent's five."""
    at = dt.datetime.now(dt.UTC)
    chunk = 5000
    for start in range(0, n + AGENT_CHATS, chunk):
        ids = range(start + 1, min(n + AGENT_CHATS, start + chunk) + 1)

        async def job(tx: Tx, ids: range = ids) -> None:
            await tx.session.execute(insert(Contact), [
                {"id": i, "name": f"Client {i}", "language": "ru" if i % 2 else "en",
                 "attributes": {"bench": "campaign" if i <= n else "agent"}, "created_at": at, "updated_at": at}
                for i in ids])
            await tx.session.execute(insert(Identity), [
                {"contact_id": i, "channel_type": "telegram", "external_id": str(CHAT_BASE + i),
                 "display": f"client{i}", "created_at": at} for i in ids])
            await tx.session.execute(insert(Consent), [
                {"contact_id": i, "channel_type": "telegram", "granted": True, "marketing": True,
                 "source": "bench", "updated_at": at} for i in ids])

        await rt.db.write(job)


async def admin_token(rt: Runtime) -> str:
    from kommutator.agents.actions import do_create_user
    from kommutator.auth.actions import do_create_api_token
    from kommutator.auth.passwords import hash_password

    async def job(tx: Tx) -> str:
        user = await do_create_user(tx, None, UserCreate(email="bench@example.com", name="Bench Supervisor",
                                                         password="bench-password-2026", role="admin"),
                                    password_hash=hash_password("bench-password-2026"))
        p = Principal(user_id=user.id, name=user.name, role="admin", team_ids=frozenset())
        _, token = await do_create_api_token(tx, p, "bench")
        return str(token)

    return str(await rt.db.write(job))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    sim = subprocess.Popen([sys.executable, str(HERE / "provider_sim.py"), "--port", str(port), "--rate",
                            str(args.rate), "--per-chat", "1"])
    sim_url = f"http://127.0.0.1:{port}"
    data_dir = Path(tempfile.mkdtemp(prefix="bench-campaign-"))
    out: dict[str, Any] = {"contacts": args.contacts, "rate_limit": args.rate, "machine": platform.platform(),
                           "cpus": os.cpu_count(), "started": dt.datetime.now(dt.UTC).isoformat()}
    try:
        async with httpx.AsyncClient(base_url=sim_url) as probe:
            for _ in range(100):
                try:
                    await probe.get("/stats")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        settings = load_settings(data_dir=data_dir, database_url=f"sqlite+aiosqlite:///{data_dir / 'k.db'}",
                                 secret_key="bench-secret-key-" + "x" * 32, public_base_url="http://127.0.0.1:1",
                                 outbound_allow_hosts=["127.0.0.1"])
        await upgrade(settings.database_url)
        rt = Runtime.build(settings)
        await rt.db.start()
        t = time.monotonic()
        await seed_contacts(rt, args.contacts)
        out["seed_seconds"] = round(time.monotonic() - t, 1)
        token = await admin_token(rt)
        app = create_app(runtime=rt)
        headers = {"Authorization": f"Bearer {token}"}
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                headers=headers, timeout=60)
        r = await api.post("/api/v1/channels", json={
            "type": "telegram", "name": "Shop bot", "settings": {"api_base_url": sim_url},
            "credentials": {"bot_token": TOKEN}})
        r.raise_for_status()
        channel_id = r.json()["id"]
        outbox = OutboxWorker(rt, name="bench-outbox")
        outbox.start()
        convs = []
        for i in range(args.contacts + 1, args.contacts + AGENT_CHATS + 1):
            r = await api.post("/api/v1/conversations", json={"contact_id": i, "channel": str(channel_id),
                                                               "text": "Hello, about your order"})
            r.raise_for_status()
            convs.append(r.json()["conversation_id"])
        r = await api.post("/api/v1/segments", json={"name": "Everyone", "rules": {"attributes": {"bench":
                                                                                                   "campaign"}}})
        r.raise_for_status()
        out["audience"] = r.json()["count"]
        r = await api.post("/api/v1/campaigns", json={
            "name": "Bench", "segment_ids": [r.json()["id"]], "channel": str(channel_id), "quiet_from": 0,
            "quiet_to": 0, "per_minute": 100_000,
            "texts": {"en": "Hi {{first_name}}, our spring sale starts today.",
                      "ru": "Здравствуйте, {{first_name}}! Сегодня начинается весенняя распродажа."}})
        r.raise_for_status()
        campaign_id = r.json()["id"]
        await asyncio.sleep(2)  # the agent's first messages leave before the campaign starts
        campaigns = CampaignWorker(rt)
        campaigns.start()
        t0 = time.time()
        r = await api.post(f"/api/v1/campaigns/{campaign_id}/start")
        r.raise_for_status()
        out["start_seconds"] = round(time.time() - t0, 2)
        sent_at: dict[str, float] = {}
        memory: list[tuple[float, float]] = []
        n = 0
        last_print = 0.0
        deadline = time.time() + args.timeout
        stats: dict[str, Any] = {}
        while time.time() < deadline:
            marker = f"reply-{n}"
            at = time.time()
            r = await api.post(f"/api/v1/conversations/{convs[n % AGENT_CHATS]}/messages",
                               json={"text": f"{marker} Your order ships tomorrow."})
            r.raise_for_status()
            sent_at[marker] = at
            n += 1
            if time.time() - last_print >= 5:
                last_print = time.time()
                memory.append((round(last_print - t0, 1), round(rss_mb(), 1)))
                stats = (await api.get(f"/api/v1/campaigns/{campaign_id}")).json()
                s = stats["stats"]
                print(f"{last_print - t0:7.1f}s  status={stats['status']:<8} sent={s['sent']:>7} "
                      f"queued={s['queued']:>4} pending={s['pending']:>7} failed={s['failed']} "
                      f"rss={memory[-1][1]} MB", flush=True)
                if stats["status"] == "done" and s["queued"] == 0:
                    break
            await asyncio.sleep(max(0.0, args.reply_every - (time.time() - at)))
        out["campaign_seconds"] = round(time.time() - t0, 1)
        await asyncio.sleep(3)  # the last replies arrive
        stats = (await api.get(f"/api/v1/campaigns/{campaign_id}")).json()
        async with httpx.AsyncClient(base_url=sim_url) as probe:
            sim_stats = (await probe.get("/stats")).json()
        await campaigns.stop()
        await outbox.stop()
        await api.aclose()
        await rt.db.close()
    finally:
        sim.terminate()
        sim.wait(10)

    per_second = {int(k): v for k, v in sim_stats["per_second"].items()}
    # The campaign's sending period: from the first second after the start to the last second anything was
    # accepted; the first and last (partial) seconds are left out.
    seconds = sorted(s for s in per_second if s > int(t0))
    full = seconds[1:-1]
    used = [per_second.get(s, 0) / args.rate for s in range(full[0], full[-1] + 1)] if full else []
    latency = [sim_stats["replies"][m] - sent_at[m] for m in sent_at if m in sim_stats["replies"]]
    out.update({
        "stats": stats["stats"], "status": stats["status"],
        "provider_accepted": sim_stats["accepted"], "refusals": sim_stats["refused"],
        "refused_bot_limit": sim_stats["refused_bot_limit"], "refused_chat_limit": sim_stats["refused_chat_limit"],
        "rate_used_mean": round(statistics.fmean(used), 4) if used else None,
        "rate_used_p10": round(pct(used, 10), 4) if used else None,
        "sending_seconds": len(used),
        "replies_sent": len(sent_at), "replies_arrived": len(latency),
        "reply_latency_p50": round(pct(latency, 50), 3), "reply_latency_p99": round(pct(latency, 99), 3),
        "reply_latency_max": round(max(latency), 3) if latency else None,
        "memory_mb": memory,
    })
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=30.0, help="the bot's limit the simulator enforces")
    parser.add_argument("--reply-every", type=float, default=0.5, help="seconds between agent replies")
    parser.add_argument("--timeout", type=float, default=4 * 3600.0, help="give up after this many seconds")
    args = parser.parse_args()
    out = asyncio.run(run(args))
    mem = [m for _, m in out["memory_mb"]]
    print()
    print(f"contacts {out['contacts']:,}, audience {out['audience']:,}, seeded in {out['seed_seconds']} s, "
          f"campaign started in {out['start_seconds']} s, ran {out['campaign_seconds']} s: {out['status']}")
    print(f"stats: {json.dumps(out['stats'], ensure_ascii=False)}")
    print(f"provider: {out['provider_accepted']:,} accepted, {out['refusals']} refused with 429 "
          f"(bot limit {out['refused_bot_limit']}, chat limit {out['refused_chat_limit']})   target 0")
    if out["rate_used_mean"] is not None:
        print(f"rate used over {out['sending_seconds']} full seconds: mean {out['rate_used_mean']:.1%} of "
              f"{out['rate_limit']:g}/s, p10 {out['rate_used_p10']:.1%}   target ≥ 90%")
    print(f"agent replies: {out['replies_arrived']}/{out['replies_sent']} arrived; latency p50 "
          f"{out['reply_latency_p50']} s, p99 {out['reply_latency_p99']} s, max {out['reply_latency_max']} s   "
          f"target p99 ≤ 2 s")
    if mem:
        print(f"memory (RSS of the server process): first {mem[0]} MB, max {max(mem)} MB, last {mem[-1]} MB")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    path = results / f"campaign-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
