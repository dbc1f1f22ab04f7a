"""The web front end in a real browser: Debian's chromium driven by Playwright against a real uvicorn server.

One server (a fresh SQLite data folder with the demo workspace) and one browser serve the whole module; each
test gets its own browser context, so cookies and storage never leak between tests. Every page is watched for
Content-Security-Policy violations, uncaught script errors and requests leaving the server's origin.

The browser is never downloaded: without /usr/bin/chromium these tests fail and say how to install it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Playwright,
    Request,
    Response,
    expect,
    sync_playwright,
)

from kommutator.app import STATIC
from kommutator.config import load_settings
from kommutator.demo.seed import DEMO_INBOUND_TOKEN, DEMO_USERS, seed
from kommutator.migrate import upgrade

from .live_server import bound_socket, run_server

CHROMIUM = shutil.which("chromium")
MISSING_CHROMIUM = ("Debian's chromium is not installed, so the browser tests cannot run. Install it with "
                    "'apt-get install chromium' (CI installs it); these tests never download a browser.")
PASSWORDS = {email.split("@")[0]: (email, password) for email, password, _role, _name in DEMO_USERS}
TIMEOUT_MS = 10_000  # live updates arrive over the WebSocket in well under a second

# Records CSP violations from inside the page (Playwright's init scripts are not subject to the page's CSP).
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""


# ---- the server and the browser, shared by the module -------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, with the demo workspace in its own SQLite data folder."""
    data_dir = tmp_path_factory.mktemp("web-browser")
    sock, port = bound_socket()
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(data_dir=data_dir, listen_port=port, public_base_url=base,
                             database_url=f"sqlite+aiosqlite:///{data_dir / 'kommutator.db'}")
    asyncio.run(upgrade(settings.database_url))
    # The workspace itself is under test here: customers' messages reach agents without the bot's greeting.
    assert asyncio.run(seed(settings, bot=False)) is True
    with run_server(settings, sock) as served:
        assert served == base
        yield base


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.fail(MISSING_CHROMIUM)
    b = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"])
    try:
        yield b
    finally:
        b.close()


@dataclass
class Watched:
    """A page with everything it complained about."""

    page: Page
    origin: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    requested_paths: list[str] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)  # "METHOD path -> status", to name a console error

    def csp_violations(self) -> list[str]:
        seen = [m for m in self.console_errors if "Content Security Policy" in m or "Refused to" in m]
        try:
            seen += self.page.evaluate("window.__cspViolations || []")
        except Exception:  # the page may be mid-navigation; the console still has the messages
            pass
        return seen

    def assert_clean(self, allowed_console: tuple[str, ...] = ()) -> None:
        """No CSP violation, no uncaught error, no request leaving the origin, no unexpected console error."""
        assert self.csp_violations() == [], f"CSP violations: {self.csp_violations()}"
        assert self.page_errors == [], f"uncaught errors in the page: {self.page_errors}"
        assert self.foreign_requests == [], f"requests left the server: {self.foreign_requests}"
        unexpected = [m for m in self.console_errors if not any(a in m for a in allowed_console)]
        assert unexpected == [], f"console errors: {unexpected}; failed requests: {self.failed_responses}"


@pytest.fixture
def context(browser: Browser, server: str) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=server, locale="en-US", viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.add_init_script(WATCH_CSP)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def watched(context: BrowserContext, server: str) -> Watched:
    page = context.new_page()
    w = Watched(page, server)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            w.console_errors.append(msg.text)

    def on_request(request: Request) -> None:
        url = request.url
        if url.startswith(server):
            w.requested_paths.append(url[len(server):])
        elif not url.startswith(("data:", "blob:", "about:")):
            w.foreign_requests.append(url)

    def on_response(response: Response) -> None:
        if response.status >= 400 and response.url.startswith(server):
            w.failed_responses.append(f"{response.request.method} {response.url[len(server):]} -> {response.status}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: w.page_errors.append(str(exc)))
    page.on("request", on_request)
    page.on("response", on_response)
    return w


# Before logging in, the workspace asks /api/v1/auth/me whether a session exists; the 401 is expected and
# the browser logs every failed fetch as a console error.
NOT_LOGGED_IN = ("the server responded with a status of 401",)


def log_in(page: Page, who: str) -> None:
    email, password = PASSWORDS[who]
    page.goto("/")
    expect(page.locator("#login-view")).to_be_visible()
    page.fill("#login-email", email)
    page.fill("#login-password", password)
    page.click("#login-submit")
    expect(page.locator("#workspace-view")).to_be_visible()


def row(page: Page, contact_name: str) -> Locator:
    return page.locator(".conv-row").filter(has=page.locator(".conv-row__name", has_text=contact_name))


# ---- the tests ----------------------------------------------------------------------------------------------

def test_chromium_is_installed() -> None:
    assert CHROMIUM is not None, MISSING_CHROMIUM


def test_pages_have_no_inline_code_and_carry_the_csp(server: str) -> None:
    """What the CSP would block anyway must not be written in the first place."""
    for path in ("/", "/api/v1/docs"):
        r = httpx.get(server + path)
        assert r.status_code == 200
        assert "script-src 'self'" in r.headers["content-security-policy"]
        html = r.text
        assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None, f"inline script in {path}"
        assert re.search(r"<style\b|\sstyle=", html) is None, f"inline style in {path}"
    for path in ("/static/favicon.svg", "/static/docs.js", "/static/js/main.js", "/static/css/app.css",
                 "/static/vendor/swagger-ui/swagger-ui-bundle.js", "/static/vendor/swagger-ui/swagger-ui.css"):
        assert httpx.get(server + path).status_code == 200, path


def test_workspace_code_never_writes_html() -> None:
    """Customer text must go through textContent; keep HTML-writing APIs out of our own modules."""
    ours = [p for p in STATIC.rglob("*.js") if "vendor" not in p.parts]
    assert ours, "no JavaScript found under the static folder"
    risky = re.compile(r"\.(innerHTML|outerHTML)\s*\+?=|insertAdjacentHTML|document\.write|\beval\(|new Function\(")
    for path in ours:
        for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            assert not risky.search(line), f"{path.name}:{number} writes HTML: {line.strip()}"


def test_api_docs_render_offline_under_the_csp(watched: Watched) -> None:
    page = watched.page
    page.goto("/api/v1/docs")
    # Swagger UI parses a 1 MB bundle before it draws anything: on a busy machine that alone can take seconds.
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Kommutator API", timeout=60_000)
    # Every domain's section is listed, closed; opening one draws its operations.
    expect(page.locator(".opblock-tag")).to_have_count(len(page.evaluate(
        "fetch('/api/v1/openapi.json').then(r => r.json()).then(s => s.tags)")))
    page.locator(".opblock-tag[data-tag=conversations]").click()
    operation = page.locator(".opblock-summary-path", has_text=re.compile(r"^/api/v1/conversations$")).first
    expect(operation).to_be_visible()
    # expanding an operation renders parameters and schemas: more chances to break the CSP
    operation.click(timeout=60_000)
    expect(page.locator(".opblock.is-open .parameters-container, .opblock.is-open .opblock-section").first)\
        .to_be_visible(timeout=60_000)
    assert any(p.startswith("/static/vendor/swagger-ui/swagger-ui-bundle.js") for p in watched.requested_paths)
    assert "/static/docs.js" in {p.split("?")[0] for p in watched.requested_paths}
    watched.assert_clean()


def test_agent_reads_replies_notes_and_resolves(watched: Watched, context: BrowserContext) -> None:
    page = watched.page
    # A wrong password shows the server's explanation.
    page.goto("/")
    page.fill("#login-email", PASSWORDS["anna"][0])
    page.fill("#login-password", "not-the-password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("The email or password is wrong.")

    log_in(page, "anna")
    expect(page.locator("#me-name")).to_have_text("Anna Petrova")
    # "Mine" is the default view: Anna's own conversation, with name, status and last activity.
    ivan = row(page, "Ivan Kuznetsov")
    expect(ivan).to_be_visible()
    expect(ivan.locator(".badge")).to_have_attribute("data-status", "assigned")
    expect(ivan.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    expect(row(page, "Emily Clark")).to_have_count(0)
    # "All" shows her team's conversations too.
    page.click(".tab[data-view=all]")
    expect(row(page, "Emily Clark")).to_be_visible()
    expect(page.locator(".tab[data-view=all]")).to_have_attribute("aria-pressed", "true")

    ivan.click()
    conv = page.locator("#conv-view")
    expect(conv).to_be_visible()
    expect(page.locator("#conv-title")).to_have_text("Ivan Kuznetsov")
    timeline = page.locator("#timeline")
    customer = timeline.locator(".msg--customer").first
    expect(customer.locator(".msg__text")).to_contain_text("Где мой заказ 48213?")
    expect(customer.locator(".msg__channel")).to_have_attribute("data-channel-id", "1")
    expect(customer.locator(".msg__channel")).to_contain_text("#1")
    expect(customer.locator("time.msg__time")).not_to_have_text("")
    expect(timeline.locator(".msg--agent").first).to_contain_text("Проверяю заказ 48213")
    expect(timeline.locator(".msg--note").first).to_contain_text("скидку 10%")
    card = page.locator("#contact-card")
    expect(card.locator(".contact__name")).to_have_text("Ivan Kuznetsov")
    expect(card.locator(".contact__identity")).to_contain_text("crm-1001")
    expect(card.locator(".contact__attributes")).to_contain_text("segment")
    expect(card.locator(".contact__attributes")).to_contain_text("regular")

    # A reply to the customer.
    reply = f"Your parcel leaves today ({uuid.uuid4().hex[:6]})"
    page.fill("#reply-text", reply)
    page.click("#send-button")
    expect(timeline.locator(".msg--agent .msg__text", has_text=reply)).to_be_visible()
    expect(page.locator("#reply-text")).to_have_value("")
    # A private note: marked as such, and stored as a note (never sent).
    note = f"Offered a 10% discount ({uuid.uuid4().hex[:6]})"
    page.check("#note-toggle")
    expect(page.locator("#composer")).to_have_class(re.compile(r"composer--note"))
    page.fill("#reply-text", note)
    page.keyboard.press("Control+Enter")
    expect(timeline.locator(".msg--note .msg__text", has_text=note)).to_be_visible()
    stored = context.request.get("/api/v1/conversations/1").json()
    kinds = {m["text"]: (m["kind"], m["direction"]) for m in stored["messages"]}
    assert kinds[reply] == ("text", "out")
    assert kinds[note] == ("note", "internal")

    # Resolve, then the conversation is listed under "Resolved"; reopen it again.
    page.click("#btn-resolve")
    expect(conv).to_have_attribute("data-status", "resolved")
    expect(page.locator("#btn-resolve")).to_be_hidden()
    expect(page.locator("#btn-reopen")).to_be_visible()
    assert context.request.get("/api/v1/conversations/1").json()["status"] == "resolved"
    page.select_option("#status-filter", "resolved")
    expect(row(page, "Ivan Kuznetsov")).to_be_visible()
    expect(row(page, "Emily Clark")).to_have_count(0)
    page.click("#btn-reopen")
    expect(conv).to_have_attribute("data-status", "assigned")
    expect(row(page, "Ivan Kuznetsov")).to_have_count(0)  # no longer resolved

    # Assign to me: Emily's conversation belongs to John.
    page.select_option("#status-filter", "open")
    row(page, "Emily Clark").click()
    expect(page.locator("#conv-title")).to_have_text("Emily Clark")
    expect(page.locator("#btn-assign-me")).to_be_visible()
    page.click("#btn-assign-me")
    expect(page.locator(".conv__assignee")).to_contain_text("Anna Petrova")
    expect(page.locator("#btn-assign-me")).to_be_hidden()

    # Log out: back to the login form, and the session is gone.
    page.click("#logout-button")
    expect(page.locator("#login-view")).to_be_visible()
    assert context.request.get("/api/v1/auth/me").status == 401
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def test_customer_markup_stays_inert_text(watched: Watched, server: str) -> None:
    page = watched.page
    log_in(page, "admin")
    page.click(".tab[data-view=all]")
    expect(page.locator(".conv-row").first).to_be_visible()  # the list is loaded before the message arrives

    name = "<img src=x onerror=window.__xss=1>"
    text = "<script>window.__xss=2</script><b>bold</b>"
    r = httpx.post(f"{server}/webhooks/1", headers={"Authorization": f"Bearer {DEMO_INBOUND_TOKEN}"},
                   json={"id": f"xss-{uuid.uuid4().hex}", "contact": {"id": "x1", "name": name}, "text": text})
    assert r.status_code == 200, r.text

    # The live socket brings the new conversation into the list without a reload.
    hostile = page.locator(".conv-row__name").filter(has_text=name)
    expect(hostile).to_have_text(name)
    expect(page.locator(".conv-row__subject").filter(has_text=text)).to_have_text(text)
    row(page, name).click()
    expect(page.locator("#conv-title")).to_have_text(name)
    message = page.locator("#timeline .msg--customer .msg__text").last
    expect(message).to_have_text(text)
    expect(page.locator("#contact-card .contact__name")).to_have_text(name)
    expect(page.locator("#contact-card .contact__identity")).to_contain_text("x1")

    # Shown as characters, never parsed: no elements were made from it, nothing ran, nothing was fetched.
    assert "&lt;script&gt;" in message.inner_html()
    counts = page.evaluate("""() => ({
        img: document.querySelectorAll('img[src="x"]').length,
        script: document.querySelectorAll('#workspace-view script').length,
        bold: document.querySelectorAll('#workspace-view b').length,
    })""")
    assert counts == {"img": 0, "script": 0, "bold": 0}
    page.wait_for_timeout(300)  # let any onerror handler have its chance
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert not [p for p in watched.requested_paths if p == "/x" or p.startswith("/x?")]
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)


def test_switching_to_russian_changes_the_labels_and_is_remembered(watched: Watched,
                                                                  context: BrowserContext) -> None:
    page = watched.page
    log_in(page, "john")  # John's locale is English
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".tab[data-view=mine]")).to_have_text("Mine")
    expect(page.locator("#logout-button")).to_have_text("Log out")
    expect(page.locator("#status-filter option[value=open]")).to_have_text("Open")
    page.click(".tab[data-view=all]")
    row(page, "Emily Clark").click()
    expect(page.locator("#btn-resolve")).to_have_text("Resolve")

    with page.expect_response(lambda r: r.request.method == "PATCH" and "/api/v1/users/" in r.url) as patched:
        page.select_option("#lang-select", "ru")
    assert patched.value.ok
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.locator(".tab[data-view=mine]")).to_have_text("Мои")
    expect(page.locator(".tab[data-view=all]")).to_have_text("Все")
    expect(page.locator("#logout-button")).to_have_text("Выйти")
    expect(page.locator("#status-filter option[value=open]")).to_have_text("Открытые")
    expect(page.locator("#btn-resolve")).to_have_text("Решить")
    expect(page.locator("#send-button")).to_have_text("Отправить")
    expect(page.locator("#contact-heading")).to_have_text("Клиент")
    expect(row(page, "Emily Clark").locator(".badge")).to_have_text(re.compile(r"^[а-яё ]+$"))  # rows too
    expect(page.locator("#contact-card dt").first).to_have_text("Имя")
    assert context.request.get("/api/v1/auth/me").json()["user"]["locale"] == "ru"

    # The choice is the user's, kept by the server: a reload comes back in Russian.
    page.reload()
    expect(page.locator("#workspace-view")).to_be_visible()
    expect(page.locator("#logout-button")).to_have_text("Выйти")
    page.select_option("#lang-select", "en")
    expect(page.locator("#logout-button")).to_have_text("Log out")
    expect(page.locator(".tab[data-view=mine]")).to_have_text("Mine")

    # When the session ends (here: the cookie is gone), the next request returns to the login form and says why.
    # (The list is no longer polled; the open socket was authenticated when it connected, so a click asks —
    # dispatched, since a live update may already have met the 401 and shown the login form.)
    context.clear_cookies()
    page.locator(".tab[data-view=mine]").dispatch_event("click")
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#login-error")).to_have_text("Your session has ended; log in again.")
    watched.assert_clean(allowed_console=NOT_LOGGED_IN)
