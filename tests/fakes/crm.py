"""A fake CRM on 127.0.0.1: order lookups for the bot (found, 404, 500, slow) and the inbox where the generic API
channel delivers our messages (what a customer on a channel without buttons receives)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ORDERS = {"12345": {"ru": "передан в доставку", "en": "out for delivery"}}
BROKEN = "50000"  # answers 500
SLOW = "77777"  # answers after ``slow_seconds``


class FakeCrm:
    def __init__(self, *, slow_seconds: float = 0.6) -> None:
        self.url = ""
        self.slow_seconds = slow_seconds
        self.lookups: list[str] = []
        self.delivered: list[dict[str, Any]] = []  # bodies the API channel POSTed to /inbox
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def inbox(self) -> str:
        return f"{self.url}/inbox"

    def texts(self) -> list[str]:
        """What the customer on the API channel received, in order."""
        return [str(d["message"]["text"]) for d in self.delivered]

    async def _order(self, request: Request) -> JSONResponse:
        number = request.path_params["number"]
        self.lookups.append(number)
        if number == BROKEN:
            return JSONResponse({"error": "database is down"}, status_code=500)
        if number == SLOW:
            await asyncio.sleep(self.slow_seconds)
        found = ORDERS.get(number) or (ORDERS["12345"] if number == SLOW else None)
        if found is None:
            return JSONResponse({"error": "no such order"}, status_code=404)
        lang = request.query_params.get("lang", "ru")
        return JSONResponse({"number": number, "status": found.get(lang, found["ru"])})

    async def _inbox(self, request: Request) -> JSONResponse:
        self.delivered.append(json.loads(await request.body()))
        return JSONResponse({"id": f"crm-{len(self.delivered)}"})

    async def start(self) -> None:
        app = Starlette(routes=[Route("/crm/orders/{number}", self._order, methods=["GET"]),
                                Route("/inbox", self._inbox, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                     lifespan="off"))
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task
