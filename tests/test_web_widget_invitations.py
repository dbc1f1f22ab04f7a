"""Proactive invitations on the demo shop at phone size: an administrator sets the rules on the web chat channel,
the widget shows the first invitation whose triggers hold (here: the page's address, new visitors), once per
visit, and the channel's stats count it shown and accepted."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Browser, expect

from .test_web_browser import WATCH_CSP, Watched
from .test_web_widget import OPEN_SHADOW, TIMEOUT_MS, shop, widget
from .test_web_widget import browser as browser
from .test_web_widget import playwright as playwright

__all__ = ["browser", "playwright", "shop"]

RULES = [
    {"id": "welcome-back", "text_en": "Welcome back! Need a hand?", "text_ru": "С возвращением! Помочь?",
     "returning": True},
    {"id": "nowhere", "text_en": "Checking out?", "text_ru": "Оформляете заказ?", "url_pattern": "*/checkout*"},
    {"id": "shop-help", "text_en": "Questions about an order? We answer in minutes.",
     "text_ru": "Вопросы о заказе? Ответим за пару минут.", "url_pattern": "*/demo/shop*", "after_seconds": 0},
]


def admin_api(shop: dict[str, Any], method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(method, f"{shop['base']}/api/v1{path}", headers=shop["people"]["admin"]["headers"], **kw)
    assert r.status_code < 300, r.text
    return r.json()


def stats(shop: dict[str, Any]) -> dict[str, tuple[int, int]]:
    got = admin_api(shop, "GET", f"/channels/{shop['chat']['id']}/stats")
    return {i["id"]: (i["shown"], i["accepted"]) for i in got["invitations"]}


def test_an_invitation_shows_on_a_phone_and_is_counted_shown_and_accepted(shop, browser: Browser) -> None:
    chat = admin_api(shop, "GET", f"/channels/{shop['chat']['id']}")
    admin_api(shop, "PATCH", f"/channels/{chat['id']}", json={"settings": {**chat["settings"], "invitations": RULES}})
    before = stats(shop)
    assert set(before) == {"welcome-back", "nowhere", "shop-help"}
    ctx = browser.new_context(base_url=shop["base"], locale="en-US", viewport={"width": 390, "height": 844},
                              is_mobile=True, has_touch=True)
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.add_init_script(WATCH_CSP + OPEN_SHADOW)
    page = ctx.new_page()
    w = Watched(page, shop["base"])
    page.on("pageerror", lambda exc: w.page_errors.append(str(exc)))
    page.goto("/demo/shop?lang=en")
    bubble = widget(page, ".invite")
    expect(bubble).to_be_visible()
    expect(widget(page, ".invite-text")).to_have_text("Questions about an order? We answer in minutes.")
    box = bubble.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, "fits the phone's screen"
    page.screenshot(path=str(shop["shots"] / "invitation-phone.png"))
    for _ in range(50):
        if stats(shop)["shop-help"][0] == before["shop-help"][0] + 1:
            break
        page.wait_for_timeout(100)
    assert stats(shop)["shop-help"] == (before["shop-help"][0] + 1, before["shop-help"][1])
    widget(page, ".invite-text").click()
    expect(widget(page, ".panel")).to_be_visible()
    expect(bubble).to_be_hidden()
    for _ in range(50):
        if stats(shop)["shop-help"][1] == before["shop-help"][1] + 1:
            break
        page.wait_for_timeout(100)
    assert stats(shop)["shop-help"] == (before["shop-help"][0] + 1, before["shop-help"][1] + 1)
    assert stats(shop)["welcome-back"] == before["welcome-back"], "a new visitor is not welcomed back"
    # Once per visit: closed and reloaded, the same browser session is not invited again.
    widget(page, ".head .icon-btn").click()
    page.reload()
    expect(widget(page, ".launcher")).to_be_visible()
    page.wait_for_timeout(300)
    expect(bubble).to_be_hidden()
    assert not w.page_errors, w.page_errors
    ctx.close()
