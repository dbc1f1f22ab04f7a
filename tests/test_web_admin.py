"""The administration screens in a real browser: channels and queues, for administrators only.

Same set-up as test_web_browser.py (Debian's chromium, a real uvicorn server with the demo workspace, every page
watched for CSP violations and script errors), plus delivery problems shown under a message in the timeline.
Screenshots of every screen are written to a temporary folder whose path is printed (``pytest -s`` shows it);
set KOMMUTATOR_SCREENSHOTS to a folder to keep them somewhere else.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from kommutator.config import load_settings
from kommutator.demo.seed import seed
from kommutator.migrate import upgrade

from . import test_web_browser as web
from .fakes.oauth import CLIENT_ID as OAUTH_CLIENT_ID
from .fakes.oauth import CLIENT_SECRET as OAUTH_CLIENT_SECRET
from .fakes.oauth import oauth_in_thread
from .live_server import bound_socket, free_port, run_server
from .test_web_browser import NOT_LOGGED_IN, Watched, log_in

# The browser, its per-test context and the watched page come from test_web_browser (pytest finds fixtures by
# name); the server below replaces that module's.
playwright = web.playwright
browser = web.browser
context = web.context
watched = web.watched

# The browser logs every refused fetch as a console error; these tests provoke some on purpose.
REFUSED = (*NOT_LOGGED_IN, "the server responded with a status of 422")


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to its end on a thread of its own: Playwright's sync API keeps a loop in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo workspace on a real server; outbound requests may reach loopback (for a channel that retries)."""
    data_dir = tmp_path_factory.mktemp("web-admin")
    sock, port = bound_socket()
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(data_dir=data_dir, listen_port=port, public_base_url=base,
                             database_url=f"sqlite+aiosqlite:///{data_dir / 'kommutator.db'}",
                             outbound_allow_hosts=["127.0.0.1"])
    run_async(upgrade(settings.database_url))
    assert run_async(seed(settings)) is True
    with run_server(settings, sock) as served:
        yield served


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("KOMMUTATOR_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("admin-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the administration screens: {folder}")
    return folder


def shoot(page: Page, shots: Path, name: str) -> None:
    """Save the whole screen: the window is made as tall as the scrolled pane's content for the picture."""
    page.wait_for_timeout(150)  # let focus rings and the last render settle
    size = page.viewport_size or {"width": 1400, "height": 900}
    tall = page.evaluate("""() => {
        const pane = [...document.querySelectorAll('#admin-view, #timeline')].find((e) => e.offsetParent !== null);
        return pane ? pane.scrollHeight - pane.clientHeight : 0;
    }""")
    page.set_viewport_size({"width": size["width"], "height": size["height"] + max(0, int(tall))})
    try:
        page.screenshot(path=str(shots / f"{name}.png"))
    finally:
        page.set_viewport_size(size)


def csrf(context: BrowserContext) -> dict[str, str]:
    """Headers for writes through the page's session (the cookie travels with context.request)."""
    me = context.request.get("/api/v1/auth/me")
    assert me.ok, me.text()
    return {"X-CSRF-Token": me.json()["csrf_token"]}


def api_post(context: BrowserContext, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = context.request.post(f"/api/v1{path}", data=body, headers=csrf(context))
    assert r.ok, r.text()
    result: dict[str, Any] = r.json()
    return result


def channels(context: BrowserContext) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = context.request.get("/api/v1/channels").json()
    return result


def open_section(page: Page, name: str) -> None:
    page.click(f".mainnav__link[data-section={name}]")
    expect(page.locator("#admin-view")).to_be_visible()
    expect(page.locator("#admin-view")).to_have_attribute("data-section", name)
    expect(page.locator("#inbox-view")).to_be_hidden()


def start_connect(page: Page, channel_type: str) -> None:
    page.click("#channel-connect")
    page.click(f"#type-picker .type-card[data-type={channel_type}]")
    expect(page.locator("#channel-form")).to_have_attribute("data-type", channel_type)


# ---- channels --------------------------------------------------------------------------------------------------

def test_admin_connects_an_api_channel_and_sees_its_secrets_once(watched: Watched, context: BrowserContext,
                                                                  server: str, shots: Path) -> None:
    page = watched.page
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    log_in(page, "admin")
    expect(page.locator("#main-nav")).to_be_visible()
    open_section(page, "channels")
    demo = page.locator(".channel-row", has=page.locator(".channel-row__name", has_text="Website (API)"))
    expect(demo).to_be_visible()
    expect(demo.locator(".channel-row__type")).to_have_text("API")
    expect(demo.locator(".channel-row__team")).to_have_text("Support")
    expect(demo.locator(".channel-row__queue")).to_have_text("General support")
    expect(demo.locator(".channel-row__enabled")).to_have_text("enabled")
    expect(demo.locator(".copyable__value")).to_have_text(f"{server}/webhooks/1")
    shoot(page, shots, "01-channels-list")

    # The webhook URL's copy button puts it on the clipboard.
    demo.locator("button.copy").click()
    expect(demo.locator("button.copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == f"{server}/webhooks/1"

    page.click("#channel-connect")
    expect(page.locator("#type-picker .type-card")).to_have_count(len(context.request.get(
        "/api/v1/channel-types").json()))
    shoot(page, shots, "02-channel-types")
    page.click("#type-picker .type-card[data-type=api]")
    form = page.locator("#channel-form")
    # The form comes from the type's schemas: settings with their descriptions, secrets as password inputs.
    outbound = form.locator(".schema-field[data-name=outbound_url]")
    expect(outbound.locator("input")).to_have_attribute("type", "url")
    expect(outbound.locator(".field__hint")).to_have_text("Where agent replies are delivered")
    expect(form.locator(".schema-field[data-name=inbound_token] input")).to_have_attribute("type", "password")
    expect(form.locator(".schema-field[data-name=outbound_secret] input")).to_have_attribute("type", "password")
    expect(form.locator("[data-path=name] .req")).to_be_visible()
    # The server generates the API channel's secrets when they are left blank, so they are not marked required.
    token_field = form.locator(".schema-field[data-name=inbound_token]")
    expect(token_field.locator("input")).to_have_attribute("placeholder", "Blank: generated by the server")
    expect(token_field.locator(".req")).to_have_count(0)
    # The server's own stop switch is not a field to fill in.
    expect(form.locator(".schema-field[data-name=outbound_disabled]")).to_have_count(0)

    name = f"Shop backend {uuid.uuid4().hex[:6]}"
    page.fill("#channel-name", name)
    page.select_option("#channel-team", label="Sales")
    page.select_option("#channel-queue", label="Orders")
    page.fill("#ch-settings-outbound_url", "https://crm.example/kommutator")
    shoot(page, shots, "03-channel-form")
    page.click("#channel-form .form-submit")

    created = page.locator("#channel-created")
    expect(created).to_be_visible()
    made = next(c for c in channels(context) if c["name"] == name)
    assert made["type"] == "api" and made["enabled"] is True
    assert made["settings"]["outbound_url"] == "https://crm.example/kommutator"
    assert made["credential_fields"] == ["inbound_token", "outbound_secret"]
    webhook = f"{server}/webhooks/{made['id']}"
    expect(created).to_have_attribute("data-channel-id", str(made["id"]))
    expect(page.locator("#created-webhook .copyable__value")).to_have_text(webhook)
    expect(page.locator("#created-setup")).to_contain_text("Authorization: Bearer <inbound_token>")
    expect(page.locator("#generated-secrets .secret-box__warning")).to_contain_text("will not be shown again")
    token = page.locator("#generated-secrets [data-secret=inbound_token] .copyable__value").inner_text()
    secret = page.locator("#generated-secrets [data-secret=outbound_secret] .copyable__value").inner_text()
    assert token.startswith("kmi") and secret.startswith("whsec_")
    shoot(page, shots, "04-channel-created")

    # The shown token is the channel's real one: a customer message authenticated with it is accepted.
    r = httpx.post(webhook, headers={"Authorization": f"Bearer {token}"},
                   json={"id": f"m-{uuid.uuid4().hex}", "contact": {"id": "c-1", "name": "Test"}, "text": "hello"})
    assert r.status_code == 200, r.text

    # Once: back in the list the secrets are gone from the page, and the API never returns them.
    page.click("#created-done")
    row = page.locator(".channel-row", has=page.locator(".channel-row__name", has_text=name))
    expect(row).to_be_visible()
    expect(row.locator(".channel-row__team")).to_have_text("Sales")
    expect(row.locator(".channel-row__queue")).to_have_text("Orders")
    expect(page.locator("#generated-secrets")).to_have_count(0)
    assert token not in page.content()
    assert token not in context.request.get("/api/v1/channels").text()
    watched.assert_clean(allowed_console=REFUSED)


def test_a_bad_setting_is_shown_next_to_the_form_and_nothing_is_created(watched: Watched, context: BrowserContext,
                                                                        shots: Path) -> None:
    page = watched.page
    log_in(page, "admin")
    open_section(page, "channels")
    before = len(channels(context))
    start_connect(page, "api")
    name = f"Broken {uuid.uuid4().hex[:6]}"
    page.fill("#channel-name", name)
    page.fill("#ch-settings-outbound_url", "not a url")
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/api/v1/channels")) as sent:
        page.click("#channel-form .form-submit")
    assert sent.value.status == 422
    outbound = page.locator("#channel-form .schema-field[data-name=outbound_url]")
    expect(outbound.locator(".field")).to_have_class(re.compile(r"field--invalid"))
    expect(outbound.locator(".field__error")).to_be_visible()
    expect(outbound.locator(".field__error")).to_contain_text("URL")
    expect(page.locator("#channel-form .form-error")).to_contain_text("settings.outbound_url")
    expect(page.locator("#ch-settings-outbound_url")).to_be_focused()
    shoot(page, shots, "05-channel-form-error")
    assert len(channels(context)) == before
    assert not [c for c in channels(context) if c["name"] == name]

    # Corrected, the same form goes through and the error is gone.
    page.fill("#ch-settings-outbound_url", "https://crm.example/hook")
    page.click("#channel-form .form-submit")
    expect(page.locator("#channel-created")).to_be_visible()
    assert len([c for c in channels(context) if c["name"] == name]) == 1
    watched.assert_clean(allowed_console=REFUSED)


def test_editing_a_channel_persists_and_keeps_its_secrets(watched: Watched, context: BrowserContext, server: str,
                                                         shots: Path) -> None:
    page = watched.page
    log_in(page, "admin")
    old = f"Partner API {uuid.uuid4().hex[:6]}"
    gone = "https://partner.example/old answered 410 Gone"
    made = api_post(context, "/channels", {"type": "api", "name": old, "settings": {
        "outbound_url": "https://partner.example/old", "outbound_disabled": gone}})
    token = made["generated_credentials"]["inbound_token"]
    open_section(page, "channels")
    row = page.locator(f".channel-row[data-channel-id='{made['id']}']")
    expect(row.locator(".badge--warn")).to_have_text("replies stopped")
    row.locator(".channel-edit").click()
    # Replies stopped by the server are explained above the form; saving it resumes them.
    expect(page.locator("#outbound-stopped")).to_contain_text(gone)

    form = page.locator("#channel-form")
    expect(page.locator("#channel-name")).to_have_value(old)
    # Secrets are never shown; a blank field keeps the stored one.
    expect(form.locator(".schema-field[data-name=inbound_token] .chip")).to_have_text("stored")
    expect(page.locator("#ch-credentials-inbound_token")).to_have_value("")
    expect(page.locator(".side-card .copyable__value")).to_have_text(f"{server}/webhooks/{made['id']}")
    new = f"Partner CRM {uuid.uuid4().hex[:6]}"
    page.fill("#channel-name", new)
    page.select_option("#channel-team", label="Support")
    page.fill("#ch-settings-outbound_url", "https://partner.example/replies")
    shoot(page, shots, "06-channel-edit")
    page.click("#channel-form .form-submit")
    expect(page.locator(".notice")).to_contain_text(new)
    expect(row.locator(".channel-row__name")).to_have_text(new)
    expect(row.locator(".channel-row__team")).to_have_text("Support")

    stored = context.request.get(f"/api/v1/channels/{made['id']}").json()
    assert stored["name"] == new and stored["settings"] == {"outbound_url": "https://partner.example/replies"}
    assert stored["team_id"] is not None
    expect(row.locator(".badge--warn")).to_have_count(0)
    webhook = f"{server}/webhooks/{made['id']}"
    message = {"id": f"m-{uuid.uuid4().hex}", "contact": {"id": "c-2"}, "text": "still works"}
    assert httpx.post(webhook, headers={"Authorization": f"Bearer {token}"}, json=message).status_code == 200

    # Disable and enable from the list.
    row.locator(".channel-toggle").click()
    expect(row.locator(".channel-row__enabled")).to_have_text("disabled")
    assert context.request.get(f"/api/v1/channels/{made['id']}").json()["enabled"] is False
    row.locator(".channel-toggle").click()
    expect(row.locator(".channel-row__enabled")).to_have_text("enabled")

    # The address names the section: a reload comes back to the channels, with the new name.
    page.reload()
    expect(page.locator("#admin-view")).to_have_attribute("data-section", "channels")
    expect(page.locator(f".channel-row[data-channel-id='{made['id']}'] .channel-row__name")).to_have_text(new)
    watched.assert_clean(allowed_console=REFUSED)


def test_a_hostile_channel_name_renders_as_text(watched: Watched, context: BrowserContext) -> None:
    page = watched.page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, "admin")
    name = "<img src=x onerror=alert(1)>"
    made = api_post(context, "/channels", {"type": "api", "name": name})
    api_post(context, "/queues", {"name": f"<b>q</b>{uuid.uuid4().hex[:4]}",
                                  "description": "<script>alert(2)</script>"})
    open_section(page, "channels")
    cell = page.locator(f".channel-row[data-channel-id='{made['id']}'] .channel-row__name")
    expect(cell).to_have_text(name)
    page.locator(f".channel-row[data-channel-id='{made['id']}'] .channel-edit").click()
    expect(page.locator("#channel-name")).to_have_value(name)
    expect(page.locator(".admin__title")).to_contain_text(name)
    open_section(page, "queues")
    expect(page.locator(".queue-row__name", has_text="<b>q</b>")).to_be_visible()
    page.wait_for_timeout(300)  # give any onerror handler its chance
    counts = page.evaluate("""() => ({
        img: document.querySelectorAll('img[src="x"]').length,
        bold: document.querySelectorAll('#admin-view b').length,
        script: document.querySelectorAll('#admin-view script').length,
    })""")
    assert counts == {"img": 0, "bold": 0, "script": 0}
    assert dialogs == []
    assert not [p for p in watched.requested_paths if p == "/x" or p.startswith("/x?")]
    watched.assert_clean(allowed_console=REFUSED)


# ---- queues ----------------------------------------------------------------------------------------------------

def test_admin_creates_a_queue_with_a_skill_and_business_hours(watched: Watched, context: BrowserContext,
                                                               shots: Path) -> None:
    page = watched.page
    log_in(page, "admin")
    open_section(page, "queues")
    billing = page.locator(".queue-row", has=page.locator(".queue-row__name", has_text="Billing"))
    expect(billing.locator(".queue-row__skills")).to_have_text("billing ≥ 2")
    orders = page.locator(".queue-row", has=page.locator(".queue-row__name", has_text=re.compile(r"^Orders$")))
    expect(orders.locator(".queue-row__strategy")).to_have_text("Round robin")
    expect(orders.locator(".queue-row__hours")).to_contain_text("Europe/Moscow")
    general = page.locator(".queue-row", has=page.locator(".queue-row__name", has_text="General support"))
    expect(general.locator(".queue-row__hours")).to_have_text("always open")
    shoot(page, shots, "07-queues-list")

    page.click("#queue-create")
    name = f"VIP orders {uuid.uuid4().hex[:6]}"
    page.fill("#queue-name", name)
    page.fill("#queue-description", "Customers with a personal manager")
    page.select_option("#queue-team", label="Sales")
    page.fill("#queue-priority", "5")
    page.select_option("#queue-strategy", "round_robin")
    page.click("#queue-add-skill")
    skill = page.locator("#queue-skills .skill-row").first
    skill.locator(".skill-row__skill").select_option(label="orders")
    skill.locator(".skill-row__level").select_option("3")
    page.check("#hours-custom")
    page.fill("#hours-timezone", "Europe/Moscow")
    saturday = page.locator(".hours__day[data-day=sat]")
    expect(saturday).to_have_class(re.compile(r"hours__day--closed"))
    saturday.locator(".hours__add").click()
    saturday.locator(".interval__from").fill("10:00")
    saturday.locator(".interval__to").fill("14:00")
    sunday = page.locator(".hours__day[data-day=sun]")
    sunday.locator(".hours__add").click()
    sunday.locator(".interval__from").fill("18:00")
    sunday.locator(".interval__to").fill("9:00")  # ends before it starts: the server says so, beside Sunday
    page.fill("#queue-sl_target_percent", "90")
    page.fill("#queue-sl_target_seconds", "30")
    page.select_option("#queue-manager_wait_expiry", "queue")
    page.click("#queue-form .form-submit")
    expect(sunday).to_have_class(re.compile(r"field--invalid"))
    expect(sunday.locator(".field__error")).to_contain_text("must be before the end 09:00")
    shoot(page, shots, "08-queue-form-error")
    assert not [q for q in context.request.get("/api/v1/queues").json() if q["name"] == name]

    sunday.locator(".interval button").click()  # remove the bad interval: Sunday is closed
    expect(sunday).to_have_class(re.compile(r"hours__day--closed"))
    expect(sunday.locator(".field__error")).to_be_hidden()  # the complaint went with the interval
    shoot(page, shots, "09-queue-form")
    page.click("#queue-form .form-submit")
    expect(page.locator(".notice")).to_contain_text(name)
    row = page.locator(".queue-row", has=page.locator(".queue-row__name", has_text=name))
    expect(row.locator(".queue-row__team")).to_have_text("Sales")
    expect(row.locator(".queue-row__priority")).to_have_text("5")
    expect(row.locator(".queue-row__strategy")).to_have_text("Round robin")
    expect(row.locator(".queue-row__skills")).to_have_text("orders ≥ 3")
    expect(row.locator(".queue-row__waiting")).to_have_text("0")
    expect(row.locator(".queue-row__hours")).to_contain_text(re.compile(r"(open|closed) now"))
    shoot(page, shots, "10-queue-created")

    queue = next(q for q in context.request.get("/api/v1/queues").json() if q["name"] == name)
    skills = {s["name"]: s["id"] for s in context.request.get("/api/v1/skills").json()}
    assert queue["required_skills"] == [{"skill_id": skills["orders"], "min_level": 3}]
    weekday = [["09:00", "18:00"]]
    assert queue["business_hours"] == {"timezone": "Europe/Moscow", "holidays": [], "days": {
        "mon": weekday, "tue": weekday, "wed": weekday, "thu": weekday, "fri": weekday, "sat": [["10:00", "14:00"]]}}
    assert (queue["priority"], queue["strategy"], queue["sl_target_percent"], queue["sl_target_seconds"],
            queue["manager_wait_expiry"], queue["description"]) == (5, "round_robin", 90, 30, "queue",
                                                                    "Customers with a personal manager")

    # Edit: the form shows what is stored; a change persists.
    row.locator(".queue-edit").click()
    expect(page.locator("#queue-name")).to_have_value(name)
    expect(page.locator(".hours__day[data-day=sat] .interval__from")).to_have_value("10:00")
    expect(page.locator("#queue-skills .skill-row__level")).to_have_value("3")
    page.fill("#queue-priority", "7")
    page.click("#queue-form .form-submit")
    expect(row.locator(".queue-row__priority")).to_have_text("7")
    assert context.request.get(f"/api/v1/queues/{queue['id']}").json()["priority"] == 7

    # Delete asks first; cancelling keeps it.
    row.locator(".queue-delete").click()
    expect(page.locator(".confirm")).to_contain_text(name)
    shoot(page, shots, "11-queue-delete-confirm")
    page.click("#queue-delete-cancel")
    expect(page.locator(".confirm")).to_have_count(0)
    expect(row).to_be_visible()
    row.locator(".queue-delete").click()
    page.click("#queue-delete-confirm")
    expect(row).to_have_count(0)
    assert context.request.get(f"/api/v1/queues/{queue['id']}").status == 404
    watched.assert_clean(allowed_console=REFUSED)


# ---- who sees it, and in which language -----------------------------------------------------------------------

def test_an_agent_sees_no_administration_and_the_api_refuses_anyway(watched: Watched,
                                                                   context: BrowserContext) -> None:
    page = watched.page
    log_in(page, "anna")
    expect(page.locator(".conv-row").first).to_be_visible()
    expect(page.locator("#main-nav")).to_be_hidden()
    expect(page.locator(".mainnav__link")).to_have_count(12)  # in the markup, never shown to her
    # Typing the address does not open the screens either.
    for section in ("channels", "users", "canned"):
        page.goto(f"/#{section}")
        expect(page.locator("#workspace-view")).to_be_visible()
        expect(page.locator("#inbox-view")).to_be_visible()
        expect(page.locator("#admin-view")).to_be_hidden()
        expect(page.locator("#admin-view .table")).to_have_count(0)

    headers = csrf(context)
    refused = [
        context.request.post("/api/v1/channels", data={"type": "api", "name": "mine"}, headers=headers),
        context.request.patch("/api/v1/channels/1", data={"name": "mine"}, headers=headers),
        context.request.post("/api/v1/queues", data={"name": "mine"}, headers=headers),
        context.request.patch("/api/v1/queues/1", data={"priority": 9}, headers=headers),
        context.request.delete("/api/v1/queues/1", headers=headers),
    ]
    assert [r.status for r in refused] == [403] * 5
    assert all(r.json()["code"] == "admin_required" for r in refused)
    # What agents may read carries no administration details.
    listed = context.request.get("/api/v1/channels").json()
    assert listed and all(c["webhook_url"] == "" and c["settings"] == {} for c in listed)
    watched.assert_clean(allowed_console=REFUSED)


def test_the_administration_screens_speak_russian(watched: Watched, context: BrowserContext, shots: Path) -> None:
    page = watched.page
    log_in(page, "admin")
    open_section(page, "queues")
    try:
        page.select_option("#lang-select", "ru")
        expect(page.locator(".mainnav__link[data-section=inbox]")).to_have_text("Обращения")
        expect(page.locator(".mainnav__link[data-section=channels]")).to_have_text("Каналы")
        expect(page.locator(".admin__title")).to_have_text("Очереди")
        expect(page.locator("#queue-create")).to_have_text("Новая очередь")
        expect(page.locator("#queue-table th").first).to_have_text("Очередь")
        general = page.locator(".queue-row", has=page.locator(".queue-row__name", has_text="General support"))
        expect(general.locator(".queue-row__hours")).to_have_text("круглосуточно")
        expect(general.locator(".queue-row__strategy")).to_have_text("Наименее загруженный")

        page.click("#queue-create")
        expect(page.locator("#queue-form legend").nth(2)).to_have_text("Часы работы")
        page.check("#hours-custom")
        expect(page.locator(".hours__day[data-day=mon] .hours__dayname")).to_have_text("Понедельник")
        expect(page.locator("#queue-form .form-submit")).to_have_text("Создать очередь")
        shoot(page, shots, "12-queue-form-ru")
        # A form that is open is re-translated in place, keeping what was typed.
        page.fill("#queue-name", "Черновик")
        page.select_option("#lang-select", "en")
        expect(page.locator("#queue-form .form-submit")).to_have_text("Create queue")
        expect(page.locator("#queue-name")).to_have_value("Черновик")
        page.select_option("#lang-select", "ru")

        open_section(page, "channels")
        expect(page.locator(".admin__title")).to_have_text("Каналы")
        expect(page.locator("#channel-connect")).to_have_text("Подключить канал")
        expect(page.locator("#channel-table th").first).to_have_text("Название")
        expect(page.locator(".channel-row__enabled").first).to_have_text("включён")
        expect(page.locator(".channel-row .copy").first).to_have_text("Копировать")
        shoot(page, shots, "13-channels-ru")
        start_connect(page, "telegram")
        expect(page.locator("#channel-form legend").first).to_have_text("Основное")
        expect(page.locator("#channel-form .form-submit")).to_have_text("Подключить канал")
        shoot(page, shots, "14-channel-form-ru")
    finally:
        page.select_option("#lang-select", "en")  # the admin's language is stored: leave it as the seed made it
    expect(page.locator("#channel-form .form-submit")).to_have_text("Connect channel")
    # The choice is saved in the background (after any save still on its way): wait for it to be stored.
    for _ in range(100):
        if context.request.get("/api/v1/auth/me").json()["user"]["locale"] == "en":
            break
        page.wait_for_timeout(100)
    assert context.request.get("/api/v1/auth/me").json()["user"]["locale"] == "en"
    watched.assert_clean(allowed_console=REFUSED)


# ---- delivery problems in the timeline --------------------------------------------------------------------------

def test_a_failed_or_retried_delivery_shows_why_under_the_message(watched: Watched, context: BrowserContext,
                                                                  server: str, shots: Path) -> None:
    page = watched.page
    log_in(page, "admin")
    # A channel whose replies go to a loopback port nobody listens on: every try fails and is retried.
    made = api_post(context, "/channels", {"type": "api", "name": "Flaky CRM",
                                           "settings": {"outbound_url": f"http://127.0.0.1:{free_port()}/hook"}})
    token = made["generated_credentials"]["inbound_token"]
    customer = f"Retry Customer {uuid.uuid4().hex[:4]}"
    r = httpx.post(f"{server}/webhooks/{made['id']}", headers={"Authorization": f"Bearer {token}"},
                   json={"id": f"m-{uuid.uuid4().hex}", "contact": {"id": f"rc-{uuid.uuid4().hex}", "name": customer},
                         "text": "Is anyone there?"})
    assert r.status_code == 200, r.text
    flaky_conv = r.json()["conversation_id"]

    # The demo channel has no outbound_url, so a reply on it fails for good.
    page.click(".tab[data-view=all]")
    page.locator(".conv-row", has=page.locator(".conv-row__name", has_text="Tom Becker")).click()
    expect(page.locator("#conv-title")).to_have_text("Tom Becker")
    reply = f"We ship to Kazakhstan ({uuid.uuid4().hex[:6]})"
    page.fill("#reply-text", reply)
    page.click("#send-button")
    sent = page.locator("#timeline .msg--agent", has=page.locator(".msg__text", has_text=reply))
    expect(sent.locator(".msg__status")).to_have_text("not delivered")
    reason = sent.locator(".msg__reason--failed")
    expect(reason).to_be_visible()
    expect(reason).to_contain_text("Not delivered:")
    expect(reason).to_contain_text("the channel has no outbound_url")
    shoot(page, shots, "15-timeline-failed")

    page.locator(f".conv-row[data-id='{flaky_conv}']").click()
    expect(page.locator("#conv-title")).to_have_text(customer)
    answer = f"Yes, we are here ({uuid.uuid4().hex[:6]})"
    page.fill("#reply-text", answer)
    page.click("#send-button")
    retried = page.locator("#timeline .msg--agent", has=page.locator(".msg__text", has_text=answer))
    expect(retried.locator(".msg__status")).to_have_text("sending…")
    muted = retried.locator(".msg__reason--retrying")
    expect(muted).to_contain_text("Retrying:")
    expect(muted).to_contain_text(re.compile(r"Delivery attempt \d of \d+ failed: cannot reach"))
    expect(retried.locator(".msg__reason--failed")).to_have_count(0)
    shoot(page, shots, "16-timeline-retrying")
    watched.assert_clean(allowed_console=REFUSED)


# ---- channel health --------------------------------------------------------------------------------------------

def test_a_channel_shows_its_health_and_tests_its_connection(watched: Watched, context: BrowserContext, server: str,
                                                            shots: Path) -> None:
    page = watched.page
    log_in(page, "admin")
    made = api_post(context, "/channels", {"type": "api", "name": f"Shop CRM {uuid.uuid4().hex[:6]}",
                                           "settings": {"outbound_url": f"{server}/no-such-hook"}})
    open_section(page, "channels")
    row = page.locator(f".channel-row[data-channel-id='{made['id']}']")
    expect(row.locator(".channel-health__status")).to_have_text("Not checked yet")
    row.locator(".channel-edit").click()
    health = page.locator("#channel-health")
    expect(health.locator(".channel-health__status")).to_have_text("Not checked yet")
    expect(health.locator(".channel-health__receive")).to_have_text("never")

    page.click("#channel-test")
    result = page.locator("#channel-test-result")
    expect(result.locator(".channel-test__summary")).to_have_text("The test found a problem.")
    expect(result.locator(".channel-test__check[data-ok=false]")).to_contain_text("404")
    expect(health.locator(".channel-health__status")).to_have_text("Failing")
    expect(health.locator(".channel-health__headline")).to_have_text("The channel's settings are incomplete or wrong.")
    expect(health.locator(".channel-health__detail")).to_contain_text("check outbound_url")
    expect(health.locator(".channel-health__label")).to_contain_text("Last error")
    shoot(page, shots, "17-channel-health-failing")

    page.fill("#ch-settings-outbound_url", f"{server}/")
    page.click("#channel-form .form-submit")
    expect(page.locator(".notice")).to_contain_text(made["name"])
    row.locator(".channel-edit").click()
    page.click("#channel-test")
    expect(page.locator("#channel-test-result .channel-test__summary")).to_have_text("Connection works.")
    expect(health.locator(".channel-health__status")).to_have_text("Working")
    page.click(".admin__actions .btn")  # back to the list
    expect(row.locator(".channel-health__status")).to_have_text("Working")
    stored = context.request.get(f"/api/v1/channels/{made['id']}").json()
    assert stored["health"]["status"] == "ok" and stored["health"]["error_code"] == "config"
    watched.assert_clean(allowed_console=REFUSED)


def test_a_mailbox_signs_in_with_oauth_from_the_channel_screen(watched: Watched, context: BrowserContext,
                                                               server: str, shots: Path) -> None:
    """Sign in on the channel's side card: the browser goes to the provider's consent page and back, the channel
    screen says it worked, and the channel now holds the tokens (never shown)."""
    page = watched.page
    log_in(page, "admin")
    with oauth_in_thread() as provider:
        made = api_post(context, "/channels", {
            "type": "email", "name": f"Gmail {uuid.uuid4().hex[:6]}",
            "settings": {"address": "help@shop.example", "smtp_host": "127.0.0.1", "smtp_port": 9,
                         "smtp_security": "none", "auth": "oauth2", "oauth_provider": "custom",
                         "oauth_client_id": OAUTH_CLIENT_ID, "oauth_authorize_url": provider.authorize_endpoint,
                         "oauth_token_url": provider.token_endpoint, "oauth_scope": "https://mail.google.com/"},
            "credentials": {"oauth_client_secret": OAUTH_CLIENT_SECRET}})
        open_section(page, "channels")
        # Mail comes over SMTP or IMAP: an email channel shows no webhook URL, in its row or its side card.
        email_row = page.locator(f".channel-row[data-channel-id='{made['id']}']")
        expect(email_row.locator(".channel-row__webhook .copyable")).to_have_count(0)
        email_row.locator(".channel-edit").click()
        section = page.locator("#channel-signin-section")
        expect(section).to_contain_text("not signed in yet")
        expect(page.locator(".side-card .copyable__value", has_text="/webhooks/")).to_have_count(0)
        shoot(page, shots, "18-channel-oauth-sign-in")
        page.click("#channel-signin")
        expect(page.locator(".notice")).to_contain_text("Signed in: the channel can read and send mail.")
        assert "oauth=" not in page.url and page.url.endswith("#channels")
        assert [r["grant_type"] for r in provider.requests] == ["authorization_code"]
    page.locator(f".channel-row[data-channel-id='{made['id']}'] .channel-edit").click()
    expect(section.locator("[data-signed-in=true]")).to_be_visible()
    expect(page.locator("#channel-signin")).to_have_text("Sign in again")
    fields = context.request.get(f"/api/v1/channels/{made['id']}").json()["credential_fields"]
    assert {"oauth_access_token", "oauth_refresh_token"} <= set(fields)
