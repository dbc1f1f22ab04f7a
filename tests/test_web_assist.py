"""Reply suggestions in a real browser: they appear above the composer with their reason, a click and Alt+1 put
one into the reply box, a new customer message refreshes them live, and what the agent did is recorded."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path

from playwright.sync_api import expect

from . import test_web_workspace as ws
from .test_web_browser import NOT_LOGGED_IN, Watched, log_in
from .test_web_workspace import SETTINGS, admin_api, customer_says, live, open_row, shoot, user_id

playwright = ws.playwright
browser = ws.browser
context = ws.context
watched = ws.watched
server = ws.server
shots = ws.shots


def recorded_actions(conversation_id: int) -> list[str]:
    path = SETTINGS["server"].database_url.split("///", 1)[1]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT action FROM assist_suggestion_events WHERE conversation_id = ? ORDER BY id",
                          (conversation_id,)).fetchall()
    return [r[0] for r in rows]


def wait_for_actions(conversation_id: int, wanted: set[str]) -> list[str]:
    deadline = time.monotonic() + 15
    while True:
        got = recorded_actions(conversation_id)
        if wanted <= set(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_suggestions_are_inserted_by_click_and_by_alt_1_and_follow_the_customer(watched: Watched, server: str,
                                                                                 shots: Path) -> None:
    tag = uuid.uuid4().hex[:4]
    name = f"Ольга Смирнова {tag}"
    with admin_api(server) as api:
        for shortcut, title, body in (
                (f"ret{tag}", "Возврат товара", "Здравствуйте, {contact.name}! Вернуть товар можно в разделе "
                                                "«Мои заказы»: нажмите «Вернуть»."),
                (f"card{tag}", "Оплата картой курьеру", "Да, {contact.name}, курьер принимает оплату картой.")):
            r = api.post("/canned-responses", json={"shortcut": shortcut, "title": title, "body": body})
            assert r.status_code == 201, r.text
        first = customer_says(server, f"crm-assist-{tag}", "Добрый день! Как вернуть товар?",
                              contact={"name": name})
        cid = first["conversation_id"]
        r = api.post(f"/conversations/{cid}/assign", json={"assignee_id": user_id(server, "anna")})
        assert r.status_code == 200, r.text

    page = watched.page
    log_in(page, "anna")  # Anna works in Russian
    live(page)
    open_row(page, name)
    box = page.locator("#suggestions")
    expect(box).to_be_visible()
    expect(box).to_have_attribute("aria-label", "Подсказки ответа")
    buttons = box.locator("button.suggestion")
    expect(buttons.first).to_be_visible()
    assert buttons.count() <= 3
    canned = box.locator('button.suggestion[data-source="canned"]', has_text="Возврат товара")
    expect(canned).to_have_count(1)
    expect(canned.locator(".suggestion__text")).to_have_text(
        f"Здравствуйте, {name}! Вернуть товар можно в разделе «Мои заказы»: нажмите «Вернуть».")
    expect(canned.locator(".suggestion__reason")).to_contain_text("Совпало:")
    expect(canned.locator(".suggestion__reason")).to_contain_text("вернуть")
    expect(buttons.first).to_have_attribute("aria-keyshortcuts", "Alt+1")
    shoot(page, shots, "assist-01-suggestions")

    # One click puts it into the reply box, for editing.
    text = canned.locator(".suggestion__text").inner_text()
    canned.click()
    expect(page.locator("#reply-text")).to_have_value(text)
    expect(page.locator("#reply-text")).to_be_focused()
    page.click("#send-button")
    expect(page.locator("#timeline .msg--agent .msg__text", has_text=name)).to_have_count(1)
    got = wait_for_actions(cid, {"shown", "inserted", "sent_unedited"})
    assert {"shown", "inserted", "sent_unedited"} <= set(got), got

    # The customer writes again: the suggestions follow, live; Alt+1 takes the first one.
    customer_says(server, f"crm-assist-{tag}", "А картой курьеру оплатить можно?")
    card = box.locator('button.suggestion[data-source="canned"]', has_text="Оплата картой курьеру")
    expect(card).to_have_count(1)
    expect(buttons.first).to_have_attribute("data-key", card.get_attribute("data-key") or "")
    page.locator("#reply-text").fill("")
    page.locator("#reply-text").focus()
    page.keyboard.press("Alt+1")
    expect(page.locator("#reply-text")).to_have_value(f"Да, {name}, курьер принимает оплату картой.")
    page.locator("#reply-text").press("End")
    page.keyboard.type(" Чек пришлём на почту.")
    page.click("#send-button")
    expect(page.locator("#timeline .msg--agent .msg__text", has_text="Чек пришлём")).to_have_count(1)
    got = wait_for_actions(cid, {"sent_edited"})
    assert got.count("inserted") == 2 and "sent_edited" in got, got
    shoot(page, shots, "assist-02-after-alt-1")
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)
