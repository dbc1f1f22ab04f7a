"""WCAG 2.1 AA checks in the browser with axe-core (vendored from the npm registry in tests/vendor/axe-core)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text()
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")


def audit(page: Page, context: str | None = None) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations of the page (or of ``context``, a selector) as it is now, each with
    its rule, impact, help and the elements (selector and why). Open shadow roots are included."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE)  # through the debugger protocol: the page's CSP does not apply to it
    result: list[dict[str, Any]] = page.evaluate(
        """async ([context, tags]) => {
            const found = await window.axe.run(context || document, {runOnly: {type: "tag", values: tags},
                                                                     resultTypes: ["violations"]});
            return found.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => ({target: n.target.join(" "), why: n.failureSummary}))}));
        }""", [context, WCAG_AA])
    return result


def blocking(page: Page, context: str | None = None) -> list[str]:
    """The serious and critical violations, one readable line per element (empty when the page passes)."""
    return [f"{v['id']} ({v['impact']}): {v['help']} — {n['target']}: {n['why']}"
            for v in audit(page, context) if v["impact"] in BLOCKING for n in v["nodes"]]
