"""The "Message templates" administration screen in a real browser: an administrator creates a template whose
parameters follow the body's placeholders, sees the server's refusals beside the field they name (placeholders
that are not the parameters, a bad name, a name and language taken), edits the WhatsApp approval, reads the
screen in Russian and deletes the template; a list reload that lands after a form was opened leaves the form and
what was typed in it alone.

Same set-up as test_web_admin.py (Debian's chromium, a real uvicorn server with the demo workspace, every page
watched for CSP violations and script errors)."""

from __future__ import annotations

from playwright.sync_api import Route, expect

from . import test_web_admin as admin_ui
from .test_web_browser import Watched, log_in

playwright = admin_ui.playwright
browser = admin_ui.browser
context = admin_ui.context
watched = admin_ui.watched
server = admin_ui.server

REFUSED = (*admin_ui.REFUSED, "status of 409 (Conflict)")


def row(page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(f".tpl-row[data-name={name}]")


def test_an_administrator_creates_edits_and_deletes_a_template_with_refusals_beside_the_field(
        watched: Watched) -> None:
    page = watched.page
    log_in(page, "admin")
    page.select_option("#lang-select", "en")
    admin_ui.open_section(page, "templates")
    expect(page.locator("#admin-view .admin__title")).to_have_text("Message templates")

    page.click("#tpl-new")
    page.fill("#tpl-name", "order_shipped")
    page.fill("#tpl-language", "en")
    page.fill("#tpl-body", "Order {{order}} ships on {{date}}.")
    # the parameters follow the body's placeholders, in order, until typed by hand
    expect(page.locator("#tpl-parameters")).to_have_value("order, date")
    page.click("#tpl-form .form-submit")
    expect(page.locator("#admin-view .notice")).to_contain_text("Template “order_shipped” created.")
    expect(row(page, "order_shipped").locator(".tpl-row__params")).to_have_text("orderdate")
    expect(row(page, "order_shipped").locator(".tpl-row__approval")).to_have_text("approved")

    # Placeholders that are not the parameters: the server's sentence beside "Parameters".
    page.click("#tpl-new")
    page.fill("#tpl-name", "order_ready")
    page.fill("#tpl-language", "en")
    page.fill("#tpl-parameters", "order")
    page.fill("#tpl-body", "Order {{order}} is ready at {{shop}}.")
    page.click("#tpl-form .form-submit")
    params = page.locator("#tpl-form [data-path=parameters]")
    expect(params).to_have_class("field field--invalid")
    expect(params.locator(".field__error")).to_have_text(
        "The body's placeholders (order, shop) must be exactly the parameters (order).")
    # A name the provider would not accept: the validation message beside "Name".
    page.click("#tpl-from-body")
    expect(page.locator("#tpl-parameters")).to_have_value("order, shop")
    page.fill("#tpl-name", "Order Ready")
    page.click("#tpl-form .form-submit")
    expect(page.locator("#tpl-form [data-path=name] .field__error")).to_contain_text("String should match pattern")
    expect(params).not_to_have_class("field field--invalid")
    # A name and language taken: 409 beside "Name".
    page.fill("#tpl-name", "order_shipped")
    page.click("#tpl-form .form-submit")
    expect(page.locator("#tpl-form [data-path=name] .field__error")).to_have_text(
        "A template 'order_shipped' in en exists already; choose another name or language.")
    page.fill("#tpl-name", "order_ready")
    page.click("#tpl-form .form-submit")
    expect(row(page, "order_ready")).to_have_count(1)

    # Edit: the form shows the template; WhatsApp has not approved it yet.
    row(page, "order_ready").locator(".tpl-edit").click()
    expect(page.locator("#tpl-name")).to_have_value("order_ready")
    expect(page.locator("#tpl-body")).to_have_value("Order {{order}} is ready at {{shop}}.")
    page.uncheck("#tpl-approved")
    page.select_option("#tpl-category", "marketing")
    page.click("#tpl-form .form-submit")
    expect(page.locator("#admin-view .notice")).to_contain_text("Template “order_ready” saved.")
    expect(row(page, "order_ready").locator(".tpl-row__approval")).to_have_text("awaiting approval")
    expect(row(page, "order_ready")).to_contain_text("Marketing")

    page.select_option("#lang-select", "ru")
    expect(page.locator("#admin-view .admin__title")).to_have_text("Шаблоны сообщений")
    expect(page.locator(".mainnav__link[data-section=templates]")).to_have_text("Шаблоны сообщений")
    expect(row(page, "order_ready").locator(".tpl-row__approval")).to_have_text("ждёт одобрения")

    row(page, "order_ready").locator(".tpl-delete").click()
    expect(page.locator("#tpl-confirm")).to_contain_text("Удалить шаблон «order_ready» (en)?")
    page.click("#tpl-confirm-delete")
    expect(row(page, "order_ready")).to_have_count(0)
    expect(page.locator("#admin-view .notice")).to_contain_text("Шаблон «order_ready» удалён.")
    expect(row(page, "order_shipped")).to_have_count(1)
    page.select_option("#lang-select", "en")
    watched.assert_clean(allowed_console=REFUSED)


def test_a_list_reload_landing_after_the_form_opened_leaves_the_form_alone(watched: Watched) -> None:
    page = watched.page
    log_in(page, "admin")
    page.select_option("#lang-select", "en")
    admin_ui.open_section(page, "templates")
    view = page.locator("#admin-view")
    expect(view).to_have_attribute("data-mode", "list")
    loads = int(view.get_attribute("data-loads") or "0")

    admin_ui.open_section(page, "channels")
    held: list[Route] = []
    page.route("**/api/v1/message-templates", lambda route: held.append(route)
               if route.request.method == "GET" else route.continue_())
    # Back to the templates: the list as last read shows at once, and a reload of it starts and is held.
    with page.expect_request(lambda r: r.url.endswith("/api/v1/message-templates") and r.method == "GET"):
        page.click(".mainnav__link[data-section=templates]")
    expect(view).to_have_attribute("data-section", "templates")
    page.click("#tpl-new")
    page.fill("#tpl-name", "typed_before_the_reload")
    page.fill("#tpl-body", "Hello {{name}}")
    for _ in range(100):  # the route handler runs as Playwright takes its events
        if held:
            break
        page.evaluate("() => 0")
    assert len(held) == 1
    for route in held:
        route.continue_()
    page.unroute("**/api/v1/message-templates")
    expect(view).to_have_attribute("data-loads", str(loads + 1))  # the reload has landed
    expect(view).to_have_attribute("data-mode", "edit")
    expect(page.locator("#tpl-name")).to_have_value("typed_before_the_reload")
    expect(page.locator("#tpl-body")).to_have_value("Hello {{name}}")
    expect(page.locator("#tpl-parameters")).to_have_value("name")
    page.click("#tpl-form .form-cancel")
    expect(view).to_have_attribute("data-mode", "list")
    watched.assert_clean(allowed_console=REFUSED)
