"""Segments (/segments) and campaigns (/campaigns): supervisors and administrators only. Refusals answer in the
caller's language (Accept-Language: ru or en) and carry both sentences."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select

from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import MAX_ID, Id
from kommutator.errors import not_found
from kommutator.outbound import campaigns, segments
from kommutator.outbound.models import Campaign, CampaignRecipient, Segment
from kommutator.outbound.schemas import (
    AudienceCount,
    CampaignCreate,
    CampaignList,
    CampaignRead,
    CampaignUpdate,
    RecipientList,
    RecipientRead,
    SegmentCreate,
    SegmentList,
    SegmentRead,
    SegmentRules,
    SegmentUpdate,
)
from kommutator.outbound.texts import pick_language

router = APIRouter(tags=["campaigns"], route_class=SafeRoute)
RecipientStatus = Literal["pending", "queued", "skipped", "cancelled"]


def _language(request: Request) -> str:
    return pick_language(request.headers.get("accept-language", ""))


async def _segment_read(rt: RuntimeDep, row: Segment) -> SegmentRead:
    async with rt.db.read() as s:
        count = len(await segments.contact_ids(s, SegmentRules.model_validate(row.rules)))
    return SegmentRead.model_validate(row).model_copy(update={"count": count})


@router.get("/segments", response_model=SegmentList)
async def list_segments(rt: RuntimeDep, principal: CurrentPrincipal) -> SegmentList:
    """Saved audiences with the number of contacts each holds now."""
    principal.require_supervisor()
    async with rt.db.read() as s:
        rows = list((await s.execute(select(Segment).order_by(Segment.id))).scalars())
    return SegmentList(items=[await _segment_read(rt, r) for r in rows])


@router.post("/segments", response_model=SegmentRead, status_code=201)
async def create_segment(rt: RuntimeDep, principal: CurrentPrincipal, body: SegmentCreate) -> SegmentRead:
    """Save an audience: attributes, labels, channels, preferred channel, last contact, personal manager,
    language and consent; every rule given must hold."""
    row = await rt.db.write(lambda tx: segments.do_create_segment(tx, principal, body))
    return await _segment_read(rt, row)


@router.post("/segments/count", response_model=AudienceCount)
async def count_audience(rt: RuntimeDep, principal: CurrentPrincipal, body: SegmentRules) -> AudienceCount:
    """How many contacts these rules select now (the screen calls it as the rules change)."""
    principal.require_supervisor()
    async with rt.db.read() as s:
        return AudienceCount(count=len(await segments.contact_ids(s, body)))


@router.get("/segments/{segment_id}", response_model=SegmentRead)
async def get_segment(rt: RuntimeDep, principal: CurrentPrincipal, segment_id: Id) -> SegmentRead:
    principal.require_supervisor()
    async with rt.db.read() as s:
        row = await s.get(Segment, segment_id)
    if row is None:
        raise not_found("segment", segment_id)
    return await _segment_read(rt, row)


@router.patch("/segments/{segment_id}", response_model=SegmentRead)
async def update_segment(rt: RuntimeDep, principal: CurrentPrincipal, segment_id: Id,
                         body: SegmentUpdate) -> SegmentRead:
    row = await rt.db.write(lambda tx: segments.do_update_segment(tx, principal, segment_id, body))
    return await _segment_read(rt, row)


@router.delete("/segments/{segment_id}", status_code=204)
async def delete_segment(rt: RuntimeDep, principal: CurrentPrincipal, segment_id: Id) -> Response:
    await rt.db.write(lambda tx: segments.do_delete_segment(tx, principal, segment_id))
    return Response(status_code=204)


async def _read(rt: RuntimeDep, campaign_id: int) -> CampaignRead:
    async with rt.db.read() as s:
        row = await s.get(Campaign, campaign_id)
        if row is None:
            raise not_found("campaign", campaign_id)
        stats = (await campaigns.stats_of(s, [row.id]))[row.id]
        return CampaignRead.model_validate(row).model_copy(update={"stats": stats})


@router.get("/campaigns", response_model=CampaignList)
async def list_campaigns(rt: RuntimeDep, principal: CurrentPrincipal) -> CampaignList:
    """Campaigns, newest first, with their stats."""
    principal.require_supervisor()
    async with rt.db.read() as s:
        rows = list((await s.execute(select(Campaign).order_by(Campaign.id.desc()).limit(200))).scalars())
        stats = await campaigns.stats_of(s, [r.id for r in rows])
        return CampaignList(items=[CampaignRead.model_validate(r).model_copy(update={"stats": stats[r.id]})
                                   for r in rows])


@router.post("/campaigns", response_model=CampaignRead, status_code=201)
async def create_campaign(rt: RuntimeDep, principal: CurrentPrincipal, request: Request,
                          body: CampaignCreate) -> CampaignRead:
    """A draft campaign: segments, text per language (or a template), channel strategy, purpose, schedule with
    quiet hours, throttle. 422 with a sentence for missing placeholders or template parameters and unknown
    channels."""
    language = _language(request)
    row = await rt.db.write(lambda tx: campaigns.do_create_campaign(tx, principal, body, language))
    return await _read(rt, row.id)


@router.get("/campaigns/{campaign_id}", response_model=CampaignRead)
async def get_campaign(rt: RuntimeDep, principal: CurrentPrincipal, campaign_id: Id) -> CampaignRead:
    """A campaign and its stats: targeted, skipped by reason, sent, delivered, read, failed, replied."""
    principal.require_supervisor()
    return await _read(rt, campaign_id)


@router.patch("/campaigns/{campaign_id}", response_model=CampaignRead)
async def update_campaign(rt: RuntimeDep, principal: CurrentPrincipal, request: Request, campaign_id: Id,
                          body: CampaignUpdate) -> CampaignRead:
    """Change a draft (segments, texts per language, template and its parameters, channel strategy, purpose,
    schedule, quiet hours, throttle): only the fields given. The same 422s as creating one; 409 ``campaign_status``
    once it has started."""
    language = _language(request)
    await rt.db.write(lambda tx: campaigns.do_update_campaign(tx, principal, campaign_id, body, language))
    return await _read(rt, campaign_id)


@router.get("/campaigns/{campaign_id}/recipients", response_model=RecipientList)
async def list_recipients(rt: RuntimeDep, principal: CurrentPrincipal, campaign_id: Id,
                          status: RecipientStatus | None = None,
                          after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> RecipientList:
    """The campaign's recipients (500 a page after the contact id ``after``), optionally of one status."""
    principal.require_supervisor()
    async with rt.db.read() as s:
        stmt = (select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id,
                                                CampaignRecipient.contact_id > after)
                .order_by(CampaignRecipient.contact_id).limit(500))
        if status:
            stmt = stmt.where(CampaignRecipient.status == status)
        return RecipientList(items=[RecipientRead.model_validate(r) for r in (await s.execute(stmt)).scalars()])


async def _steer(rt: RuntimeDep, principal: CurrentPrincipal, request: Request, campaign_id: int,
                 action: str) -> CampaignRead:
    language = _language(request)
    do = {"start": campaigns.do_start_campaign, "pause": campaigns.do_pause_campaign,
          "resume": campaigns.do_resume_campaign, "cancel": campaigns.do_cancel_campaign}[action]
    await rt.db.write(lambda tx: do(tx, principal, campaign_id, language))
    return await _read(rt, campaign_id)


@router.post("/campaigns/{campaign_id}/start", response_model=CampaignRead)
async def start_campaign(rt: RuntimeDep, principal: CurrentPrincipal, request: Request,
                         campaign_id: Id) -> CampaignRead:
    """Fix the audience (each contact once) and start; 422 for an empty audience or contacts lacking a
    placeholder's value; 409 when it is not a draft."""
    return await _steer(rt, principal, request, campaign_id, "start")


@router.post("/campaigns/{campaign_id}/pause", response_model=CampaignRead)
async def pause_campaign(rt: RuntimeDep, principal: CurrentPrincipal, request: Request,
                         campaign_id: Id) -> CampaignRead:
    """No new messages are written; those already in the outbox (a few seconds' worth) still go."""
    return await _steer(rt, principal, request, campaign_id, "pause")


@router.post("/campaigns/{campaign_id}/resume", response_model=CampaignRead)
async def resume_campaign(rt: RuntimeDep, principal: CurrentPrincipal, request: Request,
                          campaign_id: Id) -> CampaignRead:
    return await _steer(rt, principal, request, campaign_id, "resume")


@router.post("/campaigns/{campaign_id}/cancel", response_model=CampaignRead)
async def cancel_campaign(rt: RuntimeDep, principal: CurrentPrincipal, request: Request,
                          campaign_id: Id) -> CampaignRead:
    """Stop now: nobody pending gets the message, and messages not yet handed to a provider are withdrawn."""
    return await _steer(rt, principal, request, campaign_id, "cancel")
