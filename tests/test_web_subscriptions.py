"""The "Event subscriptions" administration screen in a real browser: an administrator subscribes a receiver on
loopback, copies the secret shown once, sends a test event the receiver verifies with it, sees a real event
delivered by the server's worker in the log and sends it again."""

from __future__ import annotations

import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from kommutator.common import webhook_signing as signing

from . import test_web_browser as web
from .test_web_admin import REFUSED, api_post, open_section, server  # noqa: F401  (fixture)
from .test_web_browser import Watched, log_in

playwright = web.playwright
browser = web.browser
context = web.context
watched = web.watched


class Receiver:
    def __init__(self) -> None:
        self.secret = ""
        self.got: list[tuple[bool, dict[str, Any]]] = []  # (signature valid, body)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                ok = bool(receiver.secret) and signing.verify(
                    receiver.secret, self.headers["webhook-id"], self.headers["webhook-timestamp"], body,
                    self.headers["webhook-signature"])
                receiver.got.append((ok, json.loads(body)))
                self.send_response(200 if ok else 401)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/kommutator"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_admin_subscribes_a_crm_tests_it_and_reads_the_log(watched: Watched, context: BrowserContext,
                                                            receiver: Receiver) -> None:
    page = watched.page
    log_in(page, "admin")
    open_section(page, "subscriptions")
    page.click("#sub-new")
    page.fill("#sub-name", "Shop CRM")
    page.fill("#sub-url", receiver.url)
    page.check("#sub-events input[value='contact.created']")
    page.check("#sub-events input[value='message.created']")
    page.click("#sub-save")
    secret = page.locator("#sub-secret code")
    expect(secret).to_contain_text("whsec_")
    receiver.secret = secret.inner_text()
    row = page.locator(".sub-row").filter(has_text="Shop CRM")
    expect(row.locator(".sub-row__events")).to_have_text("message.created, contact.created")
    expect(row.locator(".badge")).to_have_text("On")

    row.locator(".sub-test").click()
    expect(page.locator("#sub-notice")).to_contain_text("The receiver answered HTTP 200")
    assert receiver.got[-1][0] and receiver.got[-1][1]["type"] == "subscription.test"

    made = api_post(context, "/contacts", {"name": "Ирина <b>Покупатель</b>", "email": "irina@example.com"})
    row.locator(".sub-log").click()
    delivered = page.locator(".delivery-row[data-status=delivered]")
    for _ in range(20):  # the server's worker sends within its one-second pass; the log is read again on demand
        if delivered.count():
            break
        page.wait_for_timeout(500)
        page.click("#sub-back")
        page.locator(".sub-row").filter(has_text="Shop CRM").locator(".sub-log").click()
    expect(delivered).to_have_count(1)
    expect(delivered).to_contain_text("contact.created")
    ok, body = receiver.got[-1]
    assert ok and body["type"] == "contact.created" and body["data"]["contact"]["id"] == made["id"]
    assert body["data"]["contact"]["name"] == "Ирина <b>Покупатель</b>"

    delivered.locator(".delivery-replay").click()
    expect(page.locator("#sub-notice")).to_contain_text("Queued to be sent again")
    watched.assert_clean(allowed_console=REFUSED)


class FakeCrmServer:
    """Answers every lookup with the same card (one value is hostile markup, which must show as text)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                body = json.dumps({"tier": "VIP", "note": "<img src=x onerror=alert(1)>",
                                   "orders": [{"number": "55501", "status": "в пути"}]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/lookup"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_the_crm_card_shows_on_the_customer_card(watched: Watched, context: BrowserContext) -> None:
    crm = FakeCrmServer()
    try:
        page = watched.page
        log_in(page, "admin")
        headers = {"X-CSRF-Token": context.request.get("/api/v1/auth/me").json()["csrf_token"]}
        r = context.request.put("/api/v1/integrations/crm", data={"url": crm.url, "enabled": True}, headers=headers)
        assert r.ok, r.text()
        channel = api_post(context, "/channels", {"type": "api", "name": "CRM card shop"})
        token = channel["generated_credentials"]["inbound_token"]
        r = context.request.post(f"/webhooks/{channel['id']}", data={
            "id": "crm-card-1", "contact": {"id": "vip-77", "name": "Карточка Клиентова"}, "text": "Где заказ?"},
            headers={"Authorization": f"Bearer {token}"})
        assert r.ok, r.text()
        row = page.locator(".conv-row").filter(has=page.locator(".conv-row__name", has_text="Карточка Клиентова"))
        row.first.click()
        crm_section = page.locator(".contact__crm")
        expect(crm_section).to_have_attribute("data-status", "ok", timeout=15_000)
        expect(crm_section.locator(".contact__crm-value[data-key=tier]")).to_have_text("VIP")
        expect(crm_section.locator(".contact__crm-value[data-key=note]")).to_have_text("<img src=x onerror=alert(1)>")
        expect(crm_section.locator(".contact__crm-order")).to_have_text("55501 · в пути")

        # The customer asks by phone to get no more messages here: the agent withdraws the consent on the card.
        conversation_id = r.json()["conversation_id"]
        contact_id = context.request.get(f"/api/v1/conversations/{conversation_id}").json()["contact_id"]
        r = context.request.patch(f"/api/v1/contacts/{contact_id}", headers=headers, data={
            "consents": [{"channel_type": "api", "granted": True, "marketing": True,
                          "source": "signed up on the site"}]})
        assert r.ok, r.text()
        page.reload()
        row.first.click()
        consent = page.locator(".contact__consent[data-channel-type=api]")
        expect(consent).to_have_attribute("data-granted", "true", timeout=15_000)
        consent.locator(".contact__consent-withdraw").click()
        expect(consent).to_have_attribute("data-granted", "false")
        expect(consent.locator(".contact__consent-source")).to_contain_text("withdrawn at the customer's request")
        stored = context.request.get(f"/api/v1/contacts/{contact_id}").json()["consents"]
        assert [(x["granted"], x["marketing"]) for x in stored] == [(False, False)]

        # A subject access request: the card's "Export data" downloads everything about the person.
        with page.expect_download() as download:
            page.click("#contact-export")
        archive = zipfile.ZipFile(download.value.path())
        data = json.loads(archive.read("data.json"))
        assert data["contact_id"] == contact_id
        assert [c["name"] for c in data["tables"]["contacts"]] == ["Карточка Клиентова"]
        assert data["tables"]["crm_cards"][0]["data"]["tier"] == "VIP"
        watched.assert_clean(allowed_console=REFUSED)
    finally:
        crm.close()


def test_admin_sets_the_crm_and_a_retention_rule_and_counts_first(watched: Watched, context: BrowserContext) -> None:
    crm = FakeCrmServer()
    try:
        page = watched.page
        log_in(page, "admin")
        open_section(page, "privacy")
        page.fill("#crm-url", crm.url)
        page.check("#crm-enabled")
        page.fill("#crm-timeout", "2")
        page.click("#crm-save")
        expect(page.locator("#priv-notice")).to_have_text("Saved.")
        expect(page.locator("#crm-secret")).to_contain_text("whsec_")
        stored = context.request.get("/api/v1/integrations/crm").json()
        assert (stored["url"], stored["enabled"], stored["timeout_seconds"]) == (crm.url, True, 2)

        page.select_option("#ret-kind", "raw_events")
        page.fill("#ret-days", "3650")
        page.click("#ret-add")
        row = page.locator(".ret-row[data-kind=raw_events]")
        expect(row).to_contain_text("Raw provider payloads")
        expect(row).to_contain_text("All channels")
        page.click("#ret-count")
        expect(page.locator("#ret-result")).to_contain_text("Would go now:")
        expect(page.locator("#ret-result")).to_contain_text("Raw provider payloads: 0")
        page.once("dialog", lambda d: d.accept())
        page.click("#ret-apply")
        expect(page.locator("#ret-result")).to_contain_text("Removed:")
        expect(row).to_contain_text("0 removed")
        row.locator(".ret-delete").click()
        expect(page.locator(".ret-row")).to_have_count(0)
        watched.assert_clean(allowed_console=REFUSED)
    finally:
        crm.close()
