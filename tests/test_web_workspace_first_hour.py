"""What a new team meets in its first hour in the workspace, in a real browser (issue 17): the newest message in
view under a pinned note, plain text from the knowledge base, canned responses arriving live, the customer card
and the banner following the conversation, Russian tab labels whole, the supervisor's drawer naming the bot.
Server, browser and helpers as in test_web_workspace.py.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.sync_api import Page, expect

from kommutator.clock import now
from kommutator.conversations.models import Message
from kommutator.db import Tx
from kommutator.runtime import Runtime

from . import test_web_workspace as ws
from .test_web_admin import run_async
from .test_web_browser import NOT_LOGGED_IN, Watched, log_in
from .test_web_workspace import SETTINGS, admin_api, customer_says, live, open_row, user_id

playwright = ws.playwright
browser = ws.browser
context = ws.context
watched = ws.watched
server = ws.server
shots = ws.shots

AT_BOTTOM = """() => {
  const box = document.getElementById("timeline");
  return box.scrollHeight - box.scrollTop - box.clientHeight <= 2;
}"""


def pin_bot_summary(conversation_id: int, asked: str) -> None:
    """Store the bot's hand-off summary (a pinned note) as the bot writes it, through a second runtime."""
    async def go() -> None:
        rt = Runtime.build(SETTINGS["server"])
        await rt.db.start()

        async def job(tx: Tx) -> None:
            tx.session.add(Message(
                conversation_id=conversation_id, direction="internal", sender_type="bot", kind="note",
                text="The bot handed off.", created_at=now(),
                payload={"pinned": True, "bot": {"event": "handoff", "reason": "asked for an agent", "vars": {},
                                                 "skills": [], "asked": [asked], "chose": ["Talk to an agent"]}}))

        try:
            await rt.db.write(job)
        finally:
            await rt.db.close()

    run_async(go())


def newest_in_view(page: Page) -> None:
    """The timeline is scrolled to its end and its last item is inside the timeline's box (measured at once)."""
    page.wait_for_function(AT_BOTTOM)
    box_bottom, last_bottom = page.evaluate("""() => {
      const box = document.getElementById("timeline");
      return [box.getBoundingClientRect().bottom, box.lastElementChild.getBoundingClientRect().bottom];
    }""")
    assert last_bottom <= box_bottom + 2, (
        f"the newest message ends at {last_bottom:.0f}px, below the timeline's bottom {box_bottom:.0f}px: "
        "the timeline must scroll after the pinned note and the suggestions take their room")


def test_a_pinned_note_leaves_the_newest_messages_in_view(watched: Watched, server: str, shots: Path) -> None:
    name = f"Pinned Pavel {uuid.uuid4().hex[:4]}"
    contact = f"crm-pin-{uuid.uuid4().hex[:6]}"
    first = customer_says(server, contact, "Hello, I need an agent please.", contact={"name": name})
    cid = int(first["conversation_id"])
    for n in range(14):
        customer_says(server, contact, f"Line {n} of a long story about order 77{n:02d}.")
    pin_bot_summary(cid, "Hello, I need an agent please.")
    last = customer_says(server, contact, "And this is the newest message.")
    with admin_api(server) as api:
        r = api.post(f"/conversations/{cid}/assign", json={"assignee_id": user_id(server, "anna")})
        assert r.status_code == 200, r.text

    page = watched.page
    log_in(page, "anna")
    live(page)
    open_row(page, name)
    expect(page.locator("#handover")).to_be_visible()
    expect(page.locator(f'#timeline .msg[data-message-id="{last["message_id"]}"]')).to_be_visible()
    newest_in_view(page)
    ws.shoot(page, shots, "30-pinned-note-newest-in-view")

    # Her own reply lands at the bottom and stays in view (the pinned summary goes once she answers).
    page.fill("#reply-text", "I am here, reading your story now.")
    page.click("#send-button")
    expect(page.locator("#timeline .msg--agent .msg__text", has_text="reading your story")).to_be_visible()
    newest_in_view(page)
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def test_insert_into_reply_puts_plain_text_not_markdown(watched: Watched, server: str) -> None:
    title = f"Returns policy {uuid.uuid4().hex[:6]}"
    body = ("## How to return\n\nYou can return **any** item within *14 days*.\n\n"
            "- Keep the `receipt`\n- Fill in the [form](https://shop.example/returns)\n\n> Refunds take 3 days.")
    with admin_api(server) as api:
        r = api.post("/knowledge/articles", json={"title": title, "language": "en", "body": body,
                                                  "status": "published"})
        assert r.status_code == 201, r.text
        assert r.json()["body_text"] == (
            "How to return\n\nYou can return any item within 14 days.\n\n"
            "• Keep the receipt\n• Fill in the form (https://shop.example/returns)\n\nRefunds take 3 days.")
    page = watched.page
    log_in(page, "admin")
    page.click(".tab[data-view=all]")
    open_row(page, "Ivan Kuznetsov")
    page.fill("#reply-text", "")
    page.click(".side-tab[data-panel=kb]")
    page.fill("#kb-search", title)
    expect(page.locator("#kb-results")).to_have_attribute("data-query", title)
    hit = page.locator(".kb-hit", has=page.locator(".kb-hit__title", has_text=title))
    hit.locator(".kb-hit__title").click()
    hit.locator(".kb-insert").click()
    value = page.locator("#reply-text").input_value()
    assert value == ("How to return\n\nYou can return any item within 14 days.\n\n"
                     "• Keep the receipt\n• Fill in the form (https://shop.example/returns)\n\nRefunds take 3 days.")
    for mark in ("**", "##", "`", "](", "> "):
        assert mark not in value, f"markdown {mark!r} would reach the customer: {value!r}"
    page.fill("#reply-text", "")
    page.click(".side-tab[data-panel=contact]")
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def test_a_new_canned_response_reaches_an_open_workspace_without_a_reload(watched: Watched, server: str) -> None:
    page = watched.page
    log_in(page, "anna")
    live(page)
    page.click(".tab[data-view=all]")
    open_row(page, "Ivan Kuznetsov")
    shortcut = f"fresh{uuid.uuid4().hex[:5]}"
    page.fill("#reply-text", "")
    page.type("#reply-text", f"/{shortcut}")
    expect(page.locator("#canned-suggestions")).to_be_hidden()  # not there yet
    page.evaluate("window.__sameDocument = true")

    with admin_api(server) as api:
        r = api.post("/canned-responses", json={"shortcut": shortcut, "title": "Fresh one",
                                                "body": "Freshly added for {contact.name}."})
        assert r.status_code == 201, r.text
        made = r.json()
    # The socket said so and the list was read again: typing the shortcut now offers it.
    page.wait_for_function(f"""() => {{
      const box = document.getElementById("reply-text");
      box.value = ""; box.dispatchEvent(new Event("input"));
      box.value = "/{shortcut}"; box.dispatchEvent(new Event("input"));
      return !!document.querySelector('#canned-suggestions .canned-item[data-shortcut="{shortcut}"]');
    }}""")
    page.focus("#reply-text")
    page.keyboard.press("Enter")
    expect(page.locator("#reply-text")).to_have_value("Freshly added for Ivan Kuznetsov.")
    assert page.evaluate("window.__sameDocument === true")  # no reload happened

    with admin_api(server) as api:
        assert api.delete(f"/canned-responses/{made['id']}").status_code == 204
    page.wait_for_function(f"""() => {{
      const box = document.getElementById("reply-text");
      box.value = "/{shortcut}"; box.dispatchEvent(new Event("input"));
      return !document.querySelector('#canned-suggestions .canned-item[data-shortcut="{shortcut}"]');
    }}""")
    page.fill("#reply-text", "")
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def test_resolving_updates_the_card_and_the_banner_stays_with_its_conversation(watched: Watched,
                                                                                server: str) -> None:
    name = f"Card Carla {uuid.uuid4().hex[:4]}"
    contact = f"crm-card-{uuid.uuid4().hex[:6]}"
    cid = int(customer_says(server, contact, "Is my order ready?", contact={"name": name})["conversation_id"])
    with admin_api(server) as api:
        assert api.post(f"/conversations/{cid}/assign",
                        json={"assignee_id": user_id(server, "anna")}).status_code == 200
    page = watched.page
    log_in(page, "anna")
    live(page)
    open_row(page, name)
    entry = page.locator(f'#contact-body .contact__conv-item[data-conversation-id="{cid}"] .badge')
    expect(entry).to_have_attribute("data-status", "assigned")
    page.click("#btn-resolve")
    expect(page.locator("#banner")).to_be_visible()
    expect(page.locator("#banner-text")).to_have_text(re.compile("Conversation resolved.|Обращение решено."))
    # The card's history says resolved at once, not "assigned" until some later refresh.
    expect(entry).to_have_attribute("data-status", "resolved")

    # Another conversation: the banner about the resolved one goes.
    page.select_option("#status-filter", "open")
    page.click(".tab[data-view=all]")
    open_row(page, "Ivan Kuznetsov")
    expect(page.locator("#banner")).to_be_hidden()
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def test_the_russian_tab_labels_are_whole(watched: Watched) -> None:
    page = watched.page
    log_in(page, "anna")
    page.select_option("#lang-select", "ru")
    tabs = page.locator(".tabs .tab")
    expect(tabs).to_have_text(["Мои", "Без исполнителя", "Все"])
    for width in (1400, 1024):
        page.set_viewport_size({"width": width, "height": 800})
        clipped = page.evaluate("""() => [...document.querySelectorAll(".tabs .tab")]
          .filter((b) => b.scrollWidth > b.clientWidth + 1).map((b) => b.textContent)""")
        assert clipped == [], f"tab labels cut off at {width}px: {clipped}"
    page.select_option("#lang-select", "en")
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def test_the_supervisors_drawer_names_the_bot_and_the_system(watched: Watched, server: str) -> None:
    contact = f"crm-drawer-{uuid.uuid4().hex[:6]}"
    cid = int(customer_says(server, contact, "Привет", contact={"name": "Дарья Бот"})["conversation_id"])
    page = watched.page
    log_in(page, "olga")
    page.select_option("#lang-select", "ru")
    with admin_api(server) as api:  # the demo's bot answers on the API channel
        msgs = api.get(f"/conversations/{cid}/messages").json()["items"]
        deadline = 40
        while not any(m["sender_type"] == "bot" for m in msgs) and deadline:
            page.wait_for_timeout(250)
            deadline -= 1
            msgs = api.get(f"/conversations/{cid}/messages").json()["items"]
    assert any(m["sender_type"] == "bot" for m in msgs), "the demo bot did not answer"
    page.goto(f"/#conversation/{cid}")
    drawer = page.locator("#quality-drawer")
    expect(drawer).to_be_visible()
    bot = drawer.locator('.qmsg[data-sender-type="bot"] .qmsg__meta').first
    expect(bot).to_have_text(re.compile(r"^Бот · "))
    expect(drawer.locator('.qmsg[data-sender-type="contact"] .qmsg__meta').first).to_have_text(re.compile(r"^Клиент"))
    expect(drawer.locator(".qmsg__meta", has_text="Оператор")).to_have_count(0)
    page.select_option("#lang-select", "en")
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)

