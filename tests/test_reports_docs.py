"""docs/reports.md defines the metrics exactly as the registry does."""

from __future__ import annotations

from pathlib import Path

from kommutator.reports.metrics import definitions_table

PAGE = Path(__file__).resolve().parent.parent / "docs" / "reports.md"


def test_the_metrics_table_is_generated_from_the_registry() -> None:
    text = PAGE.read_text(encoding="utf-8")
    table = text.split("<!-- metrics:begin -->\n", 1)[1].split("\n<!-- metrics:end -->", 1)[0]
    assert table == definitions_table(), (
        "docs/reports.md's metrics table differs from reports/metrics.py; paste the output of "
        "python -c 'from kommutator.reports.metrics import definitions_table as t; print(t())' between the markers")
