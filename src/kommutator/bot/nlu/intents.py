"""Intent classification: what a free-text message is about, or None when it is about nothing the bot does.

Features: TF-IDF over stemmed word uni- and bigrams (meaning, morphology folded) joined with TF-IDF over
character 2–5-grams inside word boundaries (typos, slang spellings, unseen word forms). Classifier: a linear
support-vector machine per intent (liblinear, trained to convergence), whose scores become probabilities through
a softmax with a temperature fitted on cross-validated scores (calibration: the probabilities mean what they
say on messages the model did not see).

Out of scope: besides the intents, the model learns one more class, chatter: small talk and unrelated questions
shipped with the package (``data/chatter_<language>.yaml``, RU and EN). A message whose likeliest class is
chatter is out of scope (confidence 0) whatever its intent scores. The threshold is calibrated by
cross-validation on the training examples and the chatter: in each fold a quarter of the intents is withheld
entirely (their messages play the part of out-of-scope ones: about something the model was never taught) and a
quarter of the examples of the others and of the chatter is held out; every held-out message is scored by a
model that did not see it, and the threshold is the confidence that best separates right answers from the
withheld intents' messages and the held-out chatter (the sum of in-scope accuracy and their rejection, at
most). A message that shares no word or character n-gram with
any training example is out of scope whatever its scores say.

A trained model is plain arrays (vocabularies, idf weights, coefficients), ``to_bytes``/``from_bytes``
round-trips it, so the product saves it with its version and loads it at start without retraining; sklearn is
needed only to train. ``default_model(language)`` trains on the shipped examples the first time it is asked.
"""

from __future__ import annotations

import io
import json
import math
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np
import yaml

from kommutator.common.text import LANGUAGES, Language, normalize, stem, stems, words

DEFAULT_INTENTS = (
    "new_order", "order_status", "nearest_office", "complaint", "talk_to_agent", "greeting", "thanks",
    "delivery", "refund", "payment",
)
FORMAT = 4  # the layout of to_bytes and the features it means (4: a chatter class); another format is retrained
CHATTER = "(chatter)"  # the negative class's label: not a valid intent name
CHAR_RANGE = (2, 5)
DEFAULT_C = 0.5
CALIBRATION_CAP = 20
KNOWN_CHARS = 0.5  # the share of a message's character n-grams seen in training that makes it familiar
EMBED = True  # add WordLlama sentence embeddings to the n-grams
SOLVER = "svm"
TOL = 1e-3
CHATTER_BALANCE = 2.0  # the chatter class weighs as much as this many intents' examples
WITHHELD_WEIGHT = 0.15  # how much rejecting a withheld intent's message counts against keeping a right answer


_CYRILLIC = re.compile(r"[а-я]")


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


@lru_cache(maxsize=4)
def load_chatter(language: str) -> tuple[str, ...]:
    """The out-of-scope chatter shipped for ``language`` (empty for a language without one)."""
    if language not in LANGUAGES:
        return ()
    raw = (resources.files("kommutator.bot.nlu") / "data" / f"chatter_{language}.yaml").read_text("utf-8")
    return tuple(str(x) for x in yaml.safe_load(raw)["chatter"])


LEMMAS = True  # Russian words by their dictionary form (pymorphy3), not only by their snowball stem


_morph: Any = None
_morph_lock = threading.Lock()


def _analyzer() -> Any:
    global _morph
    with _morph_lock:
        if _morph is None:
            import pymorphy3

            _morph = pymorphy3.MorphAnalyzer(lang="ru")
        return _morph


@lru_cache(maxsize=65536)
def lemma(word: str) -> str:
    """The dictionary form of a Russian word (``заказы`` → ``заказ``, ``шла`` → ``идти``); other words' stem."""
    if not _CYRILLIC.search(word):
        return stem(word)
    return str(_analyzer().parse(word)[0].normal_form).replace("ё", "е")


@lru_cache(maxsize=65536)
def word_features(text: str) -> list[str]:
    """Return the word units of ``text`` (Russian lemmas, other words' stems) and their adjacent pairs."""
    ss = [lemma(w) for w in words(text)] if LEMMAS else stems(text)
    return ss + [f"{a} {b}" for a, b in pairwise(ss)]


@lru_cache(maxsize=65536)
def char_features(text: str) -> list[str]:
    """Return the character 2–5-grams of each normalised word padded with spaces (``char_wb``)."""
    out: list[str] = []
    lo, hi = CHAR_RANGE
    for word in normalize(text).split():
        w = f" {word} "
        size = len(w)
        for n in range(lo, min(hi, size) + 1):
            out.extend(w[i:i + n] for i in range(size - n + 1))
    return out


ANALYZERS: tuple[Callable[[str], list[str]], ...] = (word_features, char_features)
EMBEDDING_DIMS = 64
EMBEDDING_WEIGHT = 1.0  # the embedding block's length beside the unit-length n-gram blocks


class _Embedder:
    """Sentence embeddings: the mean of WordLlama's token vectors (weights and tokenizer ship in its wheel)."""

    def __init__(self) -> None:
        import os

        import wordllama
        from safetensors import safe_open
        from tokenizers import Tokenizer

        base = os.path.dirname(wordllama.__file__)
        # wordllama's own loader looks for "<config>_tokenizer_config.json" under a cache folder and falls back to
        # a download; the wheel ships it under tokenizers/, so both files are opened here directly.
        self.tokenizer = Tokenizer.from_file(os.path.join(base, "tokenizers", "l2_supercat_tokenizer_config.json"))
        with safe_open(os.path.join(base, "weights", "l2_supercat_256.safetensors"), framework="np") as f:
            # the first EMBEDDING_DIMS of each vector (the model is trained to work truncated)
            self.table = np.asarray(f.get_tensor("embedding.weight")[:, :EMBEDDING_DIMS], dtype=np.float32)
        self.dim = self.table.shape[1]

    def __call__(self, text: str) -> np.ndarray:
        return self._embed(text)

    @lru_cache(maxsize=32768)  # noqa: B019 - one embedder per process
    def _embed(self, text: str) -> np.ndarray:
        ids = [i for i in self.tokenizer.encode(normalize(text), add_special_tokens=False).ids]
        if not ids:
            return np.zeros(self.dim)
        v = self.table[ids].mean(axis=0).astype(np.float64)
        n = float(np.sqrt(v @ v))
        return v / n if n else v


_embedder: _Embedder | None = None
_embedder_lock = threading.Lock()


def embedder() -> _Embedder:
    global _embedder
    with _embedder_lock:
        if _embedder is None:
            _embedder = _Embedder()
        return _embedder


class _Part(NamedTuple):
    vocab: dict[str, int]
    idf: np.ndarray


def _fit_parts(texts: Sequence[str]) -> list[_Part]:
    """Vocabulary and smoothed idf per analyzer (sklearn's TfidfVectorizer formula)."""
    parts: list[_Part] = []
    n = len(texts)
    for analyze in ANALYZERS:
        df: Counter[str] = Counter()
        for t in texts:
            df.update(set(analyze(t)))
        vocab = {f: i for i, f in enumerate(sorted(df))}
        idf = np.array([math.log((1 + n) / (1 + df[f])) + 1.0 for f in sorted(df)], dtype=np.float64)
        parts.append(_Part(vocab, idf))
    return parts


def _row(parts: Sequence[_Part], text: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per part: the feature indices and their l2-normalised sublinear tf-idf weights."""
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for analyze, part in zip(ANALYZERS, parts, strict=True):
        counts = Counter(i for f in analyze(text) if (i := part.vocab.get(f)) is not None)
        if not counts:
            out.append((np.zeros(0, dtype=np.intp), np.zeros(0)))
            continue
        idx = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * part.idf[idx]
        weights /= np.sqrt(weights @ weights)
        out.append((idx, weights))
    return out


def _matrix(parts: Sequence[_Part], texts: Sequence[str], embed: bool) -> Any:
    from scipy.sparse import csr_matrix, hstack

    offsets = np.cumsum([0] + [len(p.vocab) for p in parts])
    indptr = [0]
    indices: list[np.ndarray] = []
    data: list[np.ndarray] = []
    for t in texts:
        n = 0
        for (idx, w), off in zip(_row(parts, t), offsets, strict=False):
            indices.append(idx + off)
            data.append(w)
            n += len(idx)
        indptr.append(indptr[-1] + n)
    x = csr_matrix((np.concatenate(data), np.concatenate(indices), np.array(indptr)),
                   shape=(len(texts), int(offsets[-1])))
    if embed:
        e = embedder()
        x = hstack([x, csr_matrix(np.array([e(t) for t in texts]) * EMBEDDING_WEIGHT)], format="csr")
    return x


class _Corpus:
    """Every training text's feature counts under one vocabulary per analyzer, extracted once per training.

    The probes of the calibration and the final model each take their vocabulary (the features their own texts
    have), idf and tf-idf rows from these counts by array arithmetic, as ``_fit_parts`` and ``_matrix`` would
    from the texts (same sorted vocabulary, same weights), without analysing a text twice."""

    def __init__(self, texts: Sequence[str], embed: bool) -> None:
        from scipy.sparse import csr_matrix

        self.counts: list[Any] = []
        self.features: list[list[str]] = []
        for analyze in ANALYZERS:
            vocab: dict[str, int] = {}
            indptr = [0]
            ids: list[int] = []
            for t in texts:
                ids.extend(vocab.setdefault(f, len(vocab)) for f in analyze(t))
                indptr.append(len(ids))
            names = list(vocab)
            order = sorted(range(len(names)), key=names.__getitem__)
            rank = np.empty(len(names), dtype=np.intp)
            rank[order] = np.arange(len(names))
            m = csr_matrix((np.ones(len(ids)), rank[np.array(ids, dtype=np.intp)], np.array(indptr)),
                           shape=(len(texts), len(names)))
            m.sum_duplicates()
            self.counts.append(m)
            self.features.append([names[i] for i in order])
        self.embedding = (np.array([embedder()(t) for t in texts]) * EMBEDDING_WEIGHT) if embed else None
        words = self.counts[0]
        chars = self.counts[1]
        # familiar to a model that saw all of these features: see _Scorer.scores_known
        self._word_nnz = np.diff(words.indptr)
        self._grams = np.diff(chars.indptr)

    def fit(self, rows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per analyzer: the columns the texts at ``rows`` use (their vocabulary) and the smoothed idf."""
        out = []
        n = len(rows)
        for m in self.counts:
            df = np.bincount(m[rows].indices, minlength=m.shape[1])
            keep = np.flatnonzero(df)
            out.append((keep, np.log((1 + n) / (1 + df[keep])) + 1.0))
        return out

    def parts(self, fitted: list[tuple[np.ndarray, np.ndarray]]) -> list[_Part]:
        return [_Part({names[c]: i for i, c in enumerate(keep)}, idf)
                for names, (keep, idf) in zip(self.features, fitted, strict=True)]

    def transform(self, rows: np.ndarray, fitted: list[tuple[np.ndarray, np.ndarray]]) -> tuple[Any, np.ndarray]:
        """The l2-normalised sublinear tf-idf rows (n-gram blocks only) of the texts at ``rows`` under a fitted
        vocabulary, and which of them are familiar to it."""
        from scipy.sparse import diags, hstack

        blocks = []
        seen = []
        for m, (keep, idf) in zip(self.counts, fitted, strict=True):
            sub = m[rows][:, keep].tocsr()
            sub.data = (1.0 + np.log(sub.data)) * idf[sub.indices]
            norms = np.sqrt(np.asarray(sub.multiply(sub).sum(axis=1)).ravel())
            blocks.append(diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ sub)
            seen.append(np.diff(sub.indptr))
        grams = self._grams[rows]
        known = (seen[0] > 0) | ((grams > 0) & (seen[1] >= KNOWN_CHARS * grams))
        return hstack(blocks, format="csr"), known

    def matrix(self, rows: np.ndarray, fitted: list[tuple[np.ndarray, np.ndarray]]) -> Any:
        """``transform`` with the embedding block: what a linear model is fitted on."""
        from scipy.sparse import csr_matrix, hstack

        x, _ = self.transform(rows, fitted)
        if self.embedding is not None:
            x = hstack([x, csr_matrix(self.embedding[rows])], format="csr")
        return x

    def scores(self, rows: np.ndarray, fitted: list[tuple[np.ndarray, np.ndarray]], coef: np.ndarray,
               intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A fitted model's scores of the texts at ``rows`` (the embedding counted for familiar ones only, as
        ``scores_known`` does), and which are familiar."""
        x, known = self.transform(rows, fitted)
        width = x.shape[1]
        scores = np.asarray(x @ coef[:, :width].T) + intercept
        if self.embedding is not None and known.any():
            at = np.flatnonzero(known)
            scores[at] += self.embedding[rows[at]] @ coef[:, width:].T
        return scores, known


class _Scorer:
    """Linear scores of a fitted model, computed on the vocabularies directly (sklearn validates its input on
    every call, about twenty times the arithmetic for one short message)."""

    def __init__(self, parts: list[_Part], coef: np.ndarray, intercept: np.ndarray, embed: bool) -> None:
        self._parts = parts
        self._coef = np.ascontiguousarray(coef)
        self._intercept = np.asarray(intercept, dtype=np.float64)
        self.embed = embed
        offsets = np.cumsum([0] + [len(p.vocab) for p in parts])
        coef_t = np.ascontiguousarray(self._coef.T)
        self._coef_parts = [coef_t[offsets[i]:offsets[i + 1]] for i in range(len(parts))]
        self._coef_embed = coef_t[offsets[-1]:] if embed else None

    def scores_known(self, text: str) -> tuple[np.ndarray, bool]:
        """The linear scores, one per intent, and whether any n-gram of ``text`` was seen in training."""
        scores = self._intercept.copy()
        row = _row(self._parts, text)
        for (idx, w), coef in zip(row, self._coef_parts, strict=True):
            if len(idx):
                scores += w @ coef[idx]
        # known: a word seen in training, or mostly familiar character n-grams (typos); keyboard mashing shares
        # a few bigrams with everything and is not
        grams = set(char_features(text))
        known = bool(len(row[0][0])) or (bool(grams) and len(row[1][0]) >= KNOWN_CHARS * len(grams))
        if self._coef_embed is not None and known:
            scores += (embedder()(text) * EMBEDDING_WEIGHT) @ self._coef_embed
        return scores, known

    def scores(self, text: str) -> np.ndarray:
        return self.scores_known(text)[0]


def _chatter_weight(y: np.ndarray, chatter: int | None) -> dict[int, float] | None:
    """The chatter class's weight: as much in all as ``CHATTER_BALANCE`` intents' examples (at most 1 a phrase),
    so that a hundred chatter phrases do not outweigh intents of ten examples each."""
    if chatter is None:
        return None
    counts = np.bincount(y)
    n = int(counts[chatter])
    if not n:
        return None
    per_intent = float(np.delete(counts, chatter).mean())
    return {chatter: min(1.0, CHATTER_BALANCE * per_intent / n)}


def _fit_linear(x: Any, y: np.ndarray, n_classes: int, c: float,
                chatter: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest linear SVMs (liblinear's dual coordinate descent, run to a tight tolerance); ``chatter``: the
    index of the chatter class, weighted by ``_chatter_weight``."""
    weight = _chatter_weight(y, chatter)
    if SOLVER == "lr":
        from sklearn.linear_model import LogisticRegression
        classifier = LogisticRegression(C=c, tol=1e-4, max_iter=2000, class_weight=weight)
    else:
        from sklearn.svm import LinearSVC
        classifier = LinearSVC(C=c, tol=TOL, max_iter=5000, dual=True, class_weight=weight)
    classifier.fit(x, y)
    coef, intercept = classifier.coef_, classifier.intercept_
    if n_classes == 2:  # liblinear's binary form: one row scoring the second class
        coef = np.vstack([-coef, coef]) / 2
        intercept = np.concatenate([-intercept, intercept]) / 2
    return np.asarray(coef, dtype=np.float64), np.asarray(intercept, dtype=np.float64)


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def _fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The softmax temperature that minimises the negative log-likelihood of the right labels (a 1-D search)."""
    best, best_nll = 1.0, math.inf
    for t in np.exp(np.linspace(math.log(0.02), math.log(5.0), 80)):
        p = _softmax(scores, float(t))[np.arange(len(labels)), labels]
        nll = float(-np.log(np.maximum(p, 1e-12)).mean())
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


@dataclass(frozen=True, slots=True)
class Calibration:
    """What cross-validation on the training examples found: it explains the threshold."""

    threshold: float
    temperature: float
    in_scope_accuracy: float  # held-out examples of known intents, right and above the threshold
    withheld_rejection: float  # messages of withheld intents below the threshold
    # per intent: (precision, recall) of the cross-validated predictions, the threshold applied
    per_intent: dict[str, tuple[float, float]]
    confused: list[tuple[str, str, int]]  # (expected, predicted, how many), worst first


class IntentModel(_Scorer):
    """A trained classifier with its rejection threshold; ``predict`` is safe to call from several threads."""

    def __init__(self, *, language: Language, intents: Sequence[str], parts: list[_Part], coef: np.ndarray,
                 intercept: np.ndarray, temperature: float, threshold: float, embed: bool = False,
                 calibration: Calibration | None = None, chatter: bool = False) -> None:
        super().__init__(parts, coef, intercept, embed)
        self.language = language
        self.intents: tuple[str, ...] = tuple(intents)
        # the last row of the coefficients is the chatter class when there is one
        self.chatter = chatter
        if len(self.intents) + chatter != len(self._intercept):
            raise ValueError(f"{len(self._intercept)} classes for {len(self.intents)} intents (chatter: {chatter})")
        self.threshold = threshold
        self.temperature = temperature
        self.calibration = calibration

    @classmethod
    def train(cls, examples: Mapping[str, Sequence[str]], language: Language, *, folds: int = 3,
              c: float = DEFAULT_C, seed: int = 0, target_recall: float | None = None,
              embed: bool | None = None, chatter: Sequence[str] | None = None) -> IntentModel:
        """Fit on ``examples`` (intent → phrases) and calibrate the temperature and threshold by cross-validation.

        ``target_recall``, when given, picks the threshold that keeps that share of held-out in-scope messages
        instead of the one that best separates them from withheld intents. ``embed`` adds sentence embeddings
        to the n-grams (default: ``EMBED``). ``chatter``: the out-of-scope phrases learnt as a negative class
        (default: the shipped chatter of ``language``; empty: none); a chatter phrase equal to an example is
        dropped.
        """
        from threadpoolctl import threadpool_limits

        embed = EMBED if embed is None else embed
        texts, labels = _flatten(examples)
        intents = sorted(set(labels))
        if CHATTER in intents:
            raise ValueError(f"{CHATTER!r} is not an intent name")
        taken = {normalize(t) for t in texts}
        negative = [t for t in (load_chatter(language) if chatter is None else chatter) if normalize(t) not in taken]
        texts = texts + negative
        labels = labels + [CHATTER] * len(negative)
        classes = [*intents, CHATTER] if negative else intents
        # One BLAS thread: on a busy two-core machine more threads spin against each other.
        with threadpool_limits(1):
            corpus = _Corpus(texts, embed)
            calibration = _calibrate(corpus, texts, labels, classes, folds=folds, c=c, seed=seed,
                                     target_recall=target_recall)
            every = np.arange(len(texts))
            fitted = corpus.fit(every)
            parts = corpus.parts(fitted)
            index = {name: i for i, name in enumerate(classes)}
            coef, intercept = _fit_linear(corpus.matrix(every, fitted), np.array([index[x] for x in labels]),
                                          len(classes), c, index.get(CHATTER))
        return cls(language=language, intents=intents, parts=parts, coef=coef, intercept=intercept,
                   temperature=calibration.temperature if calibration else 1.0,
                   # uncalibrated: any intent, but never a message more likely chatter (confidence 0)
                   threshold=calibration.threshold if calibration else (1e-6 if negative else 0.0), embed=embed,
                   calibration=calibration,
                   chatter=bool(negative))

    def predict(self, text: str, *, threshold: float | None = None) -> Prediction:
        """Return the intent of ``text`` and the confidence; the intent is None below the threshold.

        ``threshold`` overrides the model's own for this call (0 always names the likeliest intent). A message
        with nothing in common with any example, or more likely chatter than any intent, has confidence 0.
        """
        probs, known = self._probabilities(text)
        n = len(self.intents)
        best = int(probs[:n].argmax())
        confidence = float(probs[best]) if known and not (self.chatter and probs[n] > probs[best]) else 0.0
        floor = self.threshold if threshold is None else threshold
        return Prediction(self.intents[best] if confidence >= floor else None, confidence)

    def probabilities(self, text: str) -> dict[str, float]:
        """Return every intent's probability for ``text`` (for debugging, or for a flow that offers a top 3); with
        a chatter class they sum to less than 1 (the rest is the chatter's)."""
        probs, _ = self._probabilities(text)
        return {intent: float(p) for intent, p in zip(self.intents, probs[:len(self.intents)], strict=True)}

    def _probabilities(self, text: str) -> tuple[np.ndarray, bool]:
        scores, known = self.scores_known(text)
        return _softmax(scores, self.temperature), known

    # -- saving ----------------------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The model as one compressed blob (numpy arrays and JSON; no pickle)."""
        meta = {"format": FORMAT, "language": self.language, "intents": list(self.intents),
                "threshold": self.threshold, "temperature": self.temperature, "embed": self.embed,
                "chatter": self.chatter,
                "embedding_dims": EMBEDDING_DIMS if self.embed else 0,
                "vocab": [sorted(p.vocab, key=p.vocab.__getitem__) for p in self._parts],
                "calibration": None if self.calibration is None else {
                    "threshold": self.calibration.threshold, "temperature": self.calibration.temperature,
                    "in_scope_accuracy": self.calibration.in_scope_accuracy,
                    "withheld_rejection": self.calibration.withheld_rejection,
                    "per_intent": self.calibration.per_intent, "confused": self.calibration.confused}}
        buf = io.BytesIO()
        arrays = {f"idf{i}": p.idf for i, p in enumerate(self._parts)}
        arrays.update(meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode(), dtype=np.uint8),
                      coef=self._coef, intercept=self._intercept)
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> IntentModel:
        """Load a model saved by ``to_bytes``; ValueError when it is not one (or of another format)."""
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                if meta.get("format") != FORMAT:
                    raise ValueError(f"a saved intent model of format {meta.get('format')}, expected {FORMAT}")
                if meta.get("embed") and meta.get("embedding_dims") != EMBEDDING_DIMS:
                    raise ValueError(f"a saved intent model with {meta.get('embedding_dims')}-dimension embeddings, "
                                     f"expected {EMBEDDING_DIMS}")
                parts = [_Part({f: i for i, f in enumerate(vocab)}, np.array(z[f"idf{n}"]))
                         for n, vocab in enumerate(meta["vocab"])]
                cal = meta.get("calibration")
                calibration = None if cal is None else Calibration(
                    threshold=cal["threshold"], temperature=cal["temperature"],
                    in_scope_accuracy=cal["in_scope_accuracy"], withheld_rejection=cal["withheld_rejection"],
                    per_intent={k: (v[0], v[1]) for k, v in cal["per_intent"].items()},
                    confused=[(a, b, n) for a, b, n in cal["confused"]])
                return cls(language=meta["language"], intents=meta["intents"], parts=parts, coef=np.array(z["coef"]),
                           intercept=np.array(z["intercept"]), temperature=float(meta["temperature"]),
                           threshold=float(meta["threshold"]), embed=bool(meta.get("embed")),
                           calibration=calibration, chatter=bool(meta.get("chatter")))
        except (OSError, KeyError, ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"not a saved intent model: {e}") from e


def _calibrate(corpus: _Corpus, texts: list[str], labels: list[str], classes: list[str], *, folds: int, c: float,
               seed: int, target_recall: float | None) -> Calibration | None:
    """Score held-out examples, withheld intents and held-out chatter fold by fold; fit the temperature and the
    threshold. ``classes``: the intents, then ``CHATTER`` when the corpus has chatter."""
    intents = [name for name in classes if name != CHATTER]
    chatter = len(intents) < len(classes)
    per_intent = Counter(label for label in labels if label != CHATTER)
    if len(intents) < 2 or min(per_intent.values()) < 2:
        return None
    rng = random.Random(seed)
    by_class: dict[str, list[int]] = {name: [] for name in classes}
    for i, label in enumerate(labels):
        by_class[label].append(i)
    for idxs in by_class.values():
        rng.shuffle(idxs)
    order = list(intents)
    rng.shuffle(order)
    folds = max(2, min(folds, min(per_intent.values())))
    # withholding intents needs at least three (two stay to train on)
    withhold = len(intents) >= 3
    at = {name: i for i, name in enumerate(classes)}
    in_scores: list[np.ndarray] = []
    in_labels: list[int] = []
    out_conf: list[float] = []
    temperature_rows: list[np.ndarray] = []  # out-of-scope rows, scored once the temperature is known
    out_known: list[bool] = []
    for k in range(folds):
        withheld = sorted(order[k::folds]) if withhold else []
        withheld = withheld[:len(intents) - 2]
        known = [name for name in classes if name not in withheld]
        fit_at: list[int] = []
        score_at: list[int] = []
        chatter_at: list[int] = []
        for name in known:
            idxs = by_class[name]
            held = set(idxs[k::folds])
            (chatter_at if name == CHATTER else score_at).extend(i for i in idxs if i in held)
            # large sets: the probes fit on at most CALIBRATION_CAP examples per intent (their cost grows with
            # examples × intents; the confidences they give barely move past a few dozen examples); chatter whole
            kept = [i for i in idxs if i not in held]
            fit_at.extend(kept if name == CHATTER else kept[:CALIBRATION_CAP])
        index = {name: i for i, name in enumerate(known)}
        fitted = corpus.fit(np.array(fit_at))
        coef, intercept = _fit_linear(corpus.matrix(np.array(fit_at), fitted),
                                      np.array([index[labels[i]] for i in fit_at]), len(known), c, index.get(CHATTER))
        columns = [at[n] for n in known]

        if score_at:
            block, _ = _scored_block(corpus, score_at, fitted, coef, intercept, columns, len(classes))
            in_scores.extend(block)
            in_labels.extend(at[labels[i]] for i in score_at)
        out_at = [i for name in withheld for i in by_class[name]] + chatter_at
        if out_at:
            block, seen = _scored_block(corpus, out_at, fitted, coef, intercept, columns, len(classes))
            temperature_rows.extend(block)
            out_known.extend(bool(x) for x in seen)
    scores = np.array(in_scores)
    y = np.array(in_labels)
    temperature = _fit_temperature(scores, y)
    n = len(intents)

    def confidences(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The likeliest intent and its confidence (0 where chatter is likelier), as ``predict`` gives them."""
        guess = probs[:, :n].argmax(axis=1)
        conf = probs[np.arange(len(probs)), guess]
        if chatter:
            conf = np.where(probs[:, n] > conf, 0.0, conf)
        return guess, conf

    guess, conf = confidences(_softmax(scores, temperature))
    right = guess == y
    if temperature_rows:
        _, oc = confidences(_softmax(np.array(temperature_rows), temperature))
        out_conf = list(np.where(np.array(out_known), oc, 0.0))
    out = np.array(out_conf)
    threshold = _pick_threshold(conf, right, out, target_recall)
    accepted = (conf >= threshold) & (conf > 0)
    report: dict[str, tuple[float, float]] = {}
    for j, name in enumerate(intents):
        predicted = accepted & (guess == j)
        actual = y == j
        tp = float((predicted & actual).sum())
        report[name] = (round(tp / max(1.0, float(predicted.sum())), 4), round(tp / max(1.0, float(actual.sum())), 4))
    confused: Counter[tuple[str, str]] = Counter()
    for g, t in zip(guess, y, strict=True):
        if g != t:
            confused[intents[int(t)], intents[int(g)]] += 1
    return Calibration(threshold=threshold, temperature=temperature,
                       in_scope_accuracy=round(float((right & accepted).mean()), 4),
                       withheld_rejection=round(float((out < threshold).mean()), 4) if len(out) else 0.0,
                       per_intent=report, confused=[(a, b, n) for (a, b), n in confused.most_common(10)])


def _scored_block(corpus: _Corpus, rows: list[int], fitted: list[tuple[np.ndarray, np.ndarray]], coef: np.ndarray,
                  intercept: np.ndarray, columns: list[int], width: int) -> tuple[np.ndarray, np.ndarray]:
    """A probe's scores of ``rows`` placed in the columns of its classes (the withheld ones far below)."""
    scored, seen = corpus.scores(np.array(rows), fitted, coef, intercept)
    block = np.full((len(rows), width), -1e4)
    block[:, columns] = scored
    return block, seen


def _pick_threshold(conf: np.ndarray, right: np.ndarray, withheld: np.ndarray, target_recall: float | None) -> float:
    """The confidence floor: keeps ``target_recall`` of held-out messages when given; otherwise the floor that
    maximises (right and accepted among in-scope) + (rejected among withheld intents)."""
    if target_recall is not None or not len(withheld):
        return max(1e-6, float(np.quantile(conf, 1.0 - (target_recall if target_recall is not None else 0.9))))
    # never 0: a message more likely chatter than any intent has confidence 0 and must stay rejected
    candidates = np.unique(np.concatenate([conf[conf > 0], withheld[withheld > 0], [1e-6]]))
    right_conf = np.sort(conf[right])
    out_sorted = np.sort(withheld)
    # accepted right answers: conf >= t; rejected withheld: conf < t
    kept = (len(right_conf) - np.searchsorted(right_conf, candidates, side="left")) / len(conf)
    rejected = np.searchsorted(out_sorted, candidates, side="left") / len(withheld)
    gain = kept + WITHHELD_WEIGHT * rejected
    best = float(candidates[int(np.argmax(gain))])
    return best


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
