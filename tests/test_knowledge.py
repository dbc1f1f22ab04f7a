"""The knowledge base: articles through the API, search in Russian and English, and the public /help pages."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from kommutator.knowledge import search_articles
from kommutator.knowledge.seed import ARTICLES, seed_articles

from .conftest import Actor

A = "/api/v1/knowledge/articles"
S = "/api/v1/knowledge/search"


@pytest.fixture
async def supervisor(factory) -> Actor:  # type: ignore[no-untyped-def]
    return await factory.user("supervisor")


@pytest.fixture
async def agent(factory) -> Actor:  # type: ignore[no-untyped-def]
    return await factory.user("agent")


async def write(client: httpx.AsyncClient, actor: Actor, **body: Any) -> dict[str, Any]:
    body.setdefault("language", "ru")
    body.setdefault("status", "published")
    r = await client.post(A, json=body, headers=actor.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def found(client: httpx.AsyncClient, actor: Actor, q: str, **params: Any) -> list[int]:
    r = await client.get(S, params={"q": q, **params}, headers=actor.headers)
    assert r.status_code == 200, r.text
    return [hit["id"] for hit in r.json()]


async def test_supervisor_writes_reads_changes_and_deletes_an_article(client, supervisor, agent):
    made = await write(client, supervisor, title="Оплата картой", status="draft", category="Оплата",
                       tags=[" Карта ", "карта", "СБП"], body="Принимаем карты:\n\n- Мир\n- Visa\n\n1. Шаг\n2. Ещё")
    assert made["status"] == "draft" and made["help_path"] is None and made["published_at"] is None
    assert made["tags"] == ["карта", "сбп"], "tags are trimmed, lower-case and listed once"
    assert made["created_by_id"] == made["updated_by_id"] == supervisor.id
    assert made["body_html"] == "<p>Принимаем карты:</p>\n<ul><li>Мир</li><li>Visa</li></ul>\n<ol><li>Шаг</li>" \
                                "<li>Ещё</li></ol>"
    url = f"{A}/{made['id']}"
    assert (await client.get(url, headers=agent.headers)).json() == made, "agents read drafts too"

    r = await client.patch(url, json={"status": "published", "title": "Оплата картой и СБП"},
                           headers=supervisor.headers)
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["title"] == "Оплата картой и СБП" and changed["body"] == made["body"]
    assert changed["help_path"] == f"/help/{made['id']}" and changed["published_at"] is not None

    other = await write(client, supervisor, title="Second", language="en")
    page = (await client.get(A, params={"limit": 1}, headers=agent.headers)).json()
    assert [a["id"] for a in page["items"]] == [other["id"]] and "body" not in page["items"][0]
    page = (await client.get(A, params={"limit": 1, "cursor": page["next_cursor"]}, headers=agent.headers)).json()
    assert [a["id"] for a in page["items"]] == [made["id"]] and page["next_cursor"] is None
    listed = (await client.get(A, params={"language": "en"}, headers=agent.headers)).json()["items"]
    assert [a["id"] for a in listed] == [other["id"]]

    assert (await client.delete(url, headers=supervisor.headers)).status_code == 204
    r = await client.get(url, headers=agent.headers)
    assert r.status_code == 404 and r.json()["code"] == "article_not_found"


@pytest.mark.parametrize(("body", "field"), [
    ({"language": "ru"}, "title"),
    ({"title": "", "language": "ru"}, "title"),
    ({"title": "x" * 301, "language": "ru"}, "title"),
    ({"title": "Hi"}, "language"),
    ({"title": "Hi", "language": "de"}, "language"),
    ({"title": "Hi", "language": "en", "status": "archived"}, "status"),
    ({"title": "Hi", "language": "en", "tags": ["x" * 41]}, "tags.0"),  # the schema now says 1-40 per tag
    ({"title": "Hi", "language": "en", "body": "x" * 30_001}, "body"),
    ({"title": "Hi", "language": "en", "colour": "red"}, "colour"),
])
async def test_invalid_article_is_422_naming_the_field(client, supervisor, body, field):
    r = await client.post(A, json=body, headers=supervisor.headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["field"] == field
    assert r.json()["detail"].startswith(f"{field}:")


async def test_patch_refuses_null_and_unknown_articles(client, supervisor):
    made = await write(client, supervisor, title="Доставка")
    r = await client.patch(f"{A}/{made['id']}", json={"title": None}, headers=supervisor.headers)
    assert r.status_code == 422 and r.json()["detail"].startswith("title:")
    assert r.json()["errors"] == [{"field": "title", "message": "may not be null"}]
    r = await client.patch(f"{A}/987654", json={"title": "x"}, headers=supervisor.headers)
    assert r.status_code == 404 and r.json()["code"] == "article_not_found"


async def test_agents_read_and_search_but_only_supervisors_and_admins_write(client, supervisor, agent, admin):
    made = await write(client, supervisor, title="Возврат")
    url = f"{A}/{made['id']}"
    for method, path, body in (("POST", A, {"title": "Mine", "language": "en"}), ("PATCH", url, {"title": "Mine"}),
                               ("DELETE", url, None)):
        r = await client.request(method, path, json=body, headers=agent.headers)
        assert r.status_code == 403, f"{method} {path}: {r.text}"
        assert r.json()["code"] == "supervisor_required"
    assert (await client.get(url, headers=agent.headers)).json()["title"] == "Возврат", "nothing changed"
    assert await found(client, agent, "возврат") == [made["id"]]
    r = await client.patch(url, json={"title": "Возврат товара"}, headers=admin.headers)
    assert r.status_code == 200, "administrators write too"


async def test_anonymous_callers_cannot_use_the_knowledge_api(client, supervisor):
    made = await write(client, supervisor, title="Секрет")
    for method, path in (("GET", A), ("POST", A), ("GET", f"{A}/{made['id']}"), ("PATCH", f"{A}/{made['id']}"),
                         ("DELETE", f"{A}/{made['id']}"), ("GET", "/api/v1/knowledge/categories"),
                         ("GET", f"{S}?q=секрет")):
        r = await client.request(method, path, json={} if method in ("POST", "PATCH") else None)
        assert r.status_code == 401, f"{method} {path}: {r.status_code}"


async def test_russian_word_forms_find_each_other(client, supervisor, agent):
    order = await write(client, supervisor, title="Статус заказа", body="Статус виден в личном кабинете.")
    delivery = await write(client, supervisor, title="Курьер", body="Доставки по Москве бывают ежедневно.")
    for q in ("заказ", "заказа", "заказы", "заказов", "ЗАКАЗАМИ"):
        assert await found(client, agent, q) == [order["id"]], q
    assert await found(client, agent, "доставка") == [delivery["id"]]
    assert await found(client, agent, "где мой заказ?") == [order["id"]], "stop words do not have to match"


async def test_english_words_are_stemmed(client, supervisor, agent):
    made = await write(client, supervisor, language="en", title="Delivery times",
                       body="We deliver parcels daily. Returned items are refunded.")
    for q in ("deliveries", "delivery", "Delivering", "parcel", "return", "refunds"):
        assert await found(client, agent, q) == [made["id"]], q
    # A Russian article's Latin words are stemmed as English, on both databases.
    ru = await write(client, supervisor, title="Отправка", body="Отправляем через DHL, tracking numbers в письме.")
    assert await found(client, agent, "number", language="ru") == [ru["id"]]


async def test_title_matches_rank_above_body_matches(client, supervisor, agent):
    body = await write(client, supervisor, title="Гарантия",
                       body="Возврат денег. Возврат товара. Возврат доставки. Возвраты оформляются в офисе.")
    title = await write(client, supervisor, title="Возврат товара", body="Принесите чек в офис.")
    hits = (await client.get(S, params={"q": "возвраты"}, headers=agent.headers)).json()
    assert [h["id"] for h in hits] == [title["id"], body["id"]]
    assert [h["title_match"] for h in hits] == [True, False]
    assert hits[1]["snippet"].startswith("Возврат денег"), hits[1]["snippet"]
    en_body = await write(client, supervisor, language="en", title="Warranty", body="Payment payment payment.")
    en_title = await write(client, supervisor, language="en", title="Payment methods", body="Cards and cash.")
    assert await found(client, agent, "payments", language="en") == [en_title["id"], en_body["id"]]


async def test_all_words_first_then_any_word(client, supervisor, agent):
    both = await write(client, supervisor, title="Доставка в офис", body="Курьер привезёт заказ.")
    one = await write(client, supervisor, title="Курьерская служба", body="Звоните курьеру.")
    assert await found(client, agent, "доставка курьером") == [both["id"]], "an article with every word"
    assert set(await found(client, agent, "курьер самолёт")) == {both["id"], one["id"]}, "else any word"
    assert await found(client, agent, "самолёт") == []
    assert await found(client, agent, "и в на") == [], "only stop words: nothing to look for"


async def test_search_filters_by_language_and_the_snippet_shows_the_match(client, supervisor, agent):
    ru = await write(client, supervisor, title="Офисы", body=" ".join(["Слово"] * 60) + " Адрес офиса на Покровке. "
                     + " ".join(["Конец"] * 60))
    en = await write(client, supervisor, language="en", title="Offices", body="Our office address is on Pokrovka.")
    assert await found(client, agent, "Pokrovka") == [en["id"]]
    assert set(await found(client, agent, "офис office")) == {ru["id"], en["id"]}
    assert await found(client, agent, "офис office", language="en") == [en["id"]]
    (hit,) = (await client.get(S, params={"q": "покровка"}, headers=agent.headers)).json()
    assert hit["id"] == ru["id"] and "Покровке" in hit["snippet"], hit["snippet"]
    assert hit["snippet"].startswith("…") and hit["snippet"].endswith("…") and len(hit["snippet"]) < 300
    r = await client.get(S, params={"q": ""}, headers=agent.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.q"


async def test_drafts_stay_out_of_published_search_and_the_help_pages(client, supervisor, agent):
    draft = await write(client, supervisor, title="Черновик акции", body="Скидка на доставку", status="draft")
    assert await found(client, agent, "акция") == []
    assert await found(client, agent, "акция", include_drafts="true") == [draft["id"]]
    assert (await client.get("/help", params={"lang": "ru"})).text.count("Черновик") == 0
    assert "Черновик" not in (await client.get("/help", params={"lang": "ru", "q": "акция"})).text
    r = await client.get(f"/help/{draft['id']}")
    assert r.status_code == 404 and "Черновик" not in r.text
    async with client._transport.app.state.runtime.db.read() as s:  # what the bot calls
        assert await search_articles(s, "акция") == []
        assert [h.id for h in await search_articles(s, "акция", published_only=False)] == [draft["id"]]


async def test_updating_an_article_updates_search(client, supervisor, agent):
    made = await write(client, supervisor, title="Доставка", body="Курьер приезжает утром.")
    assert await found(client, agent, "гарантии") == []
    r = await client.patch(f"{A}/{made['id']}", json={"body": "Гарантия один год."}, headers=supervisor.headers)
    assert r.status_code == 200, r.text
    assert await found(client, agent, "гарантии") == [made["id"]]
    assert await found(client, agent, "курьер") == [], "the old text is gone from the index"
    await client.patch(f"{A}/{made['id']}", json={"language": "en", "title": "Warranty"}, headers=supervisor.headers)
    assert await found(client, agent, "warranties", language="en") == [made["id"]]
    await client.patch(f"{A}/{made['id']}", json={"status": "draft"}, headers=supervisor.headers)
    assert await found(client, agent, "warranty") == []


async def test_deleting_an_article_removes_it_from_search(client, supervisor, agent):
    made = await write(client, supervisor, title="Самовывоз", body="Заберите заказ в офисе.")
    keep = await write(client, supervisor, title="Самовывоз из пункта", body="Пункт выдачи.")
    assert set(await found(client, agent, "самовывоз")) == {made["id"], keep["id"]}
    assert (await client.delete(f"{A}/{made['id']}", headers=supervisor.headers)).status_code == 204
    assert await found(client, agent, "самовывоз") == [keep["id"]]
    assert await found(client, agent, "офисе") == []


async def test_categories_are_listed_with_their_counts(client, supervisor, agent):
    await write(client, supervisor, title="a", category="Доставка")
    await write(client, supervisor, title="b", category="Доставка", status="draft")
    await write(client, supervisor, title="c", language="en", category="Delivery")
    await write(client, supervisor, title="d")
    r = await client.get("/api/v1/knowledge/categories", headers=agent.headers)
    assert r.json() == [{"name": "", "articles": 1, "published": 1},
                        {"name": "Delivery", "articles": 1, "published": 1},
                        {"name": "Доставка", "articles": 2, "published": 1}]
    r = await client.get("/api/v1/knowledge/categories", params={"language": "en"}, headers=agent.headers)
    assert [c["name"] for c in r.json()] == ["Delivery"]


async def test_help_pages_escape_article_text_and_need_no_inline_code(client, supervisor):
    evil = "<script>alert('x')</script>"
    made = await write(client, supervisor, title=f"Доставка {evil}", category=f"<b>{evil}</b>",
                       body=f"Текст {evil}\n\n- <img src=x onerror=alert(1)>\n- \"кавычки\" & амперсанд")
    for url, params in (("/help", {"lang": "ru"}), ("/help", {"lang": "ru", "q": "доставка"}),
                        (f"/help/{made['id']}", {}), ("/help", {"lang": "ru", "q": evil})):
        r = await client.get(url, params=params)
        assert r.status_code == 200, url
        assert r.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in r.headers["content-security-policy"]
        page = r.text
        assert "<script" not in page and "<img" not in page and "<b>" not in page, f"{url} let markup through"
        assert not re.search(r"<[^>]*\s(on\w+|style)=", page), f"{url} has an inline handler or style"
        assert "&lt;script&gt;" in page, url
        assert '<link rel="stylesheet" href="/static/css/help.css' in page
    page = (await client.get(f"/help/{made['id']}")).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&quot;кавычки&quot; &amp; амперсанд" in page
    assert (await client.get("/static/css/help.css")).status_code == 200


async def test_help_shows_published_articles_by_language_with_search(client, supervisor):
    ru = await write(client, supervisor, title="Сроки доставки", category="Доставка", body="Два дня.")
    en = await write(client, supervisor, language="en", title="Delivery times", category="Delivery", body="Two days.")
    page = (await client.get("/help", params={"lang": "ru"})).text
    assert '<html lang="ru">' in page and "Сроки доставки" in page and "Delivery times" not in page
    assert "<h2>Доставка</h2>" in page and f'href="/help/{ru["id"]}?lang=ru"' in page
    assert 'href="/help?lang=en"' in page and 'name="q"' in page and 'action="/help"' in page
    page = (await client.get("/help", params={"lang": "en"})).text
    assert "Delivery times" in page and "Сроки доставки" not in page and "Help centre" in page
    page = (await client.get("/help", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"})).text
    assert "Справочный центр" in page, "without ?lang= the browser's language is used"
    page = (await client.get("/help", params={"lang": "en", "q": "deliveries"})).text
    assert f'href="/help/{en["id"]}?lang=en"' in page and "Two days." in page
    assert 'href="/help?lang=ru&amp;q=deliveries"' in page, "switching language keeps the search"
    page = (await client.get("/help", params={"lang": "en", "q": "zebra"})).text
    assert "Nothing found" in page
    page = (await client.get(f"/help/{en['id']}")).text
    assert "<h1>Delivery times</h1>" in page and "<p>Two days.</p>" in page and '<html lang="en">' in page
    for bad in ("0", "abc", "99999999999999999999999", "987654"):
        r = await client.get(f"/help/{bad}", params={"lang": "ru"})
        assert r.status_code == 404 and "Статья не найдена" in r.text, bad


async def test_demo_articles_answer_shop_questions(client, runtime, supervisor, agent):
    made = await runtime.db.write(lambda tx: seed_articles(tx, supervisor.id))
    assert len(made) == len(ARTICLES) >= 8 and {a.language for a in made} == {"ru", "en"}
    titles = {a.id: a.title for a in made}
    for q, language, title in (("где мои заказы", "ru", "Где мой заказ: статусы заказа"),
                               ("вернуть деньги за возврат", "ru", "Как вернуть или обменять товар"),
                               ("офис у метро Сокол", "ru", "Адреса и часы работы офисов"),
                               ("deliveries to Kazakhstan", "en", "Delivery times and costs"),
                               ("charged twice", "en", "Payment methods")):
        ids = await found(client, agent, q, language=language)
        assert ids and titles[ids[0]] == title, (q, [titles[i] for i in ids])
    page = (await client.get("/help", params={"lang": "ru"})).text
    assert all(a.title in page for a in made if a.language == "ru")
