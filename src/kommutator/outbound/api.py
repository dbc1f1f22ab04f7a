"""Starting conversations (/conversations), message templates (/message-templates) and notifications
(/notifications) for integrators. Refusals answer in the caller's language (Accept-Language: ru or en) and carry
both sentences."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.channels.registry import get_adapter
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import Id
from kommutator.contacts import policy
from kommutator.db import Tx
from kommutator.errors import not_found
from kommutator.outbound import actions, queries, templates
from kommutator.outbound.models import MessageTemplate
from kommutator.outbound.schemas import (
    ConversationStart,
    NotificationCreate,
    NotificationRead,
    StartedRead,
    StartPreview,
    TemplateCreate,
    TemplateList,
    TemplateRead,
    TemplateUpdate,
)
from kommutator.outbound.texts import pick_language

conversations_router = APIRouter(tags=["conversations"], route_class=SafeRoute)
router = APIRouter(tags=["outbound"], route_class=SafeRoute)


def _language(request: Request) -> str:
    return pick_language(request.headers.get("accept-language", ""))


@conversations_router.post("/conversations", response_model=StartedRead, status_code=201)
async def start_conversation(rt: RuntimeDep, principal: CurrentPrincipal, request: Request,
                             body: ConversationStart) -> StartedRead:
    """Write first to a contact you may see: on a channel (id) or their preferred one, with text or a template.
    Each channel's rule is checked (WhatsApp's 24-hour window, bots reach only people who wrote, SMS length,
    email subject); a refusal is a 422 saying which rule and what to do. 409 when they have an open conversation."""
    language = _language(request)
    conv, msg, route = await rt.db.write(lambda tx: actions.do_start_conversation(tx, principal, body, language))
    return StartedRead(conversation_id=conv.id, message_id=msg.id, channel_id=route.channel.id,
                       channel_type=route.channel.type, measure=route.measure)


@conversations_router.post("/conversations/preview", response_model=StartPreview)
async def preview_conversation(rt: RuntimeDep, principal: CurrentPrincipal, request: Request,
                               body: ConversationStart) -> StartPreview:
    """Check a first message without sending it: the channel it would take, or the rule that refuses it, and how
    it travels (SMS: GSM-7 or UCS-2, segments)."""
    language = _language(request)

    async def job(tx: Tx) -> StartPreview:
        contact = await policy.check_see(tx.session, principal, body.contact_id)
        draft, _ = await actions.draft_of(tx, contact, body, language)
        channels = await actions.candidates(tx, contact, body.channel, language)
        routes, skipped = await actions.choose_route(tx, contact, channels, draft, "service", language)
        if routes:
            r = routes[0]
            return StartPreview(channel_id=r.channel.id, channel_type=r.channel.type, allowed=True, measure=r.measure)
        first = skipped[0] if skipped else {}
        err = actions.no_route(skipped, language)
        measure = {}
        if channels:
            measure = get_adapter(channels[0].type).measure(draft)
        return StartPreview(channel_id=first.get("channel_id"), channel_type=first.get("channel_type"),
                            allowed=False, code=err.code, detail=err.detail, measure=measure,
                            sentences=dict(err.extra.get("sentences") or {}))

    return await rt.db.write(job)  # writes nothing; the actions' helpers take a transaction


@router.get("/message-templates", response_model=TemplateList)
async def list_templates(rt: RuntimeDep, principal: CurrentPrincipal) -> TemplateList:
    """Message templates (any signed-in user; agents pick them when writing first)."""
    async with rt.db.read() as s:
        return TemplateList(items=await queries.templates(s))


@router.get("/message-templates/{template_id}", response_model=TemplateRead)
async def get_template(rt: RuntimeDep, principal: CurrentPrincipal, template_id: Id) -> TemplateRead:
    """One message template (any signed-in user)."""
    async with rt.db.read() as s:
        row = await s.get(MessageTemplate, template_id)
    if row is None:
        raise not_found("template", template_id)
    return TemplateRead.model_validate(row)


@router.post("/message-templates", response_model=TemplateRead, status_code=201)
async def create_template(rt: RuntimeDep, principal: CurrentPrincipal, request: Request,
                          body: TemplateCreate) -> TemplateRead:
    """Add a template (administrators): name and language as approved at WhatsApp, body with {{parameters}}.
    422 ``template_placeholders_mismatch`` when the body's placeholders are not exactly the parameters; 409
    ``template_exists`` for a name and language taken. Both name the field at fault in ``errors``."""
    language = _language(request)
    row: MessageTemplate = await rt.db.write(lambda tx: templates.do_create_template(tx, principal, body, language))
    return TemplateRead.model_validate(row)


@router.patch("/message-templates/{template_id}", response_model=TemplateRead)
async def update_template(rt: RuntimeDep, principal: CurrentPrincipal, request: Request, template_id: Id,
                          body: TemplateUpdate) -> TemplateRead:
    """Change a template's name, language, body, parameters, category or approval (administrators); the same
    refusals as creating one."""
    language = _language(request)
    row = await rt.db.write(lambda tx: templates.do_update_template(tx, principal, template_id, body, language))
    return TemplateRead.model_validate(row)


@router.delete("/message-templates/{template_id}", status_code=204)
async def delete_template(rt: RuntimeDep, principal: CurrentPrincipal, template_id: Id) -> Response:
    """Delete a template (administrators)."""
    await rt.db.write(lambda tx: templates.do_delete_template(tx, principal, template_id))
    return Response(status_code=204)


@router.post("/notifications", response_model=NotificationRead, status_code=202)
async def send_notification(rt: RuntimeDep, principal: CurrentPrincipal, request: Request,
                            body: NotificationCreate) -> NotificationRead:
    """Notify a contact (by id, phone, email or channel identity) through their preferred channel they agreed to,
    or the channels listed in order; when one fails the next is tried. Send ``Idempotency-Key`` to make retries
    safe. Follow the delivery at ``GET /notifications/{id}``; the customer's answer opens a routed conversation."""
    language = _language(request)
    note = await rt.db.write(lambda tx: actions.do_send_notification(tx, principal, body, language))
    async with rt.db.read() as s:
        return await queries.notification(s, principal, note.id)


@router.get("/notifications/{notification_id}", response_model=NotificationRead)
async def get_notification(rt: RuntimeDep, principal: CurrentPrincipal, notification_id: Id) -> NotificationRead:
    """A notification's status and each attempt: channel, message, queued / sent / delivered / read / failed."""
    async with rt.db.read() as s:
        return await queries.notification(s, principal, notification_id)
