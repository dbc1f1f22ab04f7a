"""The demo workspace's stand-in CRM for the bot: ``GET /demo/crm/orders/{number}`` answers a few orders.

Mounted only by ``kommutator demo``; the default flow's "Order status" looks orders up here (the demo puts the
server's own address on the outbound allow-list, since it is loopback).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse

from kommutator.common.routes import SafeRoute

router = APIRouter(include_in_schema=False, route_class=SafeRoute)

# number -> status in Russian and English, as a CRM might hold them
ORDERS: dict[str, dict[str, str]] = {
    "12345": {"ru": "передан в доставку, курьер привезёт завтра с 10:00 до 14:00",
              "en": "out for delivery; the courier arrives tomorrow between 10:00 and 14:00"},
    "48213": {"ru": "задерживается на складе, новая дата доставки — пятница",
              "en": "delayed at the warehouse; the new delivery date is Friday"},
    "77120": {"ru": "доставлен 2 декабря", "en": "delivered on 2 December"},
    "55555": {"ru": "собирается на складе", "en": "being packed at the warehouse"},
}


@router.get("/demo/crm/orders/{number}")
async def order(number: str, lang: str = "ru") -> JSONResponse:
    found = ORDERS.get(number)
    if found is None:
        return JSONResponse({"error": "not found", "number": number}, status_code=404)
    return JSONResponse({"number": number, "status": found.get(lang, found["ru"]), "status_en": found["en"]})
