"""`kommutator assist evaluate`: history replayed, each reply judged against suggestions made only from what
existed before it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from kommutator.assist.evaluate import replay, same_reply

from .conftest import post_inbound

CONV = "/api/v1/conversations"


async def test_replay_counts_top1_and_top3_from_the_past_only(client, runtime, factory, admin, api_channel, clock,
                                                              settings, tmp_path):
    team = await factory.team("Alpha")
    anna = await factory.user("agent", teams=[team], name="Anna")
    sup = await factory.user("supervisor")
    n = 0

    async def exchange(question: str, answer: str) -> None:
        nonlocal n
        n += 1
        clock.tick(60)
        r = await post_inbound(client, api_channel, msg_id=f"r{n}", contact=f"c{n}", text=question)
        cid = r.json()["conversation_id"]
        assert (await client.post(f"{CONV}/{cid}/assign", json={"team_id": team}, headers=admin.headers)).is_success
        clock.tick(60)
        r = await client.post(f"{CONV}/{cid}/messages", json={"text": answer}, headers=anna.headers)
        assert r.status_code == 201, r.text

    async def canned(shortcut: str, body: str) -> None:
        clock.tick(60)
        r = await client.post("/api/v1/canned-responses", headers=sup.headers,
                              json={"shortcut": shortcut, "title": body[:40], "body": body})
        assert r.status_code == 201, r.text

    returns = "Оформите возврат в личном кабинете, раздел Мои заказы."
    await exchange("Как вернуть товар?", returns)  # 1: nothing before it — a miss
    await exchange("Хочу вернуть товар, не подошёл", returns + "!")  # 2: the first reply, exact after folding
    await exchange("Где мой заказ?", "Заказ в пути, трек-номер в письме.")  # 3: a miss
    await exchange("Как вернуть товар", "Оформите возврат в личном кабинет, раздел Мои заказы")  # 4: near-exact
    await exchange("Сколько стоит доставка?", "Доставка бесплатная от 3000 рублей.")  # 5: canned made later: miss
    await canned("free", "Доставка бесплатная от 3000 рублей.")
    await exchange("Доставка платная? Сколько стоит", "Доставка бесплатная от 3000 рублей.")  # 6: the canned one
    await exchange("Где мой заказ, жду неделю", "Сейчас посмотрю, одну минуту.")  # 7: suggested (3), sent another: miss

    async with runtime.db.read() as s:
        report = await replay(s)
        strict = await replay(s, threshold=100)
    assert report.replies == 7
    assert (report.top1, report.top3) == (3, 3), report
    assert report.by_source == {"reply": 2, "canned": 1}
    assert report.with_suggestions == 4 and report.top1_rate == pytest.approx(3 / 7)
    assert (strict.top1, strict.top3) == (2, 2)  # the near-exact one (a missing letter) no longer counts

    # The command prints the same figures.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMUTATOR_")}
    env.update(KOMMUTATOR_DATABASE_URL=settings.database_url, KOMMUTATOR_DATA_DIR=str(tmp_path / "cli-data"),
               KOMMUTATOR_SECRET_KEY="test-secret-key-" + "x" * 32)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kommutator.cli", "assist", "evaluate", *args], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)

    out = await asyncio.to_thread(run, "--json")
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)
    assert (figures["replies"], figures["top1"], figures["top3"], figures["threshold"]) == (7, 3, 3, 90.0)
    text = await asyncio.to_thread(run)
    assert text.returncode == 0, text.stderr
    assert "among the top 3:" in text.stdout and "42.9%" in text.stdout and ">= 90 of 100" in text.stdout


def test_same_reply_folds_case_spacing_and_punctuation_and_tolerates_a_typo() -> None:
    assert same_reply("Добрый день!  Заказ в пути.", "добрый день, заказ в пути")
    assert same_reply("Your parcel is on its way", "Your parcel is on it's way.")
    assert not same_reply("Your parcel is on its way", "Your parcel is lost")
    assert not same_reply("", "")
