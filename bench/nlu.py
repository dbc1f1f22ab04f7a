"""ICR bot NLU benchmark: quality of the intent model on held-out examples, and the latency of every call.

``python bench/nlu.py`` (about 20 s) does, per language (ru, en):

* quality: trains an ``IntentModel`` on a fixed 75 % of the shipped examples (``split_examples``, seed 42) and
  reports on the other 25 % and on the out-of-scope set: in-scope accuracy (a rejection is a miss), closed-set
  accuracy, out-of-scope rejection rate, macro F1 and the intents most often mistaken for one another;
* latency per call (p50/p99/max, µs) of ``predict``, ``match_option`` and ``wants_human`` over the held-out and
  out-of-scope messages, each beside a bare baseline of the same stack run interleaved with it on the same
  messages: sklearn's own ``pipeline.predict_proba([text])`` for the intent model, one
  ``rapidfuzz.process.extractOne`` over the labels for the menu; ratio = ours ÷ baseline at p50;
* start-up: the time to train the default model on all shipped examples (wall and CPU seconds).

Prints a table and writes ``bench/results/nlu-<timestamp>.json``. Not part of the test suite: the quality floors
are guarded by tests/test_bot_nlu.py, and nothing here is timed against a pass/fail line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process

from kommutator.bot.nlu import IntentModel, MenuOption, load_examples, match_option, wants_human
from kommutator.bot.nlu.evaluation import evaluate, split_examples

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

MENUS: dict[str, list[MenuOption]] = {
    "ru": [
        MenuOption("new_order", "Новый заказ", ("купить", "оформить заказ")),
        MenuOption("order_status", "Статус заказа", ("где мой заказ", "отследить")),
        MenuOption("nearest_office", "Ближайший офис", ("адрес", "пункт выдачи")),
        MenuOption("complaint", "Оставить жалобу", ("пожаловаться", "претензия")),
        MenuOption("talk_to_agent", "Связаться с оператором", ("оператор", "живой человек")),
    ],
    "en": [
        MenuOption("new_order", "New order", ("buy", "place an order")),
        MenuOption("order_status", "Order status", ("where is my order", "track")),
        MenuOption("nearest_office", "Nearest office", ("address", "pickup point")),
        MenuOption("complaint", "Leave a complaint", ("complain",)),
        MenuOption("talk_to_agent", "Talk to an agent", ("operator", "human")),
    ],
}


def percentiles(ns: list[int]) -> dict[str, float]:
    """p50/p99/max/mean (nearest rank) of nanosecond timings, in microseconds."""
    s = sorted(ns)
    n = len(s)

    def rank(q: float) -> float:
        return round(s[min(n - 1, max(0, int(q * n + 0.999999) - 1))] / 1000, 1)

    return {"p50": rank(0.5), "p99": rank(0.99), "max": round(s[-1] / 1000, 1), "mean": round(sum(s) / n / 1000, 1)}


def timed_pair(texts: list[str], ours: Callable[[str], object], baseline: Callable[[str], object] | None,
               rounds: int) -> dict[str, Any]:
    """Time ``ours`` and ``baseline`` on every text, interleaved call by call, ``rounds`` times over."""
    for t in texts[:50]:  # warm caches (stems, analyzers) the way a running bot has them warm
        ours(t)
        if baseline:
            baseline(t)
    a: list[int] = []
    b: list[int] = []
    gc.disable()
    try:
        for _ in range(rounds):
            for t in texts:
                t0 = time.perf_counter_ns()
                ours(t)
                a.append(time.perf_counter_ns() - t0)
                if baseline:
                    t0 = time.perf_counter_ns()
                    baseline(t)
                    b.append(time.perf_counter_ns() - t0)
    finally:
        gc.enable()
    out: dict[str, Any] = {"calls": len(a), "ours_us": percentiles(a)}
    if b:
        out["baseline_us"] = percentiles(b)
        out["ratio_p50"] = round(out["ours_us"]["p50"] / out["baseline_us"]["p50"], 3)
    return out


def run_language(language: str, rounds: int) -> dict[str, Any]:
    examples = load_examples(language)  # type: ignore[arg-type]
    train, held_out = split_examples(examples.intents)
    t0, c0 = time.perf_counter(), time.process_time()
    model = IntentModel.train(train, language)  # type: ignore[arg-type]
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    report = evaluate(model, held_out, examples.out_of_scope)

    # wall time moves with the machine's load; CPU time of this process much less
    t0, c0 = time.perf_counter(), time.process_time()
    IntentModel.train(examples.intents, language)  # type: ignore[arg-type]
    startup_s, startup_cpu = time.perf_counter() - t0, time.process_time() - c0

    texts = [t for phrases in held_out.values() for t in phrases] + examples.out_of_scope
    menu = MENUS[language]
    labels = [o.label for o in menu]
    latency = {
        "predict": timed_pair(texts, model.predict, lambda t: model.pipeline.predict_proba([t]), rounds),
        "match_option": timed_pair(texts, lambda t: match_option(t, menu, language),  # type: ignore[arg-type]
                                   lambda t: process.extractOne(t, labels, scorer=fuzz.WRatio), rounds),
        "wants_human": timed_pair(texts, lambda t: wants_human(t, language), None, rounds),  # type: ignore[arg-type]
    }
    return {
        "language": language,
        "examples": {"train": sum(map(len, train.values())), "held_out": report.in_scope,
                     "out_of_scope": report.out_of_scope, "intents": len(train)},
        "quality": asdict(report),
        "train_s": round(train_s, 3),
        "train_cpu_s": round(train_cpu, 3),
        "startup_train_all_s": round(startup_s, 3),
        "startup_train_all_cpu_s": round(startup_cpu, 3),
        "latency": latency,
    }


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"{'lang':4} {'acc':>6} {'closed':>6} {'oos rej':>7} {'macroF1':>7} {'thr':>5} {'start s':>7} {'cpu s':>6}")
    for r in results:
        q = r["quality"]
        print(f"{r['language']:4} {q['accuracy']:6.3f} {q['closed_accuracy']:6.3f} {q['oos_rejection']:7.3f} "
              f"{q['macro_f1']:7.3f} {q['threshold']:5.2f} {r['startup_train_all_s']:7.3f} "
              f"{r['startup_train_all_cpu_s']:6.3f}")
    for r in results:
        pairs = ", ".join(f"{e}→{g} ×{n}" for e, g, n in r["quality"]["worst_pairs"]) or "none"
        print(f"{r['language']} confused: {pairs}")
    print(f"\n{'lang':4} {'call':13} {'p50 µs':>8} {'p99 µs':>8} {'max µs':>8} {'base p50':>8} {'ratio':>6}")
    for r in results:
        for name, lat in r["latency"].items():
            o, b = lat["ours_us"], lat.get("baseline_us")
            base = f"{b['p50']:8.1f} {lat['ratio_p50']:6.2f}" if b else f"{'-':>8} {'-':>6}"
            print(f"{r['language']:4} {name:13} {o['p50']:8.1f} {o['p99']:8.1f} {o['max']:8.1f} {base}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="passes over the messages for the latency figures")
    parser.add_argument("--languages", default="ru,en")
    args = parser.parse_args(argv)
    results = [run_language(lang, args.rounds) for lang in args.languages.split(",")]
    print_table(results)
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"nlu-{stamp}.json"
    meta = {"python": sys.version.split()[0], "machine": platform.machine(), "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(), "rounds": args.rounds, "when": stamp}
    path.write_text(json.dumps({"meta": meta, "results": results}, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\nwrote {path.relative_to(BENCH.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
