"""Reads about articles: one, a page of them, the categories, the published set for the help page."""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.common.pagination import decode_id_cursor, encode_id_cursor
from kommutator.errors import not_found
from kommutator.knowledge.models import Article
from kommutator.knowledge.render import render_body
from kommutator.knowledge.schemas import ArticleRead, CategoryRead
from kommutator.knowledge.text import reply_text


async def get_article(session: AsyncSession, *, article_id: int, published_only: bool = False) -> Article:
    article = await session.get(Article, article_id)
    if article is None or (published_only and article.status != "published"):
        raise not_found("article", article_id)
    return article


def article_read(article: Article) -> ArticleRead:
    return ArticleRead.model_validate(article).model_copy(update={
        "body_html": render_body(article.body), "body_text": reply_text(article.body),
        "help_path": f"/help/{article.id}" if article.status == "published" else None})


async def list_articles(session: AsyncSession, *, status: str | None = None, language: str | None = None,
                        category: str | None = None, cursor: str | None = None,
                        limit: int = 50) -> tuple[list[Article], str | None]:
    """Newest first, a page at a time (keyset on id)."""
    stmt = select(Article).order_by(Article.id.desc()).limit(limit + 1)
    if status is not None:
        stmt = stmt.where(Article.status == status)
    if language is not None:
        stmt = stmt.where(Article.language == language)
    if category is not None:
        stmt = stmt.where(Article.category == category)
    if cursor:
        stmt = stmt.where(Article.id < decode_id_cursor(cursor))
    rows = list((await session.execute(stmt)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_id_cursor(rows[-1].id) if more and rows else None


async def categories(session: AsyncSession, *, language: str | None = None,
                     published_only: bool = False) -> list[CategoryRead]:
    """Each category in use with how many articles it has, by name."""
    published = func.sum(case((Article.status == "published", 1), else_=0))
    stmt = select(Article.category, func.count(), published).group_by(Article.category).order_by(Article.category)
    if language is not None:
        stmt = stmt.where(Article.language == language)
    if published_only:
        stmt = stmt.where(Article.status == "published")
    return [CategoryRead(name=name, articles=count, published=int(pub or 0))
            for name, count, pub in (await session.execute(stmt)).all()]


async def published_articles(session: AsyncSession, *, language: str, category: str | None = None,
                             limit: int = 500) -> list[Article]:
    """Published articles in one language, by category and title (the help page's contents)."""
    stmt = (select(Article).where(Article.status == "published", Article.language == language)
            .order_by(Article.category, Article.title, Article.id).limit(limit))
    if category is not None:
        stmt = stmt.where(Article.category == category)
    return list((await session.execute(stmt)).scalars())
