"""WCAG 2.1 AA on the main screens, checked with axe-core in Debian's chromium (tests/a11y.py): the workspace
(inbox, a conversation, administration, the supervisor's live view and quality settings) in English and
Russian, the public help pages, and the website chat widget on a desktop and on a phone. No serious or critical
violation is allowed. Keyboard-only use of the inbox, the conversation and the widget is walked through too."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, expect

from .a11y import blocking
from .test_web_browser import PASSWORDS
from .test_web_widget import TIMEOUT_MS, browser, playwright, shop, visitor_page, widget

__all__ = ["browser", "playwright", "shop"]  # the shared fixtures: the demo on a real server, the browser


def workspace(browser: Browser, shop: dict[str, Any], who: str, *, locale: str = "en-US",
              viewport: dict[str, int] | None = None) -> tuple[BrowserContext, Page]:
    ctx = browser.new_context(base_url=shop["base"], locale=locale, viewport=viewport or {"width": 1400, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    page = ctx.new_page()
    page.goto("/")
    expect(page.locator("#login-view")).to_be_visible()
    email, password = PASSWORDS[who]
    page.fill("#login-email", email)
    page.fill("#login-password", password)
    page.click("#login-submit")
    expect(page.locator("#workspace-view")).to_be_visible()
    return ctx, page


def settled(page: Page) -> None:
    page.wait_for_timeout(400)  # the last render and CSS transitions; axe reads computed colours


def test_the_workspace_passes_wcag_aa_in_english_and_russian(shop: dict[str, Any], browser: Browser) -> None:
    ctx = browser.new_context(base_url=shop["base"], locale="en-US")
    page = ctx.new_page()
    page.goto("/")
    expect(page.locator("#login-view")).to_be_visible()
    found = {"login": blocking(page)}
    ctx.close()

    for locale in ("en-US", "ru-RU"):
        ctx, page = workspace(browser, shop, "admin", locale=locale)
        page.click(".tab[data-view=all]")
        expect(page.locator(".conv-row").first).to_be_visible()
        settled(page)
        found[f"{locale} inbox"] = blocking(page)
        page.locator(".conv-row").first.click()
        expect(page.locator("#timeline li").first).to_be_visible()
        settled(page)
        found[f"{locale} conversation"] = blocking(page)
        assert page.locator("main:not([hidden])").count() == 1, "one main landmark after login"
        for section in ("live", "quality", "reports", "forecast", "channels", "queues", "users", "canned", "flows",
                        "intents", "templates"):
            page.goto(f"/#{section}")
            expect(page.locator(f".mainnav__link[href='#{section}'][aria-current=page]")).to_be_visible()
            settled(page)
            found[f"{locale} {section}"] = blocking(page)
        ctx.close()
    assert not {k: v for k, v in found.items() if v}, "\n".join(f"{k}: {line}" for k, v in found.items() for line in v)


def test_the_help_pages_pass_wcag_aa(shop: dict[str, Any], browser: Browser) -> None:
    ctx = browser.new_context(base_url=shop["base"], locale="ru-RU")
    page = ctx.new_page()
    page.goto("/help")
    found = {"help": blocking(page)}
    first = page.locator("main a[href^='/help/']").first
    if first.count():
        first.click()
        page.wait_for_load_state()
        found["article"] = blocking(page)
    ctx.close()
    assert not {k: v for k, v in found.items() if v}, found


def test_the_widget_passes_wcag_aa_on_a_desktop_and_a_phone(shop: dict[str, Any], browser: Browser) -> None:
    for lang, viewport in (("en", None), ("ru", {"width": 390, "height": 844})):
        ctx, w = visitor_page(browser, shop, lang=lang)
        page = w.page
        if viewport:
            page.set_viewport_size(viewport)
        found = {"closed": blocking(page, "kommutator-chat")}
        widget(page, ".launcher").click()
        expect(widget(page, ".panel")).to_be_visible()
        name = widget(page, ".panel").get_attribute("aria-labelledby")
        assert name and widget(page, f"#{name}").inner_text().strip(), "the chat dialog is named by its title"
        settled(page)
        found["open"] = blocking(page, "kommutator-chat")
        ctx.close()
        assert not {k: v for k, v in found.items() if v}, (lang, found)


def test_keyboard_only_inbox_conversation_and_widget(shop: dict[str, Any], browser: Browser) -> None:
    """Tab to the list, open a conversation with Enter, scroll its timeline with the arrow keys; in the widget,
    open it with Enter on the launcher, type and send with Enter, close it with Escape."""
    ctx, page = workspace(browser, shop, "olga", viewport={"width": 1400, "height": 500})
    page.click(".tab[data-view=all]")
    first = page.locator(".conv-row").first
    expect(first).to_be_visible()
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('conv-row')"):
            break
    else:
        raise AssertionError("Tab never reached the conversation list")
    opened = page.evaluate("document.activeElement.dataset.id")
    page.keyboard.press("Enter")
    expect(page.locator(".conv-row--selected")).to_have_attribute("data-id", opened)
    timeline = page.locator("#timeline")
    expect(timeline.locator("li").first).to_be_visible()
    timeline.focus()
    assert page.evaluate("document.activeElement.id") == "timeline", "the timeline takes focus from the keyboard"
    page.evaluate("document.getElementById('timeline').scrollTop = 0")
    scrollable = page.evaluate("(t => t.scrollHeight > t.clientHeight)(document.getElementById('timeline'))")
    if scrollable:
        page.keyboard.press("PageDown")
        expect(timeline).not_to_have_js_property("scrollTop", 0)
    ctx.close()

    ctx, w = visitor_page(browser, shop)
    page = w.page
    launcher = widget(page, ".launcher")
    launcher.focus()
    page.keyboard.press("Enter")
    expect(widget(page, ".panel")).to_be_visible()
    textbox = widget(page, "textarea, input[type=text]").first
    expect(textbox).to_be_focused()
    page.keyboard.type("Hello from the keyboard")
    page.keyboard.press("Enter")
    expect(widget(page, ".msg").filter(has_text="Hello from the keyboard")).to_be_visible()
    page.keyboard.press("Escape")
    expect(widget(page, ".panel")).to_be_hidden()
    expect(launcher).to_be_focused()
    ctx.close()
