"""Follows notifications' attempts: statuses carried over, the next channel tried when one fails."""

from __future__ import annotations

from kommutator.outbound.actions import do_follow_attempts
from kommutator.runtime import Runtime
from kommutator.workers.base import PollingWorker


class OutreachWorker(PollingWorker):
    name_in_logs = "outreach"

    def __init__(self, rt: Runtime, *, interval: float = 1.0) -> None:
        super().__init__()
        self.rt = rt
        self.interval = interval

    async def run_due(self) -> int:
        """One pass: every attempt whose message moved on; tests call it directly."""
        total = 0
        while True:
            changed = await self.rt.db.write(lambda tx: do_follow_attempts(tx))
            total += changed
            if changed < 200:
                return total


def outreach_worker_of(rt: Runtime) -> OutreachWorker:
    """The runtime's one worker, made on first use."""
    if rt.outreach_worker is None:
        rt.outreach_worker = OutreachWorker(rt)
    return rt.outreach_worker
