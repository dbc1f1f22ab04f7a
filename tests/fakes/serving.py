"""How every fake provider serves its Starlette app: uvicorn on 127.0.0.1, a free port, inside the test's loop."""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.types import ASGIApp


class Served:
    """``origin = await served.start(app)`` … ``await served.stop()``."""

    def __init__(self) -> None:
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, app: ASGIApp) -> str:
        """Serve ``app``; its origin, e.g. http://127.0.0.1:40123."""
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                     lifespan="off"))
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # it failed to start: say why
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task
