"""The CRM card against a fake CRM on loopback that checks the signature: the intake answers at once whatever the
CRM does; a correct answer fills the card and names the personal manager (so routing takes the VIP to them); a
slow, failing or unknowing CRM leaves a card that says why; answers are reused for their time to live."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kommutator.common import webhook_signing as signing
from kommutator.crm.service import crm_enricher_of
from kommutator.runtime import Runtime

from .conftest import Actor, Clock, Factory, post_inbound
from .fakes.serving import Served

_ids = itertools.count(1)


class FakeCrm:
    def __init__(self) -> None:
        self.secret = ""
        self.asked: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.mode = "ok"  # ok, slow, fail
        self.customers: dict[str, dict[str, Any]] = {}
        self._served = Served()
        self.url = ""

    async def _lookup(self, request: Request) -> Response:
        raw = await request.body()
        h = request.headers
        if not signing.verify(self.secret, h["webhook-id"], h["webhook-timestamp"], raw, h["webhook-signature"]):
            self.bad_signatures += 1
            return Response(status_code=401)
        body = await request.json()
        self.asked.append(body)
        if self.mode == "slow":
            await asyncio.sleep(5)
        if self.mode == "fail":
            return Response(status_code=500)
        for identity in body["contact"]["identities"]:
            if identity["external_id"] in self.customers:
                return JSONResponse(self.customers[identity["external_id"]])
        return Response(status_code=404)

    async def start(self) -> None:
        self.url = await self._served.start(Starlette(routes=[Route("/lookup", self._lookup, methods=["POST"])]))

    async def stop(self) -> None:
        await self._served.stop()


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    return settings


@pytest.fixture
async def crm(client: httpx.AsyncClient, admin: Actor) -> AsyncIterator[FakeCrm]:
    fake = FakeCrm()
    await fake.start()
    r = await client.put("/api/v1/integrations/crm", json={"url": f"{fake.url}/lookup", "enabled": True,
                                                           "timeout_seconds": 1, "ttl_seconds": 600},
                         headers=admin.headers)
    assert r.status_code == 200, r.text
    fake.secret = r.json()["secret"]
    assert fake.secret.startswith("whsec_")
    yield fake
    await fake.stop()


async def writes(client: httpx.AsyncClient, channel: dict[str, Any], who: str, text: str = "Здравствуйте") -> int:
    r = await post_inbound(client, channel, msg_id=f"crm-{next(_ids)}", contact=who, text=text)
    assert r.status_code == 200, r.text
    return int(r.json()["conversation_id"])


async def contact_of(client: httpx.AsyncClient, admin: Actor, cid: int) -> dict[str, Any]:
    contact_id = (await client.get(f"/api/v1/conversations/{cid}", headers=admin.headers)).json()["contact_id"]
    r = await client.get(f"/api/v1/contacts/{contact_id}", headers=admin.headers)
    return dict(r.json())


async def test_a_known_customer_gets_their_card_and_their_manager(
        client: httpx.AsyncClient, runtime: Runtime, factory: Factory, admin: Actor, clock: Clock,
        api_channel: dict[str, Any], crm: FakeCrm) -> None:
    manager = await factory.user("agent", name="Мария Менеджер")
    crm.customers["vip-1"] = {"name": "ООО Ромашка", "tier": "VIP", "manager_email": manager.email,
                              "orders": [{"number": "55501", "status": "в пути"}]}
    cid = await writes(client, api_channel, "vip-1")
    enricher = crm_enricher_of(runtime)
    assert await enricher.drain() == 1
    assert crm.bad_signatures == 0 and crm.asked[0]["contact"]["identities"][0]["external_id"] == "vip-1"
    card = await contact_of(client, admin, cid)
    assert card["crm"]["status"] == "ok" and card["crm"]["data"]["tier"] == "VIP"
    assert card["crm"]["data"]["orders"][0]["number"] == "55501"
    assert card["manager_id"] == manager.id, "the CRM's manager becomes the personal manager"
    # its plain fields are attributes for bot flows ({contact.crm_tier}), segments and routing; lists stay on the card
    assert card["attributes"]["crm_tier"] == "VIP" and card["attributes"]["crm_name"] == "ООО Ромашка"
    assert "crm_orders" not in card["attributes"]
    r = await client.get(f"/api/v1/contacts/{card['id']}/crm", headers=admin.headers)
    assert r.json()["data"]["name"] == "ООО Ромашка"

    # within its time to live the answer is reused; after it, asked again
    await client.post(f"/api/v1/conversations/{cid}/status", json={"status": "resolved"}, headers=admin.headers)
    await writes(client, api_channel, "vip-1", "снова я")
    await enricher.drain()
    assert len(crm.asked) == 1
    clock.tick(601)
    await client.post(f"/api/v1/conversations/{cid + 1}/status", json={"status": "resolved"},
                      headers=admin.headers)
    await writes(client, api_channel, "vip-1", "и снова")
    await enricher.drain()
    assert len(crm.asked) == 2


async def test_a_slow_failing_or_unknowing_crm_never_holds_up_a_customer(
        client: httpx.AsyncClient, runtime: Runtime, admin: Actor, api_channel: dict[str, Any],
        crm: FakeCrm) -> None:
    enricher = crm_enricher_of(runtime)
    crm.mode = "slow"
    cid = await writes(client, api_channel, "slow-1")  # answered before the CRM is even asked
    await enricher.drain()
    card = await contact_of(client, admin, cid)
    assert card["crm"]["status"] == "timeout" and "1 s" in card["crm"]["error"]

    crm.mode = "fail"
    cid = await writes(client, api_channel, "fail-1")
    await enricher.drain()
    assert (await contact_of(client, admin, cid))["crm"]["status"] == "error"

    crm.mode = "ok"
    cid = await writes(client, api_channel, "unknown-1")
    await enricher.drain()
    card = await contact_of(client, admin, cid)
    assert card["crm"]["status"] == "not_found" and card["manager_id"] is None
    r = await client.post(f"/api/v1/contacts/{card['id']}/crm/refresh", headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "not_found"


async def test_who_may_and_bad_settings(client: httpx.AsyncClient, runtime: Runtime, factory: Factory,
                                        admin: Actor) -> None:
    supervisor = await factory.user("supervisor")
    r = await client.get("/api/v1/integrations/crm", headers=supervisor.headers)
    assert r.status_code == 403
    r = await client.put("/api/v1/integrations/crm", json={"enabled": True}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "crm_url_required"
    runtime.settings.outbound_allow_hosts = []
    r = await client.put("/api/v1/integrations/crm", json={"url": "http://10.0.0.8/crm"}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "outbound_target_refused"
