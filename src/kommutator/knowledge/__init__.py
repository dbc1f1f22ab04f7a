"""The knowledge base: articles agents answer from, the bot quotes and the public /help pages show.

``search_articles(session, query, language=None, limit=10, published_only=True)`` is the one search entry
point (see search.py); ``seed.seed_articles(tx, author_id)`` fills a demo shop's articles.
"""

from kommutator.knowledge.schemas import SearchHit
from kommutator.knowledge.search import search_articles

__all__ = ["SearchHit", "search_articles"]
