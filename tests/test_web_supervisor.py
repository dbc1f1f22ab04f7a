"""The supervisor's live view and the quality settings in a real browser (Debian's chromium, Playwright) against
a real server with the demo workspace, an SLA policy and a few alerts: queues, agents and conversations at
risk, acknowledging an alert, opening a conversation, whispering to its agent, adding a policy; agents get
none of it. Screenshots go to the test's tmp folder."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect
from sqlalchemy import select

from kommutator.agents.models import Skill
from kommutator.clock import now
from kommutator.config import load_settings
from kommutator.contacts.models import Contact
from kommutator.conversations import lifecycle
from kommutator.conversations.models import Conversation
from kommutator.db import Tx
from kommutator.demo.seed import seed
from kommutator.migrate import upgrade
from kommutator.quality.alerts import do_raise_alert
from kommutator.quality.models import SlaPolicy
from kommutator.queues.models import Queue
from kommutator.runtime import Runtime

from . import test_web_browser as web
from .live_server import bound_socket, run_server
from .test_web_browser import NOT_LOGGED_IN, Watched, log_in

# The browser, its contexts and the watched page come from the main browser tests (this module's server).
playwright, browser, context, watched = web.playwright, web.browser, web.context, web.watched


async def _quality_demo(settings) -> None:  # type: ignore[no-untyped-def]
    """An SLA policy for every conversation, and two alerts on open conversations of the Sales team."""
    rt = Runtime.build(settings)
    await rt.db.start()
    try:
        async def job(tx: Tx) -> None:
            tx.session.add(SlaPolicy(name="Standard", first_response_seconds=15 * 60, next_response_seconds=10 * 60,
                                     resolution_seconds=8 * 3600, warn_percent=80))
            convs = list((await tx.session.execute(select(Conversation).order_by(Conversation.id))).scalars())
            sales = [c for c in convs if c.team_id is not None][-1]
            await do_raise_alert(tx, kind="csat.negative", title=f"Conversation #{sales.id}: the customer rated 1 of 5",
                                 conversation_id=sales.id, team_id=sales.team_id, agent_id=sales.assignee_id)
            await do_raise_alert(tx, kind="sla.breach", title=f"Conversation #{convs[0].id}: first response deadline "
                                 "missed", conversation_id=convs[0].id, team_id=convs[0].team_id,
                                 agent_id=convs[0].assignee_id)

        await rt.db.write(job)

        async def waiting(tx: Tx) -> None:  # a customer whose question needs a skill nobody has
            skill = Skill(name="Quantum")
            tx.session.add(skill)
            await tx.session.flush()
            queue = Queue(name="Quantum desk", required_skills=[{"skill_id": skill.id, "min_level": 3}],
                          wait_notice_seconds=0)
            contact = Contact(name="Quinn Quantum")
            tx.session.add_all([queue, contact])
            await tx.session.flush()
            await lifecycle.start(tx, contact_id=contact.id, status="queued", at=now(), reason="test",
                                  subject="entanglement", queue_id=queue.id)

        await rt.db.write(waiting)
    finally:
        await rt.db.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("web-supervisor")
    sock, port = bound_socket()
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(data_dir=data_dir, listen_port=port, public_base_url=base,
                             database_url=f"sqlite+aiosqlite:///{data_dir / 'kommutator.db'}")
    asyncio.run(upgrade(settings.database_url))
    assert asyncio.run(seed(settings)) is True
    asyncio.run(_quality_demo(settings))
    with run_server(settings, sock) as served:
        yield served


def test_supervisor_watches_acknowledges_opens_and_whispers(server: str, watched: Watched, tmp_path: Path) -> None:
    page = watched.page
    log_in(page, "olga")
    page.select_option("#lang-select", "en")  # Olga works in Russian; this test reads the English texts
    live_link = page.locator("#main-nav [data-quality-section=live]")
    expect(live_link).to_be_visible()
    live_link.click()
    view = page.locator("#live-view")
    expect(view).to_be_visible()
    expect(page.locator("#inbox-view")).to_be_hidden()
    expect(view.locator(".qkpi")).to_have_count(5)
    risk = view.locator(".qrisk__item")
    expect(risk.first).to_be_visible()
    expect(risk.first.locator(".qrisk__time")).to_contain_text("left")
    # The conversation in the queue that needs a skill nobody has says why (routing's finding, the reader's language).
    waiting = view.locator(".qwhy__item").filter(has_text="Quinn Quantum")
    expect(waiting.locator(".qwhy__reason")).to_contain_text(re.compile(r"Quantum ≥ 3 is online|Nobody .* online"))
    expect(view.locator(".qtable").first).to_contain_text("General support")
    expect(view.locator(".qtable").nth(1)).to_contain_text("Anna Petrova")
    alerts = view.locator(".qalert")
    expect(alerts).to_have_count(2)
    expect(alerts.first).to_contain_text("first response deadline missed")  # newest first
    rating = alerts.filter(has_text="the customer rated 1 of 5")
    expect(rating).to_have_count(1)
    page.screenshot(path=str(tmp_path / "live.png"), full_page=True)

    rating.get_by_role("button", name="Acknowledge").click()
    expect(rating).to_contain_text("Acknowledged")

    risk.first.click()
    drawer = page.locator("#quality-drawer")
    expect(drawer).to_be_visible()
    expect(drawer.locator(".qmsg").first).to_be_visible()
    expect(drawer.locator(".qclock").first).to_contain_text("First response")
    drawer.locator(".qwhisper textarea").fill("Offer free delivery <b>now</b>")
    drawer.get_by_role("button", name="Send whisper").click()
    expect(drawer.locator(".qmsg--note").last).to_contain_text("Offer free delivery <b>now</b>")
    expect(drawer.locator(".qmsg--note").last).to_contain_text("Whisper")
    page.screenshot(path=str(tmp_path / "drawer.png"), full_page=True)
    drawer.get_by_role("button", name="Take over").click()
    expect(drawer).to_contain_text("assigned")
    drawer.get_by_role("button", name="Close").click()
    expect(drawer).to_be_hidden()
    watched.assert_clean(NOT_LOGGED_IN)


def test_supervisor_adds_a_policy_in_russian(server: str, watched: Watched, tmp_path: Path) -> None:
    page = watched.page
    log_in(page, "olga")
    page.select_option("#lang-select", "ru")
    page.goto("/#quality")
    view = page.locator("#live-view")
    expect(view.get_by_role("heading", name="Качество обслуживания")).to_be_visible()
    policies = view.locator(".qpanel").first
    expect(policies).to_contain_text("Standard")
    # Durations are written and shown as people say them, not in seconds.
    standard = policies.locator("tbody tr").filter(has=page.get_by_role("cell", name="Standard", exact=True))
    expect(standard.locator(".qdurations")).to_have_text("15 мин / 10 мин / 8 ч")
    before = policies.locator("tbody tr").count()
    policies.get_by_label("Название").fill("VIP")
    policies.get_by_label("Первый ответ").fill("1 ч 30 мин")
    policies.get_by_label("Решение").fill("2 д")
    policies.get_by_role("button", name="Новая политика").click()
    expect(policies.locator("tbody tr")).to_have_count(before + 1)
    expect(policies.locator("tr", has_text="VIP").locator(".qdurations")).to_have_text("1 ч 30 мин / — / 2 д")
    expect(policies.locator(".qnote")).to_have_text("Сохранено.")
    page.screenshot(path=str(tmp_path / "quality-ru.png"), full_page=True)
    watched.assert_clean(NOT_LOGGED_IN)


def test_supervisor_adds_an_alert_rule_with_a_signed_webhook_in_russian(server: str, watched: Watched) -> None:
    page = watched.page
    log_in(page, "olga")
    page.select_option("#lang-select", "ru")
    page.goto("/#quality")
    view = page.locator("#live-view")
    rules = view.locator(".qpanel").filter(has=page.get_by_role("heading", name="Правила оповещений"))
    expect(rules).to_be_visible()
    rules.get_by_label("Событие").select_option("standard.violation")
    rules.get_by_label("Адрес подписанного вебхука").fill("https://93.184.216.34/hooks/alerts")
    rules.get_by_label("Секрет вебхука (от 24 символов или whsec_…)").fill("a passphrase of 24+ characters")
    rules.get_by_label("Язык вне рабочего места").select_option("ru")
    rules.get_by_role("button", name="Новое правило").click()
    row = rules.locator("tbody tr").filter(has_text="https://93.184.216.34/hooks/alerts")
    expect(row).to_contain_text("Вебхук")
    expect(row).to_contain_text("Русский")
    expect(rules).not_to_contain_text("a passphrase of 24+ characters")
    watched.assert_clean(NOT_LOGGED_IN)


def test_supervisor_edits_a_policy_and_a_rule_with_human_durations(server: str, watched: Watched,
                                                                    context: BrowserContext) -> None:
    page = watched.page
    log_in(page, "olga")
    page.select_option("#lang-select", "en")
    page.goto("/#quality")
    view = page.locator("#live-view")
    policies = view.locator(".qpanel").first
    row = policies.locator("tbody tr").filter(has=page.get_by_role("cell", name="Standard", exact=True))
    row.get_by_role("button", name="Edit").click()
    expect(policies.get_by_label("First response")).to_have_value("15 min")
    expect(policies.get_by_label("Resolution")).to_have_value("8 h")
    policies.get_by_label("First response").fill("banana")
    policies.get_by_role("button", name="Save").click()
    expect(policies.locator(".qnote")).to_have_text("Write a duration such as 5 min or 1 h 30 min.")
    policies.get_by_label("First response").fill("5 min")
    policies.get_by_label("Next response").fill("1:30")
    policies.get_by_role("button", name="Save").click()
    expect(policies.locator(".qnote")).to_have_text("Saved.")
    expect(row.locator(".qdurations")).to_have_text("5 min / 1 h 30 min / 8 h")
    stored = next(p for p in context.request.get("/api/v1/quality/policies").json() if p["name"] == "Standard")
    assert (stored["first_response_seconds"], stored["next_response_seconds"]) == (300, 5400)

    rules = view.locator(".qpanel").nth(1)
    rules.locator(".qform").get_by_label("Emails").fill("quality@example.com")
    rules.get_by_role("button", name="New rule").click()
    expect(rules.locator(".qnote")).to_have_text("Saved.")
    rule_row = rules.locator("tbody tr", has_text="quality@example.com")
    rule_row.get_by_role("button", name="Edit").click()
    expect(rules.locator(".qform").get_by_label("Emails")).to_have_value("quality@example.com")  # drawn anew
    rules.locator(".qform").get_by_label("Emails").fill("head@example.com")
    rules.get_by_role("button", name="Save").click()
    expect(rules.locator(".qnote")).to_have_text("Saved.")
    expect(rules.locator("tbody tr", has_text="head@example.com")).to_have_count(1)

    standards = view.locator(".qpanel").nth(2)
    standards.get_by_label("Max time between replies").fill("2 min")
    standards.get_by_role("button", name="Save").click()
    expect(standards.locator(".qnote")).to_have_text("Saved.")
    expect(standards.get_by_label("Max time between replies")).to_have_value("2 min")
    watched.assert_clean(NOT_LOGGED_IN)


def test_durations_read_and_write_back_alike_in_both_languages(server: str, watched: Watched) -> None:
    """The one parser and formatter every duration field uses: whatever it shows, it reads back the same."""
    page = watched.page
    log_in(page, "olga")
    values = [1, 45, 60, 61, 300, 3599, 3600, 5400, 86399, 86400, 90061, 7 * 86400 + 5]
    for lang in ("en", "ru"):
        page.select_option("#lang-select", lang)
        back = page.evaluate("""async (values) => {
          const d = await import("/static/js/duration.js");
          return values.map((v) => [d.formatDuration(v), d.parseDuration(d.formatDuration(v))]);
        }""", values)
        assert [b for _, b in back] == values, back
    page.select_option("#lang-select", "en")
    parsed = page.evaluate("""async () => {
      const d = await import("/static/js/duration.js");
      return ["5 min", "1 h 30 min", "1ч 30м", "90 s", "1:30", "15", "2 days", "1,5 h", "", "soon", "5 parsecs",
        "1 ч и 30 мин"]
        .map((x) => d.parseDuration(x));
    }""")
    assert parsed[:9] == [300, 5400, 5400, 90, 5400, 900, 172800, 5400, None], parsed
    assert all(x is None or x != x for x in parsed[9:11]), parsed  # NaN: not a duration
    assert parsed[11] == 5400
    watched.assert_clean(NOT_LOGGED_IN)


def test_agents_get_no_live_view(server: str, watched: Watched) -> None:
    page = watched.page
    log_in(page, "anna")
    expect(page.locator("#main-nav [data-quality-section]")).to_have_count(0)
    page.goto("/#live")
    expect(page.locator("#workspace-view")).to_be_visible()
    expect(page.locator("#inbox-view")).to_be_visible()
    expect(page.locator("#live-view")).to_be_hidden()
    watched.assert_clean(NOT_LOGGED_IN)
