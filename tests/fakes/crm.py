"""A fake CRM on 127.0.0.1: order lookups for the bot (found, 404, 500, slow) and the inbox where the generic API
channel delivers our messages (what a customer on a channel without buttons receives)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .serving import Served

ORDERS = {"12345": {"ru": "передан в доставку", "en": "out for delivery"}}
BROKEN = "50000"  # answers 500
SLOW = "77777"  # answers after ``slow_seconds``


class FakeCrm:
    def __init__(self, *, slow_seconds: float = 0.6) -> None:
        self.url = ""
        self.slow_seconds = slow_seconds
        self.lookups: list[str] = []
        self.delivered: list[dict[str, Any]] = []  # bodies the API channel POSTed to /inbox
        self._http = Served()

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
        self.url = await self._http.start(app)

    async def stop(self) -> None:
        await self._http.stop()
