"""The staffing forecast screen in a real browser (Debian's chromium, Playwright) against a real server seeded
with the demo and its ~90 days of history: a supervisor reads a queue's week, every figure equal to the API's,
tries a what-if, reads the accuracy of past weeks, in English and Russian; agents get no forecast."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from kommutator.config import load_settings
from kommutator.demo.seed import seed
from kommutator.migrate import upgrade

from . import test_web_browser as web
from .live_server import bound_socket, run_server
from .test_web_browser import NOT_LOGGED_IN, Watched, log_in

playwright, browser, watched = web.playwright, web.browser, web.watched


@pytest.fixture
def context(browser: Browser, server: str) -> Iterator[BrowserContext]:
    """The main browser tests' context, in Moscow: a queue without business hours is shown on the browser's clock."""
    ctx = browser.new_context(base_url=server, locale="en-US", timezone_id="Europe/Moscow",
                              viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(web.TIMEOUT_MS)
    ctx.add_init_script(web.WATCH_CSP)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("web-forecast")
    sock, port = bound_socket()
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(data_dir=data_dir, listen_port=port, public_base_url=base,
                             database_url=f"sqlite+aiosqlite:///{data_dir / 'kommutator.db'}")
    asyncio.run(upgrade(settings.database_url))
    assert asyncio.run(seed(settings, history=True)) is True
    with run_server(settings, sock) as served:
        yield served


def api(page: Page, path: str) -> Any:
    """What the API answers the logged-in page (same cookie), in the browser's time zone as the screen asks."""
    return page.evaluate("""async (p) => {
        const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
        const r = await fetch(p + (p.includes("?") ? "&" : "?") + "tz=" + encodeURIComponent(tz));
        return r.json(); }""", f"/api/v1{path}")


def _fmt(x: float, digits: int) -> str:
    """As the browser formats it: halves round away from zero (2.25 → "2.3"; Python's format gives "2.2")."""
    rounded = Decimal(repr(x)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return f"{rounded:,.{digits}f}"


def test_supervisor_reads_the_week_tries_a_what_if_and_checks_past_weeks(server: str, watched: Watched,
                                                                        tmp_path: Path) -> None:
    page = watched.page
    log_in(page, "olga")
    page.select_option("#lang-select", "en")
    link = page.locator("#main-nav [data-forecast-section]")
    expect(link).to_have_text("Forecast")
    link.click()
    view = page.locator("#forecast-view")
    expect(view).to_be_visible()
    expect(page.locator("#inbox-view")).to_be_hidden()
    heat = view.locator("#fc-heat")
    expect(heat.locator("tbody tr")).to_have_count(48)
    page.select_option("#fc-queue", label="General support")
    queue_id = int(page.locator("#fc-queue").input_value())
    expect(heat).to_be_visible()
    expect(view).not_to_have_attribute("aria-busy", "true")
    body = api(page, f"/forecast/queues/{queue_id}")
    assert body["timezone"] == "Europe/Moscow"
    assert body["params"]["aht_source"] == "history" and body["history"]["handled_conversations"] > 100

    # Every cell is the API's figure for that half hour.
    cells = heat.locator("tbody td[data-date]").evaluate_all(
        "tds => tds.map(td => [td.dataset.date, td.dataset.time, td.dataset.fold, td.textContent])")
    shown = {(d, tm, int(f)): text for d, tm, f, text in cells}
    assert shown == {(s["date"], s["time"], s["fold"]): str(s["agents"]) for s in body["slots"]}
    for d in body["days"]:
        expect(heat.locator(f"tfoot tr[data-row=arrivals] td[data-date='{d['date']}']")).to_have_text(
            _fmt(d["arrivals"], 1))
        expect(heat.locator(f"tfoot tr[data-row=peak] td[data-date='{d['date']}']")).to_have_text(str(d["peak_agents"]))
    expect(view.locator("[data-kpi=peak] .qkpi__value")).to_have_text(str(body["totals"]["peak_agents"]))
    expect(view.locator("[data-kpi=arrivals] .qkpi__value")).to_have_text(_fmt(body["totals"]["arrivals"], 1))

    # A realistic week: a weekday late morning needs more people than the night before it.
    by = {(s["date"], s["time"]): s for s in body["slots"]}
    monday = body["start"]
    assert by[(monday, "11:00")]["arrivals"] > 3 * max(0.1, by[(monday, "03:00")]["arrivals"])
    assert by[(monday, "11:00")]["agents"] > by[(monday, "03:00")]["agents"]
    page.screenshot(path=str(tmp_path / "forecast.png"), full_page=True)

    # Arrivals view shows the API's arrivals.
    page.select_option("#fc-metric", "arrivals")
    sample = next(s for s in body["slots"] if s["date"] == monday and s["time"] == "11:00")
    expect(heat.locator(f"td[data-date='{monday}'][data-time='11:00']")).to_have_text(_fmt(sample["arrivals"], 1))

    # What-if: half as many arrivals again (150%), a tighter target.
    page.fill("#fc-multiplier", "150")
    page.fill("#fc-target-percent", "90")
    page.fill("#fc-target-seconds", "20")
    page.click("#fc-apply")
    what_if = api(page, f"/forecast/queues/{queue_id}?arrivals_multiplier=1.5&target_percent=90&target_seconds=20")
    assert what_if["totals"]["peak_agents"] > body["totals"]["peak_agents"]
    expect(view.locator("[data-kpi=peak] .qkpi__value")).to_have_text(str(what_if["totals"]["peak_agents"]))
    page.select_option("#fc-metric", "agents")
    sample = next(s for s in what_if["slots"] if s["date"] == monday and s["time"] == "11:00")
    expect(heat.locator(f"td[data-date='{monday}'][data-time='11:00']")).to_have_text(str(sample["agents"]))

    # Past weeks: forecast against actual, with the error.
    accuracy = api(page, f"/forecast/queues/{queue_id}/accuracy?weeks=4")
    rows = view.locator("#fc-acc tbody tr")
    expect(rows).to_have_count(4)
    for row, week in zip(range(4), accuracy["weeks"], strict=True):
        cells_ = rows.nth(row).locator("td")
        expect(cells_.nth(1)).to_have_text(_fmt(week["forecast_total"], 1))
        expect(cells_.nth(2)).to_have_text(_fmt(week["actual_total"], 0))
        expect(cells_.nth(3)).to_have_text(f"{_fmt(week['wape'], 1)}%")
        expect(cells_.nth(5)).to_have_text(f"{_fmt(week['day_wape'], 1)}%")
    # Half hours of a small shop are noisy (a few arrivals each); whole days are forecast closely.
    # Every past week was forecast from history before it; over the four, daily volumes are within 20 % (a single
    # week of a queue with ~2 arrivals per half hour can miss by more, depending on where today falls).
    assert all(w["had_history"] for w in accuracy["weeks"]) and accuracy["overall"]["day_wape"] < 20, accuracy

    # Russian texts; a bad what-if is explained.
    page.select_option("#lang-select", "ru")
    expect(page.locator("#fc-apply")).to_have_text("Пересчитать")
    expect(link).to_have_text("Прогноз")
    page.fill("#fc-concurrency", "50")
    page.click("#fc-apply")
    expect(view.locator(".form-error")).to_contain_text("concurrency")
    page.screenshot(path=str(tmp_path / "forecast-ru.png"), full_page=True)
    watched.assert_clean((*NOT_LOGGED_IN, "status of 422"))


def test_agents_get_no_forecast(server: str, watched: Watched) -> None:
    page = watched.page
    log_in(page, "anna")
    expect(page.locator("#main-nav [data-forecast-section]")).to_have_count(0)
    page.goto("/#forecast")
    expect(page.locator("#inbox-view")).to_be_visible()
    expect(page.locator("#forecast-view")).to_be_hidden()
    watched.assert_clean(NOT_LOGGED_IN)
