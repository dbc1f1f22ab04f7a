"""/api/v1/knowledge: articles, categories and search for agents; /help: the public help centre's pages."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from starlette.responses import HTMLResponse

from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.common.pagination import CursorQuery
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import MAX_ID, Id
from kommutator.knowledge import pages, queries
from kommutator.knowledge.actions import do_create_article, do_delete_article, do_update_article
from kommutator.knowledge.models import Article
from kommutator.knowledge.schemas import (
    ArticleCreate,
    ArticleList,
    ArticleRead,
    ArticleUpdate,
    CategoryRead,
    Language,
    SearchHit,
    Status,
)
from kommutator.knowledge.search import MAX_LIMIT, search_articles

router = APIRouter(tags=["knowledge"], route_class=SafeRoute)
help_router = APIRouter(include_in_schema=False, route_class=SafeRoute)


@router.get("/knowledge/articles", response_model=ArticleList)
async def list_articles(
    rt: RuntimeDep, principal: CurrentPrincipal,
    status: Status | None = None, language: Language | None = None,
    category: str | None = Query(None, max_length=100, description='"" for articles without a category'),
    cursor: CursorQuery = None, limit: int = Query(50, ge=1, le=100),
) -> ArticleList:
    """Articles, drafts included, newest first (without their bodies; read one for that)."""
    async with rt.db.read() as s:
        rows, next_cursor = await queries.list_articles(s, status=status, language=language, category=category,
                                                        cursor=cursor, limit=limit)
    return ArticleList.model_validate({"items": rows, "next_cursor": next_cursor}, from_attributes=True)


@router.post("/knowledge/articles", response_model=ArticleRead, status_code=201)
async def create_article(rt: RuntimeDep, principal: CurrentPrincipal, body: ArticleCreate) -> ArticleRead:
    """Write an article (supervisors and administrators); it is a draft unless status is "published"."""
    principal.require_supervisor()
    return queries.article_read(await rt.db.write(lambda tx: do_create_article(tx, principal, body)))


@router.get("/knowledge/articles/{article_id}", response_model=ArticleRead)
async def get_article(rt: RuntimeDep, principal: CurrentPrincipal, article_id: Id) -> ArticleRead:
    async with rt.db.read() as s:
        return queries.article_read(await queries.get_article(s, article_id=article_id))


@router.patch("/knowledge/articles/{article_id}", response_model=ArticleRead)
async def update_article(rt: RuntimeDep, principal: CurrentPrincipal, article_id: Id,
                         body: ArticleUpdate) -> ArticleRead:
    """Change an article (supervisors and administrators); search sees the change at once."""
    principal.require_supervisor()
    return queries.article_read(await rt.db.write(lambda tx: do_update_article(tx, principal, article_id, body)))


@router.delete("/knowledge/articles/{article_id}", status_code=204)
async def delete_article(rt: RuntimeDep, principal: CurrentPrincipal, article_id: Id) -> Response:
    """Delete an article and take it out of search (supervisors and administrators)."""
    principal.require_supervisor()
    await rt.db.write(lambda tx: do_delete_article(tx, principal, article_id))
    return Response(status_code=204)


@router.get("/knowledge/categories", response_model=list[CategoryRead])
async def list_categories(rt: RuntimeDep, principal: CurrentPrincipal,
                          language: Language | None = None) -> list[CategoryRead]:
    """The categories in use, with how many articles (and how many published ones) each has."""
    async with rt.db.read() as s:
        return await queries.categories(s, language=language)


@router.get("/knowledge/search", response_model=list[SearchHit])
async def search(
    rt: RuntimeDep, principal: CurrentPrincipal,
    q: str = Query(min_length=1, max_length=200, description="Words in Russian or English; any form of them"),
    language: Language | None = Query(None, description="Only articles in this language; both when left out"),
    limit: int = Query(10, ge=1, le=MAX_LIMIT),
    include_drafts: bool = Query(False, description="Drafts too (they are never shown to customers)"),
) -> list[SearchHit]:
    """Articles with all the words (else with any), title matches first, each with a snippet of its body."""
    async with rt.db.read() as s:
        return await search_articles(s, q, language=language, limit=limit, published_only=not include_drafts)


def _html(page: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(page, status_code=status)


@help_router.get("/help")
async def help_index(rt: RuntimeDep, request: Request, lang: str | None = None, q: str = "") -> HTMLResponse:
    """The help centre: published articles by category, or search results for ?q=."""
    language = pages.pick_language(lang, request.headers.get("accept-language", ""))
    q = " ".join(q.replace("\x00", " ").split())[:200]
    async with rt.db.read() as s:
        if q:
            hits = await search_articles(s, q, language=language, limit=20)
            return _html(pages.index_page(lang=language, q=q, articles=[], hits=hits))
        articles = await queries.published_articles(s, language=language)
    return _html(pages.index_page(lang=language, q="", articles=articles, hits=None))


@help_router.get("/help/{article_id}")
async def help_article(rt: RuntimeDep, request: Request, article_id: str, lang: str | None = None) -> HTMLResponse:
    """One published article; drafts and unknown ids are a 404 page."""
    asked = pages.pick_language(lang, request.headers.get("accept-language", ""))
    article = None
    if article_id.isascii() and article_id.isdigit() and 0 < int(article_id) <= MAX_ID:
        async with rt.db.read() as s:
            article = await s.get(Article, int(article_id))
    if article is None or article.status != "published":
        return _html(pages.missing_page(lang=asked), 404)
    ui_lang = lang if lang in pages.LANGUAGES else article.language
    return _html(pages.article_page(ui_lang=ui_lang, article=article))
