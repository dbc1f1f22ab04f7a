"""The demo workspace's stand-in for a CRM: it receives agent replies from the demo API channel.

Mounted only by ``kommutator demo``. It checks each delivery's Standard Webhooks signature, exactly as a
real integrator must, and appends the reply to ``<data_dir>/demo-integrator.jsonl`` so a newcomer can see
what an integration receives.
"""

from __future__ import annotations

import hmac
import json

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from kommutator.channels.types.api.adapter import secret_bytes, signature
from kommutator.common import webhook_signing
from kommutator.common.routes import SafeRoute
from kommutator.runtime import get_runtime

DEMO_OUTBOUND_SECRET = "whsec_ZGVtby1vdXRib3VuZC1zZWNyZXQtZm9yLXRoZS13ZWJzaXRlLTIwMjY="  # noqa: S105  (demo value)
# The demo's event subscription (subscriptions/) signs with this one; /demo/events checks it.
DEMO_EVENTS_SECRET = "whsec_ZGVtby1ldmVudHMtc2VjcmV0LWZvci10aGUtY3JtLTIwMjYtLS0t"  # noqa: S105  (demo value)

router = APIRouter(include_in_schema=False, route_class=SafeRoute)


@router.post("/demo/integrator")
async def receive(request: Request) -> JSONResponse:
    body = await request.body()
    msg_id = request.headers.get("webhook-id", "")
    timestamp = request.headers.get("webhook-timestamp", "")
    expected = signature(secret_bytes(DEMO_OUTBOUND_SECRET), msg_id, timestamp, body)
    sent = request.headers.get("webhook-signature", "").split()
    if not any(hmac.compare_digest(s, expected) for s in sent):
        return JSONResponse({"error": "bad signature"}, status_code=401)
    rt = await get_runtime(request)
    line = json.dumps({"webhook_id": msg_id, **json.loads(body)}, ensure_ascii=False)
    with (rt.settings.data_dir / "demo-integrator.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    return JSONResponse({"ok": True})


@router.post("/demo/events")
async def events(request: Request) -> JSONResponse:
    """The demo's event subscription: signed events appended to ``<data_dir>/demo-events.jsonl``."""
    body = await request.body()
    h = request.headers
    if not webhook_signing.verify(DEMO_EVENTS_SECRET, h.get("webhook-id", ""), h.get("webhook-timestamp", "0"), body,
                                  h.get("webhook-signature", "")):
        return JSONResponse({"error": "bad signature"}, status_code=401)
    rt = await get_runtime(request)
    line = json.dumps({"webhook_id": h.get("webhook-id", ""), **json.loads(body)}, ensure_ascii=False)
    with (rt.settings.data_dir / "demo-events.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    return JSONResponse({"ok": True})
