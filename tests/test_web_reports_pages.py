"""The Reports section's pages beyond the overview in a real browser against the demo workspace: traffic by hour of
the week, queues and teams, the bot, ratings — each figure equal to the API's, definitions as tooltips, the page
kept in the URL, Russian texts, no console error."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from kommutator.config import Settings, load_settings
from kommutator.demo.seed import seed
from kommutator.migrate import upgrade
from kommutator.reports.actions import rebuild
from kommutator.runtime import Runtime

from .live_server import bound_socket, run_server
from .test_web_browser import NOT_LOGGED_IN, Watched, log_in
from .test_web_reports import api, browser, context, conversations_figure, period, playwright, watched

__all__ = ["browser", "context", "playwright", "watched"]  # fixtures shared with test_web_reports


async def _facts(settings: Settings) -> None:
    rt = Runtime.build(settings)
    await rt.db.start()
    try:
        await rebuild(rt.db)  # what the worker's first sweep would do, before the clock of the test starts
    finally:
        await rt.db.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo with its 90 days of history: bot hand-offs, ratings and comments to report on."""
    data_dir = tmp_path_factory.mktemp("web-report-pages")
    sock, port = bound_socket()
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(data_dir=data_dir, listen_port=port, public_base_url=base,
                             database_url=f"sqlite+aiosqlite:///{data_dir / 'kommutator.db'}")
    asyncio.run(upgrade(settings.database_url))
    assert asyncio.run(seed(settings, history=True)) is True
    asyncio.run(_facts(settings))
    with run_server(settings, sock) as served:
        # The server's first passes over 90 days of history (SLA clocks, sweeps) keep it busy for a while on a
        # busy machine: let them settle (a static file answered quickly five times running) before the browser's
        # 10 s navigation timeout starts counting. Nothing is asserted on this timing.
        quick, deadline = 0, time.monotonic() + 120
        while quick < 5 and time.monotonic() < deadline:
            t = time.monotonic()
            try:
                ok = httpx.get(f"{served}/static/js/reports.js", timeout=30).status_code == 200
            except httpx.HTTPError:
                ok = False
            quick = quick + 1 if ok and time.monotonic() - t < 0.2 else 0
            time.sleep(0.5)
        yield served


def test_supervisor_reads_every_report_page(server: str, watched: Watched, tmp_path: Path) -> None:
    page = watched.page
    log_in(page, "olga")
    page.select_option("#lang-select", "en")
    assert conversations_figure(page) > 0
    view = page.locator("#reports-view")

    # Traffic by hour of the week: each cell is the API's
    page.goto(f"/#reports?{period()}&page=heatmap")
    cells = view.locator(".rheat__cell")
    expect(cells).to_have_count(7 * 24)
    heat = api(page, f"heatmap?{period()}")["cells"]
    busiest = max(heat, key=lambda c: c["value"] or 0)
    cell = view.locator(f".rheat__cell[data-weekday='{busiest['weekday']}'][data-hour='{busiest['hour']}']")
    assert float(cell.get_attribute("data-value") or "nan") == busiest["value"]
    page.screenshot(path=str(tmp_path / "heatmap.png"), full_page=True)

    # Queues and teams: one row per group, service level with its definition as the tooltip
    view.locator(".reports__tab[data-page=queues]").click()
    expect(page).to_have_url(re.compile(r"#reports\?.*page=queues"))
    queues = api(page, f"summary?{period()}&group_by=queue&metric=conversations&metric=service_level")["groups"]
    table = view.locator(".rpanel").first.locator(".rtable tbody tr")
    expect(table).to_have_count(len(queues))
    first = queues[0]
    row = view.locator(".rpanel").first.locator(f"tr[data-key='{first['key'] if first['key'] is not None else ''}']")
    figure = {f["name"]: f for f in first["figures"]}["conversations"]
    assert float(row.locator("td[data-metric=conversations]").get_attribute("data-value") or "nan") == figure["value"]
    assert "first response" in (row.locator("td[data-metric=service_level]").get_attribute("title") or "")

    # Bot: hand-off reasons as the API counts them
    view.locator(".reports__tab[data-page=bot]").click()
    bot = api(page, f"bot?{period()}")
    reasons = view.locator("table[data-table=reasons] tbody tr")
    expect(reasons).to_have_count(len(bot["handoff_reasons"]))
    assert bot["handoff_reasons"], "the demo's bot hands conversations off"
    if bot["handoff_reasons"]:
        expect(reasons.first.locator("td").nth(1)).to_have_attribute("data-value",
                                                                     str(bot["handoff_reasons"][0]["count"]))
    expect(view.locator(".rkpi[data-metric=bot_containment]")).to_be_visible()
    # Top intents: one row per intent the API counts (the demo's history records none yet: then "nothing")
    expect(view.locator("table[data-table=intents] tbody tr")).to_have_count(len(bot["top_intents"]))
    for i, intent in enumerate(bot["top_intents"][:3]):
        cells = view.locator("table[data-table=intents] tbody tr").nth(i).locator("td")
        expect(cells.nth(0)).to_have_text(intent["name"])
        expect(cells.nth(1)).to_have_attribute("data-value", str(intent["count"]))

    # Ratings: the distribution's counts and comments linking their conversation
    view.locator(".reports__tab[data-page=ratings]").click()
    ratings = api(page, f"ratings?{period()}")
    csat = {d["score"]: d["count"] for d in ratings["distribution"] if d["scale"] == "csat"}
    assert sum(csat.values()) and ratings["comments"], "the demo's customers rate and comment"
    if sum(csat.values()):
        for score, n in csat.items():
            expect(view.locator(f".rdist__table[data-scale=csat] tr[data-score='{score}']")).to_have_attribute(
                "data-count", str(n))
    comments = view.locator(".rcomment")
    expect(comments).to_have_count(len(ratings["comments"]))
    if ratings["comments"]:
        cid = ratings["comments"][0]["conversation_id"]
        expect(comments.first.locator("a")).to_have_attribute("href", f"#conversation/{cid}")
    page.screenshot(path=str(tmp_path / "ratings.png"), full_page=True)

    page.select_option("#lang-select", "ru")
    expect(view.locator(".reports__tab[data-page=ratings]")).to_have_text("Оценки")
    expect(view.locator(".reports__tab[data-page=heatmap]")).to_have_text("Нагрузка по часам недели")
    watched.assert_clean(NOT_LOGGED_IN)
