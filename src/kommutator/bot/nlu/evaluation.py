"""Measure an intent model on held-out examples: the figures bench/nlu.py prints and the quality test guards."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sklearn.metrics import f1_score

from kommutator.bot.nlu.intents import IntentModel

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
