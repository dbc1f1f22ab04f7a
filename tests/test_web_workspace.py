"""The live workspace in a real browser: messages arrive over the socket, a transfer reaches a colleague in
another browser with the whole history and the handover note, a dropped connection loses and doubles nothing,
customer markup stays text. The workspace's tools (canned responses, knowledge base, labels, snooze, the bell,
typing, people administration) are in test_web_workspace_tools.py.

Same set-up as test_web_browser.py. Polling is gone: the only periodic refresh is the 60-second safety net,
far beyond these tests' 10-second waits, so whatever appears here came over the WebSocket (or its catch-up).
Screenshots go to a temporary folder whose path is printed (or KOMMUTATOR_SCREENSHOTS).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from kommutator.config import Settings, load_settings
from kommutator.demo.seed import DEMO_INBOUND_TOKEN, DEMO_USERS, seed
from kommutator.migrate import upgrade

from . import test_web_browser as web
from .live_server import bound_socket, run_server
from .test_web_admin import run_async
from .test_web_browser import NOT_LOGGED_IN, TIMEOUT_MS, WATCH_CSP, Watched, log_in, row

playwright = web.playwright
browser = web.browser
context = web.context
watched = web.watched

# Assertions wait as long as actions: the machine's cores are shared, and a list refresh may queue behind others.
expect.set_options(timeout=TIMEOUT_MS)

# Desktop notifications are recorded instead of shown (headless chromium has no notification centre).
RECORD_NOTIFICATIONS = """
window.__notes = [];
window.Notification = class {
  constructor(title, options) { window.__notes.push({ title, body: (options || {}).body || "" }); }
  static get permission() { return "granted"; }
  static requestPermission() { return Promise.resolve("granted"); }
};
"""


SETTINGS: dict[str, Settings] = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo workspace on a real server of this module's own."""
    data_dir = tmp_path_factory.mktemp("web-workspace")
    sock, port = bound_socket()
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(data_dir=data_dir, listen_port=port, public_base_url=base,
                             database_url=f"sqlite+aiosqlite:///{data_dir / 'kommutator.db'}")
    run_async(upgrade(settings.database_url))
    assert run_async(seed(settings)) is True
    SETTINGS["server"] = settings
    with run_server(settings, sock) as served:
        yield served


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("KOMMUTATOR_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("workspace-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the workspace: {folder}")
    return folder


def shoot(page: Page, shots: Path, name: str) -> None:
    page.wait_for_timeout(200)
    page.screenshot(path=str(shots / f"{name}.png"))


def new_page(browser: Browser, server: str) -> tuple[BrowserContext, Watched]:
    """A second browser (its own cookies), watched like the first."""
    ctx = browser.new_context(base_url=server, locale="en-US", viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.add_init_script(WATCH_CSP)
    ctx.add_init_script(RECORD_NOTIFICATIONS)
    page = ctx.new_page()
    w = Watched(page, server)
    page.on("console", lambda m: w.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: w.page_errors.append(str(exc)))
    return ctx, w


def customer_says(server: str, external_id: str, text: str, contact: dict[str, Any] | None = None) -> dict[str, Any]:
    """A customer message through the API channel's webhook, as an integration would post it."""
    body = {"id": f"ws-{uuid.uuid4().hex}", "contact": {"id": external_id, **(contact or {})}, "text": text}
    r = httpx.post(f"{server}/webhooks/1", headers={"Authorization": f"Bearer {DEMO_INBOUND_TOKEN}"}, json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


@contextmanager
def admin_api(server: str) -> Iterator[httpx.Client]:
    """The administrator's session, for setting the scene through the API."""
    email, password = next((e, p) for e, p, role, _ in DEMO_USERS if role == "admin")
    with httpx.Client(base_url=f"{server}/api/v1") as c:
        r = c.post("/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        yield c


def user_id(server: str, who: str) -> int:
    with admin_api(server) as api:
        users = api.get("/users", params={"limit": 200}).json()["items"]
    return next(int(u["id"]) for u in users if u["email"].startswith(f"{who}@"))


def open_row(page: Page, name: str) -> None:
    row(page, name).click()
    expect(page.locator("#conv-title")).to_have_text(name)


def live(page: Page) -> None:
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


# ---- a customer writes, the agent sees it live and answers ----------------------------------------------------

def test_a_customer_message_appears_live_and_the_agent_replies(watched: Watched, server: str, shots: Path) -> None:
    page = watched.page
    log_in(page, "anna")
    live(page)
    open_row(page, "Ivan Kuznetsov")
    text = f"Any news about 48213? ({uuid.uuid4().hex[:6]})"
    assert not any("/messages?after_id=" in p for p in watched.requested_paths)
    sent = customer_says(server, "crm-1001", text)
    message = page.locator(f'#timeline .msg--customer[data-message-id="{sent["message_id"]}"]')
    expect(message.locator(".msg__text")).to_have_text(text)
    expect(message.locator(".msg__channel")).to_have_attribute("data-channel-id", "1")
    expect(message.locator(".msg__channel .chan")).to_have_attribute("data-channel-type", "api")
    # It came by the socket's word and a catch-up after the newest message shown, not by reloading everything.
    assert any("/messages?after_id=" in p for p in watched.requested_paths)

    # Another customer of hers writes: the row moves to the top with an unread count; opening it clears it.
    other = f"Complaint update ({uuid.uuid4().hex[:6]})"
    customer_says(server, "crm-1005", other)
    elena = row(page, "Elena Sokolova")
    expect(elena.locator(".unread")).to_have_text(re.compile(r"^[1-9]\d*$"))
    expect(page.locator(".conv-row").first.locator(".conv-row__name")).to_have_text("Elena Sokolova")
    shoot(page, shots, "01-inbox-live")

    reply = f"Your parcel is with the courier ({uuid.uuid4().hex[:6]})"
    page.fill("#reply-text", reply)
    page.click("#send-button")
    expect(page.locator("#timeline .msg--agent .msg__text", has_text=reply)).to_have_count(1)
    expect(page.locator("#reply-text")).to_have_value("")
    elena.click()
    expect(page.locator("#conv-title")).to_have_text("Elena Sokolova")
    expect(elena.locator(".unread")).to_have_count(0)
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


# ---- transfer: the colleague sees it arrive live, with the whole history and the handover note ------------------

def test_transfer_reaches_the_colleague_live_with_history_and_note(watched: Watched, browser: Browser, server: str,
                                                                    shots: Path) -> None:
    name = f"Nadia Transfer {uuid.uuid4().hex[:4]}"
    contact = f"crm-t-{uuid.uuid4().hex[:6]}"
    first = customer_says(server, contact, "I was charged twice for order 90210.", contact={"name": name})
    customer_says(server, contact, "Please refund one of them.")
    cid = first["conversation_id"]
    with admin_api(server) as api:
        r = api.post(f"/conversations/{cid}/assign", json={"assignee_id": user_id(server, "anna")})
        assert r.status_code == 200, r.text

    anna = watched.page
    anna.context.add_init_script(RECORD_NOTIFICATIONS)
    log_in(anna, "anna")
    live(anna)
    open_row(anna, name)
    anna.fill("#reply-text", "Checking the payments now.")
    anna.click("#send-button")
    expect(anna.locator("#timeline .msg--agent .msg__text", has_text="Checking the payments now.")).to_be_visible()

    john_ctx, john_w = new_page(browser, server)
    try:
        john = john_w.page
        log_in(john, "john")
        live(john)
        expect(row(john, name)).to_have_count(0)  # "Mine": not his yet

        note = "Refund approved by billing; send the invoice copy when it arrives."
        anna.click("#btn-transfer")
        dialog = anna.locator("#transfer-dialog")
        expect(dialog).to_be_visible()
        dialog.locator("#transfer-agent").select_option(str(user_id(server, "john")))
        dialog.locator("#transfer-note").fill(note)
        shoot(anna, shots, "02-transfer-dialog")
        dialog.locator(".form-submit").click()
        expect(dialog).to_have_count(0)
        expect(anna.locator(".conv__assignee")).to_contain_text("John Carter")

        # John's list gets it live; he is alerted; opening it shows everything before the handover, and the note.
        expect(row(john, name)).to_be_visible()
        john.wait_for_function("window.__notes.length > 0")
        assert john.evaluate("window.__notes[0].title") == "New conversation assigned to you"
        open_row(john, name)
        timeline = john.locator("#timeline")
        expect(timeline.locator(".msg--customer .msg__text")).to_have_text(
            ["I was charged twice for order 90210.", "Please refund one of them."])
        expect(timeline.locator(".msg--agent .msg__text")).to_have_text(["Checking the payments now."])
        expect(timeline.locator(".msg--handover .msg__text")).to_have_text(note)
        expect(john.locator("#handover")).to_be_visible()
        expect(john.locator("#handover-text")).to_have_text(note)
        expect(john.locator("#handover-title")).to_have_text("Handover from Anna Petrova to John Carter")
        expect(timeline.locator(".timeline__event").first).to_be_visible()  # events are in the story too
        shoot(john, shots, "03-handover-received")
        john_w.assert_clean(allowed_console=NOT_LOGGED_IN)
    finally:
        john_ctx.close()
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


# ---- a dropped connection loses nothing and doubles nothing ------------------------------------------------------

def test_after_a_dropped_connection_everything_is_shown_once(watched: Watched, server: str, shots: Path) -> None:
    page = watched.page
    log_in(page, "anna")
    live(page)
    open_row(page, "Ivan Kuznetsov")
    expect(page.locator("#timeline .msg").first).to_be_visible()

    page.evaluate("window.kommutator.dropConnection(4000)")
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    tag = uuid.uuid4().hex[:6]
    texts = [f"While you were away {n} ({tag})" for n in range(1, 4)]
    ivan = {customer_says(server, "crm-1001", text)["conversation_id"] for text in texts}.pop()
    newcomer = f"Newcomer {tag}"
    with admin_api(server) as api:
        fresh = customer_says(server, f"crm-n-{tag}", "Hello from a new customer", contact={"name": newcomer})
        api.post(f"/conversations/{fresh['conversation_id']}/assign", json={"assignee_id": user_id(server, "anna")})
    page.wait_for_timeout(500)
    expect(page.locator("#timeline .msg__text", has_text=tag)).to_have_count(0)  # the socket really was down
    shoot(page, shots, "04-reconnecting")

    live(page)
    for text in texts:
        expect(page.locator("#timeline .msg__text", has_text=text)).to_have_count(1)
    expect(row(page, newcomer)).to_have_count(1)
    ids = page.eval_on_selector_all("#timeline .msg", "els => els.map((e) => e.dataset.messageId)")
    assert len(ids) == len(set(ids)), f"a message is shown twice: {ids}"
    with admin_api(server) as api:
        stored = api.get(f"/conversations/{ivan}?limit=500").json()
    shown = set(map(int, ids))
    assert {m["id"] for m in stored["messages"]} == shown, "the timeline is exactly what the database holds"
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


# ---- customer markup stays inert text -----------------------------------------------------------------------

def test_hostile_names_messages_and_attributes_stay_text(watched: Watched, server: str, shots: Path) -> None:
    page = watched.page
    log_in(page, "admin")
    page.click(".tab[data-view=all]")
    live(page)
    name = "<img src=x onerror=window.__xss=1>"
    text = "<script>window.__xss=2</script><b>bold</b><svg onload=window.__xss=3>"
    attribute = "<iframe src=javascript:window.__xss=4>"
    sent = customer_says(server, f"x-{uuid.uuid4().hex[:6]}", text, contact={"name": name})
    with admin_api(server) as api:
        contact_id = api.get(f"/conversations/{sent['conversation_id']}").json()["contact_id"]
        r = api.patch(f"/contacts/{contact_id}", json={"attributes": {"note": attribute}})
        assert r.status_code == 200, r.text
    expect(page.locator(".conv-row__name").filter(has_text=name).first).to_have_text(name)
    row(page, name).first.click()
    expect(page.locator("#conv-title")).to_have_text(name)
    expect(page.locator("#timeline .msg--customer .msg__text").last).to_have_text(text)
    expect(page.locator("#contact-card .contact__attributes")).to_contain_text(attribute)
    page.fill("#search-input", "<script>")
    expect(page.locator(".conv-row__name").filter(has_text=name).first).to_be_visible()
    counts = page.evaluate("""() => ({
        img: document.querySelectorAll('#workspace-view img[src="x"]').length,
        script: document.querySelectorAll('#workspace-view script').length,
        bold: document.querySelectorAll('#workspace-view b').length,
        iframe: document.querySelectorAll('iframe').length,
        svg: document.querySelectorAll('#timeline svg[onload], #workspace-view svg[onload]').length,
    })""")
    assert counts == {"img": 0, "script": 0, "bold": 0, "iframe": 0, "svg": 0}
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.__xss") == "undefined"
    shoot(page, shots, "10-hostile-text")
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)
