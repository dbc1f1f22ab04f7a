"""Adapters' long-running work (polling, listeners): restarted after a crash, and on PostgreSQL run by one
server process at a time, handed over when that process stops."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kommutator.channels import host as host_module
from kommutator.channels.base import ChannelAdapter, ChannelHost
from kommutator.channels.host import ChannelServices
from kommutator.config import Settings
from kommutator.runtime import Runtime

from .conftest import PG_URL


class Worker(ChannelAdapter):
    type = "dummy"
    title = "Dummy"

    def __init__(self) -> None:
        self.running: list[object] = []
        self.started = 0
        self.crash_first = False

    async def run(self, host: ChannelHost) -> None:
        self.started += 1
        if self.crash_first and self.started == 1:
            raise RuntimeError("provider down")
        self.running.append(host)
        try:
            await asyncio.Event().wait()
        finally:
            self.running.remove(host)


async def _until(check: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_a_crashed_run_is_restarted(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = Worker()
    worker.crash_first = True
    monkeypatch.setattr(host_module, "channel_types", lambda: {"dummy": worker})
    services = ChannelServices(runtime, restart_after=0.01, leader_retry=0.05)
    services.start()
    try:
        await _until(lambda: len(worker.running) == 1)
        assert worker.started == 2
    finally:
        await services.stop()
    assert worker.running == []


@pytest.mark.skipif(not PG_URL, reason="several server processes share a database only on PostgreSQL")
async def test_one_process_at_a_time_runs_a_types_work_and_hands_over(
        runtime: Runtime, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = Worker()
    monkeypatch.setattr(host_module, "channel_types", lambda: {"dummy": worker})
    other_rt = Runtime.build(settings)
    await other_rt.db.start()
    first = ChannelServices(runtime, leader_retry=0.05)
    second = ChannelServices(other_rt, leader_retry=0.05)
    try:
        first.start()
        await _until(lambda: len(worker.running) == 1)
        second.start()
        await asyncio.sleep(0.5)
        assert len(worker.running) == 1 and worker.started == 1  # the second process waits its turn
        await first.stop()
        await _until(lambda: len(worker.running) == 1)
        assert worker.started == 2 and worker.running[0] is second.host
    finally:
        await first.stop()
        await second.stop()
        await other_rt.db.close()
