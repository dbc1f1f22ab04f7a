"""Runs campaigns: each pass writes the next due recipients' messages, within each campaign's throttle and a
bounded backlog of campaign messages in the outbox (so pause and cancel take effect within seconds, and the
outbox's per-channel pacing, not this worker, sets the sending rate)."""

from __future__ import annotations

import math
import time
from functools import partial

from sqlalchemy import func, select

from kommutator.outbound.campaigns import CAMPAIGN_PRIORITY, do_queue_recipients
from kommutator.outbound.models import Campaign
from kommutator.runtime import Runtime
from kommutator.workers.base import PollingWorker
from kommutator.workers.models import OutboxItem


class CampaignWorker(PollingWorker):
    name_in_logs = "campaigns"

    def __init__(self, rt: Runtime, *, interval: float = 1.0, chunk: int = 100, backlog: int = 200) -> None:
        super().__init__()
        self.rt = rt
        self.interval = interval
        self.chunk = chunk  # recipients per transaction
        self.backlog = backlog  # campaign messages waiting in the outbox, at most
        self._credit: dict[int, float] = {}  # throttle: recipients each campaign may still take
        self._last: float | None = None

    async def run_due(self, *, limit: int | None = None) -> int:
        """One pass over the running campaigns; ``limit`` (tests) replaces the throttle's allowance."""
        t = time.monotonic()
        elapsed = self.interval if self._last is None else min(t - self._last, 5 * self.interval)
        self._last = t
        async with self.rt.db.read() as s:
            running = list((await s.execute(select(Campaign.id, Campaign.per_minute)
                                            .where(Campaign.status == "running").order_by(Campaign.id))).all())
            waiting = int(await s.scalar(select(func.count(OutboxItem.id)).where(
                OutboxItem.status == "pending", OutboxItem.priority == CAMPAIGN_PRIORITY)) or 0)
        room = max(0, self.backlog - waiting)
        total = 0
        for campaign_id, per_minute in running:
            if limit is not None:
                allowance = limit
            else:
                credit = min(self._credit.get(campaign_id, 0.0) + per_minute / 60.0 * elapsed, per_minute / 6.0)
                allowance = math.floor(credit)
                self._credit[campaign_id] = credit
            take = min(allowance, room)
            done = 0
            while True:
                n = min(self.chunk, take - done)
                got = await self.rt.db.write(partial(do_queue_recipients, campaign_id=campaign_id, limit=max(n, 0)))
                done += got
                if got < n or n <= 0:
                    break
            if limit is None:
                self._credit[campaign_id] -= done
            room -= done
            total += done
        return total


def campaign_worker_of(rt: Runtime) -> CampaignWorker:
    """The runtime's one worker, made on first use."""
    if rt.campaign_worker is None:
        rt.campaign_worker = CampaignWorker(rt)
    return rt.campaign_worker
