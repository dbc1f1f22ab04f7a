"""The public help centre's HTML: the contents, search results and one article, in Russian or English.

Every piece of article text is escaped here (bodies through render.render_body); the pages carry no script
and no inline style, so they work under the server's Content-Security-Policy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape
from itertools import groupby
from urllib.parse import urlencode

from kommutator import __version__
from kommutator.knowledge.models import Article
from kommutator.knowledge.render import render_body
from kommutator.knowledge.schemas import SearchHit

LANGUAGES = {"ru": "Русский", "en": "English"}

UI: dict[str, dict[str, str]] = {
    "ru": {"site": "Справочный центр", "search": "Найти", "placeholder": "Например: сроки доставки",
           "search_label": "Поиск по справке", "results": "Результаты по запросу «{q}»",
           "none": "Ничего не нашлось. Попробуйте другие слова.", "empty": "Статей пока нет.",
           "other": "Другое", "updated": "Обновлено", "back": "Все статьи", "missing": "Статья не найдена",
           "missing_text": "Такой статьи нет или она ещё не опубликована.", "languages": "Язык"},
    "en": {"site": "Help centre", "search": "Search", "placeholder": "For example: delivery times",
           "search_label": "Search the help centre", "results": "Results for “{q}”",
           "none": "Nothing found. Try other words.", "empty": "No articles yet.",
           "other": "Other", "updated": "Updated", "back": "All articles", "missing": "Article not found",
           "missing_text": "There is no such article, or it is not published yet.", "languages": "Language"},
}


def pick_language(asked: str | None, accept_language: str = "", fallback: str = "en") -> str:
    """The ?lang= value when it is one we have, else the first of ours in Accept-Language, else ``fallback``."""
    if asked in LANGUAGES:
        return asked
    for part in accept_language.split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return fallback


def _url(path: str, **params: str) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return escape(path + ("?" + query if query else ""))


def _page(*, lang: str, ui_lang: str, title: str, content: str, switch: dict[str, str]) -> str:
    t = UI[ui_lang]
    links = " ".join(
        f'<a href="{url}" hreflang="{code}" lang="{code}"' + (' aria-current="true"' if code == ui_lang else "")
        + f">{LANGUAGES[code]}</a>" for code, url in switch.items())
    return f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" type="image/svg+xml" href="/static/favicon.svg">
<link rel="stylesheet" href="/static/css/help.css?v={__version__}">
</head>
<body>
<header class="help-header">
<a class="help-home" href="{_url("/help", lang=ui_lang)}">{t["site"]}</a>
<nav class="help-languages" aria-label="{t["languages"]}">{links}</nav>
</header>
<main class="help-main" lang="{lang}">
{content}
</main>
</body>
</html>
"""


def _search_form(ui_lang: str, q: str) -> str:
    t = UI[ui_lang]
    return f"""<form class="help-search" action="/help" method="get" role="search">
<input type="hidden" name="lang" value="{ui_lang}">
<label class="help-hidden" for="help-q">{t["search_label"]}</label>
<input id="help-q" type="search" name="q" value="{escape(q)}" maxlength="200" placeholder="{t["placeholder"]}">
<button type="submit">{t["search"]}</button>
</form>"""


def _date(moment: dt.datetime) -> str:
    return f'<time datetime="{moment.isoformat()}">{moment.date().isoformat()}</time>'


def index_page(*, lang: str, q: str, articles: Sequence[Article], hits: Sequence[SearchHit] | None) -> str:
    """The contents by category, or the results of a search when ``hits`` is given."""
    t = UI[lang]
    parts = [f"<h1>{t['site']}</h1>", _search_form(lang, q)]
    if hits is not None:
        parts.append(f'<h2 class="help-results-title">{escape(t["results"].format(q=q))}</h2>')
        if not hits:
            parts.append(f'<p class="help-none">{t["none"]}</p>')
        else:
            parts.append('<ol class="help-results">' + "".join(
                f'<li><a href="{_url(f"/help/{h.id}", lang=lang)}">{escape(h.title)}</a>'
                f'<p class="help-snippet">{escape(h.snippet)}</p></li>' for h in hits) + "</ol>")
    elif not articles:
        parts.append(f'<p class="help-none">{t["empty"]}</p>')
    else:
        for category, group in groupby(articles, key=lambda a: a.category):
            parts.append(f'<section class="help-category"><h2>{escape(category or t["other"])}</h2><ul>' + "".join(
                f'<li><a href="{_url(f"/help/{a.id}", lang=lang)}">{escape(a.title)}</a></li>' for a in group)
                + "</ul></section>")
    switch = {code: _url("/help", lang=code, q=q) for code in LANGUAGES}
    title = f"{q} — {t['site']}" if hits is not None else t["site"]
    return _page(lang=lang, ui_lang=lang, title=title, content="\n".join(parts), switch=switch)


def article_page(*, ui_lang: str, article: Article) -> str:
    t = UI[ui_lang]
    crumbs = f'<a href="{_url("/help", lang=ui_lang)}">{t["back"]}</a>'
    if article.category:
        crumbs += f" › {escape(article.category)}"
    content = f"""<article class="help-article">
<p class="help-crumbs">{crumbs}</p>
<h1>{escape(article.title)}</h1>
<div class="help-body">
{render_body(article.body)}
</div>
<p class="help-meta">{t["updated"]}: {_date(article.updated_at)}</p>
</article>
{_search_form(ui_lang, "")}"""
    # The article is in one language: the other language's link leads to that language's contents.
    switch = {code: _url(f"/help/{article.id}" if code == article.language else "/help", lang=code)
              for code in LANGUAGES}
    return _page(lang=article.language, ui_lang=ui_lang, title=f"{article.title} — {t['site']}", content=content,
                 switch=switch)


def missing_page(*, lang: str) -> str:
    t = UI[lang]
    content = f"""<h1>{t["missing"]}</h1>
<p class="help-none">{t["missing_text"]} <a href="{_url("/help", lang=lang)}">{t["back"]}</a></p>
{_search_form(lang, "")}"""
    switch = {code: _url("/help", lang=code) for code in LANGUAGES}
    return _page(lang=lang, ui_lang=lang, title=t["missing"], content=content, switch=switch)
