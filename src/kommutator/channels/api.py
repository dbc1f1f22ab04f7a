"""/api/v1/channels (administration) and /webhooks/{channel_id} (providers' inbound requests)."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Route

from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.channels import signin
from kommutator.channels.actions import (
    check_targets,
    config_of,
    do_create_channel,
    do_delete_channel,
    do_update_channel,
)
from kommutator.channels.base import Accepted, ChannelConfig, InboundRequest
from kommutator.channels.checking import health_read, health_rows, run_channel_test
from kommutator.channels.models import Channel, ChannelHealth
from kommutator.channels.oauth import OAuthError, open_state, redirect_uri
from kommutator.channels.registry import channel_types, get_adapter
from kommutator.channels.schemas import (
    ChannelCreate,
    ChannelCreated,
    ChannelRead,
    ChannelTestRead,
    ChannelTypeRead,
    ChannelUpdate,
    OAuthStartRead,
)
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import MAX_ID, Id
from kommutator.errors import ProblemError, not_found
from kommutator.ingest.actions import accept
from kommutator.net.guard import OutboundGuard
from kommutator.runtime import Runtime

router = APIRouter(tags=["channels"], route_class=SafeRoute)
webhooks = APIRouter(tags=["webhooks"], route_class=SafeRoute)

_CACHE_SECONDS = 5.0


def _read(rt: Runtime, channel: Channel, *, full: bool, health: ChannelHealth | None = None) -> ChannelRead:
    url = f"{rt.settings.public_base_url}/webhooks/{channel.id}"
    base = ChannelRead.model_validate(channel)
    if not full:
        return base.model_copy(update={"settings": {}})
    cfg = config_of(channel, rt.box, rt.settings.public_base_url)
    adapter = get_adapter(channel.type)
    return base.model_copy(update={"webhook_url": url if adapter.receives_webhooks else "",
                                   "credential_fields": sorted(cfg.credentials),
                                   "setup": adapter.setup_instructions(cfg, url), "health": health_read(health)})


def _forget(rt: Runtime, channel_id: int) -> None:
    rt.channel_cache.pop(channel_id, None)


async def load_channel(rt: Runtime, channel_id: int) -> ChannelConfig:
    """The channel with decrypted credentials, cached briefly (webhooks are the hot path)."""
    cache = rt.channel_cache
    hit = cache.get(channel_id)
    if hit is not None and hit[0] > time.monotonic():
        cfg: ChannelConfig = hit[1]
        return cfg
    async with rt.db.read() as s:
        channel = await s.get(Channel, channel_id)
    if channel is None:
        raise not_found("channel", channel_id)
    cfg = config_of(channel, rt.box, rt.settings.public_base_url)
    cache[channel_id] = (time.monotonic() + _CACHE_SECONDS, cfg)
    return cfg


@router.get("/channel-types", response_model=list[ChannelTypeRead])
async def list_channel_types(principal: CurrentPrincipal) -> list[ChannelTypeRead]:
    """The channel types this server can connect, with the settings and credentials each needs."""
    return [ChannelTypeRead(type=t, title=a.title, settings_schema=a.Settings.model_json_schema(),
                            credentials_schema=a.Credentials.model_json_schema(),
                            generated_credentials=sorted(a.generate_credentials()))
            for t, a in sorted(channel_types().items())]


@router.get("/channels", response_model=list[ChannelRead])
async def list_channels(rt: RuntimeDep, principal: CurrentPrincipal) -> list[ChannelRead]:
    """Every channel; administrators also see webhook URLs, settings and set-up steps."""
    async with rt.db.read() as s:
        rows = list((await s.execute(select(Channel).order_by(Channel.id))).scalars())
        health = await health_rows(s, [c.id for c in rows]) if principal.is_admin else {}
    return [_read(rt, c, full=principal.is_admin, health=health.get(c.id)) for c in rows]


@router.post("/channels", response_model=ChannelCreated, status_code=201)
async def create_channel(rt: RuntimeDep, principal: CurrentPrincipal, body: ChannelCreate) -> ChannelCreated:
    """Connect a channel. Secrets the server generates (e.g. an inbound token) are shown only here."""
    principal.require_admin()
    await check_targets(OutboundGuard(rt.settings.outbound_allow_hosts), body.type, body.settings)
    channel, generated = await rt.db.write(lambda tx: do_create_channel(tx, principal, body, rt.box))
    return ChannelCreated(**_read(rt, channel, full=True).model_dump(), generated_credentials=generated)


@router.get("/channels/{channel_id}", response_model=ChannelRead)
async def get_channel(rt: RuntimeDep, principal: CurrentPrincipal, channel_id: Id) -> ChannelRead:
    async with rt.db.read() as s:
        channel = await s.get(Channel, channel_id)
        health = await s.get(ChannelHealth, channel_id)
    if channel is None:
        raise not_found("channel", channel_id)
    return _read(rt, channel, full=principal.is_admin, health=health)


@router.patch("/channels/{channel_id}", response_model=ChannelRead)
async def update_channel(rt: RuntimeDep, principal: CurrentPrincipal, channel_id: Id,
                         body: ChannelUpdate) -> ChannelRead:
    principal.require_admin()
    if body.settings is not None:
        await check_targets(OutboundGuard(rt.settings.outbound_allow_hosts), (await load_channel(rt, channel_id)).type,
                            body.settings)
    channel = await rt.db.write(lambda tx: do_update_channel(tx, principal, channel_id, body, rt.box))
    _forget(rt, channel_id)
    return _read(rt, channel, full=True)


@router.post("/channels/{channel_id}/test", response_model=ChannelTestRead)
async def test_channel_connection(rt: RuntimeDep, principal: CurrentPrincipal, channel_id: Id) -> ChannelTestRead:
    """Test the connection to the provider (Telegram getMe, SMTP and IMAP login, token checks, outbound URL)
    without sending to anyone; the outcome becomes the channel's health."""
    principal.require_admin()
    _forget(rt, channel_id)  # test what is saved now
    return await run_channel_test(rt, await load_channel(rt, channel_id))


@router.post("/channels/{channel_id}/oauth/start", response_model=OAuthStartRead)
async def start_channel_sign_in(rt: RuntimeDep, principal: CurrentPrincipal, channel_id: Id) -> OAuthStartRead:
    """Begin the OAuth 2.0 sign-in of a channel whose settings say ``auth: oauth2`` (Gmail, Microsoft 365): open
    ``authorize_url`` in the browser; the provider sends it back to ``/api/v1/channels/oauth/callback``."""
    _forget(rt, channel_id)
    return OAuthStartRead(authorize_url=await signin.start(rt, principal, channel_id),
                          redirect_uri=redirect_uri(rt.settings.public_base_url))


@router.get("/channels/oauth/callback", status_code=303, response_class=RedirectResponse,
            responses={303: {"description": "Back to the channel screen, which says whether the sign-in worked"}})
async def finish_channel_sign_in(rt: RuntimeDep, principal: CurrentPrincipal, state: str = "", code: str = "",
                                 error: str = "", error_description: str = "") -> RedirectResponse:
    """Where the provider sends the administrator's browser after consent: the code is exchanged for tokens,
    which are stored encrypted with the channel's credentials."""
    channel_id: int | None = None
    try:
        channel_id = open_state(state, rt.box.decrypt).channel_id
        if error:
            detail = f": {error_description}" if error_description else ""
            raise OAuthError(f"the provider did not grant access ({error}{detail})", "auth")
        if not code:
            raise OAuthError("the provider sent no authorization code; start again from the channel screen", "config")
        await signin.complete(rt, principal, state, code)
    except OAuthError as exc:
        query = {"oauth": "error", "reason": signin.sentence(exc)}
    else:
        query = {"oauth": "ok"}
    if channel_id is not None:
        query["channel"] = str(channel_id)
    return RedirectResponse(f"/?{urlencode(query)}#channels", status_code=303)


@router.delete("/channels/{channel_id}", status_code=204)
async def delete_channel(rt: RuntimeDep, principal: CurrentPrincipal, channel_id: Id) -> Response:
    principal.require_admin()

    await rt.db.write(lambda tx: do_delete_channel(tx, principal, channel_id))
    _forget(rt, channel_id)
    return Response(status_code=204)


async def handle_inbound(rt: Runtime, channel_id: int, request: Request) -> Response:
    """A provider's request: verify, parse, commit, then acknowledge."""
    channel = await load_channel(rt, channel_id)
    if not channel.enabled:
        raise ProblemError(404, "channel_disabled", "This channel is disabled.")
    adapter = get_adapter(channel.type)
    req = InboundRequest(method=request.method, url=str(request.url), headers=dict(request.headers),
                         query=dict(request.query_params), body=await request.body())
    adapter.verify(channel, req)
    items = adapter.parse(channel, req)
    results = await accept(rt, channel, items, req.body)
    accepted = [Accepted(event_id=r.event_id, duplicate=r.duplicate,
                         conversation_id=r.received.conversation_id if r.received else None,
                         message_id=r.received.message_id if r.received else None) for r in results]
    ack = adapter.acknowledge(channel, req, accepted)
    if isinstance(ack.body, str):
        return PlainTextResponse(ack.body, status_code=ack.status, media_type=ack.media_type)
    return JSONResponse(ack.body, status_code=ack.status, media_type=ack.media_type)


@webhooks.get("/webhooks/{channel_id}", response_model=None, operation_id="webhooks_verify")
@webhooks.post("/webhooks/{channel_id}", response_model=None, operation_id="webhooks_receive")
async def inbound(rt: RuntimeDep, channel_id: Id, request: Request) -> Response:
    """A provider's request: verify, parse, commit, then acknowledge (documents the fast route below)."""
    return await handle_inbound(rt, channel_id, request)


async def fast_inbound(request: Request) -> Response:
    """The same endpoint as a plain Starlette route, matched first: the hot path skips FastAPI's
    dependency solving. Anything it does not accept falls through to ``inbound`` above."""
    channel_id = request.path_params["channel_id"]
    if not 1 <= channel_id <= MAX_ID:
        raise ProblemError(422, "validation_failed", f"channel_id: must be between 1 and {MAX_ID}.")
    return await handle_inbound(request.app.state.runtime, channel_id, request)


fast_webhook_route = Route("/webhooks/{channel_id:int}", fast_inbound, methods=["GET", "POST"])
