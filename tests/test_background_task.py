"""A background service always stops: the server's shutdown waits for each in turn, so one that ignored its
cancellation would keep the process (or a test's server thread) running and working on the database."""

from __future__ import annotations

import asyncio
import contextlib

from kommutator.workers.base import BackgroundTask, wait_for_wake


class Stubborn(BackgroundTask):
    """Absorbs the first cancellation, as a library call that catches CancelledError would."""

    def __init__(self) -> None:
        super().__init__()
        self.absorbed = 0
        self.running = asyncio.Event()

    async def _loop(self) -> None:
        while True:
            self.running.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if self.absorbed:
                    raise
                self.absorbed += 1


async def test_a_loop_that_absorbs_a_cancellation_still_stops() -> None:
    task = Stubborn()
    task.start()
    await task.running.wait()
    await asyncio.wait_for(task.stop(), 10)
    assert task.absorbed == 1


class Waker(BackgroundTask):
    def __init__(self) -> None:
        super().__init__()
        self.wake = asyncio.Event()
        self.passes = 0

    async def _loop(self) -> None:
        while True:
            await wait_for_wake(self.wake, 3600)
            self.wake.clear()
            self.passes += 1


async def test_a_cancellation_arriving_as_the_wake_is_set_is_not_lost() -> None:
    """The race asyncio.wait_for loses on Python 3.11: the event is set and the task cancelled in the same
    turn of the loop. Tried many times; every time the loop ends at the first cancellation."""
    for _ in range(200):
        worker = Waker()
        worker.start()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        task = worker._task
        assert task is not None
        worker.wake.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), 5)
        assert task.done() and task.cancelled()


async def test_wait_for_wake_returns_on_the_event_or_the_time() -> None:
    wake = asyncio.Event()
    wake.set()
    await asyncio.wait_for(wait_for_wake(wake, 3600), 5)
    await asyncio.wait_for(wait_for_wake(asyncio.Event(), 0.01), 5)
