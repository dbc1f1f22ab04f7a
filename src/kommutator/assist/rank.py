"""Ranking: candidates from the three sources, merged by text, weighed by what agents did with them before.

The prior is a suggestion's smoothed acceptance rate: (inserted + ½·sent unedited + 1) / (shown + 4), so an
unseen one starts at 0.25 and one shown twenty times and never taken drops towards 0. A candidate's rank is
its similarity × (0.75 + prior), capped at 1.75: an unseen suggestion keeps its similarity, feedback moves it
by at most −25 % / +75 %, so it reorders close candidates but never lifts an unrelated one above a match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kommutator.assist.index import reply_key

LIMIT = 3
MIN_SIMILARITY = 0.2  # below this a candidate is noise, whatever its prior


@dataclass(frozen=True, slots=True)
class Usage:
    shown: int = 0
    inserted: int = 0
    sent_unedited: int = 0
    sent_edited: int = 0


def prior(usage: Usage | None) -> float:
    """The smoothed acceptance rate (0.25 for a suggestion never shown)."""
    u = usage or Usage()
    return min(1.0, (u.inserted + 0.5 * u.sent_unedited + 1.0) / (u.shown + 4.0))


def reply_suggestion_key(template: str) -> str:
    """The stable key of a past reply: a SHA-256 of its normalised text."""
    return "reply:" + hashlib.sha256(reply_key(template).encode("utf-8")).hexdigest()[:16]


@dataclass(slots=True)
class Candidate:
    key: str  # canned:<id>, article:<id>, reply:<hash>
    source: str  # canned, article, reply
    text: str  # personalised, plain text
    title: str
    similarity: float
    matched: list[str] = field(default_factory=list)
    times_sent: int = 0
    source_id: int | None = None
    score: float = 0.0
    prior: float = 0.25


def rank(candidates: Iterable[Candidate], usage: Mapping[str, Usage], *, limit: int = LIMIT) -> list[Candidate]:
    """The best ``limit`` candidates, one per distinct text (the canned or article one kept over a past reply,
    which then lends its count of times sent)."""
    by_text: dict[str, Candidate] = {}
    order = {"canned": 0, "article": 1, "reply": 2}
    for c in candidates:
        if c.similarity < MIN_SIMILARITY:
            continue
        c.prior = prior(usage.get(c.key))
        c.score = c.similarity * min(1.75, 0.75 + c.prior)
        key = reply_key(c.text)
        old = by_text.get(key)
        if old is None:
            by_text[key] = c
            continue
        keep, other = (old, c) if order[old.source] <= order[c.source] else (c, old)
        keep.score = max(keep.score, other.score)
        keep.similarity = max(keep.similarity, other.similarity)
        keep.times_sent = max(keep.times_sent, other.times_sent)
        keep.matched = list(dict.fromkeys([*keep.matched, *other.matched]))[:4]
        by_text[key] = keep
    return sorted(by_text.values(), key=lambda c: (-c.score, order[c.source], c.key))[:limit]
