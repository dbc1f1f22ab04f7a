"""The "Bot intents" administration screen in a real browser: an administrator defines an intent with
Russian and English examples, sees it listed as theirs, and reads the validation report of the model the
server trained in the background (per-intent precision and recall, confused pairs), in English and Russian.

Same set-up as test_web_bot.py (Debian's chromium, a real uvicorn server with the demo workspace, every page
watched for CSP violations and script errors)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import BrowserContext, expect

from . import test_web_admin as admin_ui
from .test_web_browser import Watched, log_in

playwright = admin_ui.playwright
browser = admin_ui.browser
context = admin_ui.context
watched = admin_ui.watched
server = admin_ui.server
shots = admin_ui.shots
shoot = admin_ui.shoot


def test_an_administrator_defines_an_intent_and_reads_the_validation_report(
        watched: Watched, context: BrowserContext, shots: Path) -> None:
    page = watched.page
    log_in(page, "admin")
    admin_ui.open_section(page, "intents")
    expect(page.locator("#intent-table")).to_be_visible()
    expect(page.locator(".intent-row[data-name=order_status]")).to_contain_text("Shipped")
    # the model the server trained at start (in the background) is reported on
    expect(page.locator("#intent-report .intent-report__summary")).to_contain_text("Model v", timeout=120_000)
    expect(page.locator("#intent-perf tr[data-intent=order_status]")).to_have_count(1)

    page.click("#intent-new")
    page.fill("#intent-name", "lost_parcel")
    page.fill("#intent-examples-ru", "посылка потерялась\nкурьер потерял посылку\nпропала посылка")
    page.fill("#intent-examples-en", "my parcel is lost\nthe courier lost my parcel\npackage went missing")
    page.click("#intent-save")
    expect(page.locator(".intent-row[data-name=lost_parcel]")).to_contain_text("Yours")
    expect(page.locator(".intent-row[data-name=lost_parcel] .intent-row__count")).to_have_text("3 / 3")
    shoot(page, shots, "intents-01-list")

    page.click("#intent-new")
    page.fill("#intent-name", "order_status")
    page.fill("#intent-examples-ru", "где заказ")
    page.click("#intent-save")
    expect(page.locator("#intent-error")).to_contain_text("shipped intent")

    page.select_option("#lang-select", "ru")
    page.get_by_role("button", name="Отмена").click()
    expect(page.locator("#admin-view .admin__title")).to_have_text("Намерения бота")
    expect(page.locator(".mainnav__link[data-section=intents]")).to_have_text("Намерения бота")
    # the new version is trained in the background; the report follows it
    expect(page.locator("#intent-perf tr[data-intent=lost_parcel]")).to_have_count(1, timeout=120_000)
    shoot(page, shots, "intents-02-report-ru")
    # the one refused request is the deliberate 409 above
    watched.assert_clean(allowed_console=(*admin_ui.REFUSED, "status of 409 (Conflict)"))
