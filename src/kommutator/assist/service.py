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
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.assist import index, queries
from kommutator.assist.history import HistoryFeed, personalise
from kommutator.assist.rank import Candidate, rank, reply_suggestion_key
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
_INLINE_MARKUP = [(re.compile(r"!?\[([^\]]*)\]\(([^)\s]*)\)"), r"\1 (\2)"),  # [text](url) → text (url)
                  (re.compile(r"(\*\*|__|~~|`+)(.+?)\1"), r"\2"),  # **bold**, __bold__, `code`
                  (re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])"), r"\1"),  # *emphasis*
                  (re.compile(r"^\s*>\s?", re.M), ""),  # > quote
                  (re.compile(r"^\s*([-*_]\s*){3,}$", re.M), "")]  # --- rule


def plain_text(body: str) -> str:
    """An article body as plain text: no heading or list marks (knowledge.text.plain), no inline markdown."""
    out = ktext.plain(body)
    for pattern, repl in _INLINE_MARKUP:
        out = pattern.sub(repl, out)
    return "\n".join(line.strip() for line in out.splitlines() if line.strip())


def article_excerpt(article: Article, query: str) -> str:
    """The article's plain text, or about a hundred words around the first search term when it is long."""
    whole = plain_text(article.body)
    if len(whole) <= ARTICLE_CHARS:
        return whole
    return plain_text(ktext.snippet(article.body, ktext.query_terms(query), size=100, max_chars=ARTICLE_CHARS))


@dataclass(slots=True)
class _Doc:
    changed: object
    feats: dict[str, float]


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
        self._docs: dict[str, _Doc] = {}

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

    def _features(self, key: str, changed: object, text: str) -> dict[str, float]:
        doc = self._docs.get(key)
        if doc is None or doc.changed != changed:
            doc = self._docs[key] = _Doc(changed, index.features(text))
        return doc.feats

    async def candidates(self, s: AsyncSession, principal: Principal, query: str,
                         values: dict[str, str]) -> list[Candidate]:
        """Every source's candidates for ``query``, similarity filled in, not yet ranked."""
        vocab = self.index.vocab
        q = vocab.weigh(index.features(query))
        out: list[Candidate] = []
        for c in await list_canned(s, principal):
            feats = self._features(f"canned:{c.id}", c.updated_at, f"{c.title}\n{c.body}")
            sim = index.similarity(q, vocab.weigh(feats))
            if sim > 0:
                out.append(Candidate(key=f"canned:{c.id}", source="canned", text=personalise(c.body, values),
                                     title=c.title, similarity=sim, source_id=c.id,
                                     matched=index.key_phrases(query, feats)))
        hits = await search_articles(s, query, limit=5)
        if hits:
            articles = (await s.execute(select(Article).where(Article.id.in_([h.id for h in hits])))).scalars()
            for a in articles:
                feats = self._features(f"article:{a.id}", a.updated_at,
                                       f"{a.title}\n{' '.join(a.tags)}\n{plain_text(a.body)}")
                sim = index.similarity(q, vocab.weigh(feats))
                out.append(Candidate(key=f"article:{a.id}", source="article", text=article_excerpt(a, query),
                                     title=a.title, similarity=sim, source_id=a.id,
                                     matched=index.key_phrases(query, feats)))
        teams = None if principal.is_supervisor else principal.team_ids
        for hit in self.index.search(query, team_ids=teams, limit=5):
            out.append(Candidate(key=reply_suggestion_key(hit.pair.reply), source="reply",
                                 text=personalise(hit.pair.reply, values), title="", similarity=hit.score,
                                 matched=hit.phrases, times_sent=hit.times_sent))
        return out

    async def suggest(self, principal: Principal, conv: Conversation) -> tuple[str, list[Candidate]]:
        """The customer text answered and up to three ranked suggestions for it."""
        await self.refresh(max_rows=REQUEST_ROWS)
        async with self.db.read() as s:
            query = await queries.customer_text(s, conv.id)
            if not query:
                return "", []
            values = await queries.contact_values(s, conv, principal.name)
            found = await self.candidates(s, principal, query, values)
            usage = await queries.usage_of(s, (c.key for c in found))
        return query, rank(found, usage)


def suggester_of(rt: Runtime) -> Suggester:
    if rt.suggester is None:
        rt.suggester = Suggester(rt.db)
    return rt.suggester
