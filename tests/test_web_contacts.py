"""The customer card in a real browser: identities, edit, merge two customers, split an identity off.

Same set-up as test_web_browser.py (Debian's chromium, a real uvicorn server with the demo workspace, every page
watched for CSP violations and script errors). Each test makes its own customers through the API channel's
webhook, so the tests do not depend on one another. Screenshots go to a temporary folder whose path is printed
(``pytest -s`` shows it); set KOMMUTATOR_SCREENSHOTS to keep them somewhere else.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Dialog, Locator, Page, expect

from kommutator.config import load_settings
from kommutator.demo.seed import DEMO_INBOUND_TOKEN, DEMO_USERS, seed
from kommutator.migrate import upgrade

from . import test_web_browser as web
from .live_server import bound_socket, run_server
from .test_web_admin import run_async
from .test_web_browser import NOT_LOGGED_IN, Watched, log_in

# The browser, its per-test context and the watched page come from test_web_browser; the server is this module's.
playwright = web.playwright
browser = web.browser
context = web.context
watched = web.watched

# The edit test provokes a refused save on purpose; the browser logs it as a console error.
REFUSED = (*NOT_LOGGED_IN, "the server responded with a status of 422")
ADMIN = next((email, password) for email, password, role, _name in DEMO_USERS if role == "admin")
DEMO_CHANNEL = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("web-contacts")
    sock, port = bound_socket()
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(data_dir=data_dir, listen_port=port, public_base_url=base,
                             database_url=f"sqlite+aiosqlite:///{data_dir / 'kommutator.db'}")
    run_async(upgrade(settings.database_url))
    # The workspace itself is under test here: customers' messages reach agents without the bot's greeting.
    assert run_async(seed(settings, bot=False)) is True
    with run_server(settings, sock) as served:
        yield served


@pytest.fixture(scope="module")
def admin_api(server: str) -> Iterator[httpx.Client]:
    """The REST API as the administrator (a cookie session with its CSRF token), to arrange what a test needs."""
    with httpx.Client(base_url=f"{server}/api/v1", timeout=10) as client:
        r = client.post("/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
        assert r.status_code == 200, r.text
        client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        yield client


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("KOMMUTATOR_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("contact-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the customer card: {folder}")
    return folder


def shoot(page: Page, shots: Path, name: str) -> None:
    page.wait_for_timeout(150)  # let focus rings and the last render settle
    page.screenshot(path=str(shots / f"{name}.png"))


def tag() -> str:
    return uuid.uuid4().hex[:6]


def inbound(server: str, contact: dict[str, Any], text: str, *, channel_id: int = DEMO_CHANNEL,
            token: str = DEMO_INBOUND_TOKEN) -> None:
    """A customer's message through an API channel's webhook, as the integrator's system sends it."""
    r = httpx.post(f"{server}/webhooks/{channel_id}", headers={"Authorization": f"Bearer {token}"},
                   json={"id": f"m-{uuid.uuid4().hex}", "contact": contact, "text": text})
    assert r.status_code == 200, r.text


def contact_of(api: httpx.Client, external_id: str) -> dict[str, Any]:
    items = api.get("/contacts", params={"q": external_id}).json()["items"]
    assert len(items) == 1, f"expected one contact with identity {external_id}, got {items}"
    found: dict[str, Any] = items[0]
    return found


def conversations_of(api: httpx.Client, contact_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get("/conversations", params={"contact_id": contact_id}).json()["items"]
    return items


def open_customer(page: Page, name: str) -> None:
    """Open the first conversation of the customer from the list's "All" view."""
    page.click(".tab[data-view=all]")
    page.locator(".conv-row").filter(has=page.locator(".conv-row__name", has_text=name)).first.click()
    expect(page.locator("#contact-card .contact__name")).to_have_text(name)


def card(page: Page) -> Locator:
    return page.locator("#contact-card")


# ---- the tests ------------------------------------------------------------------------------------------------

def test_an_agent_edits_a_contact_and_it_persists(watched: Watched, server: str, admin_api: httpx.Client,
                                                  shots: Path) -> None:
    page = watched.page
    t = tag()
    name = f"Pavel Edit {t}"
    inbound(server, {"id": f"ed-{t}", "name": name}, f"Please update my details ({t})")
    contact = contact_of(admin_api, f"ed-{t}")
    admin_api.patch(f"/contacts/{contact['id']}", json={"attributes": {"segment": "regular", "tier": 2}})

    log_in(page, "john")
    open_customer(page, name)
    expect(card(page).locator(".contact__attributes")).to_contain_text("segment")
    page.click("#contact-edit")
    dialog = page.locator("#contact-edit-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#contact-edit-name")).to_be_focused()
    expect(page.locator("#contact-edit-name")).to_have_value(name)
    expect(dialog.locator(".attr-row")).to_have_count(2)

    new_name = f"Pavel Edited {t}"
    page.fill("#contact-edit-name", new_name)
    page.fill("#contact-edit-email", f"Pavel.{t}@Example.com")
    page.fill("#contact-edit-phone", "call me maybe")
    page.select_option("#contact-edit-language", "ru")
    # Only supervisors choose a personal manager (docs/access.md): an agent sees the field, disabled, and why.
    expect(page.locator("#contact-edit-manager")).to_be_disabled()
    expect(dialog.locator(".field[data-path=manager_id] .field__hint")).to_contain_text("Only a supervisor")
    dialog.locator(".attr-row[data-key=segment] .attr-row__value").fill("vip")
    dialog.locator(".attr-row[data-key=tier] .attr-row__remove").click()
    page.click("#contact-edit-add-attribute")
    dialog.locator(".attr-row").last.locator(".attr-row__key").fill("city")
    dialog.locator(".attr-row").last.locator(".attr-row__value").fill("Kazan")

    # The server refuses the phone: the error stands next to the phone field and the summary names the field.
    dialog.locator(".form-submit").click()
    phone = dialog.locator(".field[data-path=phone]")
    expect(phone).to_have_class(re.compile(r"field--invalid"))
    expect(phone.locator(".field__error")).to_be_visible()
    expect(dialog.locator(".form-error")).to_have_text(
        "Phone: This is not a phone number: use digits, spaces, brackets and dashes, with + in front.")
    expect(page.locator("#contact-edit-phone")).to_be_focused()
    shoot(page, shots, "01-edit-error")

    page.fill("#contact-edit-phone", "+7 912 345-67-89")
    dialog.locator(".form-submit").click()
    expect(dialog).to_have_count(0)
    expect(card(page).locator(".contact__name")).to_have_text(new_name)
    expect(card(page).locator(".contact__notice")).to_contain_text(new_name)
    expect(card(page).locator(".contact__language")).to_have_text("Russian")
    expect(page.locator("#conv-title")).to_have_text(new_name)
    shoot(page, shots, "02-edited-card")

    stored = admin_api.get(f"/contacts/{contact['id']}").json()
    assert stored["name"] == new_name
    assert stored["email"] == f"pavel.{t}@example.com"
    assert stored["phone"] == "+7 912 345-67-89"
    assert stored["language"] == "ru"
    assert stored["attributes"] == {"segment": "vip", "city": "Kazan"}  # tier removed, its number type gone with it
    assert stored["manager_id"] is None

    # It persists: a reload shows the saved card.
    page.reload()
    open_customer(page, new_name)
    expect(card(page).locator(".contact__attributes")).to_contain_text("Kazan")
    watched.assert_clean(allowed_console=REFUSED)


def test_merging_two_customers_shows_one_customer_with_both_conversations(
        watched: Watched, server: str, admin_api: httpx.Client, shots: Path) -> None:
    page = watched.page
    t = tag()
    support = next(x for x in admin_api.get("/teams").json() if x["name"] == "Support")
    made = admin_api.post("/channels", json={"type": "api", "name": f"Mobile app {t}", "team_id": support["id"]})
    assert made.status_code == 201, made.text
    second = made.json()
    name_a, name_b = f"Nadia Orlova {t}", f"N. Orlova {t}"
    subject_a, subject_b = f"Where is parcel {t}?", f"App login fails {t}"
    inbound(server, {"id": f"web-{t}", "name": name_a}, subject_a)
    inbound(server, {"id": f"app-{t}", "name": name_b, "email": f"nadia.{t}@example.com"}, subject_b,
            channel_id=second["id"], token=second["generated_credentials"]["inbound_token"])
    a, b = contact_of(admin_api, f"web-{t}"), contact_of(admin_api, f"app-{t}")
    conv_b = conversations_of(admin_api, b["id"])[0]

    log_in(page, "admin")  # merging is for supervisors and administrators
    open_customer(page, name_a)
    history = card(page).locator(".contact__conv-item")
    expect(history).to_have_count(1)
    page.click("#contact-merge")
    dialog = page.locator("#contact-merge-dialog")
    expect(page.locator("#contact-merge-search")).to_be_focused()
    page.fill("#contact-merge-search", f"Orlova {t}")
    result = dialog.locator(f".merge-result[data-contact-id='{b['id']}']")
    expect(result).to_contain_text(name_b)
    expect(result).to_contain_text(f"nadia.{t}@example.com")
    expect(dialog.locator(f".merge-result[data-contact-id='{a['id']}']")).to_have_count(0)  # not itself
    shoot(page, shots, "03-merge-search")
    result.click()

    # Both cards side by side; the customer of this conversation remains unless the other is picked.
    keep = dialog.locator(".merge-card--keep")
    expect(keep).to_have_attribute("data-contact-id", str(a["id"]))
    expect(keep.locator(".merge-card__fate")).to_have_text("remains")
    expect(dialog.locator(".merge-card--gone")).to_contain_text(name_b)
    expect(dialog.locator(".merge-card--gone .merge-card__conversations")).to_have_text("1")
    expect(dialog.locator("#contact-merge-summary")).to_contain_text(f"“{name_a}” remains")
    dialog.locator(f".merge-card[data-contact-id='{b['id']}'] input[type=radio]").check()
    expect(dialog.locator("#contact-merge-summary")).to_contain_text(f"“{name_b}” remains")
    dialog.locator(f".merge-card[data-contact-id='{a['id']}'] input[type=radio]").check()
    expect(dialog.locator("#contact-merge-summary")).to_contain_text(f"“{name_a}” remains")
    shoot(page, shots, "04-merge-confirm")
    dialog.locator(".form-submit").click()
    expect(dialog).to_have_count(0)

    # One customer: both identities, both conversations (from both channels) in the card and in the list.
    expect(card(page).locator(".contact__notice")).to_contain_text(f"“{name_b}” was merged into “{name_a}”")
    expect(card(page).locator(".contact__identity")).to_have_count(2)
    expect(card(page).locator(".contact__email")).to_have_text(f"nadia.{t}@example.com")  # a blank filled in
    expect(history).to_have_count(2)
    expect(card(page).locator(".contact__history")).to_contain_text(subject_b)
    expect(card(page).locator(".contact__history")).to_contain_text(f"Mobile app {t}")
    # Both were open: the later one folds into the earliest (conversations/fold.py), so the list shows one open
    # conversation of the customer, which holds both threads; the card keeps both in the history.
    rows = page.locator(".conv-row").filter(has=page.locator(".conv-row__name", has_text=name_a))
    expect(rows).to_have_count(1)
    expect(page.locator(".conv-row__name", has_text=name_b)).to_have_count(0)
    shoot(page, shots, "05-merged-card")
    assert admin_api.get(f"/contacts/{b['id']}").status_code == 404
    assert {c["id"] for c in conversations_of(admin_api, a["id"])} >= {conv_b["id"]}

    # The other conversation opens from the card, and it is the same customer's.
    card(page).locator(f".contact__conv-item[data-conversation-id='{conv_b['id']}'] button").click()
    expect(page.locator("#conv-view")).to_have_attribute("data-conversation-id", str(conv_b["id"]))
    expect(page.locator("#conv-title")).to_have_text(name_a)
    expect(card(page).locator(".contact__conv--current")).to_contain_text(subject_b)
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def test_the_found_customer_may_be_the_one_that_remains(watched: Watched, server: str,
                                                        admin_api: httpx.Client) -> None:
    page = watched.page
    t = tag()
    name_a, name_b = f"Guest {t}", f"Boris Remains {t}"
    inbound(server, {"id": f"guest-{t}", "name": name_a}, f"Anonymous question {t}")
    inbound(server, {"id": f"boris-{t}", "name": name_b, "phone": "+79001234567"}, f"Known customer {t}")
    a, b = contact_of(admin_api, f"guest-{t}"), contact_of(admin_api, f"boris-{t}")
    log_in(page, "admin")  # merging is for supervisors and administrators
    open_customer(page, name_a)
    page.click("#contact-merge")
    dialog = page.locator("#contact-merge-dialog")
    page.fill("#contact-merge-search", f"boris-{t}")
    dialog.locator(f".merge-result[data-contact-id='{b['id']}']").click()
    dialog.locator(f".merge-card[data-contact-id='{b['id']}'] input[type=radio]").check()
    expect(dialog.locator(".merge-card--keep")).to_have_attribute("data-contact-id", str(b["id"]))
    dialog.locator(".form-submit").click()
    # This conversation now belongs to the customer that remained, and the card shows that customer.
    expect(card(page).locator(".contact__name")).to_have_text(name_b)
    expect(page.locator("#contact-body")).to_have_attribute("data-contact-id", str(b["id"]))
    expect(card(page).locator(".contact__conv-item")).to_have_count(2)
    expect(page.locator("#conv-title")).to_have_text(name_b)
    assert admin_api.get(f"/contacts/{a['id']}").status_code == 404
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def linked_customer(server: str, admin_api: httpx.Client, name: str) -> tuple[dict[str, Any], str]:
    """A customer with two identities: the second joined by the same verified email. Returns it and its tag."""
    t = tag()
    email = f"linked.{t}@example.com"
    inbound(server, {"id": f"one-{t}", "name": name, "email": email, "verified": ["email"]}, f"First ({t})")
    inbound(server, {"id": f"two-{t}", "name": f"{name} (2)", "email": email, "verified": ["email"]},
            f"Second ({t})")
    contact = contact_of(admin_api, f"one-{t}")
    assert [i["linked_by"] for i in contact["identities"]] == [None, "email"], contact["identities"]
    return contact, t


def test_a_supervisor_splits_an_identity_off(watched: Watched, server: str, admin_api: httpx.Client,
                                             shots: Path) -> None:
    page = watched.page
    name = f"Sofia Split {tag()}"
    contact, t = linked_customer(server, admin_api, name)
    log_in(page, "olga")  # a supervisor; her workspace is in Russian
    open_customer(page, name)
    identities = card(page).locator(".contact__identity")
    expect(identities).to_have_count(2)
    linked = identities.filter(has_text=f"two-{t}")
    expect(linked.locator(".contact__linked")).to_have_text("привязан по подтверждённой эл. почте")
    expect(card(page).locator(".contact__split")).to_have_count(2)
    shoot(page, shots, "06-linked-card-ru")

    linked.locator(".contact__split").click()
    dialog = page.locator("#contact-split-dialog")
    expect(dialog.locator("#contact-split-what")).to_contain_text(f"api:two-{t}")
    # Both identities are of the API type, so the conversations cannot be told apart and none move.
    expect(dialog.locator(".split-points")).to_contain_text("Обращения не переходят")
    expect(dialog.locator(".split-points")).to_contain_text(
        "Автоматическая привязка снимается: идентификатор был привязан по подтверждённой эл. почте.")
    expect(dialog.locator(".form-cancel")).to_be_focused()
    shoot(page, shots, "07-split-confirm")
    dialog.locator(".form-submit").click()
    expect(dialog).to_have_count(0)

    expect(identities).to_have_count(1)
    expect(identities.first).to_contain_text(f"one-{t}")
    expect(card(page).locator(".contact__split")).to_have_count(0)  # the only identity cannot be split off
    expect(card(page).locator(".contact__notice")).to_contain_text(f"api:two-{t}")
    shoot(page, shots, "08-after-split")
    split = contact_of(admin_api, f"two-{t}")
    assert split["id"] != contact["id"] and split["identities"][0]["linked_by"] is None
    assert len(contact_of(admin_api, f"one-{t}")["identities"]) == 1
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def test_an_agent_is_offered_no_merge_split_or_manager_choice(watched: Watched, server: str,
                                                               admin_api: httpx.Client) -> None:
    page = watched.page
    name = f"Oleg NoSplit {tag()}"
    contact, _t = linked_customer(server, admin_api, name)
    log_in(page, "john")
    open_customer(page, name)
    expect(card(page).locator(".contact__identity")).to_have_count(2)
    expect(card(page).locator(".contact__linked")).to_have_text("linked by verified email")
    expect(page.locator("#contact-edit")).to_be_visible()  # the card is drawn, with the actions agents have
    expect(card(page).locator(".contact__split")).to_have_count(0)
    expect(page.locator("#contact-merge")).to_have_count(0)
    page.click("#contact-edit")
    expect(page.locator("#contact-edit-manager")).to_be_disabled()
    page.keyboard.press("Escape")
    # The server agrees: an agent may not split, merge or choose a manager (docs/access.md).
    me = page.context.request.get("/api/v1/auth/me").json()
    csrf = {"X-CSRF-Token": me["csrf_token"]}
    r = page.context.request.post(
        f"/api/v1/contacts/{contact['id']}/identities/{contact['identities'][1]['id']}/split", headers=csrf)
    assert r.status == 403
    r = page.context.request.post(f"/api/v1/contacts/{contact['id']}/merge", headers=csrf,
                                  data={"other_id": contact["id"] + 1})
    assert r.status == 403 and r.json()["code"] == "supervisor_required"
    r = page.context.request.patch(f"/api/v1/contacts/{contact['id']}", headers=csrf,
                                   data={"manager_id": me["user"]["id"]})
    assert r.status == 403 and r.json()["code"] == "supervisor_required"
    watched.assert_clean(allowed_console=(*NOT_LOGGED_IN, "the server responded with a status of 403"))


def test_a_supervisor_chooses_the_personal_manager(watched: Watched, server: str, admin_api: httpx.Client) -> None:
    page = watched.page
    t = tag()
    name = f"Vera Manager {t}"
    inbound(server, {"id": f"mg-{t}", "name": name}, f"Who is my manager? ({t})")
    log_in(page, "olga")  # a supervisor; her workspace is in Russian
    open_customer(page, name)
    page.click("#contact-edit")
    manager = page.locator("#contact-edit-manager")
    expect(manager).to_be_enabled()
    offered = manager.locator("option").all_text_contents()
    assert "Anna Petrova" in offered and "Olga Smirnova" in offered
    assert "Alexei Admin" not in offered, "an administrator is not offered as a personal manager"
    page.select_option("#contact-edit-manager", label="Anna Petrova")
    page.locator("#contact-edit-dialog .form-submit").click()
    expect(page.locator("#contact-edit-dialog")).to_have_count(0)
    expect(card(page).locator(".contact__manager")).to_have_text("Anna Petrova")
    anna = next(u for u in admin_api.get("/users").json()["items"] if u["name"] == "Anna Petrova")
    assert contact_of(admin_api, f"mg-{t}")["manager_id"] == anna["id"]
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def test_hostile_contact_data_renders_as_text(watched: Watched, server: str, admin_api: httpx.Client,
                                              shots: Path) -> None:
    page = watched.page
    dialogs: list[str] = []

    def on_dialog(d: Dialog) -> None:  # alert() would open one: record it and close it
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    t = tag()
    name = "<img src=x onerror=alert(1)>"
    inbound(server, {"id": f"<b>x</b>-{t}", "name": name}, f"hello {t}")
    contact = contact_of(admin_api, f"-{t}")
    attrs = {"note": "<script>alert(2)</script><b>bold</b>", "<i>key</i>": "<img src=y onerror=alert(3)>"}
    assert admin_api.patch(f"/contacts/{contact['id']}", json={"attributes": attrs}).status_code == 200

    log_in(page, "admin")
    page.click(".tab[data-view=all]")
    page.locator(".conv-row__subject", has_text=f"hello {t}").click()
    expect(card(page).locator(".contact__name")).to_have_text(name)
    expect(card(page).locator(".contact__external-id")).to_have_text(f"<b>x</b>-{t}")
    attributes = card(page).locator(".contact__attributes")
    expect(attributes.locator("dt", has_text="<i>key</i>")).to_have_count(1)
    expect(attributes.locator("dd", has_text="<img src=y onerror=alert(3)>")).to_have_count(1)
    expect(attributes.locator("dd", has_text="<script>alert(2)</script><b>bold</b>")).to_have_count(1)
    expect(card(page).locator(".contact__conv-current")).to_be_visible()

    page.click("#contact-edit")
    expect(page.locator("#contact-edit-name")).to_have_value(name)
    expect(page.locator("#contact-edit-dialog .attr-row[data-key='<i>key</i>'] .attr-row__key")).to_have_value(
        "<i>key</i>")
    page.keyboard.press("Escape")
    expect(page.locator("#contact-edit-dialog")).to_have_count(0)
    # Another hostile customer, found by the merge search: its name and ids are shown as text as well.
    other = f"<b>Other</b><img src=x onerror=alert(4)> {t}"
    inbound(server, {"id": f"<script>alert(5)</script>{t}", "name": other}, f"hi again {t}")
    page.click("#contact-merge")
    page.fill("#contact-merge-search", f"alert(5)</script>{t}")
    found = page.locator("#contact-merge-dialog .merge-result")
    expect(found).to_have_count(1)
    expect(found.locator(".merge-result__name")).to_have_text(other)
    expect(found.locator(".chip")).to_have_text(f"api:<script>alert(5)</script>{t}")
    shoot(page, shots, "09-hostile-card")
    found.click()
    expect(page.locator("#contact-merge-dialog .merge-card--gone .merge-card__name")).to_have_text(other)
    expect(page.locator("#contact-merge-summary")).to_contain_text(f"“{other}”")

    counts = page.evaluate("""() => ({
        img: document.querySelectorAll('img[src="x"], img[src="y"]').length,
        script: document.querySelectorAll('#workspace-view script, dialog script').length,
        bold: document.querySelectorAll('#contact-card b, #contact-card i, dialog b').length,
    })""")
    assert counts == {"img": 0, "script": 0, "bold": 0}
    page.wait_for_timeout(300)  # let any onerror handler have its chance
    assert dialogs == []
    assert not [p for p in watched.requested_paths if p in ("/x", "/y")]
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def test_the_russian_ui_shows_russian_labels(watched: Watched, server: str, admin_api: httpx.Client,
                                             shots: Path) -> None:
    page = watched.page
    t = tag()
    name = f"Ирина Русская {t}"
    inbound(server, {"id": f"ru-{t}", "name": name}, f"Добрый день ({t})")
    contact = contact_of(admin_api, f"ru-{t}")
    admin_api.patch(f"/contacts/{contact['id']}", json={"language": "ru", "consents": [
        {"channel_type": "api", "granted": True, "source": "форма на сайте"}]})
    log_in(page, "olga")  # a supervisor (who may merge), whose locale is Russian
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    open_customer(page, name)
    c = card(page)
    expect(c.locator("dt").first).to_have_text("Имя")
    expect(c.locator(".contact__fields dt", has_text="Персональный менеджер")).to_have_count(1)
    expect(c.locator(".contact__language")).to_have_text("русский")
    subtitles = c.locator(".contact__subtitle")
    expect(subtitles.nth(0)).to_contain_text("Идентификаторы")
    expect(subtitles.nth(1)).to_have_text("Атрибуты")
    expect(subtitles.nth(2)).to_have_text("Согласия")
    expect(subtitles.nth(3)).to_have_text("Оценки")
    expect(subtitles.nth(4)).to_contain_text("Обращения")
    expect(c.locator(".contact__consent")).to_contain_text("согласие дано")
    expect(c.locator(".contact__consent")).to_contain_text("Источник: форма на сайте")
    expect(c.locator(".contact__conv-current")).to_have_text("это обращение")
    expect(page.locator("#contact-edit")).to_have_text("Изменить")
    expect(page.locator("#contact-merge")).to_have_text("Объединить с другим клиентом…")
    shoot(page, shots, "10-card-ru")

    page.click("#contact-edit")
    dialog = page.locator("#contact-edit-dialog")
    expect(dialog.locator(".kdialog__title")).to_have_text("Изменить данные клиента")
    expect(dialog.locator(".field[data-path=manager_id] .field__label")).to_have_text("Персональный менеджер")
    expect(dialog.locator(".form-submit")).to_have_text("Сохранить")
    expect(dialog.locator("#contact-edit-add-attribute")).to_have_text("+ Добавить атрибут")
    shoot(page, shots, "11-edit-ru")
    dialog.locator(".form-cancel").click()
    page.click("#contact-merge")
    dialog = page.locator("#contact-merge-dialog")
    expect(dialog.locator(".kdialog__title")).to_have_text("Объединить с другим клиентом")
    expect(dialog.locator(".merge-status")).to_have_text("Введите не меньше 2 символов.")
    page.fill("#contact-merge-search", f"nobody-{t}")
    expect(dialog.locator(".merge-status")).to_have_text(f"Других клиентов по запросу «nobody-{t}» нет.")
    # Switching the language (the dialog closed) re-draws the card in English and back.
    page.keyboard.press("Escape")
    page.select_option("#lang-select", "en")
    expect(page.locator("#contact-merge")).to_have_text("Merge with another customer…")
    expect(c.locator(".contact__subtitle").nth(2)).to_have_text("Consent")
    page.select_option("#lang-select", "ru")
    expect(page.locator("#contact-merge")).to_have_text("Объединить с другим клиентом…")
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def test_the_card_shows_past_ratings_and_marks_a_low_one(watched: Watched, server: str, admin_api: httpx.Client,
                                                         shots: Path) -> None:
    """A customer rated a resolved conversation (through the real rating question) and writes again: the card
    shows the rating, marked low, with their comment as text."""
    r = admin_api.put(f"/quality/csat/{DEMO_CHANNEL}", json={"enabled": True, "scale": "csat", "ask_comment": True})
    assert r.status_code == 200, r.text
    t = tag()
    name = f"Rita Rating {t}"
    inbound(server, {"id": f"rt-{t}", "name": name}, f"Where is my parcel? ({t})")
    contact = contact_of(admin_api, f"rt-{t}")
    [conv] = conversations_of(admin_api, contact["id"])
    r = admin_api.post(f"/conversations/{conv['id']}/status", json={"status": "resolved"})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 10
    while not any((m.get("payload") or {}).get("automatic") == "csat"
                  for m in admin_api.get(f"/conversations/{conv['id']}").json()["messages"]):
        assert time.monotonic() < deadline, "the customer was never asked to rate the conversation"
        time.sleep(0.1)
    inbound(server, {"id": f"rt-{t}", "name": name}, "2")
    inbound(server, {"id": f"rt-{t}", "name": name}, "<b>Courier</b> was rude")
    ratings = admin_api.get(f"/contacts/{contact['id']}").json()["ratings"]
    assert [(x["score"], x["comment"]) for x in ratings] == [(2, "<b>Courier</b> was rude")], ratings
    inbound(server, {"id": f"rt-{t}", "name": name}, f"Hello again ({t})")

    page = watched.page
    log_in(page, "admin")
    open_customer(page, name)
    rating = card(page).locator(".contact__rating")
    expect(rating).to_have_count(1)
    expect(rating.locator(".contact__rating-score")).to_have_text("2 of 5")
    expect(rating).to_have_class(re.compile(r"contact__rating--low"))
    expect(rating.locator(".contact__rating-comment")).to_have_text("<b>Courier</b> was rude")
    expect(card(page).locator(".contact__rating b")).to_have_count(0)
    shoot(page, shots, "12-card-ratings")
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)
