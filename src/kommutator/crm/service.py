"""Asking the CRM: after a conversation is created (a bus listener, so after the commit and never in the way of
intake or the bot), in the background, a few at a time, each within the configured time limit."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from kommutator.agents.models import User
from kommutator.clock import now
from kommutator.common import webhook_signing as signing
from kommutator.common.jsonsafe import loads_json
from kommutator.contacts.models import Contact, Identity
from kommutator.crm.models import CrmCard, CrmSetting
from kommutator.db import Tx
from kommutator.events import ContactChanged, ConversationCreated, Event
from kommutator.workers.base import BackgroundTask

if TYPE_CHECKING:
    import httpx

    from kommutator.runtime import Runtime

log = logging.getLogger(__name__)
PARALLEL = 4
MAX_ANSWER = 64_000  # bytes of a CRM answer kept


async def load_setting(rt: Runtime) -> CrmSetting | None:
    async with rt.db.read() as s:
        return await s.get(CrmSetting, 1)


async def _request_body(rt: Runtime, contact_id: int) -> dict[str, Any] | None:
    async with rt.db.read() as s:
        c = await s.get(Contact, contact_id)
        if c is None:
            return None
        identities = (await s.execute(select(Identity.channel_type, Identity.external_id, Identity.display)
                                      .where(Identity.contact_id == contact_id).order_by(Identity.id))).all()
    return {"contact": {"id": c.id, "name": c.name, "email": c.email, "phone": c.phone, "language": c.language,
                        "identities": [{"channel_type": t, "external_id": e, "display": d}
                                       for t, e, d in identities]}}


async def ask(rt: Runtime, client: httpx.AsyncClient, setting: CrmSetting, contact_id: int) -> CrmCard | None:
    """Ask the CRM about one contact and keep its answer (or why there is none); None: the contact is gone."""
    body = await _request_body(rt, contact_id)
    if body is None:
        return None
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    secret = str(rt.box.decrypt(setting.secret_encrypted)["secret"]) if setting.secret_encrypted else ""
    headers = signing.headers(secret, f"msg_{uuid.uuid4().hex}", int(time.time()), raw) if secret \
        else {"content-type": "application/json"}
    status, data, error = "ok", {}, ""
    try:
        async with asyncio.timeout(setting.timeout_seconds):
            response = await client.post(setting.url, content=raw, headers=headers)
        if response.status_code == 404:
            status = "not_found"
        elif response.status_code != 200:
            status, error = "error", f"HTTP {response.status_code}"
        elif len(response.content) > MAX_ANSWER:
            status, error = "error", f"the answer is larger than {MAX_ANSWER} bytes"
        else:
            parsed = loads_json(response.content, where="the CRM's answer")
            if isinstance(parsed, dict):
                data = parsed
            else:
                status, error = "error", "the answer is not a JSON object"
    except TimeoutError:
        status, error = "timeout", f"no answer within {setting.timeout_seconds} s"
    except Exception as exc:  # refused by the guard, connection refused, bad JSON: the card says why
        status, error = "error", f"{type(exc).__name__}: {exc}"[:500]
    return await rt.db.write(lambda tx: do_store_card(tx, contact_id, status, data, error,
                                                      set_manager=setting.set_manager))


ATTRIBUTE_PREFIX = "crm_"


def crm_attributes(data: dict[str, Any]) -> dict[str, Any]:
    """The answer's top-level text, number and yes/no fields, named ``crm_<field>`` (lists and objects stay on the
    card only)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = ATTRIBUTE_PREFIX + re.sub(r"[^0-9A-Za-z_]", "_", str(key))[:60]
        if isinstance(value, str):
            out[name] = value[:500]
        elif isinstance(value, int | float):  # bool is an int
            out[name] = value
    return out


async def do_store_card(tx: Tx, contact_id: int, status: str, data: dict[str, Any], error: str, *,
                        set_manager: bool) -> CrmCard | None:
    contact = await tx.session.get(Contact, contact_id)
    if contact is None:
        return None
    card = await tx.session.get(CrmCard, contact_id)
    if card is None:
        card = CrmCard(contact_id=contact_id)
        tx.session.add(card)
    if status == "ok" or card.status != "ok":  # a failure keeps the last good answer's data
        card.data = data
    card.status, card.error, card.fetched_at = status, error, now()
    if status == "ok":  # the CRM's plain fields as crm_* attributes: bot flows ({contact.crm_tier}), segments, routing
        kept = {k: v for k, v in (contact.attributes or {}).items() if not k.startswith(ATTRIBUTE_PREFIX)}
        contact.attributes = {**kept, **crm_attributes(data)}
    email = data.get("manager_email") if status == "ok" else None
    if set_manager and isinstance(email, str) and contact.manager_id is None:
        manager = (await tx.session.execute(select(User.id).where(
            User.email == email.strip().lower(), User.active.is_(True),
            User.role.in_(("agent", "supervisor"))))).scalar_one_or_none()
        if manager is not None:
            contact.manager_id = manager
    tx.publish(ContactChanged(contact_id=contact_id, action="updated"))
    await tx.session.flush()
    return card


class CrmEnricher(BackgroundTask):
    """Hears new conversations; asks the CRM about their contacts unless a fresh answer is cached."""

    name_in_logs = "crm"

    def __init__(self, rt: Runtime, *, client: httpx.AsyncClient | None = None) -> None:
        super().__init__()
        self.rt = rt
        self._client = client
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self.queued: set[int] = set()
        rt.bus.subscribe(self._heard, kinds=(ConversationCreated,))

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            from kommutator.net.http import outbound_client

            self._client = outbound_client(self.rt.settings, timeout=30.0)
        return self._client

    async def _heard(self, event: Event) -> None:
        assert isinstance(event, ConversationCreated)
        if event.contact_id and event.contact_id not in self.queued:
            self.queued.add(event.contact_id)
            self.queue.put_nowait(event.contact_id)

    async def due(self, contact_id: int, setting: CrmSetting) -> bool:
        async with self.rt.db.read() as s:
            card = await s.get(CrmCard, contact_id)
        return card is None or (now() - card.fetched_at).total_seconds() >= setting.ttl_seconds

    async def handle(self, contact_id: int) -> CrmCard | None:
        """One queued contact (tests call it through ``drain``)."""
        self.queued.discard(contact_id)
        setting = await load_setting(self.rt)
        if setting is None or not setting.enabled or not setting.url or not await self.due(contact_id, setting):
            return None
        return await ask(self.rt, self.client, setting, contact_id)

    async def drain(self) -> int:
        """Handle everything queued now, a few at a time; the number handled."""
        ids = []
        while not self.queue.empty():
            ids.append(self.queue.get_nowait())
        sem = asyncio.Semaphore(PARALLEL)

        async def one(cid: int) -> None:
            async with sem:
                try:
                    await self.handle(cid)
                except Exception:
                    log.exception("asking the CRM about contact %s failed", cid)

        await asyncio.gather(*(one(c) for c in ids))
        return len(ids)

    async def _loop(self) -> None:
        while True:
            first = await self.queue.get()
            self.queue.put_nowait(first)
            await self.drain()

    async def stop(self) -> None:
        await super().stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def crm_enricher_of(rt: Runtime) -> CrmEnricher:
    if rt.crm_enricher is None:
        rt.crm_enricher = CrmEnricher(rt)
    return rt.crm_enricher
