"""Measure an intent model on held-out examples: the figures bench/nlu.py prints and the quality test guards."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources

import yaml
from sklearn.metrics import f1_score

from kommutator.bot.nlu.intents import IntentModel, load_chatter, load_examples
from kommutator.common.text import Language, normalize

HELD_OUT_FRACTION = 0.25
SPLIT_SEED = 42
REJECTED = "(none)"  # what a rejected message counts as in the confusion pairs and in F1


@dataclass(frozen=True, slots=True)
class Report:
    """How a model did on held-out in-scope messages and on out-of-scope ones."""

    in_scope: int
    out_of_scope: int
    accuracy: float  # held-out messages given the right intent; a rejection is a miss
    closed_accuracy: float  # the likeliest intent is the right one, whatever the threshold
    oos_rejection: float  # out-of-scope messages given no intent
    macro_f1: float  # over the intents, out-of-scope counted as a class of its own
    threshold: float
    per_intent_f1: dict[str, float] = field(default_factory=dict)
    # (expected, likeliest, how many): intents mistaken for one another, the threshold aside; worst first
    worst_pairs: list[tuple[str, str, int]] = field(default_factory=list)


def split_examples(examples: Mapping[str, Sequence[str]], *, held_out: float = HELD_OUT_FRACTION,
                   seed: int = SPLIT_SEED) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Split each intent's examples into (train, held out), the same way for the same seed."""
    rng = random.Random(seed)
    train: dict[str, list[str]] = {}
    test: dict[str, list[str]] = {}
    for intent in sorted(examples):
        phrases = list(examples[intent])
        rng.shuffle(phrases)
        cut = max(1, round(len(phrases) * held_out))
        test[intent], train[intent] = phrases[:cut], phrases[cut:]
    return train, test


def evaluate(model: IntentModel, held_out: Mapping[str, Sequence[str]], out_of_scope: Sequence[str]) -> Report:
    """Classify every held-out and out-of-scope message with ``model`` and summarise."""
    expected: list[str] = []
    got: list[str] = []
    confused: Counter[tuple[str, str]] = Counter()
    for intent, phrases in held_out.items():
        for text in phrases:
            prediction = model.predict(text)
            likeliest = model.predict(text, threshold=0.0).intent or REJECTED
            if likeliest != intent:
                confused[intent, likeliest] += 1
            expected.append(intent)
            got.append(prediction.intent or REJECTED)
    in_scope = len(expected)
    rejected = 0
    for text in out_of_scope:
        prediction = model.predict(text)
        rejected += prediction.intent is None
        expected.append(REJECTED)
        got.append(prediction.intent or REJECTED)
    labels = sorted(held_out)
    f1s = f1_score(expected, got, labels=[*labels, REJECTED], average=None, zero_division=0)
    return Report(
        in_scope=in_scope,
        out_of_scope=len(out_of_scope),
        accuracy=sum(e == g for e, g in zip(expected[:in_scope], got[:in_scope], strict=True)) / max(1, in_scope),
        closed_accuracy=1 - confused.total() / max(1, in_scope),
        oos_rejection=rejected / max(1, len(out_of_scope)),
        macro_f1=float(f1s.mean()),
        threshold=model.threshold,
        per_intent_f1={label: float(f) for label, f in zip([*labels, REJECTED], f1s, strict=True)},
        worst_pairs=[(e, g, n) for (e, g), n in confused.most_common(5)],
    )


_ALTERNATIVES = re.compile(r"\{([^{}]*)\}")


def expand(pattern: str) -> list[str]:
    """Every phrase a pattern stands for: ``{a|b}`` is one of the alternatives, ``{|a}`` an optional word."""
    m = _ALTERNATIVES.search(pattern)
    if m is None:
        return [" ".join(pattern.split())]
    out: list[str] = []
    for choice in m.group(1).split("|"):
        out.extend(expand(pattern[:m.start()] + choice + pattern[m.end():]))
    return out


@dataclass(frozen=True, slots=True)
class EvalSet:
    """An evaluation set expanded from patterns: training phrases, test phrases on cores never trained on, and
    out-of-scope test phrases."""

    language: Language
    train: dict[str, list[str]]
    test: dict[str, list[str]]
    out_of_scope: list[str]


def _compose(rng: random.Random, cores: Sequence[str], openers: Sequence[str], closers: Sequence[str],
             n: int) -> list[str]:
    """Up to ``n`` distinct phrases: each core in turn, with an opener and a closer drawn at random."""
    seen: set[str] = set()
    out: list[str] = []
    tries = 0
    while len(out) < n and tries < n * 30:
        core = cores[tries % len(cores)]
        tries += 1
        text = " ".join(f"{rng.choice(openers)} {core} {rng.choice(closers)}".split())
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def expand_set(language: Language, *, train_per_intent: int = 100, test_per_intent: int = 30,
               out_of_scope: int = 300, seed: int = SPLIT_SEED) -> EvalSet:
    """The shipped pattern set ``data/evalset_<language>.yaml`` expanded, the same way for the same seed.

    A quarter of each intent's core phrases (the patterns expanded) is kept for the test; training phrases
    are built from the other cores, so a test phrase is never a trained phrase with another opener. Training
    phrases come in round-robin over the cores, so the first 10 are a spread sample. Out-of-scope phrases that
    equal a shipped chatter phrase are left out (the model trains on chatter)."""
    raw = (resources.files("kommutator.bot.nlu") / "data" / f"evalset_{language}.yaml").read_text("utf-8")
    data = yaml.safe_load(raw)
    rng = random.Random(f"{seed}:{language}")
    openers = [str(x) for x in data["openers"]]
    closers = [str(x) for x in data["closers"]]
    train: dict[str, list[str]] = {}
    test: dict[str, list[str]] = {}
    for intent in sorted(data["intents"]):
        cores = sorted({c for p in data["intents"][intent] for c in expand(str(p))})
        rng.shuffle(cores)
        cut = max(1, len(cores) // 4)
        test[intent] = _compose(rng, cores[:cut], openers, closers, test_per_intent)
        train[intent] = _compose(rng, cores[cut:], openers, closers, train_per_intent)
    chatter = {normalize(t) for t in load_chatter(language)}
    oos = sorted({" ".join(c.split()) for p in data["out_of_scope"] for c in expand(str(p))})
    oos = [t for t in oos if normalize(t) not in chatter]
    rng.shuffle(oos)
    # and the out-of-scope phrases written for the smaller sets (other wording, keyboard mashing)
    written = [t for t in load_examples(language).out_of_scope + _faq_out_of_scope(language)
               if normalize(t) not in chatter]
    return EvalSet(language, train, test, oos[:out_of_scope] + written)


def _faq_out_of_scope(language: Language) -> list[str]:
    raw = (resources.files("kommutator.bot.nlu") / "data" / f"eval_{language}.yaml").read_text("utf-8")
    return [str(x) for x in yaml.safe_load(raw)["out_of_scope"]]
