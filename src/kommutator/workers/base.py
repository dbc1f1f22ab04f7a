"""The loop every worker shares: a pass over durable rows every ``interval`` seconds until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


async def wait_for_wake(wake: asyncio.Event, seconds: float) -> None:
    """Return when ``wake`` is set or ``seconds`` have passed, whichever is first.

    Not ``asyncio.wait_for(wake.wait(), timeout)``: on Python 3.11 that swallows a cancellation arriving just as
    the event is set, and a service loop built on it then never stops (a server thread in the tests went on
    routing and sending for minutes after its shutdown began)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()


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
        task, self._task = self._task, None
        if task is None:
            return
        # Cancel until it ends: a loop may absorb one cancellation (in a library call that catches it), and a
        # service that does not stop would hold the server's shutdown for ever.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s had failed before it was stopped", self.name_in_logs, exc_info=task.exception())


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
