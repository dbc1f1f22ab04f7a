"""The campaigns screen in a real browser (Debian's chromium, Playwright) against a real server with the demo
workspace: a supervisor saves a segment while its audience count follows the rules, creates a campaign with a
text per language, starts it and watches its stats, pauses and cancels it; the screen speaks Russian too; agents
get no campaigns."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from kommutator.config import load_settings
from kommutator.demo.seed import seed
from kommutator.migrate import upgrade

from . import test_web_browser as web
from .live_server import bound_socket, run_server
from .test_web_browser import NOT_LOGGED_IN, Watched, log_in
from .test_web_workspace import admin_api

playwright, browser, context, watched = web.playwright, web.browser, web.context, web.watched
DB: dict[str, Path] = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("web-campaigns")
    sock, port = bound_socket()
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(data_dir=data_dir, listen_port=port, public_base_url=base,
                             database_url=f"sqlite+aiosqlite:///{data_dir / 'kommutator.db'}")
    asyncio.run(upgrade(settings.database_url))
    assert asyncio.run(seed(settings, bot=False)) is True
    DB["path"] = data_dir / "kommutator.db"
    with run_server(settings, sock) as served:
        yield served


def api(page: Page, path: str) -> Any:
    """What the API answers the logged-in page (same cookie)."""
    return page.evaluate("async (p) => (await fetch(p)).json()", f"/api/v1{path}")


def contacts(where: str = "1 = 1") -> int:
    """Counted in the database file itself, not through the code under test."""
    with sqlite3.connect(DB["path"]) as db:
        return int(db.execute(f"SELECT count(*) FROM contacts WHERE merged_into_id IS NULL AND {where}")
                   .fetchone()[0])


def test_supervisor_creates_a_segment_and_a_campaign_starts_it_and_watches_its_stats(server: str,
                                                                                     watched: Watched) -> None:
    page = watched.page
    log_in(page, "olga")
    page.select_option("#lang-select", "en")
    link = page.locator("#main-nav [data-campaigns-section]")
    expect(link).to_have_text("Campaigns")
    link.click()
    view = page.locator("#campaigns-view")
    expect(view).to_be_visible()
    expect(page.locator("#inbox-view")).to_be_hidden()

    everyone, russian = contacts(), contacts("language = 'ru'")
    assert everyone > russian > 0
    expect(page.locator("#cmp-audience")).to_have_text(f"Audience: {everyone:,} contacts")
    page.select_option("#cmp-seg-language", "ru")
    expect(page.locator("#cmp-audience")).to_have_text(f"Audience: {russian:,} contacts")
    page.fill("#cmp-seg-name", "Russian speakers")
    page.click("#cmp-seg-save")
    expect(page.locator("#cmp-notice")).to_have_text("Segment “Russian speakers” saved.")
    box = page.locator("#cmp-segments input[data-segment='Russian speakers']")
    expect(box).to_be_checked()

    page.fill("#cmp-name", "Spring <sale>")
    page.fill("#cmp-text-en", "Hi {{first_name}}, spring sale!")
    page.fill("#cmp-text-ru", "Здравствуйте, {{first_name}}! Весенняя распродажа.")
    page.select_option("#cmp-purpose", "service")
    page.fill("#cmp-quiet-from", "0")
    page.fill("#cmp-quiet-to", "0")
    page.click("#cmp-create")
    expect(page.locator("#cmp-notice")).to_contain_text("Campaign “Spring <sale>” created")
    row = page.locator("#cmp-table tbody tr").first
    expect(row.locator("td").first).to_have_text("Spring <sale>")  # a name is text, never markup
    expect(row.locator("[data-stat=status]")).to_have_text("draft")

    row.locator("[data-action=start]").click()
    expect(row.locator("[data-stat=targeted]")).to_have_text(str(russian))
    expect(row.locator("[data-stat=status]")).to_have_text("running")
    campaign = api(page, "/campaigns")["items"][0]
    assert campaign["stats"]["targeted"] == russian and campaign["texts"]["ru"].startswith("Здравствуйте")
    # The server's worker takes the recipients: each one is written or skipped with a reason, and the table
    # follows (every few seconds) until nobody is pending.
    expect(row.locator("[data-stat=status]")).to_have_text("done", timeout=30_000)
    stats = api(page, f"/campaigns/{campaign['id']}")["stats"]
    assert stats["pending"] == 0 and stats["skipped"] + stats["queued"] + stats["sent"] + stats["failed"] == russian
    expect(row.locator("[data-stat=skipped]")).to_have_text(
        str(stats["skipped"]) if not stats["skipped_reasons"] else
        f"{stats['skipped']} (" + ", ".join(f"{k.replace('_', ' ')}: {n}" for k, n in
                                             stats["skipped_reasons"].items()) + ")")

    # A second campaign is paused and cancelled from the table.
    page.fill("#cmp-name", "Autumn")
    page.fill("#cmp-quiet-from", "21")
    page.fill("#cmp-quiet-to", "9")
    page.fill("#cmp-per-minute", "1")
    page.click("#cmp-create")
    second = page.locator("#cmp-table tbody tr").first
    expect(second.locator("td").first).to_have_text("Autumn")
    second.locator("[data-action=start]").click()
    expect(second.locator("[data-action=pause]")).to_be_visible()
    second.locator("[data-action=pause]").click()
    expect(second.locator("[data-stat=status]")).to_have_text("paused")
    page.once("dialog", lambda d: d.accept())
    second.locator("[data-action=cancel]").click()
    expect(second.locator("[data-stat=status]")).to_have_text("cancelled")
    assert api(page, "/campaigns")["items"][0]["stats"]["cancelled"] > 0

    page.select_option("#lang-select", "ru")
    expect(link).to_have_text("Рассылки")
    expect(page.locator("#cmp-seg-save")).to_have_text("Сохранить сегмент")
    expect(page.locator("#cmp-table tbody tr").first.locator("[data-stat=status]")).to_have_text("отменена")
    watched.assert_clean(NOT_LOGGED_IN)


def test_agents_get_no_campaigns(server: str, watched: Watched) -> None:
    page = watched.page
    log_in(page, "john")
    page.goto("/#campaigns")
    expect(page.locator("#inbox-view")).to_be_visible()
    expect(page.locator("#main-nav [data-campaigns-section]")).to_have_count(0)
    expect(page.locator("#campaigns-view")).to_be_hidden()
    watched.assert_clean(NOT_LOGGED_IN)


def test_a_supervisor_edits_a_draft_picks_a_template_and_sees_refusals_beside_the_fields(server: str,
                                                                                         watched: Watched) -> None:
    with admin_api(server) as admin:
        r = admin.post("/message-templates", json={"name": "spring_sale", "language": "en",
                                                   "body": "Sale on {{item}}!", "parameters": ["item"]})
        assert r.status_code == 201, r.text
    page = watched.page
    log_in(page, "olga")
    page.select_option("#lang-select", "en")
    page.locator("#main-nav [data-campaigns-section]").click()
    page.fill("#cmp-seg-name", "Everyone to edit")
    page.click("#cmp-seg-save")
    expect(page.locator("#cmp-segments input[data-segment='Everyone to edit']")).to_be_checked()
    page.fill("#cmp-name", "Draft one")
    page.fill("#cmp-text-en", "Hello {{first_name}}")
    page.click("#cmp-create")
    row = page.locator("#cmp-table tbody tr").first
    expect(row.locator("td").first).to_have_text("Draft one")

    # The draft opens in the form with its values; saving changes it instead of making another.
    page.fill("#cmp-name", "")
    row.locator("[data-action=edit]").click()
    expect(page.locator("#cmp-form-title")).to_have_text("Edit the draft “Draft one”")
    expect(page.locator("#cmp-name")).to_have_value("Draft one")
    expect(page.locator("#cmp-text-en")).to_have_value("Hello {{first_name}}")
    expect(page.locator("#cmp-create")).to_have_text("Save changes")
    page.fill("#cmp-name", "Draft two")
    page.fill("#cmp-timezone", "Mars/Base")
    page.click("#cmp-create")
    expect(page.locator("#cmp-form [data-path=timezone] .field__error")).to_have_text(
        "'Mars/Base' is not a time zone; use a name like Europe/Moscow.")
    page.fill("#cmp-timezone", "Europe/Moscow")
    # A template instead of the text: choosing it shows its parameters; one left empty is refused beside them.
    page.select_option("#cmp-template", "spring_sale")
    expect(page.locator("#cmp-param-item")).to_be_visible()
    page.fill("#cmp-text-en", "")
    page.click("#cmp-create")
    expect(page.locator("#cmp-params .field__error").last).to_have_text(
        "The template 'spring_sale' needs the parameters item; give them.")
    expect(page.locator("#cmp-form [data-path=timezone] .field__error")).to_be_hidden()
    page.fill("#cmp-param-item", "{{city|shoes}}")
    page.fill("#cmp-per-minute", "120")
    page.fill("#cmp-quiet-from", "22")
    page.fill("#cmp-quiet-to", "8")
    page.select_option("#cmp-purpose", "service")
    page.fill("#cmp-starts-at", "2030-06-01T09:30")
    page.click("#cmp-create")
    expect(page.locator("#cmp-notice")).to_have_text("Campaign “Draft two” saved.")
    expect(page.locator("#cmp-form-title")).to_have_text("New campaign")
    expect(page.locator("#cmp-create")).to_have_text("Create campaign")
    expect(row.locator("td").first).to_have_text("Draft two")
    saved = api(page, "/campaigns")["items"][0]
    assert (saved["name"], saved["template"], saved["parameters"], saved["texts"]) == (
        "Draft two", "spring_sale", {"item": "{{city|shoes}}"}, {})
    assert (saved["per_minute"], saved["quiet_from"], saved["quiet_to"], saved["purpose"], saved["timezone"]) == (
        120, 22, 8, "service", "Europe/Moscow")
    assert saved["starts_at"].startswith("2030-06-01")
    assert len([c for c in api(page, "/campaigns")["items"] if c["name"].startswith("Draft")]) == 1

    # Opened again, it shows the template and its parameter; once started it can no longer be edited.
    row.locator("[data-action=edit]").click()
    expect(page.locator("#cmp-template")).to_have_value("spring_sale")
    expect(page.locator("#cmp-param-item")).to_have_value("{{city|shoes}}")
    expect(page.locator("#cmp-starts-at")).to_have_value("2030-06-01T09:30")
    page.click("#cmp-edit-cancel")
    expect(page.locator("#cmp-name")).to_have_value("")
    expect(page.locator("#cmp-params")).to_be_hidden()
    row.locator("[data-action=start]").click()
    expect(row.locator("[data-stat=status]")).to_have_text("running")
    expect(row.locator("[data-action=edit]")).to_have_count(0)
    watched.assert_clean((*NOT_LOGGED_IN, "the server responded with a status of 422"))
