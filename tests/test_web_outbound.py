"""Writing first in a real browser: "New conversation" from the top bar finds the customer, checks the channel's
rule while the agent types (a refusal in the agent's language), sends, and opens the new conversation; the
customer card shows the preferred channel and starts a conversation too. Same set-up as test_web_workspace.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from kommutator.config import load_settings
from kommutator.demo.seed import seed
from kommutator.migrate import upgrade

from . import test_web_browser as web
from .live_server import bound_socket, run_server
from .test_web_admin import run_async
from .test_web_browser import NOT_LOGGED_IN, TIMEOUT_MS, Watched, log_in
from .test_web_workspace import admin_api, customer_says, live

playwright = web.playwright
browser = web.browser
context = web.context
watched = web.watched

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("web-outbound")
    sock, port = bound_socket()
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(data_dir=data_dir, listen_port=port, public_base_url=base,
                             database_url=f"sqlite+aiosqlite:///{data_dir / 'kommutator.db'}")
    run_async(upgrade(settings.database_url))
    assert run_async(seed(settings)) is True
    with run_server(settings, sock) as served:
        yield served


def test_an_agent_starts_a_conversation_from_the_top_bar_and_the_card(watched: Watched, server: str) -> None:
    name = f"Oleg Outbound {uuid.uuid4().hex[:4]}"
    external = f"crm-o-{uuid.uuid4().hex[:6]}"
    first = customer_says(server, external, "Hello, I ordered a sofa.", contact={"name": name})
    stranger = f"Vera Nochannel {uuid.uuid4().hex[:4]}"
    with admin_api(server) as api:
        r = api.post(f"/conversations/{first['conversation_id']}/status", json={"status": "resolved"})
        assert r.status_code == 200, r.text
        r = api.post("/contacts", json={"name": stranger, "email": "vera@example.com"})
        assert r.status_code == 201, r.text

    page = watched.page
    log_in(page, "admin")
    live(page)
    # A customer with no channel that can carry a first message: the rule's sentence shows before sending.
    page.click("#new-conversation")
    dialog = page.locator("#start-dialog")
    expect(dialog).to_be_visible()
    page.fill("#out-search", "Vera Nochannel")
    page.locator(".out__pick", has_text=stranger).click()
    page.fill("#out-text", "We have a question about your order.")
    expect(page.locator("#out-check")).to_contain_text("None of the customer's channels can take this message")
    page.click("#out-send")
    expect(page.locator("#out-error")).to_contain_text("None of the customer's channels")

    # Another customer, who wrote on the website: the preferred channel takes it.
    page.click("#out-contact-change")
    page.fill("#out-search", "Oleg Outbound")
    page.locator(".out__pick", has_text=name).click()
    expect(page.locator("#out-channel option").first).to_have_text("Preferred channel (api)")
    text = f"Your sofa ships tomorrow ({uuid.uuid4().hex[:6]})"
    page.fill("#out-text", text)
    expect(page.locator("#out-check")).to_have_attribute("data-allowed", "true")
    expect(page.locator("#out-check")).to_have_text("Goes by api.")
    page.click("#out-send")
    expect(dialog).to_have_count(0)
    expect(page.locator("#conv-title")).to_have_text(name)
    expect(page.locator("#timeline .msg--agent .msg__text", has_text=text)).to_have_count(1)

    # The card: the preferred channel, and a second start refused while this conversation is open.
    card = page.locator("#contact-body")
    expect(card.locator(".contact__preferred")).to_have_text("api")
    card.locator("#contact-start").click()
    expect(page.locator("#start-dialog #out-title")).to_contain_text(name)
    page.fill("#out-text", "One more thing")
    page.click("#out-send")
    expect(page.locator("#out-error")).to_contain_text("already has an open conversation")
    watched.assert_clean(allowed_console=(*NOT_LOGGED_IN, "status of 422", "status of 409"))


def test_choosing_a_template_asks_for_its_parameters_and_a_missing_one_is_refused_beside_them(
        watched: Watched, server: str) -> None:
    name = f"Tanya Template {uuid.uuid4().hex[:4]}"
    first = customer_says(server, f"crm-t-{uuid.uuid4().hex[:6]}", "Where is my order?", contact={"name": name})
    template = f"order_ready_{uuid.uuid4().hex[:4]}"
    with admin_api(server) as api:
        r = api.post(f"/conversations/{first['conversation_id']}/status", json={"status": "resolved"})
        assert r.status_code == 200, r.text
        r = api.post("/message-templates", json={"name": template, "language": "en",
                                                 "body": "Order {{order}} is ready.", "parameters": ["order"]})
        assert r.status_code == 201, r.text

    page = watched.page
    log_in(page, "admin")
    live(page)
    page.click("#new-conversation")
    page.fill("#out-search", "Tanya Template")
    page.locator(".out__pick", has_text=name).click()
    page.select_option("#out-mode", "template")
    page.select_option("#out-template", label=f"{template} (en)")
    expect(page.locator("#out-param-order")).to_be_visible()
    page.click("#out-send")
    expect(page.locator("#out-params-error")).to_have_text(
        f"The template '{template}' needs the parameters order; give them.")
    page.fill("#out-param-order", "A-17")
    expect(page.locator("#out-check")).to_have_attribute("data-allowed", "true")
    expect(page.locator("#out-params-error")).to_be_hidden()
    page.click("#out-send")
    expect(page.locator("#start-dialog")).to_have_count(0)
    expect(page.locator("#timeline .msg--agent .msg__text", has_text="Order A-17 is ready.")).to_have_count(1)
    watched.assert_clean(allowed_console=(*NOT_LOGGED_IN, "status of 422"))
