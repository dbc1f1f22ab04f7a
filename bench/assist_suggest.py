"""Reply suggestions' latency with thousands of past replies, beside a plain read of the same conversation.

``python bench/assist_suggest.py [--pairs 5000] [--requests 300]`` seeds a throw-away SQLite database (or
``--url`` PostgreSQL, an empty migrated database) with N past conversations (a customer question in Russian or
English, varied, and the agent's reply), 40 canned responses and 60 published articles, lets the suggester
index them (as its background pass does on a server), then times in process, through the ASGI app:

* ``GET /api/v1/conversations/{id}/suggestions`` for new questions (the request under test);
* ``GET /api/v1/conversations/{id}/messages?limit=20`` for the same conversations (the baseline: one
  authenticated, permission-checked read of that conversation);

interleaved, and prints p50 / p95 / p99 / max of each (wall time, and the process's CPU time, which a shared
machine's load disturbs less) and their ratio, plus the index search alone. Writes
JSON to ``bench/results/assist-<time>.json``. Last, it replays the history (``kommutator assist evaluate``'s
code): on this synthetic history (each topic has two interchangeable replies) top 1 can reach only about half.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from kommutator.agents.actions import do_create_user
from kommutator.agents.schemas import UserCreate
from kommutator.app import create_app
from kommutator.assist.evaluate import replay
from kommutator.assist.service import suggester_of
from kommutator.auth.actions import do_create_api_token
from kommutator.auth.principal import Principal
from kommutator.canned.models import CannedResponse
from kommutator.config import load_settings
from kommutator.contacts.models import Contact
from kommutator.conversations.models import Conversation, Message
from kommutator.db import Tx
from kommutator.knowledge.models import Article
from kommutator.knowledge.search import index_article
from kommutator.migrate import upgrade
from kommutator.runtime import Runtime

TOPICS = [
    (["как вернуть {item}", "хочу вернуть {item}", "возврат {item} как оформить", "{item} не подошёл, верните деньги"],
     ["Оформите возврат в разделе Мои заказы.", "Верните {item} курьеру, деньги придут за 3 дня."]),
    (["где мой заказ", "когда привезут {item}", "заказ задерживается", "трек номер не работает"],
     ["Заказ в пути, трек-номер в письме.", "Курьер привезёт {item} завтра до 18:00."]),
    (["можно оплатить картой", "оплата {item} при получении", "не проходит оплата", "спишут ли деньги дважды"],
     ["Да, курьер принимает карты.", "Деньги спишутся один раз, второй платёж отменится."]),
    (["how do I return the {item}", "return my {item} please", "refund for the {item}", "the {item} is broken"],
     ["Open My orders and press Return.", "Send the {item} back with the courier; the refund takes 3 days."]),
    (["where is my order", "when will the {item} arrive", "tracking number is wrong", "my parcel is late"],
     ["Your parcel is on its way.", "The courier brings the {item} tomorrow."]),
    (["can I pay by card", "payment for the {item} failed", "was I charged twice", "pay on delivery"],
     ["Yes, the courier takes cards.", "You were charged once; the second payment is cancelled."]),
]
ITEMS = ["товар", "куртку", "телефон", "кроссовки", "jacket", "phone", "sneakers", "laptop", "чайник", "kettle"]


def _question(rng: random.Random) -> tuple[int, str]:
    t = rng.randrange(len(TOPICS))
    q = rng.choice(TOPICS[t][0]).format(item=rng.choice(ITEMS))
    return t, rng.choice(["", "здравствуйте, ", "hi, ", "добрый день! "]) + q + rng.choice(["", "?", "!!", " срочно"])


async def _seed(rt: Runtime, pairs: int, rng: random.Random) -> tuple[str, list[int]]:
    async def users(tx: Tx) -> str:
        user = await do_create_user(tx, None, UserCreate(email="bench@example.com", name="Bench", role="supervisor",
                                                         password="bench-password-1"), password_hash="x")
        _, token = await do_create_api_token(tx, Principal(user_id=user.id, name="Bench", role="supervisor",
                                                           team_ids=frozenset()), "bench")
        return token
    token = await rt.db.write(users)

    async def history(tx: Tx, start: int, n: int, answered: bool) -> list[int]:
        ids = []
        for k in range(start, start + n):
            contact = Contact(name=f"Customer {k}")
            tx.session.add(contact)
            await tx.session.flush()
            conv = Conversation(contact_id=contact.id, status="assigned")
            tx.session.add(conv)
            await tx.session.flush()
            topic, q = _question(rng)
            tx.session.add(Message(conversation_id=conv.id, direction="in", sender_type="contact", text=q))
            if answered:
                reply = rng.choice(TOPICS[topic][1]).format(item=rng.choice(ITEMS))
                tx.session.add(Message(conversation_id=conv.id, direction="out", sender_type="agent", text=reply,
                                       status="sent"))
            ids.append(conv.id)
        return ids
    for start in range(0, pairs, 1000):
        await rt.db.write(lambda tx, s=start: history(tx, s, min(1000, pairs - s), True))
    fresh = await rt.db.write(lambda tx: history(tx, pairs, 300, False))

    async def sources(tx: Tx) -> None:
        for k in range(40):
            topic, q = _question(rng)
            tx.session.add(CannedResponse(shortcut=f"c{k}", title=q[:60], body=TOPICS[topic][1][0] + " {agent.name}"))
        for k in range(60):
            topic, q = _question(rng)
            a = Article(title=q[:80], body=f"## {q}\n\n" + " ".join(TOPICS[topic][1]) * 5, tags=[],
                        language="ru" if k % 2 else "en", status="published")
            tx.session.add(a)
            await tx.session.flush()
            await index_article(tx.session, a)
    await rt.db.write(sources)
    return token, fresh


def _summary(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    pick = lambda p: round(s[min(len(s) - 1, int(len(s) * p))], 3)  # noqa: E731
    return {"p50": pick(0.5), "p95": pick(0.95), "p99": pick(0.99), "max": round(s[-1], 3),
            "mean": round(statistics.fmean(s), 3)}


async def main(pairs: int, requests: int, url: str | None) -> dict[str, object]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        database_url = url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        settings = load_settings(data_dir=Path(tmp) / "data", database_url=database_url,
                                 secret_key="bench-secret-key-" + "x" * 32)
        await upgrade(database_url)
        rt = Runtime.build(settings)
        app = create_app(runtime=rt)
        await rt.db.start()
        try:
            token, fresh = await _seed(rt, pairs, rng)
            t0 = time.perf_counter()
            await suggester_of(rt).run_due()  # what the background pass does after a start
            build_s = time.perf_counter() - t0
            headers = {"Authorization": f"Bearer {token}"}
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                ours: list[float] = []
                base: list[float] = []
                ours_cpu: list[float] = []
                base_cpu: list[float] = []
                found = 0
                for n in range(requests + 20):
                    cid = fresh[n % len(fresh)]
                    t, c = time.perf_counter(), time.process_time()
                    r = await client.get(f"/api/v1/conversations/{cid}/suggestions", headers=headers)
                    took, cpu = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
                    assert r.status_code == 200, r.text
                    found += bool(r.json()["items"])
                    t, c = time.perf_counter(), time.process_time()
                    b = await client.get(f"/api/v1/conversations/{cid}/messages?limit=20", headers=headers)
                    took_base, cpu_base = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
                    assert b.status_code == 200, b.text
                    if n >= 20:  # warm-up
                        ours.append(took)
                        base.append(took_base)
                        ours_cpu.append(cpu)
                        base_cpu.append(cpu_base)
            index_ms = []
            index_cpu = []
            suggester = suggester_of(rt)
            for _ in range(200):
                _, q = _question(rng)
                t, c = time.perf_counter(), time.process_time()
                suggester.index.search(q, limit=5)
                index_ms.append((time.perf_counter() - t) * 1000)
                index_cpu.append((time.process_time() - c) * 1000)
            t0 = time.perf_counter()
            async with rt.db.read() as s:
                replayed = (await replay(s)).as_dict()
            replay_s = time.perf_counter() - t0
        finally:
            await rt.db.close()
    result = {"pairs": pairs, "requests": requests, "database": database_url.split(":")[0],
              "index_build_s": round(build_s, 2), "requests_with_suggestions": found,
              "suggestions_ms": _summary(ours), "baseline_messages_ms": _summary(base),
              "suggestions_cpu_ms": _summary(ours_cpu), "baseline_messages_cpu_ms": _summary(base_cpu),
              "index_search_cpu_ms": _summary(index_cpu),
              "ratio_p50": round(_summary(ours)["p50"] / _summary(base)["p50"], 2),
              "index_search_ms": _summary(index_ms), "replay": replayed, "replay_s": round(replay_s, 1)}
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--url", help="an empty PostgreSQL database (postgresql+asyncpg://...)")
    args = parser.parse_args()
    out = asyncio.run(main(args.pairs, args.requests, args.url))
    print(f"{'':<28}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}   (ms)")
    for name in ("suggestions_ms", "baseline_messages_ms", "index_search_ms", "suggestions_cpu_ms",
                 "baseline_messages_cpu_ms", "index_search_cpu_ms"):
        s = out[name]
        print(f"{name:<28}{s['p50']:>8}{s['p95']:>8}{s['p99']:>8}{s['max']:>8}")  # type: ignore[index]
    print(f"past replies {out['pairs']}, index built in {out['index_build_s']} s, ratio p50 {out['ratio_p50']}, "
          f"requests with suggestions {out['requests_with_suggestions']}/{args.requests + 20}")
    r = out["replay"]
    print(f"replay of the synthetic history ({out['replay_s']} s): {r['replies']} replies, "  # type: ignore[index]
          f"top 1 {r['top1_rate']:.1%}, top 3 {r['top3_rate']:.1%}, "  # type: ignore[index]
          f"suggestion p50 {r['suggest_ms_p50']} ms, p95 {r['suggest_ms_p95']} ms")  # type: ignore[index]
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"assist-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(out, indent=2))
