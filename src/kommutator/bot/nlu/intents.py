"""Intent classification: what a free-text message is about, or None when it is about nothing the bot does.

A scikit-learn pipeline: TF-IDF over stemmed word uni- and bigrams (meaning, morphology folded) joined with
TF-IDF over character 2–5-grams inside word boundaries (typos, slang spellings, unseen word forms), into a
multinomial logistic regression whose probabilities are used as the confidence. The rejection threshold is
picked at training time on validation splits of the examples (cross-validation): the confidence that
``target_recall`` of in-scope messages unseen by their model reach. The model never sees out-of-scope examples;
they exist only to evaluate it.

The shipped examples live in ``data/intents_<language>.yaml``; ``default_model(language)`` trains on them the
first time it is asked (a few hundred milliseconds) and keeps the model for the life of the process.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise
from typing import NamedTuple

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from threadpoolctl import threadpool_limits

from kommutator.common.text import LANGUAGES, Language, normalize, stems

DEFAULT_INTENTS = (
    "new_order", "order_status", "nearest_office", "complaint", "talk_to_agent", "greeting", "thanks",
    "delivery", "refund", "payment",
)


class Prediction(NamedTuple):
    """The intent (None when out of scope) and the model's confidence in its best guess, 0–1."""

    intent: str | None
    confidence: float


@dataclass(frozen=True, slots=True)
class Examples:
    """Example phrases per intent, and out-of-scope phrases for evaluation only."""

    language: Language
    intents: dict[str, list[str]]
    out_of_scope: list[str]


def load_examples(language: Language) -> Examples:
    """Load the examples shipped with the package for ``language``."""
    if language not in LANGUAGES:
        raise ValueError(f"no shipped examples for language {language!r}; use one of {', '.join(LANGUAGES)}")
    raw = (resources.files("kommutator.bot.nlu") / "data" / f"intents_{language}.yaml").read_text("utf-8")
    data = yaml.safe_load(raw)
    intents = {str(k): [str(x) for x in v] for k, v in data["intents"].items()}
    return Examples(language, intents, [str(x) for x in data.get("out_of_scope", [])])


def word_features(text: str) -> list[str]:
    """Return the stems of ``text`` and their adjacent pairs (the word n-grams of the model)."""
    ss = stems(text)
    return ss + [f"{a} {b}" for a, b in pairwise(ss)]


def _pipeline(c: float) -> Pipeline:
    features = FeatureUnion([
        ("words", TfidfVectorizer(analyzer=word_features, sublinear_tf=True)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), preprocessor=normalize,
                                  lowercase=False, sublinear_tf=True)),
    ])
    # newton-cg: converges on these few hundred sparse rows ~10 times faster than the default lbfgs; a looser
    # tolerance than the default 1e-4 halves the fit and leaves the held-out figures as they were
    classifier = LogisticRegression(C=c, solver="newton-cg", tol=1e-3, max_iter=1000)
    return Pipeline([("features", features), ("classifier", classifier)])


class IntentModel:
    """A trained classifier with its rejection threshold; ``predict`` is safe to call from several threads."""

    def __init__(self, pipeline: Pipeline, *, language: Language, threshold: float) -> None:
        self.language = language
        self.threshold = threshold
        self.pipeline = pipeline
        classifier: LogisticRegression = pipeline.named_steps["classifier"]
        self.intents: tuple[str, ...] = tuple(str(c) for c in classifier.classes_)
        # sklearn's transform and predict_proba validate their input on every call, which costs ~20 times the
        # arithmetic for one short message; the same arithmetic on the fitted vocabularies is done here instead
        # (tests check it agrees with predict_proba).
        coef, intercept = classifier.coef_, classifier.intercept_
        if coef.shape[0] == 1:  # two intents: one score s for the second, so P = softmax([0, s]) = sigmoid(s)
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
        coef_t = np.ascontiguousarray(coef.T)
        self._intercept = np.array(intercept, dtype=np.float64)
        self._parts: list[tuple[Callable[[str], list[str]], dict[str, int], np.ndarray, np.ndarray]] = []
        offset = 0
        for _, vectorizer in pipeline.named_steps["features"].transformer_list:
            vocab: dict[str, int] = vectorizer.vocabulary_
            size = len(vocab)
            self._parts.append((vectorizer.build_analyzer(), vocab, vectorizer.idf_, coef_t[offset:offset + size]))
            offset += size

    @classmethod
    def train(cls, examples: Mapping[str, Sequence[str]], language: Language, *, target_recall: float = 0.9,
              folds: int = 5, c: float = 10.0, seed: int = 0) -> IntentModel:
        """Fit on ``examples`` (intent → phrases) and pick the threshold that keeps ``target_recall`` in scope.

        Each example is scored by a model fitted without it (``folds``-fold cross-validation, the validation
        splits); the threshold is the confidence that ``target_recall`` of those scores reach. The returned
        model is then fitted on all the examples. With fewer than two examples of some intent there is nothing
        to validate on and the threshold is 0.
        """
        texts, labels = _flatten(examples)
        folds = min(folds, *Counter(labels).values())
        # One BLAS thread: on a busy two-core machine more threads spin against each other and a 40 ms fit
        # takes a second or more.
        with threadpool_limits(1):
            confidences: list[float] = []
            if folds >= 2:
                x, y = np.array(texts, dtype=object), np.array(labels)
                for fit_at, score_at in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
                    probe = cls(_pipeline(c).fit(list(x[fit_at]), list(y[fit_at])), language=language, threshold=0)
                    confidences.extend(probe.predict(t).confidence for t in x[score_at])
            threshold = float(np.quantile(confidences, 1.0 - target_recall)) if confidences else 0.0
            return cls(_pipeline(c).fit(texts, labels), language=language, threshold=threshold)

    def predict(self, text: str, *, threshold: float | None = None) -> Prediction:
        """Return the intent of ``text`` and the confidence; the intent is None below the threshold.

        ``threshold`` overrides the model's own for this call (0 always names the likeliest intent).
        """
        probs = self._probabilities(text)
        best = int(probs.argmax())
        confidence = float(probs[best])
        floor = self.threshold if threshold is None else threshold
        return Prediction(self.intents[best] if confidence >= floor else None, confidence)

    def probabilities(self, text: str) -> dict[str, float]:
        """Return every intent's probability for ``text`` (for debugging, or for a flow that offers a top 3)."""
        return {intent: float(p) for intent, p in zip(self.intents, self._probabilities(text), strict=True)}

    def _probabilities(self, text: str) -> np.ndarray:
        scores = self._intercept.copy()
        for analyze, vocab, idf, coef in self._parts:
            counts = Counter(i for f in analyze(text) if (i := vocab.get(f)) is not None)
            if not counts:
                continue
            idx = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * idf[idx]
            weights /= np.sqrt(weights @ weights)
            scores += weights @ coef[idx]
        scores -= scores.max()
        probs = np.exp(scores)
        return np.asarray(probs / probs.sum())


def _flatten(examples: Mapping[str, Sequence[str]]) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    labels: list[str] = []
    for intent, phrases in examples.items():
        texts.extend(phrases)
        labels.extend([intent] * len(phrases))
    if len(set(labels)) < 2:
        raise ValueError("an intent model needs examples of at least two intents")
    return texts, labels


_models: dict[Language, IntentModel] = {}
_lock = threading.Lock()


def default_model(language: Language) -> IntentModel:
    """Return the model trained on the shipped examples for ``language`` (trained once, on first use)."""
    with _lock:
        model = _models.get(language)
        if model is None:
            model = _models[language] = IntentModel.train(load_examples(language).intents, language)
        return model


