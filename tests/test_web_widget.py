"""The website chat widget in a real browser: Debian's chromium on the demo shop page (kommutator demo), with
the agent on the REST API and in the workspace. Screenshots go to the test's tmp folder (and are looked at).

The widget keeps its UI in an open shadow root (so accessibility checkers can audit it), out of reach of the
page's selectors and styles; an init script also records its sockets for the tests that drive the UI.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import struct
import time
import zlib
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from kommutator.agents.models import User
from kommutator.auth.actions import do_create_api_token
from kommutator.auth.principal import Principal
from kommutator.config import Settings, load_settings
from kommutator.conversations.automatic import do_send_automatic
from kommutator.conversations.models import Conversation
from kommutator.db import Tx
from kommutator.demo.seed import seed
from kommutator.migrate import upgrade
from kommutator.runtime import Runtime

from .live_server import bound_socket, run_server
from .test_web_browser import CHROMIUM, MISSING_CHROMIUM, WATCH_CSP, Watched, browser, log_in, playwright, row

__all__ = ["browser", "playwright"]  # the shared browser fixtures
TIMEOUT_MS = 10_000
OPEN_SHADOW = """
const attach = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) { return attach.call(this, { ...init, mode: "open" }); };
const NativeSocket = window.WebSocket;
window.__kommutatorSockets = [];
window.WebSocket = class extends NativeSocket {
  constructor(...args) { super(...args); window.__kommutatorSockets.push(this); }
};
"""
# Every payload sets window.__xss if it ever runs.
XSS_INIT = "window.__xss = 0;"
AGENT_XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"><b>bold?</b>'


def _png(width: int = 48, height: int = 32) -> bytes:
    """A real PNG (an orange gradient), so the widget's preview has something to decode."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"".join(bytes([255, min(255, 90 + 3 * x), 40 + y]) for x in range(width))
                    for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = _png()
NAME_XSS = '<img src=x onerror="window.__xss = 3">Eve'


async def _tokens(settings: Settings) -> dict[str, Any]:
    rt = Runtime.build(settings)
    await rt.db.start()

    async def job(tx: Tx) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for who in ("admin", "anna"):
            user = (await tx.session.execute(select(User).where(User.email.startswith(who)))).scalar_one()
            p = Principal(user_id=user.id, name=user.name, role=user.role, team_ids=frozenset())
            _, token = await do_create_api_token(tx, p, "widget tests")
            out[who] = {"id": user.id, "headers": {"Authorization": f"Bearer {token}"}}
        return out

    try:
        return await rt.db.write(job)
    finally:
        await rt.db.close()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """kommutator demo on a free loopback port: the workspace, the shop page, its chat; Anna on duty."""
    data_dir = tmp_path_factory.mktemp("web-widget")
    sock, port = bound_socket()
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(data_dir=data_dir, listen_port=port, public_base_url=base,
                             database_url=f"sqlite+aiosqlite:///{data_dir / 'kommutator.db'}")
    asyncio.run(upgrade(settings.database_url))
    assert asyncio.run(seed(settings, bot=False)) is True  # agents answer the chat here
    people = asyncio.run(_tokens(settings))
    with run_server(settings, sock, demo=True) as served:
        chat = next(c for c in httpx.get(f"{served}/api/v1/channels", headers=people["admin"]["headers"]).json()
                    if c["type"] == "webchat")
        set_presence(served, people, "online")
        yield {"base": served, "people": people, "chat": chat, "settings": settings,
               "shots": Path(tmp_path_factory.mktemp("widget-screenshots"))}


@pytest.fixture
def server(shop: dict[str, Any]) -> str:
    return str(shop["base"])


def set_presence(base: str, people: dict[str, Any], presence: str) -> None:
    r = httpx.patch(f"{base}/api/v1/users/{people['anna']['id']}", json={"presence": presence},
                    headers=people["admin"]["headers"])
    assert r.status_code == 200, r.text


def visitor_page(browser: Browser, shop: dict[str, Any], *, lang: str = "en",
                 open_shadow: bool = True) -> tuple[BrowserContext, Watched]:
    ctx = browser.new_context(base_url=shop["base"], locale="en-US", viewport={"width": 1280, "height": 820})
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.add_init_script(WATCH_CSP + XSS_INIT + (OPEN_SHADOW if open_shadow else ""))
    page = ctx.new_page()
    w = Watched(page, shop["base"])
    page.on("console", lambda m: w.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: w.page_errors.append(str(exc)))
    page.on("request", lambda r: None if r.url.startswith((shop["base"], "data:", "blob:")) else
            w.foreign_requests.append(r.url))
    page.goto(f"/demo/shop?lang={lang}")
    expect(widget(page, ".launcher") if open_shadow else page.locator("kommutator-chat")).to_be_attached()
    return ctx, w


def widget(page: Page, selector: str) -> Any:
    return page.locator("kommutator-chat").locator(selector)


def api(shop: dict[str, Any], method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(method, f"{shop['base']}/api/v1{path}", headers=shop["people"]["anna"]["headers"], **kw)
    assert r.status_code < 300, r.text
    return r.json()


def conversation_with(shop: dict[str, Any], text: str, seconds: float = 10) -> tuple[int, list[dict[str, Any]]]:
    """The conversation where a visitor's message with this text arrived, as the agent sees it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for conv in api(shop, "GET", "/conversations?limit=100")["items"]:
            items = api(shop, "GET", f"/conversations/{conv['id']}/messages")["items"]
            if any(m["text"] == text for m in items):
                return int(conv["id"]), items
        time.sleep(0.2)
    raise AssertionError(f"no conversation has the message {text!r}")


def in_thread(job: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, job()).result()


def shot(page: Page, shop: dict[str, Any], name: str) -> None:
    page.screenshot(path=str(shop["shots"] / f"{name}.png"))


def test_chromium_is_installed() -> None:
    assert CHROMIUM is not None, MISSING_CHROMIUM


def test_visitor_and_agent_chat_live_across_reloads_and_a_dropped_connection(shop, browser: Browser) -> None:
    ctx, w = visitor_page(browser, shop)
    page = w.page
    shot(page, shop, "1-shop-with-launcher")
    widget(page, ".launcher").click()
    expect(widget(page, ".panel")).to_be_visible()
    expect(widget(page, ".status")).to_have_text("We're online")
    widget(page, ".row textarea").fill("Hello! Where is my order 48213?")
    widget(page, ".row textarea").press("Enter")
    expect(widget(page, ".msg.in:not(.pending)")).to_have_count(1)
    conv_id, items = conversation_with(shop, "Hello! Where is my order 48213?")
    # The agent replies (with markup that must stay text); the visitor sees it live, with the agent's name.
    api(shop, "POST", f"/conversations/{conv_id}/messages", json={"text": "Hi! Anna here, checking now."})
    api(shop, "POST", f"/conversations/{conv_id}/messages", json={"text": AGENT_XSS})
    api(shop, "POST", f"/conversations/{conv_id}/messages", json={"kind": "note", "text": "PRIVATE NOTE"})
    expect(widget(page, ".msg.out")).to_have_count(2)
    expect(widget(page, ".msg.out .text").last).to_have_text(AGENT_XSS)
    expect(widget(page, ".status")).to_have_text("Anna Petrova")
    expect(widget(page, ".sender").first).to_have_text("Anna Petrova")
    assert widget(page, ".body img, .body script, .body b").count() == 0
    assert "PRIVATE NOTE" not in widget(page, ".body").inner_text()
    shot(page, shop, "2-agent-replied")

    # A reload keeps the conversation (the token in local storage names the same visitor).
    page.reload()
    expect(widget(page, ".panel")).to_be_visible()
    expect(widget(page, ".msg")).to_have_count(3)
    expect(widget(page, ".msg.out .text").last).to_have_text(AGENT_XSS)

    # The connection drops; the visitor goes on typing; back online, each message is sent exactly once.
    ctx.set_offline(True)
    page.evaluate("window.dispatchEvent(new Event('offline'))")
    page.evaluate("""() => { for (const s of window.__kommutatorSockets || []) s.close(); }""")
    for text in ("typed while offline #1", "typed while offline #2"):
        widget(page, ".row textarea").fill(text)
        widget(page, ".row textarea").press("Enter")
    expect(widget(page, ".msg.pending")).to_have_count(2)
    expect(widget(page, ".conn")).to_be_visible()
    shot(page, shop, "3-offline-pending")
    page.wait_for_timeout(1500)  # reconnect attempts while offline fail and are retried
    ctx.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(widget(page, ".msg.pending")).to_have_count(0)
    expect(widget(page, ".msg.in")).to_have_count(3)
    page.reload()  # and nothing is sent again from a stale outbox
    expect(widget(page, ".msg")).to_have_count(5)
    page.wait_for_timeout(1000)
    _, items = conversation_with(shop, "typed while offline #2")
    texts = [m["text"] for m in items if m["direction"] == "in"]
    assert texts == ["Hello! Where is my order 48213?", "typed while offline #1", "typed while offline #2"], texts
    assert page.evaluate("window.__xss") == 0
    shot(page, shop, "4-back-online")
    w.assert_clean(allowed_console=("ERR_INTERNET_DISCONNECTED",))
    ctx.close()


def test_bot_buttons_are_pressed_like_on_any_channel(shop, browser: Browser) -> None:
    ctx, w = visitor_page(browser, shop)
    page = w.page
    widget(page, ".launcher").click()
    widget(page, ".row textarea").fill("I need help with an order")
    widget(page, ".row textarea").press("Enter")
    conv_id, _ = conversation_with(shop, "I need help with an order")

    async def offer() -> None:
        rt = Runtime.build(shop["settings"])
        await rt.db.start()
        try:
            async def job(tx: Tx) -> None:
                conv = await tx.session.get(Conversation, conv_id)
                assert conv is not None
                await do_send_automatic(tx, conv, "What would you like to do?", sender="bot",
                                        buttons=[("track", "Track my order"), ("human", "Talk to a person")])

            await rt.db.write(job)
        finally:
            await rt.db.close()

    in_thread(offer)  # Playwright's sync API owns this thread's event loop
    expect(widget(page, ".choice")).to_have_count(2)
    expect(widget(page, ".sender").last).to_have_text("Assistant")
    shot(page, shop, "5-bot-buttons")
    widget(page, ".choice").filter(has_text="Track my order").click()
    expect(widget(page, ".msg.in .text").last).to_have_text("Track my order")
    expect(widget(page, ".choice")).to_have_count(0)
    _, items = conversation_with(shop, "Track my order")
    pressed = [m for m in items if m["text"] == "Track my order"]
    assert len(pressed) == 1 and pressed[0]["payload"]["button"] == "track"
    w.assert_clean()
    ctx.close()


def test_offline_form_in_russian_and_a_hostile_name_stays_text(shop, browser: Browser) -> None:
    set_presence(shop["base"], shop["people"], "offline")
    try:
        ctx, w = visitor_page(browser, shop, lang="ru")
        page = w.page
        expect(widget(page, ".launcher")).to_have_attribute("aria-label", "Открыть чат")
        widget(page, ".launcher").click()
        expect(widget(page, ".form h3")).to_have_text("Оставьте сообщение")
        expect(widget(page, ".status")).to_have_text("Сейчас нас нет на месте")
        shot(page, shop, "6-offline-form-ru")
        widget(page, "input[name=name]").fill(NAME_XSS)
        widget(page, "input[name=email]").fill("eve@example.com")
        widget(page, "textarea[name=message]").fill("Перезвоните мне, пожалуйста")
        widget(page, ".form .primary").click()
        expect(widget(page, ".notice")).to_have_text("Спасибо! Мы ответим на eve@example.com.")
        expect(widget(page, ".msg.in .text")).to_have_text("Перезвоните мне, пожалуйста")
        shot(page, shop, "7-offline-sent-ru")
        conv_id, _ = conversation_with(shop, "Перезвоните мне, пожалуйста")
        conv = api(shop, "GET", f"/conversations/{conv_id}")
        contact = api(shop, "GET", f"/contacts/{conv['contact_id']}")
        assert contact["email"] == "eve@example.com" and contact["name"] == NAME_XSS
        assert page.evaluate("window.__xss") == 0
        w.assert_clean()
        ctx.close()
    finally:
        set_presence(shop["base"], shop["people"], "online")

    # The agent's workspace shows the visitor's name as text too.
    ctx = browser.new_context(base_url=shop["base"], locale="en-US", viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.add_init_script(WATCH_CSP + XSS_INIT)
    page = ctx.new_page()
    log_in(page, "olga")
    # Routing may already have given it to someone who came online: the supervisor's "all" view shows it anyway.
    page.click(".tab[data-view=all]")
    expect(row(page, "Eve")).to_have_count(1)
    expect(row(page, "Eve").locator(".conv-row__name")).to_have_text(NAME_XSS)
    assert page.evaluate("window.__xss") == 0
    shot(page, shop, "8-workspace-hostile-name")
    ctx.close()


def test_the_widget_is_sealed_off_from_the_page(shop, browser: Browser) -> None:
    ctx, w = visitor_page(browser, shop, open_shadow=False)
    page = w.page
    # An open root (accessibility checkers and assistive extensions must reach it), still outside the page's
    # selectors and styles.
    assert page.evaluate("document.querySelector('kommutator-chat').shadowRoot.mode") == "open"
    assert page.evaluate("document.querySelectorAll('.launcher, .panel, .msg').length") == 0
    ctx.close()
    ctx, w = visitor_page(browser, shop)
    page = w.page
    # The shop styles every button in Courier capitals; the widget's buttons are untouched, and the widget's
    # own rules (button { font: inherit }) do not reach the shop's buttons.
    launcher = widget(page, ".launcher")
    assert "Courier" not in launcher.evaluate("b => getComputedStyle(b).fontFamily")
    assert launcher.evaluate("b => getComputedStyle(b).textTransform") == "none"
    cart = page.locator("article.card button").first
    assert "Courier" in cart.evaluate("b => getComputedStyle(b).fontFamily")
    assert cart.evaluate("b => getComputedStyle(b).textTransform") == "uppercase"
    csp = httpx.get(f"{shop['base']}/demo/shop").headers["content-security-policy"]
    assert "script-src 'self' " in csp and "unsafe-inline" not in csp
    w.assert_clean()
    ctx.close()


def test_pictures_are_sent_refusals_are_explained_and_unread_replies_counted(shop, browser: Browser,
                                                                             tmp_path: Path) -> None:
    ctx, w = visitor_page(browser, shop)
    page = w.page
    widget(page, ".launcher").click()
    widget(page, ".row textarea").fill("Here is a photo of the damage")
    widget(page, ".row textarea").press("Enter")
    conv_id, _ = conversation_with(shop, "Here is a photo of the damage")
    page_html = tmp_path / "page.html"
    page_html.write_text("<script>alert(1)</script>")
    widget(page, "input[type=file]").set_input_files(str(page_html))
    expect(widget(page, ".composer .error")).to_have_text("Files of this type cannot be sent.")
    picture = tmp_path / "damage.png"
    picture.write_bytes(PNG)
    widget(page, "input[type=file]").set_input_files(str(picture))
    expect(widget(page, ".composer .error")).to_be_hidden()
    expect(widget(page, ".msg.in .file")).to_have_text("damage.png")
    expect(widget(page, ".msg.in img.preview")).to_have_count(1)
    items = api(shop, "GET", f"/conversations/{conv_id}/messages")["items"]
    [with_file] = [m for m in items if m["attachments"]]
    assert with_file["attachments"][0]["filename"] == "damage.png" and with_file["attachments"][0]["size"] == len(PNG)
    shot(page, shop, "9-picture-sent")
    # Replies that arrive while the panel is closed are counted on the launcher until it is opened.
    widget(page, ".head .icon-btn").click()
    expect(widget(page, ".panel")).to_be_hidden()
    api(shop, "POST", f"/conversations/{conv_id}/messages", json={"text": "Thanks, we'll send a new one."})
    expect(widget(page, ".badge")).to_have_text("1")
    shot(page, shop, "10-unread-badge")
    widget(page, ".launcher").click()
    expect(widget(page, ".badge")).to_be_hidden()
    page.reload()
    expect(widget(page, ".msg.out")).to_have_count(1)
    expect(widget(page, ".badge")).to_be_hidden()
    w.assert_clean()
    ctx.close()


def test_prechat_form_asks_before_the_first_message(shop, browser: Browser) -> None:
    admin = shop["people"]["admin"]["headers"]
    url = f"{shop['base']}/api/v1/channels/{shop['chat']['id']}"
    r = httpx.patch(url, headers=admin, json={"settings": {"title": "Cosmo Shop",
                                                            "prechat_fields": ["name", "email"]}})
    assert r.status_code == 200, r.text
    try:
        ctx, w = visitor_page(browser, shop)
        page = w.page
        widget(page, ".launcher").click()
        expect(widget(page, ".form h3")).to_have_text("Before we start")
        expect(widget(page, ".row textarea")).to_be_hidden()
        widget(page, ".form .primary").click()
        expect(widget(page, ".form .error")).to_have_text("Please fill in every field.")
        widget(page, "input[name=name]").fill("Vera Orlova")
        widget(page, "input[name=email]").fill("vera@example.com")
        shot(page, shop, "11-prechat-form")
        widget(page, ".form .primary").click()
        expect(widget(page, ".row textarea")).to_be_visible()
        widget(page, ".row textarea").fill("Do you have the Aurora in black?")
        widget(page, ".row textarea").press("Enter")
        conv_id, _ = conversation_with(shop, "Do you have the Aurora in black?")
        contact = api(shop, "GET", f"/contacts/{api(shop, 'GET', f'/conversations/{conv_id}')['contact_id']}")
        assert (contact["name"], contact["email"]) == ("Vera Orlova", "vera@example.com")
        w.assert_clean()
        ctx.close()
    finally:
        r = httpx.patch(url, headers=admin, json={"settings": {"title": "Cosmo Shop"}})
        assert r.status_code == 200, r.text


def test_administrator_connects_a_website_and_gets_the_tag_to_paste(shop, browser: Browser) -> None:
    ctx = browser.new_context(base_url=shop["base"], locale="en-US", viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.add_init_script(WATCH_CSP)
    page = ctx.new_page()
    log_in(page, "admin")
    page.click(".mainnav__link[data-section=channels]")
    page.click("#channel-connect")
    page.click("#type-picker .type-card[data-type=webchat]")
    expect(page.locator("#channel-form")).to_have_attribute("data-type", "webchat")
    page.fill("#channel-name", "Second website")
    page.fill("#ch-settings-allowed_origins", "https://second.example.com, https://www.second.example.com")
    page.fill("#ch-settings-color", "#0f766e")
    page.click("#channel-form .form-submit")
    expect(page.locator("#channel-created")).to_be_visible()
    made = next(c for c in httpx.get(f"{shop['base']}/api/v1/channels", headers=shop["people"]["admin"]["headers"])
                .json() if c["name"] == "Second website")
    assert made["settings"]["allowed_origins"] == ["https://second.example.com", "https://www.second.example.com"]
    assert made["settings"]["color"] == "#0f766e"
    tag = f'<script src="{shop["base"]}/widget.js" data-channel="{made["id"]}" async></script>'
    expect(page.locator("#created-setup")).to_contain_text(tag)
    shot(page, shop, "12-admin-created-webchat")
    ctx.close()


def test_on_a_phone_a_tap_on_send_sends_the_message(shop, browser: Browser) -> None:
    """390×844 with touch: the panel fills the screen, the launcher steps aside, and a real tap on Send sends."""
    ctx = browser.new_context(base_url=shop["base"], locale="en-US", viewport={"width": 390, "height": 844},
                              device_scale_factor=3, is_mobile=True, has_touch=True)
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.add_init_script(WATCH_CSP + XSS_INIT + OPEN_SHADOW)
    try:
        page = ctx.new_page()
        page.goto("/demo/shop?lang=en")
        widget(page, ".launcher").tap()
        expect(widget(page, ".panel")).to_be_visible()
        expect(widget(page, ".launcher")).to_be_hidden()  # the panel is the whole screen and has its own close
        send = widget(page, ".send")
        box = send.bounding_box()
        assert box is not None
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        assert 0 < cx < 390 and 0 < cy < 844, f"Send is off screen at {box}"
        # What a finger there would touch is Send itself (or its icon), not anything laid over it.
        on_top = page.evaluate("""([x, y]) => {
          const host = document.querySelector("kommutator-chat");
          const hit = host.shadowRoot.elementFromPoint(x, y);
          return hit ? (hit.closest(".send") ? "send" : hit.className.baseVal ?? hit.className) : "";
        }""", [cx, cy])
        assert on_top == "send", f"a tap on Send lands on {on_top!r}"
        text = f"Sent from a phone {time.monotonic_ns() % 100000}"
        widget(page, ".row textarea").fill(text)
        page.tap("kommutator-chat .send")  # Playwright taps the centre, after checking nothing covers it
        expect(widget(page, ".msg.in:not(.pending)")).to_have_count(1)
        expect(widget(page, ".panel")).to_be_visible()  # the tap did not close the chat
        conversation_with(shop, text)
        shot(page, shop, "9-phone-sent")
        widget(page, ".head .icon-btn").tap()  # its own close button; the launcher comes back
        expect(widget(page, ".panel")).to_be_hidden()
        expect(widget(page, ".launcher")).to_be_visible()
    finally:
        ctx.close()
