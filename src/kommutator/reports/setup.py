"""Register reports with the core, called once from the composition root (app.py): the KPI registry."""

from __future__ import annotations

from kommutator.reports import metrics


def register_all() -> None:
    metrics.register_all()
