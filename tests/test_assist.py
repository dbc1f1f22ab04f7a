"""Reply suggestions: ranking over past replies, canned responses and articles (RU and EN), personalisation,
plain-text articles, visibility, and the feedback loop that re-ranks them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kommutator.assist.service import plain_text

from .conftest import Actor, post_inbound

CONV = "/api/v1/conversations"


@pytest.fixture
async def world(client, factory, admin, api_channel) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    team_a, team_b = await factory.team("Alpha"), await factory.team("Beta")
    return {"team_a": team_a, "team_b": team_b, "admin": admin, "channel": api_channel,
            "anna": await factory.user("agent", teams=[team_a], name="Анна"),
            "alice": await factory.user("agent", teams=[team_a], name="Alice"),
            "boris": await factory.user("agent", teams=[team_b], name="Boris"),
            "sup": await factory.user("supervisor", name="Sveta")}


class Chat:
    def __init__(self, client: httpx.AsyncClient, world: dict[str, Any]) -> None:
        self.client, self.world, self.n = client, world, 0

    async def open(self, contact: str, text: str, *, team: str = "team_a", name: str | None = None) -> int:
        self.n += 1
        r = await post_inbound(self.client, self.world["channel"], msg_id=f"m{self.n}", contact=contact, text=text,
                               name=name or contact)
        assert r.status_code in (200, 201, 202), r.text
        cid = int(r.json()["conversation_id"])
        r = await self.client.post(f"{CONV}/{cid}/assign", json={"team_id": self.world[team]},
                                   headers=self.world["admin"].headers)
        assert r.status_code == 200, r.text
        return cid

    async def customer(self, contact: str, text: str) -> None:
        self.n += 1
        r = await post_inbound(self.client, self.world["channel"], msg_id=f"m{self.n}", contact=contact, text=text)
        assert r.status_code in (200, 201, 202), r.text

    async def reply(self, actor: Actor, cid: int, text: str) -> int:
        r = await self.client.post(f"{CONV}/{cid}/messages", json={"text": text}, headers=actor.headers)
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    async def suggestions(self, actor: Actor, cid: int) -> list[dict[str, Any]]:
        r = await self.client.get(f"{CONV}/{cid}/suggestions", headers=actor.headers)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        assert len(items) <= 3
        return items

    async def feedback(self, actor: Actor, cid: int, **body: Any) -> httpx.Response:
        return await self.client.post(f"{CONV}/{cid}/suggestions/feedback", json=body, headers=actor.headers)


@pytest.fixture
def chat(client, world) -> Chat:  # type: ignore[no-untyped-def]
    return Chat(client, world)


RU_HISTORY = [  # (customer's name, question, the agent's answer)
    ("Иван Сидоров", "Как вернуть товар?", "Иван, оформите возврат в личном кабинете: Мои заказы → Вернуть."),
    ("Пётр Ким", "Хочу вернуть покупку, не подошёл размер",
     "Пётр, оформите возврат в личном кабинете: Мои заказы → Вернуть."),
    ("", "Где мой заказ? Уже неделя прошла", "Заказ в пути, трек-номер пришёл вам в письме."),
    ("", "Можно оплатить картой при получении?", "Да, курьер принимает карты и наличные."),
]
EN_HISTORY = [
    ("Mary Jones", "How do I return an item?", "Hi Mary, open My orders and press Return; the courier picks it up."),
    ("", "Where is my parcel?", "Your parcel is on its way; the tracking link is in your e-mail."),
    ("", "Can I pay by card on delivery?", "Yes, the courier takes cards and cash."),
]


async def seed(chat: Chat, actor: Actor, history: list[tuple[str, str, str]]) -> None:
    for n, (name, question, answer) in enumerate(history):
        cid = await chat.open(f"h{n}-{actor.id}", question, name=name or f"c{n}")
        await chat.reply(actor, cid, answer)


async def test_russian_question_gets_the_reply_agents_sent_before_with_the_new_customers_name(chat, world):
    anna = world["anna"]
    await seed(chat, anna, RU_HISTORY)
    cid = await chat.open("new-ru", "Здравствуйте! Как мне вернуть товар, он не подошёл?", name="Ольга Петрова")
    items = await chat.suggestions(anna, cid)
    assert items, "a question asked twice before must get a suggestion"
    top = items[0]
    assert top["source"] == "reply"
    assert top["text"] == "Ольга, оформите возврат в личном кабинете: Мои заказы → Вернуть.", top
    assert top["times_sent"] == 2  # both customers' first names became {contact.first_name}: one reply
    assert {"вернуть", "товар"} <= set(top["matched"])
    assert top["key"].startswith("reply:")
    # the delivery question's answer is not offered for a return
    assert all("трек" not in i["text"] for i in items[:1])


async def test_english_question_gets_the_canned_response_personalised(chat, client, world):
    sup, alice = world["sup"], world["alice"]
    await seed(chat, alice, EN_HISTORY)
    r = await client.post("/api/v1/canned-responses", headers=sup.headers, json={
        "shortcut": "return", "title": "How to return an item",
        "body": "Hello {contact.name}, you can return any item within 30 days: My orders → Return. {agent.name}"})
    assert r.status_code == 201, r.text
    canned_id = r.json()["id"]
    cid = await chat.open("new-en", "hello, how can I return the item I bought?", name="Kate Smith")
    items = await chat.suggestions(alice, cid)
    sources = {i["source"]: i for i in items}
    assert "canned" in sources, items
    canned = sources["canned"]
    assert canned["text"] == "Hello Kate Smith, you can return any item within 30 days: My orders → Return. Alice"
    assert canned["key"] == f"canned:{canned_id}" and canned["title"] == "How to return an item"
    assert "return" in canned["matched"]
    assert sources["reply"]["text"].startswith("Hi Kate, open My orders")
    assert all("parcel" not in i["text"] for i in items)


async def test_a_knowledge_base_article_is_suggested_as_plain_text(chat, client, world):
    sup, anna = world["sup"], world["anna"]
    body = ("## Возврат товара\n\nВернуть товар можно в течение **14 дней**.\n\n"
            "1. Откройте раздел *Мои заказы*\n- Нажмите `Вернуть`\n- Подробнее: [правила](https://shop.example/rules)\n"
            "> Деньги придут за 3 дня")
    r = await client.post("/api/v1/knowledge/articles", headers=sup.headers, json={
        "title": "Как вернуть товар", "body": body, "language": "ru", "status": "published", "tags": ["возврат"]})
    assert r.status_code == 201, r.text
    article_id = r.json()["id"]
    cid = await chat.open("kb-ru", "Подскажите, как вернуть товар?")
    items = await chat.suggestions(anna, cid)
    article = next(i for i in items if i["source"] == "article")
    assert article["source_id"] == article_id and article["url"] == f"/help/{article_id}"
    text = article["text"]
    for markup in ("##", "**", "`", "](", "> ", "\n- ", "1. ", "*Мои"):
        assert markup not in text, (markup, text)
    assert text.startswith("Возврат товара\nВернуть товар можно в течение 14 дней.")
    assert "правила (https://shop.example/rules)" in text and "Мои заказы" in text


def test_plain_text_drops_markdown_but_keeps_the_words() -> None:
    assert plain_text("# Title\n* one **bold**\n2) two __x__ ~~y~~\n---\n") == "Title\none bold\ntwo x y"
    assert plain_text("a * b * c, 2*3") == "a * b * c, 2*3"  # lone asterisks are text


async def test_another_teams_agent_gets_404_and_never_sees_their_replies(chat, world):
    anna, boris = world["anna"], world["boris"]
    await seed(chat, anna, RU_HISTORY)
    cid = await chat.open("vis", "Как вернуть товар?")
    r = await chat.client.get(f"{CONV}/{cid}/suggestions", headers=boris.headers)
    assert r.status_code == 404 and r.json()["code"] == "conversation_not_found"
    r = await chat.client.get(f"{CONV}/987654321/suggestions", headers=boris.headers)
    assert r.status_code == 404 and r.json()["code"] == "conversation_not_found"
    r = await chat.feedback(boris, cid, action="shown", keys=["canned:1"])
    assert r.status_code == 404
    # Boris's own conversation (team Beta) asks the same: Alpha's past replies are not his to see.
    own = await chat.open("vis-b", "Как вернуть товар?", team="team_b")
    assert [i for i in await chat.suggestions(boris, own) if i["source"] == "reply"] == []
    assert [i["source"] for i in await chat.suggestions(world["sup"], own)][:1] == ["reply"]


async def test_feedback_reorders_close_suggestions(chat, client, world):
    sup, alice = world["sup"], world["alice"]
    keys = []
    for shortcut, title in (("card", "Paying by card"), ("cash", "Paying by card or cash")):
        r = await client.post("/api/v1/canned-responses", headers=sup.headers, json={
            "shortcut": shortcut, "title": title, "body": f"{title}: the courier takes it on delivery."})
        assert r.status_code == 201, r.text
        keys.append(f"canned:{r.json()['id']}")
    cid = await chat.open("fb", "Can I pay by card on delivery?")
    before = [i["key"] for i in await chat.suggestions(alice, cid)]
    assert before[:2] == keys, before  # the closer title first
    for _ in range(6):  # agents keep seeing both and always take the second
        assert (await chat.feedback(alice, cid, action="shown", keys=keys)).status_code == 200
        r = await chat.feedback(alice, cid, action="inserted", key=keys[1])
        assert r.status_code == 200 and r.json() == {"recorded": ["inserted"]}
    after = await chat.suggestions(alice, cid)
    assert [i["key"] for i in after][:2] == keys[::-1], after
    assert after[0]["similarity"] < after[1]["similarity"]  # the prior, not the match, moved it


async def test_a_sent_reply_counts_as_unedited_only_when_it_is_the_inserted_text(chat, world):
    alice = world["alice"]
    cid = await chat.open("sent", "Where is my parcel?")
    key = "reply:0123456789abcdef"
    inserted = "Your parcel is on its way."
    same = await chat.reply(alice, cid, "your parcel is on its way")
    r = await chat.feedback(alice, cid, action="sent", key=key, message_id=same, inserted_text=inserted)
    assert r.status_code == 200 and r.json() == {"recorded": ["sent_unedited"]}
    edited = await chat.reply(alice, cid, "Your parcel is on its way, it arrives tomorrow.")
    r = await chat.feedback(alice, cid, action="sent", key=key, message_id=edited, inserted_text=inserted)
    assert r.json() == {"recorded": ["sent_edited"]}
    other = await chat.open("sent-2", "hello")
    r = await chat.feedback(alice, other, action="sent", key=key, message_id=same, inserted_text=inserted)
    assert r.status_code == 404 and r.json()["code"] == "message_not_found"  # not a reply of that conversation
    r = await chat.feedback(world["anna"], cid, action="sent", key=key, message_id=same, inserted_text=inserted)
    assert r.status_code == 404 and r.json()["code"] == "message_not_found"  # not Anna's reply


@pytest.mark.parametrize("body", [
    {"action": "shown", "keys": ["bogus:1"]},
    {"action": "shown", "keys": []},
    {"action": "shown", "keys": ["canned:1", "canned:2", "canned:3", "canned:4"]},
    {"action": "inserted", "keys": ["canned:1"]},
    {"action": "inserted", "key": "reply:XYZ"},
    {"action": "sent", "key": "canned:1"},
    {"action": "shown", "keys": ["canned:1"], "message_id": 5},
    {"action": "clicked", "keys": ["canned:1"]},
])
async def test_malformed_feedback_is_a_422_that_says_what_is_wrong(chat, world, body):
    cid = await chat.open("bad", "hello")
    r = await chat.feedback(world["alice"], cid, **body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] and r.json()["detail"]


async def test_nothing_to_answer_means_no_suggestions(chat, world):
    alice = world["alice"]
    cid = await chat.open("quiet", "Can I pay by card on delivery?")
    await chat.reply(alice, cid, "Yes, the courier takes cards and cash.")
    # The customer's question was answered: suggestions still answer their latest messages, never the agent's.
    items = await chat.suggestions(alice, cid)
    assert all(i["source"] != "reply" or "cards" in i["text"] for i in items)
