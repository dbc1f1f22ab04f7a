"""The retrieval index behind reply suggestions: TF-IDF over word stems, stem bigrams and character 3-grams.

Pure and in memory. ``features`` turns a text into weighted features (Russian and English words normalised by
``common.text``: case, ё, accents; Snowball stems by script; stop words dropped from the word features, kept in
the character grams so short questions still match). ``PairIndex`` holds past (customer text → agent reply)
pairs and grows one pair at a time: document frequencies are counts, rows go to a small tail matrix sealed
into a chunk every ``MERGE_ROWS`` rows (equal-sized chunks merge like a binary counter, so a row is copied
O(log n) times in all), and document norms are computed at query time from the current IDF (one sparse
product per chunk), so nothing is ever rebuilt from scratch and old rows never go stale.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from kommutator.common import text as ctext
from kommutator.knowledge.text import STOP_WORDS

# Word stems carry the meaning; bigrams a little order; character grams catch typos and unseen word forms.
KIND_WEIGHT = {"w": 1.0, "b": 0.7, "c": 0.3}
MERGE_ROWS = 512
MAX_FEATURES = 400  # a long message contributes at most this many features (its first words)


def features(text: str) -> dict[str, float]:
    """The weighted features of ``text`` ("w:<stem>", "b:<stem> <stem>", "c:<3-gram>") with log-scaled counts."""
    words = ctext.words(text)
    counts: Counter[str] = Counter()
    stems = [ctext.stem(w) for w in words if w not in STOP_WORDS]
    counts.update("w:" + s for s in stems)
    counts.update(f"b:{a} {b}" for a, b in itertools.pairwise(stems))
    for w in words:
        padded = f"<{w}>"
        if len(padded) >= 4:
            counts.update("c:" + padded[i:i + 3] for i in range(len(padded) - 2))
    out = {f: KIND_WEIGHT[f[0]] * (1.0 + math.log(n)) for f, n in counts.items()}
    if len(out) > MAX_FEATURES:
        out = dict(sorted(out.items(), key=lambda kv: -kv[1])[:MAX_FEATURES])
    return out


def key_phrases(query: str, doc_features: set[str] | dict[str, float], *, limit: int = 4) -> list[str]:
    """The query's words (as typed, lower-case) whose stem the document has, longest first."""
    seen: dict[str, None] = {}
    for w in ctext.words(query):
        if w not in STOP_WORDS and "w:" + ctext.stem(w) in doc_features:
            seen.setdefault(w, None)
    return sorted(seen, key=len, reverse=True)[:limit]


_NON_WORD = re.compile(r"\s+")


def reply_key(text: str) -> str:
    """The normalised form replies are grouped and compared by (case, punctuation and spacing folded)."""
    return _NON_WORD.sub(" ", " ".join(ctext.words(text))).strip()


class Vocabulary:
    """Feature ids and document frequencies, growing as documents are added."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.df: list[int] = []
        self.n_docs = 0
        self._idf: np.ndarray | None = None

    def add(self, feats: dict[str, float]) -> tuple[list[int], list[float]]:
        idx, vals = [], []
        for f, v in feats.items():
            i = self.ids.get(f)
            if i is None:
                i = self.ids[f] = len(self.df)
                self.df.append(0)
            self.df[i] += 1
            idx.append(i)
            vals.append(v)
        self.n_docs += 1
        self._idf = None
        return idx, vals

    def idf(self) -> np.ndarray:
        """Smoothed IDF per feature id, cached until the next document."""
        if self._idf is None:
            df = np.asarray(self.df, dtype=np.float64)
            self._idf = np.log((self.n_docs + 1.0) / (df + 1.0)) + 1.0
        return self._idf

    def unseen_idf(self) -> float:
        return math.log(self.n_docs + 1.0) + 1.0

    def weigh(self, feats: dict[str, float]) -> dict[str, float]:
        """TF-IDF weights of a text's features (unseen features get the highest IDF)."""
        idf = self.idf()
        top = self.unseen_idf()
        return {f: v * (float(idf[i]) if (i := self.ids.get(f)) is not None else top) for f, v in feats.items()}


def similarity(q: dict[str, float], d: dict[str, float]) -> float:
    """Half cosine, half the share of the query's weight the document covers: long documents (articles) that
    contain the whole question are not punished for their length, short ones that are the question score best."""
    if not q or not d:
        return 0.0
    dot = sum(w * d[f] for f, w in q.items() if f in d)
    if dot == 0.0:
        return 0.0
    q2 = sum(w * w for w in q.values())
    d2 = sum(w * w for w in d.values())
    cover = sum(w * w for f, w in q.items() if f in d) / q2
    return 0.5 * dot / math.sqrt(q2 * d2) + 0.5 * cover


class Doc:
    """A canned response's or article's features, with its TF-IDF norm cached while the IDF barely moves."""

    __slots__ = ("_norm", "_stamp", "feats")

    def __init__(self, text: str) -> None:
        self.feats = features(text)
        self._norm = 0.0
        self._stamp = -1

    def similarity(self, vocab: Vocabulary, q: dict[str, float]) -> float:
        """``similarity(q, vocab.weigh(self.feats))`` without weighing every feature on each call: only the shared
        features are weighed; the norm is recomputed when the corpus has grown by 2 % since."""
        shared = [f for f in q if f in self.feats]
        if not shared:
            return 0.0
        if self._stamp < 0 or vocab.n_docs > self._stamp * 1.02 + 1:
            self._norm = math.sqrt(sum(w * w for w in vocab.weigh(self.feats).values()))
            self._stamp = vocab.n_docs
        d = vocab.weigh({f: self.feats[f] for f in shared})
        q2 = sum(w * w for w in q.values())
        dot = sum(q[f] * d[f] for f in shared)
        cover = sum(q[f] * q[f] for f in shared) / q2
        return 0.5 * dot / (math.sqrt(q2) * self._norm) + 0.5 * cover


@dataclass(slots=True)
class Pair:
    """One past reply: what the customer had written, what the agent answered (placeholders put back)."""

    message_id: int
    conversation_id: int
    team_id: int | None
    customer_text: str
    reply: str
    group: int = -1


@dataclass(slots=True)
class Hit:
    """A group of identical past replies matched by a query: the best pair's similarity, how often it was sent."""

    pair: Pair
    score: float
    times_sent: int
    phrases: list[str] = field(default_factory=list)


def _derived(x: sparse.csr_matrix) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """The element-wise square (for norms) and the 0/1 pattern (for coverage) of a feature matrix."""
    present = x.copy()
    present.data[:] = 1.0
    return x.multiply(x).tocsr(), present


class PairIndex:
    """Past customer texts and the replies that answered them; ``add`` one pair, ``search`` by a new text."""

    def __init__(self) -> None:
        self.vocab = Vocabulary()
        self.pairs: list[Pair] = []
        self.groups: dict[str, int] = {}
        self.group_count: list[int] = []
        self._teams: list[int] = []  # -1 for none
        # Sealed chunks of rows, oldest first, each (matrix, its square, its 0/1 pattern); sizes halve along the
        # list (a binary counter), so each row is copied O(log n) times in all, never on a query.
        self._chunks: list[tuple[sparse.csr_matrix, sparse.csr_matrix, sparse.csr_matrix]] = []
        self._tail_rows: list[tuple[list[int], list[float]]] = []
        self._tail: tuple[sparse.csr_matrix, sparse.csr_matrix, sparse.csr_matrix] | None = None
        self._teams_arr: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    def add(self, pair: Pair) -> None:
        key = reply_key(pair.reply)
        if not key:
            return
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = len(self.group_count)
            self.group_count.append(0)
        self.group_count[group] += 1
        pair.group = group
        self.pairs.append(pair)
        self._teams.append(-1 if pair.team_id is None else pair.team_id)
        self._teams_arr = None
        self._tail_rows.append(self.vocab.add(features(pair.customer_text)))
        self._tail = None
        if len(self._tail_rows) >= MERGE_ROWS:
            self._merge()

    def _rows(self, rows: list[tuple[list[int], list[float]]]) -> sparse.csr_matrix:
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(i) for i, _ in rows])
        indices = np.fromiter((i for r, _ in rows for i in r), dtype=np.int64, count=int(indptr[-1]))
        data = np.fromiter((v for _, vs in rows for v in vs), dtype=np.float64, count=int(indptr[-1]))
        return sparse.csr_matrix((data, indices, indptr), shape=(len(rows), len(self.vocab.df)))

    def _merge(self) -> None:
        x = self._rows(self._tail_rows)
        while self._chunks and self._chunks[-1][0].shape[0] <= x.shape[0]:
            prev = self._chunks.pop()[0]
            prev.resize((prev.shape[0], x.shape[1]))
            x = sparse.vstack([prev, x], format="csr")
        self._chunks.append((x, *_derived(x)))
        self._tail_rows = []
        self._tail = None

    def _parts(self) -> list[tuple[int, sparse.csr_matrix, sparse.csr_matrix, sparse.csr_matrix]]:
        parts = []
        start = 0
        for chunk in self._chunks:
            parts.append((start, *chunk))
            start += chunk[0].shape[0]
        if self._tail_rows:
            if self._tail is None:
                t = self._rows(self._tail_rows)
                self._tail = (t, *_derived(t))
            parts.append((start, *self._tail))
        return parts

    def scores(self, query: str) -> np.ndarray:
        """Similarity of every pair's customer text to ``query`` (0–1; see ``similarity``)."""
        n = len(self.pairs)
        out = np.zeros(n)
        feats = features(query)
        if not n or not feats:
            return out
        idf = self.vocab.idf()
        top = self.vocab.unseen_idf()
        qw = {f: v * (float(idf[i]) if (i := self.vocab.ids.get(f)) is not None else top) for f, v in feats.items()}
        q2 = sum(w * w for w in qw.values())
        idf2 = idf * idf
        for start, x, x_sq, present in self._parts():
            width = x.shape[1]
            qvec = np.zeros(width)  # query weight × idf, so that x·qvec is the TF-IDF dot product
            for f, v in feats.items():
                i = self.vocab.ids.get(f)
                if i is not None and i < width:
                    qvec[i] = v * float(idf[i]) * float(idf[i])
            dot = x @ qvec
            # How much of the query each row covers: Σ over shared features of the query's weight².
            cover_vec = np.zeros(width)
            for f, w in qw.items():
                i = self.vocab.ids.get(f)
                if i is not None and i < width:
                    cover_vec[i] = w * w
            cover = (present @ cover_vec) / q2
            norms = np.sqrt(x_sq @ idf2[:width])
            with np.errstate(divide="ignore", invalid="ignore"):
                cos = np.where(norms > 0, dot / (norms * math.sqrt(q2)), 0.0)
            out[start:start + x.shape[0]] = 0.5 * cos + 0.5 * cover
        return out

    def search(self, query: str, *, team_ids: frozenset[int] | None = None, limit: int = 5,
               min_score: float = 0.0) -> list[Hit]:
        """The best ``limit`` distinct replies for ``query``; ``team_ids`` (None: all) limits which pairs count —
        pairs from conversations of no team count for everyone."""
        scores = self.scores(query)
        if not len(scores):
            return []
        if team_ids is not None:
            if self._teams_arr is None:
                self._teams_arr = np.asarray(self._teams, dtype=np.int64)
            allowed = np.isin(self._teams_arr, [*team_ids, -1])
            scores = np.where(allowed, scores, 0.0)
        k = min(len(scores), max(limit * 8, 32))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best], kind="stable")]
        hits: list[Hit] = []
        taken: set[int] = set()
        for i in best:
            score = float(scores[i])
            if score <= min_score:
                break
            pair = self.pairs[int(i)]
            if pair.group in taken:
                continue
            taken.add(pair.group)
            hits.append(Hit(pair=pair, score=score, times_sent=self.group_count[pair.group],
                            phrases=key_phrases(query, features(pair.customer_text))))
            if len(hits) >= limit:
                break
        return hits
