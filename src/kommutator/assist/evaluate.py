"""Replay history through the suggester: how often was the reply an agent actually sent among the suggestions?

Messages are replayed in id order. At each agent reply that answered customer text, suggestions are computed
from what existed before that moment only: past replies fed so far, canned responses created before it, articles
published before it; no feedback counters (they would come from the future). The reply counts as found when a
suggestion, personalised for that conversation, is the same text or nearly: rapidfuzz's ``ratio`` of the two
normalised texts (lower case, punctuation and spacing folded: ``index.reply_key``) ≥ ``threshold`` (90 of 100).
Then the reply joins the index, as it does live. Replies the index would not keep (with private data) are still
counted: a suggester that cannot propose them misses them.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.assist import index, queries
from kommutator.assist.history import HistoryFeed, personalise
from kommutator.assist.rank import MIN_SIMILARITY, Candidate, rank, reply_suggestion_key
from kommutator.assist.service import article_excerpt, plain_text
from kommutator.canned.models import CannedResponse
from kommutator.knowledge.models import Article

THRESHOLD = 90.0
BATCH = 5000


@dataclass
class Report:
    replies: int = 0  # agent replies that answered customer text
    with_suggestions: int = 0
    top1: int = 0
    top3: int = 0
    threshold: float = THRESHOLD
    by_source: dict[str, int] = field(default_factory=dict)  # top-3 hits by the source that found them
    suggest_ms_p50: float = 0.0
    suggest_ms_p95: float = 0.0
    pairs_indexed: int = 0

    @property
    def top1_rate(self) -> float:
        return self.top1 / self.replies if self.replies else 0.0

    @property
    def top3_rate(self) -> float:
        return self.top3 / self.replies if self.replies else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "top1_rate": round(self.top1_rate, 4), "top3_rate": round(self.top3_rate, 4)}


def same_reply(sent: str, suggested: str, threshold: float = THRESHOLD) -> bool:
    """Exact or near-exact: the normalised texts' similarity ratio (0–100) reaches ``threshold``."""
    a, b = index.reply_key(sent), index.reply_key(suggested)
    return bool(a) and fuzz.ratio(a, b) >= threshold


def _before(at: dt.datetime | None, moment: dt.datetime | None) -> bool:
    return at is not None and (moment is None or at < moment)


async def replay(session: AsyncSession, *, threshold: float = THRESHOLD) -> Report:
    """Replay every conversation's messages; see the module's docstring."""
    canned = list((await session.execute(select(CannedResponse))).scalars())
    articles = list((await session.execute(select(Article).where(Article.status == "published"))).scalars())
    canned_docs = {c.id: index.Doc(f"{c.title}\n{c.body}") for c in canned}
    article_docs = {a.id: index.Doc(f"{a.title}\n{' '.join(a.tags)}\n{plain_text(a.body)}") for a in articles}
    ix = index.PairIndex()
    feed = HistoryFeed()
    report = Report(threshold=threshold)
    timings: list[float] = []
    after = 0
    while True:
        rows = await queries.history_rows(session, after_id=after, limit=BATCH)
        for row in rows:
            query = feed.situation(row.conversation_id)
            if row.direction == "out" and row.sender_type == "agent" and query:
                started = time.perf_counter()
                found = _suggest(ix, query, row, canned, canned_docs, articles, article_docs)
                timings.append((time.perf_counter() - started) * 1000)
                report.replies += 1
                report.with_suggestions += bool(found)
                hit = next((n for n, c in enumerate(found) if same_reply(row.text, c.text, threshold)), None)
                if hit is not None:
                    report.top3 += 1
                    report.top1 += hit == 0
                    report.by_source[found[hit].source] = report.by_source.get(found[hit].source, 0) + 1
            pair = feed.feed(row)
            if pair is not None:
                ix.add(pair)
        if len(rows) < BATCH:
            break
        after = rows[-1].id
    timings.sort()
    if timings:
        report.suggest_ms_p50 = round(timings[len(timings) // 2], 3)
        report.suggest_ms_p95 = round(timings[min(len(timings) - 1, int(len(timings) * 0.95))], 3)
    report.pairs_indexed = len(ix)
    return report


def _suggest(ix: index.PairIndex, query: str, row: Any, canned: list[CannedResponse],
             canned_docs: dict[int, index.Doc], articles: list[Article],
             article_docs: dict[int, index.Doc]) -> list[Candidate]:
    values = {"contact.name": row.contact_name, "agent.name": row.agent_name}
    q = ix.vocab.weigh(index.features(query))
    out: list[Candidate] = []
    for c in canned:
        if _before(c.created_at, row.created_at) and (c.team_id is None or c.team_id == row.team_id):
            sim = canned_docs[c.id].similarity(ix.vocab, q)
            out.append(Candidate(key=f"canned:{c.id}", source="canned", text=personalise(c.body, values),
                                 title=c.title, similarity=sim, source_id=c.id))
    for a in articles:
        if _before(a.published_at or a.created_at, row.created_at):
            sim = article_docs[a.id].similarity(ix.vocab, q)
            if sim >= MIN_SIMILARITY:
                out.append(Candidate(key=f"article:{a.id}", source="article", text=article_excerpt(a, query),
                                     title=a.title, similarity=sim, source_id=a.id))
    teams = None if row.team_id is None else frozenset({row.team_id})
    for hit in ix.search(query, team_ids=teams, limit=5, min_score=MIN_SIMILARITY):
        out.append(Candidate(key=reply_suggestion_key(hit.pair.reply), source="reply",
                             text=personalise(hit.pair.reply, values), title="", similarity=hit.score,
                             times_sent=hit.times_sent))
    return rank(out, {})
