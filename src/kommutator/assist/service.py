"""The suggester: the past-reply index kept current from the message stream, and suggestions for a conversation.

One per process (``suggester_of(rt)``, in ``Runtime.suggester``). Its background pass (every ``interval``
seconds) feeds the messages written since the last pass into the index; a request first feeds at most
``REQUEST_ROWS`` new messages itself (usually none: one indexed query), so a reply sent a moment ago already
counts and no request ever rebuilds the index. Canned responses and articles are scored against the same IDF;
their features are cached by id and last change.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.assist import index, queries
from kommutator.assist.history import PLACEHOLDER, HistoryFeed, personalise
from kommutator.assist.rank import MIN_SIMILARITY, Candidate, rank, reply_suggestion_key
from kommutator.auth.principal import Principal
from kommutator.canned.queries import list_canned
from kommutator.conversations.models import Conversation
from kommutator.knowledge import text as ktext
from kommutator.knowledge.models import Article
from kommutator.knowledge.search import search_articles
from kommutator.workers.base import PollingWorker

if TYPE_CHECKING:
    from kommutator.db import Database
    from kommutator.runtime import Runtime

log = logging.getLogger(__name__)

BATCH_ROWS = 5000
REQUEST_ROWS = 2000
ARTICLE_CHARS = 700


def plain_text(body: str) -> str:
    """An article body as plain text: no heading or list marks (knowledge.text.plain), no inline markdown."""
    out = ktext.strip_inline(ktext.plain(body))
    return "\n".join(line.strip() for line in out.splitlines() if line.strip())


def article_excerpt(article: Article, query: str) -> str:
    """The article's plain text, or about a hundred words around the first search term when it is long."""
    whole = plain_text(article.body)
    if len(whole) <= ARTICLE_CHARS:
        return whole
    return plain_text(ktext.snippet(article.body, ktext.query_terms(query), size=100, max_chars=ARTICLE_CHARS))


@dataclass(slots=True)
class _Cached:
    changed: object
    doc: index.Doc
    excerpt_of: Article | None = None  # an article's row, for its excerpt


class Suggester(PollingWorker):
    """The past-reply index of one process and the suggestion pipeline over all three sources."""

    name_in_logs = "assist"
    interval = 2.0

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        self.index = index.PairIndex()
        self.feed = HistoryFeed()
        self.watermark = 0
        self._lock = asyncio.Lock()
        self._docs: dict[str, _Cached] = {}

    async def run_due(self) -> int:
        """Feed every message written since the last pass; return how many were read."""
        total = 0
        while True:
            n = await self.refresh(max_rows=BATCH_ROWS)
            total += n
            if n < BATCH_ROWS:
                return total

    async def refresh(self, *, max_rows: int) -> int:
        """Feed at most ``max_rows`` new messages into the index."""
        async with self._lock:
            async with self.db.read() as s:
                rows = await queries.history_rows(s, after_id=self.watermark, limit=max_rows)
            for row in rows:
                pair = self.feed.feed(row)
                if pair is not None:
                    self.index.add(pair)
            if rows:
                self.watermark = rows[-1].id
            return len(rows)

    def _doc(self, key: str, changed: object, text: str) -> index.Doc:
        cached = self._docs.get(key)
        if cached is None or cached.changed != changed:
            cached = self._docs[key] = _Cached(changed, index.Doc(text))
        return cached.doc

    async def _articles(self, s: AsyncSession, query: str) -> list[tuple[Article, index.Doc]]:
        """The published articles the knowledge search finds for ``query``, with their features (rows are read
        again only when an article changed since it was last suggested)."""
        hits = await search_articles(s, query, limit=5)
        stale = [h.id for h in hits if (c := self._docs.get(f"article:{h.id}")) is None or c.changed != h.updated_at]
        if stale:
            for a in (await s.execute(select(Article).where(Article.id.in_(stale)))).scalars():
                self._docs[f"article:{a.id}"] = _Cached(
                    a.updated_at, index.Doc(f"{a.title}\n{' '.join(a.tags)}\n{plain_text(a.body)}"), a)
        out = []
        for h in hits:
            c = self._docs.get(f"article:{h.id}")
            if c is not None and c.excerpt_of is not None:
                out.append((c.excerpt_of, c.doc))
        return out

    async def candidates(self, s: AsyncSession, principal: Principal, query: str) -> list[Candidate]:
        """Every source's candidates for ``query`` (texts with their placeholders), similarity filled in."""
        vocab = self.index.vocab
        q = vocab.weigh(index.features(query))
        out: list[Candidate] = []
        for c in await list_canned(s, principal):
            doc = self._doc(f"canned:{c.id}", c.updated_at, f"{c.title}\n{c.body}")
            sim = doc.similarity(vocab, q)
            if sim >= MIN_SIMILARITY:
                out.append(Candidate(key=f"canned:{c.id}", source="canned", text=c.body, title=c.title,
                                     similarity=sim, source_id=c.id, matched=index.key_phrases(query, doc.feats)))
        for a, doc in await self._articles(s, query):
            out.append(Candidate(key=f"article:{a.id}", source="article", text=article_excerpt(a, query),
                                 title=a.title, similarity=doc.similarity(vocab, q), source_id=a.id,
                                 matched=index.key_phrases(query, doc.feats)))
        teams = None if principal.is_supervisor else principal.team_ids
        for hit in self.index.search(query, team_ids=teams, limit=5, min_score=MIN_SIMILARITY):
            out.append(Candidate(key=reply_suggestion_key(hit.pair.reply), source="reply", text=hit.pair.reply,
                                 title="", similarity=hit.score, matched=hit.phrases, times_sent=hit.times_sent))
        return out

    async def suggest(self, principal: Principal, conv: Conversation) -> tuple[str, list[Candidate]]:
        """The customer text answered and up to three ranked suggestions for it, personalised."""
        await self.refresh(max_rows=REQUEST_ROWS)
        async with self.db.read() as s:
            query = await queries.customer_text(s, conv.id)
            if not query:
                return "", []
            found = await self.candidates(s, principal, query)
            best = rank(found, await queries.usage_of(s, (c.key for c in found)))
            if any(PLACEHOLDER.search(c.text) for c in best):
                values = await queries.contact_values(s, conv, principal.name)
                for c in best:
                    c.text = personalise(c.text, values)
        return query, best


def suggester_of(rt: Runtime) -> Suggester:
    if rt.suggester is None:
        rt.suggester = Suggester(rt.db)
    return rt.suggester
