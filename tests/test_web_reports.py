"""The Reports section in a real browser (Debian's chromium, Playwright) against a real server with the demo
workspace: headline figures equal the API's, the chart is drawn by the vendored uPlot, filters live in the URL,
Russian texts, and an agent sees only their own figures — with no console error. Screenshots go to tmp."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from kommutator.config import load_settings
from kommutator.demo.seed import seed
from kommutator.migrate import upgrade

from . import test_web_browser as web
from .live_server import bound_socket, run_server
from .test_web_browser import NOT_LOGGED_IN, Watched, log_in

playwright, browser, context, watched = web.playwright, web.browser, web.context, web.watched


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("web-reports")
    sock, port = bound_socket()
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(data_dir=data_dir, listen_port=port, public_base_url=base,
                             database_url=f"sqlite+aiosqlite:///{data_dir / 'kommutator.db'}")
    asyncio.run(upgrade(settings.database_url))
    assert asyncio.run(seed(settings)) is True
    with run_server(settings, sock) as served:
        yield served


def period() -> str:
    today = dt.datetime.now(dt.UTC).date()
    return f"start={today - dt.timedelta(days=6)}&end={today}"


def api(page: Page, path: str) -> dict[str, Any]:
    r = page.request.get(f"/api/v1/reports/{path}")
    assert r.ok, r.text()
    return dict(r.json())


def conversations_figure(page: Page) -> float:
    """The API's count, once the reporting worker's start-up pass has computed the demo's facts."""
    deadline = time.monotonic() + 15
    while True:
        body = api(page, f"summary?{period()}&metric=conversations")
        value = body["figures"][0]["value"]
        if value or time.monotonic() > deadline:
            return float(value)
        time.sleep(0.3)


def test_supervisor_reads_the_reports(server: str, watched: Watched, tmp_path: Path) -> None:
    page = watched.page
    log_in(page, "olga")
    page.select_option("#lang-select", "en")
    expected = conversations_figure(page)
    assert expected > 0, "the demo's conversations never reached the report facts"
    page.locator("#main-nav [data-reports-section]").click()
    page.goto(f"/#reports?{period()}&interval=day&group_by=channel_type")
    view = page.locator("#reports-view")
    expect(view).to_be_visible()
    expect(page.locator("#inbox-view")).to_be_hidden()
    card = view.locator(".rkpi[data-metric=conversations]")
    expect(card).to_be_visible()
    assert float(card.get_attribute("data-value") or "nan") == expected
    assert "started in the period" in (card.get_attribute("title") or "")  # the definition is the tooltip
    frt = view.locator(".rkpi[data-metric=first_response_time]")
    expect(frt).to_be_visible()
    expect(view.locator(".uplot canvas").first).to_be_visible()  # drawn by the vendored uPlot
    series = api(page, f"timeseries?{period()}&metric=conversations&interval=day&group_by=channel_type")["series"]
    legend = view.locator(".u-legend .u-series")
    expect(legend).to_have_count(len(series) + 1)  # the x axis has a legend entry too
    for s in series:
        expect(view.locator(".u-legend")).to_contain_text(s["name"] or str(s["key"]))
    agents = api(page, f"agents?{period()}")["items"]
    expect(view.locator(".rtable tbody tr")).to_have_count(len(agents))
    page.screenshot(path=str(tmp_path / "reports.png"), full_page=True)

    # a filter changes the URL, so the link can be shared
    view.locator("select[name=interval]").select_option("week")
    expect(page).to_have_url(re.compile(r"#reports\?.*interval=week"))
    expect(view.locator(".uplot canvas").first).to_be_visible()

    page.select_option("#lang-select", "ru")
    expect(view.get_by_role("heading", name="Отчёты")).to_be_visible()
    expect(view.locator(".rkpi[data-metric=conversations] .rkpi__label")).to_have_text("Обращения")
    page.screenshot(path=str(tmp_path / "reports-ru.png"), full_page=True)
    watched.assert_clean(NOT_LOGGED_IN)


def test_an_agent_sees_their_own_figures(server: str, watched: Watched) -> None:
    page = watched.page
    log_in(page, "anna")
    page.select_option("#lang-select", "en")
    conversations_figure(page)
    page.goto(f"/#reports?{period()}")
    view = page.locator("#reports-view")
    expect(view).to_contain_text("Your own figures")
    card = view.locator(".rkpi[data-metric=conversations]")
    expect(card).to_be_visible()
    own = api(page, f"summary?{period()}&metric=conversations")["figures"][0]["value"]
    assert float(card.get_attribute("data-value") or "nan") == own
    rows = view.locator(".rtable tbody tr")
    assert rows.count() <= 1  # at most herself
    watched.assert_clean(NOT_LOGGED_IN)
