"""Full-text search over articles, for agents, the help page and the bot: ``search_articles``.

PostgreSQL: a generated ``search_vector`` column (title weight A, tags B, body C, built with the article's
'russian' or 'english' configuration) under a GIN index. SQLite: an FTS5 table ``knowledge_articles_fts``
holding text stemmed in Python (knowledge/text.py), kept current by the actions through ``index_article``.
Both made by migration 0007; neither is a model, so ``is_search_object`` tells Alembic to leave them be.

A query matches articles having every search word; when none has them all, articles having any of them.
Results with a word in the title come first, then by relevance.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    and_,
    case,
    column,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.knowledge import text
from kommutator.knowledge.models import Article
from kommutator.knowledge.schemas import SearchHit

FTS_TABLE = "knowledge_articles_fts"
SEARCH_COLUMN = "search_vector"
SEARCH_INDEX = "ix_knowledge_articles_search_vector"
CONFIGS = {"ru": "russian", "en": "english"}
MAX_LIMIT = 50

_fts = table(FTS_TABLE, column("rowid"), column("title"), column("body"), column("tags"))
# FTS5 matches through a hidden column named after its table: "<table> MATCH '<query>'".
_fts_match: ColumnElement[Any] = literal_column(FTS_TABLE)
_vector = column(SEARCH_COLUMN, TSVECTOR)


def is_search_object(name: str | None, type_: str, parent_names: Mapping[Any, Any]) -> bool:
    """True for the search objects migration 0007 makes outside the models (for Alembic's ``include_name``)."""
    if type_ == "table":
        return bool(name and name.startswith(FTS_TABLE))  # the FTS5 table and its shadow tables
    if type_ == "column":
        return name == SEARCH_COLUMN and parent_names.get("table_name") == Article.__tablename__
    return type_ == "index" and name == SEARCH_INDEX


def _dialect(session: AsyncSession) -> str:
    bind = session.bind
    assert bind is not None, "search needs a session bound to an engine or connection"
    return bind.dialect.name


async def index_article(session: AsyncSession, article: Article) -> None:
    """Put the article's current text into the SQLite index (PostgreSQL's column follows by itself)."""
    if _dialect(session) != "sqlite":
        return
    await unindex_article(session, article.id)
    await session.execute(insert(_fts).values(
        rowid=article.id, title=text.stemmed(article.title), body=text.stemmed(article.body),
        tags=text.stemmed(" ".join(article.tags))))


async def unindex_article(session: AsyncSession, article_id: int) -> None:
    """Take an article out of the SQLite index (a trigger does it too when the row is deleted)."""
    if _dialect(session) == "sqlite":
        await session.execute(delete(_fts).where(_fts.c.rowid == article_id))


async def reindex_articles(session: AsyncSession) -> int:
    """Rebuild the SQLite index from the articles (after a stemmer upgrade); return how many were indexed."""
    if _dialect(session) != "sqlite":
        return 0
    await session.execute(delete(_fts))
    articles = list((await session.execute(select(Article))).scalars())
    for article in articles:
        await index_article(session, article)
    return len(articles)


def _quoted(terms: list[str]) -> list[str]:
    return ['"' + t.replace('"', '""') + '"' for t in terms]


def _sqlite_ranked(terms: list[str], *, any_word: bool) -> tuple[ColumnElement[bool], Any, Any]:
    quoted = _quoted(terms)
    match = _fts_match.match(" OR ".join(quoted) if any_word else " ".join(quoted))
    in_title = select(_fts.c.rowid).where(_fts_match.match("title : (" + " OR ".join(quoted) + ")")).correlate(None)
    # bm25 is lower for better matches; the weights are those of the title, body and tags columns.
    score = -func.bm25(_fts_match, 10.0, 1.0, 4.0, type_=Float)
    return match, score, _fts.c.rowid.in_(in_title)


def _pg_ranked(words: list[str], languages: list[str], *, any_word: bool) -> tuple[ColumnElement[bool], Any, Any]:
    # One plainto_tsquery per word (a stop word's is empty and drops out), joined by tsquery's OR or AND.
    join = "||" if any_word else "&&"

    def tsquery(language: str) -> ColumnElement[Any]:
        config: ColumnElement[Any] = literal_column(f"'{CONFIGS[language]}'::regconfig")
        parts = [func.plainto_tsquery(config, w, type_=TSQUERY) for w in words]
        return functools.reduce(lambda a, b: a.op(join, return_type=TSQUERY)(b), parts)

    queries = {lang: tsquery(lang) for lang in languages}
    match = or_(*(and_(Article.language == lang, _vector.op("@@", return_type=Boolean)(q))
                  for lang, q in queries.items()))
    query = queries[languages[0]] if len(languages) == 1 else case(
        (Article.language == "ru", queries["ru"]), else_=queries["en"])
    score = func.ts_rank(_vector, query, type_=Float)
    in_title = func.ts_filter(_vector, literal_column("'{a}'::\"char\"[]"), type_=TSVECTOR) \
        .op("@@", return_type=Boolean)(query)
    return match, score, in_title


async def search_articles(session: AsyncSession, query: str, language: str | None = None, limit: int = 10,
                          published_only: bool = True) -> list[SearchHit]:
    """Find articles for ``query`` in Russian or English (``language`` "ru"/"en", None for both), best first."""
    terms = text.query_terms(query)
    if not terms:
        return []
    languages = [language] if language in CONFIGS else list(CONFIGS)
    limit = max(1, min(limit, MAX_LIMIT))
    sqlite = _dialect(session) == "sqlite"
    # PostgreSQL gets the words (lower-case, ё as е, as it writes them itself) and stems them itself.
    words = [w for w in dict.fromkeys(text.normal(m.group()) for m in text.words(query))
             if w not in text.STOP_WORDS][:16]
    for any_word in (False, True) if len(terms) > 1 else (False,):
        match, score, in_title = (_sqlite_ranked(terms, any_word=any_word) if sqlite
                                  else _pg_ranked(words, languages, any_word=any_word))
        stmt = select(Article, score.label("score"), in_title.label("in_title")).where(match)
        if sqlite:
            stmt = stmt.select_from(_fts.join(Article, Article.id == _fts.c.rowid))
            stmt = stmt.where(Article.language.in_(languages))
        if published_only:
            stmt = stmt.where(Article.status == "published")
        stmt = stmt.order_by(literal_column("in_title").desc(), literal_column("score").desc(), Article.id.desc())
        rows = (await session.execute(stmt.limit(limit))).all()
        if rows:
            return [SearchHit(id=a.id, title=a.title, language=a.language, category=a.category, tags=a.tags,
                              status=a.status, snippet=text.snippet(a.body, terms), title_match=bool(hit),
                              score=round(float(rank or 0), 6), updated_at=a.updated_at) for a, rank, hit in rows]
    return []
