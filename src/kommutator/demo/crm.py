"""The demo workspace's stand-in CRM: ``GET /demo/crm/orders/{number}`` answers a few orders (the bot's lookups),
``POST /demo/crm/customers`` answers the CRM card (crm/) for any customer: a tier, recent orders and, for the
VIP ones, their personal manager.

Mounted only by ``kommutator demo``; the default flow's "Order status" looks orders up here (the demo puts the
server's own address on the outbound allow-list, since it is loopback).
"""

from __future__ import annotations

import zlib
from typing import Any

from fastapi import APIRouter, Request
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


@router.post("/demo/crm/customers")
async def customer(request: Request) -> JSONResponse:
    """A card for any customer, the same every time for the same identity (the request's first identity)."""
    body: dict[str, Any] = await request.json()
    identities = (body.get("contact") or {}).get("identities") or []
    if not identities:
        return JSONResponse({"error": "not found"}, status_code=404)
    seed = zlib.crc32(str(identities[0].get("external_id", "")).encode())
    numbers = sorted(ORDERS)
    tier = ("VIP", "regular", "regular", "new")[seed % 4]
    card: dict[str, Any] = {"tier": tier, "customer_since": str(2019 + seed % 7),
                            "orders": [{"number": numbers[(seed + k) % len(numbers)],
                                        "status": ORDERS[numbers[(seed + k) % len(numbers)]]["ru"]}
                                       for k in range(1 + seed % 2)]}
    if tier == "VIP":
        card["manager_email"] = "maria@demo.kommutator.dev"
    return JSONResponse(card)
