"""The "Bot flows" administration screen in a real browser: the demo's default flow is listed with its channel;
a broken definition shows each problem at its place and is not saved; a fixed one saves a new version; a new flow
in YAML is created on another channel and disabled.

Same set-up as test_web_admin.py (Debian's chromium, a real uvicorn server with the demo workspace, every page
watched for CSP violations and script errors). Screenshots go to the folder printed at the start (``pytest -s``).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from playwright.sync_api import BrowserContext, Page, expect

from kommutator.bot.flow import load_default

from . import test_web_admin as admin_ui
from .test_web_browser import Watched, log_in

playwright = admin_ui.playwright
browser = admin_ui.browser
context = admin_ui.context
watched = admin_ui.watched
server = admin_ui.server
shots = admin_ui.shots
shoot = admin_ui.shoot


def open_flows(page: Page) -> None:
    admin_ui.open_section(page, "flows")
    expect(page.locator("#flow-table")).to_be_visible()


def flow_row(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(".flow-row", has=page.locator(".flow-row__name", has_text=name))


def test_a_broken_flow_shows_its_problems_in_place_and_a_fixed_one_is_a_new_version(
        watched: Watched, context: BrowserContext, shots: Path) -> None:
    page = watched.page
    log_in(page, "admin")
    open_flows(page)
    default = flow_row(page, "Default")
    expect(default.locator(".flow-row__version")).to_have_text("v1")
    expect(default.locator(".flow-row__channels")).to_have_text("Website (API), Shop website chat")  # the demo: both
    expect(default.locator(".flow-row__enabled")).to_have_text("enabled")
    shoot(page, shots, "flows-01-list")

    default.locator(".flow-edit").click()
    area = page.locator("#flow-source")
    expect(area).to_be_visible()
    expect(page.locator("#flow-channels input:checked")).to_have_count(2)
    good = area.input_value()
    assert '"lookup_order"' in good
    area.fill(good.replace('"next": "lookup_order"', '"next": "lookup"', 1))
    page.click(".flow-check")
    problem = page.locator(".flow-problem--error", has=page.locator(".flow-problem__where",
                                                                    has_text="nodes.ask_order.next"))
    expect(problem.locator(".flow-problem__message")).to_have_text("no node 'lookup'.")
    problem.locator(".flow-problem__where").click()
    selected = page.evaluate("() => { const a = document.querySelector('#flow-source');"
                             " return [a.value.slice(a.selectionStart, a.selectionEnd),"
                             " a.value.slice(a.selectionEnd, a.selectionEnd + 10)]; }")
    assert selected == ['"next"', ': "lookup"'], f"the click selects the key at fault: {selected}"
    shoot(page, shots, "flows-02-problems")

    page.click("#flow-form .form-submit")  # saving refuses it the same way, and nothing is saved
    expect(problem).to_be_visible()
    flows = context.request.get("/api/v1/bot/flows").json()["items"]
    assert [f["version"] for f in flows if f["name"] == "Default"] == [1]

    area.fill(good.replace("Я виртуальный помощник.", "Я помощник магазина.", 1))
    page.click("#flow-form .form-submit")
    expect(page.locator(".notice__text")).to_have_text("Saved “Default”, version 2.")
    expect(default.locator(".flow-row__version")).to_have_text("v2")
    watched.assert_clean(allowed_console=admin_ui.REFUSED)


def test_a_new_flow_in_yaml_on_another_channel_then_disabled(watched: Watched, context: BrowserContext,
                                                             shots: Path) -> None:
    page = watched.page
    log_in(page, "admin")
    admin_ui.api_post(context, "/channels", {"type": "api", "name": "Night line"})
    open_flows(page)
    page.click("#flow-new")
    expect(page.locator("#flow-source")).not_to_have_value("")
    page.fill("#flow-name", "Night")
    page.fill("#flow-description", "After hours")
    page.fill("#flow-source", yaml.safe_dump(load_default(), allow_unicode=True, sort_keys=False))
    page.locator("#flow-channels li", has_text="Night line").locator("input").check()
    shoot(page, shots, "flows-03-new-yaml")
    page.click("#flow-form .form-submit")
    expect(page.locator(".notice__text")).to_have_text("Saved “Night”, version 1.")
    night = flow_row(page, "Night")
    expect(night.locator(".flow-row__channels")).to_have_text("Night line")
    night.locator(".flow-toggle").click()
    expect(night.locator(".flow-row__enabled")).to_have_text("disabled")
    saved = [f for f in context.request.get("/api/v1/bot/flows").json()["items"] if f["name"] == "Night"]
    assert saved[0]["enabled"] is False
    night.locator(".flow-edit").click()
    expect(page.locator("#flow-versions li")).to_have_count(1)
    page.click(".flow-delete")
    page.click(".flow-delete-yes")
    expect(page.locator(".notice__text")).to_have_text("Deleted “Night”.")
    expect(flow_row(page, "Night")).to_have_count(0)
    watched.assert_clean(allowed_console=admin_ui.REFUSED)


def test_the_flows_screen_speaks_russian(watched: Watched, context: BrowserContext, shots: Path) -> None:
    page = watched.page
    log_in(page, "admin")
    open_flows(page)
    page.select_option("#lang-select", "ru")
    expect(page.locator(".mainnav__link[data-section=flows]")).to_have_text("Сценарии бота")
    expect(page.locator("#admin-view .admin__title")).to_have_text("Сценарии бота")
    flow_row(page, "Default").locator(".flow-edit").click()
    page.click(".flow-check")
    expect(page.locator(".flow-problems__ok")).to_have_text("Ошибок не найдено.")
    shoot(page, shots, "flows-04-russian-editor")
    watched.assert_clean(allowed_console=admin_ui.REFUSED)


def test_an_agent_cannot_open_the_flows_screen(watched: Watched, context: BrowserContext) -> None:
    page = watched.page
    log_in(page, "anna")
    page.goto("/#flows")
    expect(page.locator("#inbox-view")).to_be_visible()
    expect(page.locator("#admin-view")).to_be_hidden()
    expect(page.locator("#flow-table")).to_have_count(0)
    r = context.request.post("/api/v1/bot/flows", data={"name": "mine", "definition": load_default()},
                             headers=admin_ui.csrf(context))
    assert r.status == 403 and r.json()["code"] == "supervisor_required"
    watched.assert_clean(allowed_console=admin_ui.REFUSED)


def test_the_agent_sees_what_the_bot_said_and_its_summary(watched: Watched, context: BrowserContext, server: str,
                                                          shots: Path) -> None:
    import uuid

    import httpx

    from kommutator.demo.seed import DEMO_INBOUND_TOKEN

    page = watched.page
    log_in(page, "admin")
    page.click(".tab[data-view=all]")
    expect(page.locator(".conv-row").first).to_be_visible()
    contact = f"bot-{uuid.uuid4().hex[:8]}"
    for n, text in enumerate(["Здравствуйте", "Оставить жалобу", "Курьер опоздал на три часа"]):
        r = httpx.post(f"{server}/webhooks/1", headers={"Authorization": f"Bearer {DEMO_INBOUND_TOKEN}"},
                       json={"id": f"{contact}-{n}", "contact": {"id": contact, "name": "Вера Бот"}, "text": text})
        assert r.status_code == 200, r.text
        page.wait_for_timeout(700)  # the server's bot worker answers each message before the next
    row = page.locator(".conv-row").filter(has=page.locator(".conv-row__name", has_text="Вера Бот"))
    row.click()
    expect(page.locator("#timeline .msg--bot").first).to_contain_text("Здравствуйте! Я")
    summary = page.locator("#timeline .msg--note").filter(has_text="handed off")
    expect(summary).to_contain_text("Collected: complaint = Курьер опоздал на три часа", timeout=10_000)
    expect(page.locator("#timeline .msg--note").filter(has_text="set contact attribute last_complaint")).to_be_visible()
    # The summary also stands above the timeline, from the bot, until an agent answers (the admin's language
    # may have been switched to Russian by an earlier test of this module).
    expect(page.locator("#handover-title")).to_have_text(
        re.compile("What the bot learned before the hand-off|Что бот узнал до передачи оператору"))
    # ... in the reader's language, with what the customer asked and no step names of the flow.
    expect(page.locator("#handover-text")).to_contain_text(
        re.compile("(Collected|Собрано): complaint = Курьер опоздал на три часа"))
    expect(page.locator("#handover-text")).to_contain_text(
        re.compile("(The customer asked|Клиент спросил): «Здравствуйте»"))
    expect(page.locator("#handover-text")).not_to_contain_text("complaint_handoff")
    expect(summary.locator(".msg__sender")).to_have_text(re.compile("Private note · Bot|Внутренняя заметка · Бот"))
    shoot(page, shots, "flows-05-agent-sees-the-bot")
    watched.assert_clean(allowed_console=admin_ui.REFUSED)
