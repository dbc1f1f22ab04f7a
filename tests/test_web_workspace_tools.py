"""The workspace's tools in a real browser: canned responses, the knowledge base, labels, snooze, the people
screens, Russian, the notifications bell and typing. Server, browser and helpers as in test_web_workspace.py.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.sync_api import Browser, expect

from kommutator.db import Tx
from kommutator.notifications.actions import do_notify
from kommutator.runtime import Runtime

from . import test_web_workspace as ws
from .test_web_admin import run_async
from .test_web_browser import NOT_LOGGED_IN, Watched, log_in, row
from .test_web_workspace import RECORD_NOTIFICATIONS, SETTINGS, customer_says, live, new_page, open_row, shoot, user_id

playwright = ws.playwright
browser = ws.browser
context = ws.context
watched = ws.watched
server = ws.server
shots = ws.shots


# ---- canned responses, the knowledge base, labels and snooze -------------------------------------------------------

def test_canned_shortcut_knowledge_base_labels_and_snooze(watched: Watched, shots: Path) -> None:
    page = watched.page
    log_in(page, "admin")
    page.click(".mainnav__link[data-section=canned]")
    expect(page.locator("#admin-view")).to_have_attribute("data-section", "canned")
    page.click("#canned-create")
    page.fill("#canned-shortcut", "Has space")
    page.fill("#canned-title", "Greeting")
    page.fill("#canned-body", "Hello {contact.name}, this is {agent.name}.")
    page.click("#canned-form .form-submit")
    expect(page.locator("#canned-form [data-path=shortcut] .field__error")).to_be_visible()  # the server said why
    page.fill("#canned-shortcut", "greet")
    page.click("#canned-form .form-submit")
    expect(page.locator(".canned-row__shortcut", has_text="/greet")).to_be_visible()
    shoot(page, shots, "05-admin-canned")

    page.click(".mainnav__link[data-section=inbox]")
    page.click(".tab[data-view=all]")
    open_row(page, "Ivan Kuznetsov")
    page.fill("#reply-text", "")
    page.type("#reply-text", "/gr")
    suggestion = page.locator("#canned-suggestions .canned-item[data-shortcut=greet]")
    expect(suggestion).to_be_visible()
    shoot(page, shots, "06-canned-suggestion")
    page.keyboard.press("Enter")
    expect(page.locator("#reply-text")).to_have_value("Hello Ivan Kuznetsov, this is Alexei Admin.")

    page.click(".side-tab[data-panel=kb]")
    page.fill("#kb-search", "доставка")
    # Opening the panel searched for the customer's message; wait for this search's results, not those.
    expect(page.locator("#kb-results")).to_have_attribute("data-query", "доставка")
    hit = page.locator(".kb-hit", has=page.locator(".kb-hit__title", has_text="Сроки и стоимость доставки"))
    expect(hit).to_be_visible()
    hit.locator(".kb-hit__title").click()
    hit.locator(".kb-insert").click()
    value = page.locator("#reply-text").input_value()
    assert value.startswith("Hello Ivan Kuznetsov, this is Alexei Admin.\n\n") and len(value) > 80
    shoot(page, shots, "07-knowledge-base")
    page.click(".side-tab[data-panel=contact]")
    page.fill("#reply-text", "")

    page.click("#btn-labels")
    page.fill("#labels-input", "vip, refund")
    page.click("#labels-dialog .form-submit")
    expect(page.locator("#labels-dialog[open]")).to_have_count(0)
    expect(page.locator("#conv-labels .label-chip")).to_have_text(["refund", "vip"])
    with page.expect_response(lambda r: "label=vip" in r.url):
        page.fill("#label-filter", "vip")
    expect(row(page, "Ivan Kuznetsov")).to_be_visible()
    expect(page.locator(".conv-row")).to_have_count(1)
    page.fill("#label-filter", "")

    page.click("#btn-snooze")
    page.click("#snooze-dialog .quick-picks .btn >> nth=1")
    page.click("#snooze-dialog .form-submit")
    expect(page.locator("#conv-view")).to_have_attribute("data-status", "snoozed")
    expect(page.locator(".conv__snoozed time")).to_have_attribute("datetime", re.compile(r"T0[0-9]|T[12][0-9]"))
    page.click("#btn-reopen")
    expect(page.locator("#conv-view")).not_to_have_attribute("data-status", "snoozed")
    watched.assert_clean(allowed_console=(*NOT_LOGGED_IN, "status of 422", "status of 409"))


# ---- administration of people ------------------------------------------------------------------------------------

def test_admin_creates_a_user_with_team_skills_and_capacity(watched: Watched, shots: Path) -> None:
    page = watched.page
    log_in(page, "admin")
    page.click(".mainnav__link[data-section=users]")
    expect(page.locator("#user-table")).to_be_visible()
    anna = page.locator(".user-row", has=page.locator(".user-row__name", has_text="Anna Petrova"))
    expect(anna.locator(".user-row__teams")).to_contain_text("Support")
    shoot(page, shots, "08-admin-users")
    page.click("#user-create")
    email = f"petr.{uuid.uuid4().hex[:6]}@demo.kommutator.dev"
    page.fill("#user-name", "Petr Novak")
    page.fill("#user-email", email)
    page.fill("#user-password", "short")
    page.click("#user-form .form-submit")
    expect(page.locator("#user-form [data-path=password] .field__error")).to_be_visible()
    page.fill("#user-password", "a-long-enough-password")
    page.fill("#user-capacity", "4")
    page.locator("#user-form .choice-group label", has_text="Sales").locator("input").check()
    page.locator("#user-form .skill-level", has_text="orders").locator("select").select_option("3")
    page.click("#user-form .form-submit")
    petr = page.locator(".user-row", has=page.locator(".user-row__email", has_text=email))
    expect(petr.locator(".user-row__teams")).to_have_text("Sales")
    expect(petr.locator(".user-row__skills")).to_have_text("orders 3")
    expect(petr.locator(".user-row__load")).to_have_text("0 / 4")
    petr.locator(".user-toggle").click()
    expect(petr).to_have_class(re.compile(r"row--off"))

    page.click(".mainnav__link[data-section=teams]")
    sales = page.locator(".team-row", has=page.locator(".team-row__name", has_text="Sales"))
    expect(sales.locator(".team-row__members")).to_contain_text("Petr Novak")
    page.click(".mainnav__link[data-section=skills]")
    page.fill("#skill-name", "german")
    page.click("#skill-form .form-submit")
    expect(page.locator(".skill-row-admin__name", has_text="german")).to_be_visible()
    watched.assert_clean(allowed_console=(*NOT_LOGGED_IN, "status of 422"))


def test_the_workspace_speaks_russian(watched: Watched, shots: Path) -> None:
    page = watched.page
    log_in(page, "olga")  # Olga's language is Russian
    expect(page.locator("#connection-text")).to_have_text("На связи")
    expect(page.locator(".mainnav__link[data-section=canned]")).to_have_text("Шаблоны ответов")
    expect(page.locator(".mainnav__link[data-section=users]")).to_be_hidden()  # supervisors: canned responses only
    page.click(".tab[data-view=all]")
    page.locator(".conv-row").first.click()
    expect(page.locator("#btn-transfer")).to_have_text("Передать")
    expect(page.locator("#btn-snooze")).to_have_text("Отложить")
    expect(page.locator(".side-tab[data-panel=kb]")).to_have_text("База знаний")
    shoot(page, shots, "09-russian")
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


# ---- the notifications bell ----------------------------------------------------------------------------------------

def notify(user: int, conversation_id: int, title: str, severity: str) -> None:
    """Store a notification as the alerting code does, through a second runtime on the server's database."""
    async def go() -> None:
        rt = Runtime.build(SETTINGS["server"])
        await rt.db.start()

        async def job(tx: Tx) -> None:
            await do_notify(tx, user_ids=[user], kind="test.alert", title=title, body="<b>body</b>",
                            severity=severity, conversation_id=conversation_id)

        try:
            await rt.db.write(job)
        finally:
            await rt.db.close()

    run_async(go())


def test_the_bell_counts_notifications_and_opens_the_conversation(watched: Watched, server: str, shots: Path) -> None:
    page = watched.page
    page.context.add_init_script(RECORD_NOTIFICATIONS)
    log_in(page, "john")
    live(page)
    expect(page.locator("#bell-count")).to_be_hidden()
    emily = customer_says(server, "crm-1002", "Still waiting for my refund")["conversation_id"]
    title = "<img src=x onerror=window.__xss=1> SLA breached"
    notify(user_id(server, "john"), emily, title, "critical")
    notify(user_id(server, "anna"), emily, "For Anna only", "info")
    # Another process wrote them (its socket events reach only its own screens): a reconnect catches up.
    page.evaluate("window.kommutator.dropConnection(0)")
    expect(page.locator("#bell-count")).to_have_text("1")
    page.click("#bell")
    item = page.locator("#bell-list .bell-item").first
    expect(item.locator(".bell-item__title")).to_have_text(title)
    expect(item).to_have_class(re.compile(r"bell-item--critical"))
    expect(page.locator("#bell-list .bell-item", has_text="For Anna only")).to_have_count(0)
    shoot(page, shots, "11-notifications")
    item.locator(".bell-item__button").click()
    expect(page.locator("#conv-title")).to_have_text("Emily Clark")
    expect(page.locator("#bell-count")).to_be_hidden()
    assert page.evaluate("typeof window.__xss") == "undefined"
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


# ---- typing -----------------------------------------------------------------------------------------------------

def test_a_colleague_sees_the_agent_typing(watched: Watched, browser: Browser, server: str) -> None:
    anna = watched.page
    log_in(anna, "anna")
    live(anna)
    open_row(anna, "Ivan Kuznetsov")
    boss_ctx, boss_w = new_page(browser, server)
    try:
        boss = boss_w.page
        log_in(boss, "admin")
        live(boss)
        boss.click(".tab[data-view=all]")
        open_row(boss, "Ivan Kuznetsov")
        anna.type("#reply-text", "Let me check")
        expect(boss.locator("#typing-indicator")).to_have_text("Anna Petrova (agent) is typing…")
        expect(row(boss, "Ivan Kuznetsov").locator(".conv-row__subject--typing")).to_be_visible()
        expect(anna.locator("#typing-indicator")).to_be_hidden()  # nobody is told about their own typing
        anna.fill("#reply-text", "")
        anna.locator("#reply-text").blur()
        expect(boss.locator("#typing-indicator")).to_be_hidden(timeout=8000)  # stopped: idle for 4 s
        boss_w.assert_clean(allowed_console=NOT_LOGGED_IN)
    finally:
        boss_ctx.close()
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def test_an_administrator_changes_their_own_password_only_with_the_current_one(watched: Watched) -> None:
    from .test_web_browser import PASSWORDS

    page = watched.page
    _, old = PASSWORDS["admin"]
    log_in(page, "admin")
    page.click(".mainnav__link[data-section=users]")
    me = page.locator(".user-row", has=page.locator(".user-row__name", has_text="Alexei Admin"))
    me.locator(".user-edit").click()
    expect(page.locator("#user-current-password")).to_be_visible()  # only on your own user
    page.fill("#user-password", "a-new-admin-password")
    page.click("#user-form .form-submit")
    expect(page.locator("#user-form [data-path=current_password] .field__error")).to_be_visible()
    page.fill("#user-current-password", "not-my-password")
    page.click("#user-form .form-submit")
    expect(page.locator("#user-form [data-path=current_password] .field__error")).to_contain_text("not your current")
    page.fill("#user-current-password", old)
    page.click("#user-form .form-submit")
    expect(page.locator("#user-table")).to_be_visible()
    expect(page.locator("#workspace-view")).to_be_visible()  # the session it was changed in stays
    me.locator(".user-edit").click()  # and back, for the tests after this one
    page.fill("#user-password", old)
    page.fill("#user-current-password", "a-new-admin-password")
    page.click("#user-form .form-submit")
    expect(page.locator("#user-table")).to_be_visible()
    anna = page.locator(".user-row", has=page.locator(".user-row__name", has_text="Anna Petrova"))
    anna.locator(".user-edit").click()
    expect(page.locator("#user-current-password")).to_have_count(0)  # someone else's is a reset
    expect(page.locator("#user-form [data-path=password] .field__hint")).to_contain_text("revokes")
    page.click("#user-form .form-cancel")
    watched.assert_clean(allowed_console=(*NOT_LOGGED_IN, "status of 422", "status of 403"))


def test_a_demoted_supervisors_open_workspace_loses_the_supervisor_screens_at_once(watched: Watched,
                                                                                   server: str) -> None:
    page = watched.page
    log_in(page, "olga")
    live(page)
    page.click(".mainnav__link[data-section=canned]")
    expect(page.locator("#admin-view")).to_have_attribute("data-section", "canned")
    olga = user_id(server, "olga")
    with ws.admin_api(server) as api:
        assert api.patch(f"/users/{olga}", json={"role": "agent"}).status_code == 200
        expect(page.locator("#main-nav")).to_be_hidden()  # told over the socket, not on the next safety refresh
        expect(page.locator("#admin-view")).to_be_hidden()
        expect(page.locator("#inbox-view")).to_be_visible()
        assert api.patch(f"/users/{olga}", json={"role": "supervisor"}).status_code == 200
    expect(page.locator(".mainnav__link[data-section=canned]")).to_be_visible()
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)
