"""/api/v1/integrations/crm (administrators) and /api/v1/contacts/{id}/crm (whoever sees the contact)."""

from __future__ import annotations

from fastapi import APIRouter

from kommutator.audit.actions import do_audit
from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.clock import now
from kommutator.common import webhook_signing as signing
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import Id
from kommutator.contacts import policy
from kommutator.crm.models import CrmCard, CrmSetting
from kommutator.crm.schemas import CrmCardRead, CrmSettingRead, CrmSettingUpdate
from kommutator.crm.service import ask, crm_enricher_of
from kommutator.db import Tx
from kommutator.errors import ProblemError
from kommutator.net.http import guard_of
from kommutator.runtime import Runtime
from kommutator.subscriptions.actions import check_url

router = APIRouter(tags=["contacts"], route_class=SafeRoute)


def _read(rt: Runtime, row: CrmSetting) -> CrmSettingRead:
    secret = str(rt.box.decrypt(row.secret_encrypted)["secret"]) if row.secret_encrypted else ""
    return CrmSettingRead(url=row.url, enabled=row.enabled, ttl_seconds=row.ttl_seconds,
                          timeout_seconds=row.timeout_seconds, set_manager=row.set_manager, secret=secret)


async def _setting(tx: Tx, rt: Runtime) -> CrmSetting:
    row = await tx.session.get(CrmSetting, 1)
    if row is None:
        row = CrmSetting(id=1, url="", enabled=False, ttl_seconds=3600, timeout_seconds=3, set_manager=True,
                         secret_encrypted=rt.box.encrypt({"secret": signing.new_secret()}), updated_at=now())
        tx.session.add(row)
        await tx.session.flush()
    return row


@router.get("/integrations/crm", response_model=CrmSettingRead, tags=["subscriptions"])
async def get_crm_setting(rt: RuntimeDep, principal: CurrentPrincipal) -> CrmSettingRead:
    """The CRM card integration: where the CRM is asked, for how long answers are reused, the signing secret."""
    principal.require_admin()
    return _read(rt, await rt.db.write(lambda tx: _setting(tx, rt)))


@router.put("/integrations/crm", response_model=CrmSettingRead, tags=["subscriptions"])
async def update_crm_setting(rt: RuntimeDep, principal: CurrentPrincipal, body: CrmSettingUpdate) -> CrmSettingRead:
    principal.require_admin()
    if body.url is not None:
        await check_url(guard_of(crm_enricher_of(rt).client), str(body.url))

    async def job(tx: Tx) -> CrmSetting:
        row = await _setting(tx, rt)
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        if "url" in changes:
            changes["url"] = str(body.url)
        for key, value in changes.items():
            setattr(row, key, value)
        if row.enabled and not row.url:
            raise ProblemError(422, "crm_url_required", "url: give the CRM's address before turning it on.")
        row.updated_at = now()
        do_audit(tx, principal, "crm.configured", "integration", "crm", **{k: str(v) for k, v in changes.items()})
        return row

    return _read(rt, await rt.db.write(job))


@router.get("/contacts/{contact_id}/crm", response_model=CrmCardRead)
async def get_crm_card(rt: RuntimeDep, principal: CurrentPrincipal, contact_id: Id) -> CrmCardRead:
    """What the CRM said about the contact, when it was asked."""
    async with rt.db.read() as s:
        await policy.check_see(s, principal, contact_id)
        card = await s.get(CrmCard, contact_id)
    if card is None:
        raise ProblemError(404, "crm_card_not_found", "The CRM has not been asked about this contact yet.")
    return CrmCardRead.model_validate(card)


@router.post("/contacts/{contact_id}/crm/refresh", response_model=CrmCardRead)
async def refresh_crm_card(rt: RuntimeDep, principal: CurrentPrincipal, contact_id: Id) -> CrmCardRead:
    """Ask the CRM again now (within its time limit) and answer what it said."""
    async with rt.db.read() as s:
        await policy.check_see(s, principal, contact_id)
        setting = await s.get(CrmSetting, 1)
    if setting is None or not setting.enabled or not setting.url:
        raise ProblemError(409, "crm_not_configured", "No CRM is set up; an administrator sets it under "
                                                      "Event subscriptions → CRM card.")
    card = await ask(rt, crm_enricher_of(rt).client, setting, contact_id)
    if card is None:
        raise ProblemError(404, "contact_not_found", f"There is no contact with id {contact_id}.")
    return CrmCardRead.model_validate(card)
