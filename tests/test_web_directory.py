"""The screens a new team looked for in its first hour, in a real browser (issue 17): the contacts list with its
filters and CSV export, the knowledge-base editor, keyboard shortcuts and the command palette. Server, browser
and helpers as in test_web_workspace.py (the demo workspace).
"""

from __future__ import annotations

import csv
import io
import re
import uuid

from playwright.sync_api import Dialog, Page, expect

from . import test_web_workspace as ws
from .a11y import blocking
from .test_web_admin import csrf
from .test_web_browser import NOT_LOGGED_IN, Watched, log_in
from .test_web_workspace import admin_api, customer_says, live, open_row, user_id

playwright = ws.playwright
browser = ws.browser
context = ws.context
watched = ws.watched
server = ws.server
shots = ws.shots

REFUSED = (*NOT_LOGGED_IN, "the server responded with a status of 403")


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def shown_ids(page: Page) -> list[int]:
    return [int(x) for x in page.locator("#contacts-table tbody tr[data-contact-id]").evaluate_all(
        "(rows) => rows.map((r) => r.dataset.contactId)")]


# ---- contacts -------------------------------------------------------------------------------------------------

def test_the_contacts_list_filters_and_exports_what_it_shows(watched: Watched, server: str, shots) -> None:
    page = watched.page
    log_in(page, "admin")
    page.select_option("#lang-select", "en")
    page.click('#main-nav [data-own-section="contacts"]')
    view = page.locator("#contacts-view")
    expect(view).to_be_visible()
    expect(page.locator("#inbox-view")).to_be_hidden()
    expect(view.locator("#contacts-table tbody tr[data-contact-id]").first).to_be_visible()

    with page.expect_response(lambda r: "/api/v1/contacts?" in r.url and "segment=vip" in r.url):
        page.fill("#cl-segment", "vip")
    expect(view.locator(".cl-segment").first).to_have_text("vip")
    segments = view.locator(".cl-segment").all_inner_texts()
    assert segments and set(segments) == {"vip"}, segments
    vip_ids = shown_ids(page)

    # The export link carries the same filters, and the CSV has the same contacts.
    href = view.locator("#cl-export").get_attribute("href")
    assert href is not None and "segment=vip" in href
    r = page.context.request.get(href)
    assert r.status == 200 and r.headers["content-type"].startswith("text/csv")
    assert [int(x["id"]) for x in csv_rows(r.text())] == vip_ids

    anna = user_id(server, "anna")
    with page.expect_response(lambda r: f"manager_id={anna}" in r.url):
        page.select_option("#cl-manager", str(anna))
    expect(view.locator(".cl-manager").first).to_have_text("Anna Petrova")
    assert set(view.locator(".cl-manager").all_inner_texts()) == {"Anna Petrova"}
    page.fill("#cl-segment", "")
    page.select_option("#cl-manager", "")

    # A label on a conversation finds its customer.
    name = f"Label Lina {uuid.uuid4().hex[:4]}"
    cid = customer_says(server, f"crm-lbl-{uuid.uuid4().hex[:6]}", "Hi", contact={"name": name})["conversation_id"]
    label = f"lbl{uuid.uuid4().hex[:5]}"
    with admin_api(server) as api:
        assert api.put(f"/conversations/{cid}/labels", json={"labels": [label]}).status_code == 200
    with page.expect_response(lambda r: f"label={label}" in r.url):
        page.fill("#cl-label", label)
    expect(view.locator(".cl-name")).to_have_text([name])
    page.fill("#cl-label", "")

    with page.expect_response(lambda r: "preferred_channel=api" in r.url):
        page.select_option("#cl-channel", "api")
    channels = view.locator(".cl-channel").evaluate_all("(cells) => cells.map((c) => c.dataset.channelType)")
    assert channels and set(channels) == {"api"}, channels
    ws.shoot(page, shots, "40-contacts-list")
    assert blocking(page, "#contacts-view") == []

    page.select_option("#lang-select", "ru")
    expect(view.get_by_role("heading", name="Клиенты")).to_be_visible()
    expect(view.locator("#cl-export")).to_have_text("Выгрузить CSV")
    page.select_option("#lang-select", "en")
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def test_an_agent_sees_her_contacts_and_may_not_export(watched: Watched) -> None:
    page = watched.page
    log_in(page, "anna")
    page.goto("/#contacts")
    view = page.locator("#contacts-view")
    expect(view).to_be_visible()
    expect(view.locator("#contacts-table tbody tr[data-contact-id]").first).to_be_visible()
    expect(view.locator("#cl-export")).to_have_count(0)
    r = page.context.request.get("/api/v1/contacts/export")
    assert r.status == 403 and r.json()["code"] == "supervisor_required"
    watched.assert_clean(allowed_console=REFUSED)


# ---- the knowledge-base editor ----------------------------------------------------------------------------------

def test_the_knowledge_base_editor_writes_previews_publishes_and_deletes(watched: Watched, server: str,
                                                                        shots) -> None:
    page = watched.page
    log_in(page, "admin")
    page.select_option("#lang-select", "en")
    page.click('#main-nav [data-own-section="kb"]')
    view = page.locator("#kb-view")
    expect(view.locator("#kbe-table tbody tr").first).to_be_visible()  # the demo's articles
    view.locator("#kbe-new").click()
    title = f"Gift cards {uuid.uuid4().hex[:6]}"
    page.fill("#kbe-title", title)
    page.select_option("#kbe-language", "en")
    page.fill("#kbe-tags", "gift, cards")
    page.fill("#kbe-body", "## Buying\n\nGift cards <b>never</b> expire.\n\n- Any amount\n- Any shop")
    preview = view.locator("#kbe-preview")
    expect(preview.locator("h2")).to_have_text("Buying")
    expect(preview.locator("li")).to_have_text(["Any amount", "Any shop"])
    expect(preview.locator("p")).to_have_text("Gift cards <b>never</b> expire.")  # the author's markup is text
    assert preview.locator("b").count() == 0
    view.locator("#kbe-save").click()
    expect(view.locator(".kbe-notice")).to_have_text("Saved.")
    expect(view.locator(".kbe-status--draft")).to_be_visible()
    ws.shoot(page, shots, "41-kb-editor")
    assert blocking(page, "#kb-view") == []

    view.locator("#kbe-publish").click()
    expect(view.locator(".kbe-notice")).to_have_text("Published.")
    expect(view.locator("#kbe-publish")).to_have_text("Unpublish")
    help_link = view.locator(".admin__lead a")
    path = help_link.get_attribute("href")
    assert path is not None and path.startswith("/help/")
    assert title in page.context.request.get(path).text()
    view.locator("#kbe-publish").click()
    expect(view.locator(".kbe-notice")).to_have_text("Back to draft.")
    assert page.context.request.get(path).status == 404

    page.fill("#kbe-body", "Gift cards never expire. Ask at any till.")
    view.locator("#kbe-save").click()
    expect(view.locator(".kbe-notice")).to_have_text("Saved.")
    view.locator("#kbe-back").click()
    row = view.locator(".kbe-row", has_text=title)
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "draft")

    row.locator(".kbe-open").click()
    expect(page.locator("#kbe-body")).to_have_value("Gift cards never expire. Ask at any till.")

    def accept(dialog: Dialog) -> None:
        assert title in dialog.message
        dialog.accept()

    page.once("dialog", accept)
    view.locator("#kbe-delete").click()
    expect(view.locator(".kbe-notice")).to_have_text("Article deleted.")
    expect(view.locator(".kbe-row", has_text=title)).to_have_count(0)

    page.select_option("#lang-select", "ru")
    expect(view.get_by_role("heading", name="База знаний")).to_be_visible()
    expect(view.locator("#kbe-new")).to_have_text("Новая статья")
    page.select_option("#lang-select", "en")
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def test_an_agent_gets_no_knowledge_base_editor(watched: Watched) -> None:
    page = watched.page
    log_in(page, "anna")
    page.goto("/#kb")
    expect(page.locator("#inbox-view")).to_be_visible()
    expect(page.locator("#kb-view")).to_be_hidden()
    r = page.context.request.post("/api/v1/knowledge/articles", data={"title": "x", "language": "en"},
                                  headers=csrf(page.context))
    assert r.status == 403 and r.json()["code"] == "supervisor_required", r.text()
    watched.assert_clean(allowed_console=REFUSED)


# ---- keyboard -----------------------------------------------------------------------------------------------------


def press_and_expect_step(page: Page, key: str, delta: int) -> int:
    """Press J or K and check the conversation that opens is the row ``delta`` away from the open one (the first
    row when none is open) in the list as it was just before the key; returns its id."""
    ids, current = page.evaluate("""() => [
        [...document.querySelectorAll('#conversation-list .conv-row')].map((r) => Number(r.dataset.id)),
        Number(document.querySelector('#conv-view')?.dataset.conversationId || 0)]""")
    at = ids.index(current) if current in ids else -1
    expected = ids[0] if at < 0 else ids[min(len(ids) - 1, max(0, at + delta))]
    page.keyboard.press(key)
    expect(page.locator("#conv-view")).to_have_attribute("data-conversation-id", str(expected))
    return int(expected)


def test_keyboard_moves_resolves_assigns_and_the_palette_finds(watched: Watched, server: str, shots) -> None:
    page = watched.page
    log_in(page, "anna")
    live(page)
    page.select_option("#lang-select", "en")
    page.click(".tab[data-view=all]")
    rows = page.locator("#conversation-list .conv-row")
    expect(rows.nth(1)).to_be_visible()
    page.locator("body").click(position={"x": 5, "y": 5})
    # J/K step from the open conversation's row in the list as it is when the key is pressed (the shared server's
    # other conversations may reorder the list meanwhile, so each expectation is read just before its key).
    first_id = press_and_expect_step(page, "j", 1)
    press_and_expect_step(page, "j", 1)
    first_id = press_and_expect_step(page, "k", -1)

    # Typing in the reply box types; nothing moves.
    page.click("#reply-text")
    page.fill("#reply-text", "")
    page.keyboard.type("jake ask")
    expect(page.locator("#reply-text")).to_have_value("jake ask")
    expect(page.locator("#conv-view")).to_have_attribute("data-conversation-id", str(first_id))
    page.fill("#reply-text", "")

    # "?" shows the help; Escape closes it.
    page.locator("#timeline").focus()
    page.keyboard.press("?")
    help_box = page.locator("#keys-help")
    expect(help_box).to_be_visible()
    expect(help_box).to_contain_text("Command palette")
    ws.shoot(page, shots, "42-keyboard-help")
    assert blocking(page, "#keys-help") == []
    page.keyboard.press("Escape")
    expect(help_box).to_have_count(0)

    # Assign to me (A) and resolve (E) on a new unassigned conversation.
    name = f"Keys Kira {uuid.uuid4().hex[:4]}"
    cid = customer_says(server, f"crm-keys-{uuid.uuid4().hex[:6]}", "Hello from the keyboard test",
                        contact={"name": name})["conversation_id"]
    with admin_api(server) as api:  # the demo's bot would keep it; hand it to the queue like a hand-off would
        api.post(f"/conversations/{cid}/status", json={"status": "open"})
    open_row(page, name)
    page.locator("#timeline").focus()
    page.keyboard.press("a")
    expect(page.locator("#conv-meta .conv__assignee")).to_have_text(re.compile("Anna Petrova"))
    page.keyboard.press("e")
    expect(page.locator("#conv-view")).to_have_attribute("data-status", "resolved")
    with admin_api(server) as api:
        conv = api.get(f"/conversations/{cid}").json()
    assert conv["status"] == "resolved" and conv["assignee_id"] == user_id(server, "anna")

    # Ctrl+K works even in the reply box: find a conversation by the customer's name and open it.
    page.click("#reply-text")
    page.keyboard.press("Control+k")
    palette = page.locator("#palette")
    expect(palette).to_be_visible()
    expect(palette.locator(".palette__item[data-group=actions]").first).to_be_visible()
    page.keyboard.type("Ivan Kuz")
    hit = palette.locator(".palette__item[data-group=conversations]", has_text="Ivan Kuznetsov").first
    expect(hit).to_be_visible()
    expect(palette.locator(".palette__item[data-group=contacts]", has_text="Ivan Kuznetsov").first).to_be_visible()
    ws.shoot(page, shots, "43-command-palette")
    assert blocking(page, "#palette") == []
    while palette.locator(".palette__item--active").get_attribute("data-group") != "conversations":
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(palette).to_have_count(0)
    expect(page.locator("#conv-title")).to_have_text("Ivan Kuznetsov")

    # An action from the palette: go to contacts.
    page.keyboard.press("Control+k")
    page.keyboard.type("contacts")
    expect(palette.locator(".palette__item--active")).to_have_text("Go to contacts")
    page.keyboard.press("Enter")
    expect(page.locator("#contacts-view")).to_be_visible()
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)
