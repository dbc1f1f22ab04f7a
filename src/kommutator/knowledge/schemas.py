"""Knowledge-base articles on the wire."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from kommutator.common.pagination import Page
from kommutator.common.schemas import ReadModel, Strict

Language = Literal["ru", "en"]
Status = Literal["draft", "published"]
MAX_BODY = 30_000


def _clean_tags(value: list[str] | None) -> list[str] | None:
    """Lower-case, trimmed, each once, in the order given."""
    if value is None:
        return None
    tags = [" ".join(t.split()).lower() for t in value]
    if any(not 1 <= len(t) <= 40 for t in tags):
        raise ValueError("each tag is 1-40 characters")
    return list(dict.fromkeys(tags))


class _ArticleFields(BaseModel):
    body: str | None = Field(default=None, max_length=MAX_BODY,
                             description='Plain text: paragraphs split by a blank line, "- " or "1. " list items, '
                                         '"## " headings. Shown escaped, never as HTML.')
    tags: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(default=None, max_length=20)
    category: str | None = Field(default=None, max_length=100, description='Groups articles on /help; "" for none')
    status: Status | None = Field(default=None, description="Only published articles are on /help and in "
                                                            "published-only search")

    _tags = field_validator("tags")(_clean_tags)


class ArticleCreate(_ArticleFields, Strict):
    title: str = Field(min_length=1, max_length=300)
    language: Language = Field(description="Picks the stemmer: ru or en")


class ArticleUpdate(_ArticleFields, Strict):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    language: Language | None = None


class ArticleSummary(ReadModel):
    id: int
    title: str
    tags: list[str]
    language: str
    category: str
    status: str
    created_by_id: int | None
    updated_by_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    published_at: dt.datetime | None


class ArticleRead(ArticleSummary):
    body: str
    body_html: str = Field("", description="The body as HTML made here from escaped text (paragraphs, lists)")
    body_text: str = Field("", description="The body as plain text to send a customer: paragraphs kept, headings "
                                           "and list marks and inline markdown taken out (bullets as \"• \")")
    help_path: str | None = Field(None, description="Where the public help page shows it; null for a draft")


class ArticleList(Page):
    items: list[ArticleSummary]


class CategoryRead(BaseModel):
    name: str = Field(description='"" for articles without a category')
    articles: int
    published: int


class SearchHit(BaseModel):
    """One article found: enough to show a result, and its id to read or insert the whole article."""

    id: int
    title: str
    language: str
    category: str
    tags: list[str]
    status: str
    snippet: str = Field(description="Plain text around the first match in the body")
    title_match: bool = Field(description="A search word is in the title; such results come first")
    score: float = Field(description="Relevance, higher first; comparable only within one result list")
    updated_at: dt.datetime
