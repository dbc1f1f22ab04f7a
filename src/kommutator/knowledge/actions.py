"""Create, change and delete articles; each write keeps the search index current in the same transaction."""

from __future__ import annotations

from kommutator.audit.actions import do_audit
from kommutator.auth.principal import Principal
from kommutator.clock import now
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found
from kommutator.knowledge.models import Article
from kommutator.knowledge.schemas import ArticleCreate, ArticleUpdate
from kommutator.knowledge.search import index_article, unindex_article


async def do_create_article(tx: Tx, principal: Principal, data: ArticleCreate) -> Article:
    principal.require_supervisor()
    ts = now()
    status = data.status or "draft"
    article = Article(title=data.title, body=data.body or "", tags=data.tags or [], language=data.language,
                      category=data.category or "", status=status, created_by_id=principal.user_id,
                      updated_by_id=principal.user_id, created_at=ts, updated_at=ts,
                      published_at=ts if status == "published" else None)
    tx.session.add(article)
    await tx.session.flush()
    await index_article(tx.session, article)
    do_audit(tx, principal, "knowledge_article.created", "knowledge_article", article.id, title=article.title,
             status=article.status)
    return article


async def do_update_article(tx: Tx, principal: Principal, article_id: int, data: ArticleUpdate) -> Article:
    principal.require_supervisor()
    article = await tx.session.get(Article, article_id)
    if article is None:
        raise not_found("article", article_id)
    fields = data.model_dump(exclude_unset=True)
    for key, value in fields.items():
        if value is None:
            raise ProblemError(422, "validation_failed", f"{key}: may not be null; leave it out to keep it.",
                               errors=[{"field": key, "message": "may not be null"}])
    for key, value in fields.items():
        setattr(article, key, value)
    ts = now()
    if article.status == "published" and article.published_at is None:
        article.published_at = ts
    article.updated_at, article.updated_by_id = ts, principal.user_id
    await index_article(tx.session, article)
    do_audit(tx, principal, "knowledge_article.updated", "knowledge_article", article_id, fields=sorted(fields))
    return article


async def do_delete_article(tx: Tx, principal: Principal, article_id: int) -> None:
    principal.require_supervisor()
    article = await tx.session.get(Article, article_id)
    if article is None:
        raise not_found("article", article_id)
    await unindex_article(tx.session, article_id)
    await tx.session.delete(article)
    do_audit(tx, principal, "knowledge_article.deleted", "knowledge_article", article_id, title=article.title)
