"""The loop every worker shares: a pass over durable rows every ``interval`` seconds until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


class BackgroundTask:
    """A server service whose ``_loop`` runs as one task from ``start`` until ``stop`` (routing, monitors, workers)."""

    name_in_logs = "worker"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"kommutator-{self.name_in_logs}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class PollingWorker(BackgroundTask):
    """Subclasses implement ``run_due`` (one pass; tests call it directly) and name themselves."""

    interval: float = 1.0

    async def run_due(self) -> int:
        raise NotImplementedError

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due()
            except Exception:
                log.exception("%s pass failed", self.name_in_logs)
            await asyncio.sleep(self.interval)
