"""The application factory: one ASGI app serving the API, webhooks and the web pages."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, RedirectResponse, Response

from kommutator import __version__
from kommutator.agents.api import router as agents_router
from kommutator.assist.api import router as assist_router
from kommutator.assist.service import suggester_of
from kommutator.audit.api import router as audit_router
from kommutator.auth.api import router as auth_router
from kommutator.bot import setup as bot_setup
from kommutator.bot.api import router as bot_router
from kommutator.bot.intent_api import router as intent_router
from kommutator.bot.intent_training import IntentTrainer
from kommutator.bot.worker import bot_worker_of
from kommutator.canned.api import router as canned_router
from kommutator.channels.api import fast_webhook_route
from kommutator.channels.api import router as channels_router
from kommutator.channels.api import webhooks as webhooks_router
from kommutator.channels.host import ChannelServices
from kommutator.channels.registry import channel_types, discover
from kommutator.common.routes import upload_operations
from kommutator.config import Settings, load_settings
from kommutator.contacts.api import router as contacts_router
from kommutator.conversations import setup as conversations_setup
from kommutator.conversations.api import router as conversations_router
from kommutator.conversations.files_api import router as files_router
from kommutator.crm import setup as crm_setup
from kommutator.crm.api import router as crm_card_router
from kommutator.crm.service import crm_enricher_of
from kommutator.errors import install_error_handlers
from kommutator.forecast.api import router as forecast_router
from kommutator.inbox.api import router as inbox_router
from kommutator.knowledge.api import help_router
from kommutator.knowledge.api import router as knowledge_router
from kommutator.middleware import BodyLimitMiddleware, IdempotencyMiddleware, SecurityHeadersMiddleware
from kommutator.notifications.api import router as notifications_router
from kommutator.openapi import ERROR_RESPONSES, TAGS, install_openapi, operation_id
from kommutator.outbound.api import conversations_router as start_router
from kommutator.outbound.api import router as outbound_router
from kommutator.outbound.campaign_worker import campaign_worker_of
from kommutator.outbound.campaigns_api import router as campaigns_router
from kommutator.outbound.worker import outreach_worker_of
from kommutator.privacy.api import router as privacy_router
from kommutator.privacy.retention import retention_worker_of
from kommutator.quality import destinations as alert_destinations
from kommutator.quality import setup as quality_setup
from kommutator.quality.api import router as quality_router
from kommutator.quality.delivery import AlertDeliveryWorker
from kommutator.quality.monitor import monitor_of
from kommutator.queues.api import router as queues_router
from kommutator.realtime.api import PresenceSweeper, hub_of
from kommutator.realtime.api import router as realtime_router
from kommutator.reports import setup as reports_setup
from kommutator.reports.api import router as reports_router
from kommutator.reports.worker import reports_worker_of
from kommutator.routing import setup as routing_setup
from kommutator.routing.service import router_of
from kommutator.runtime import Runtime
from kommutator.subscriptions.api import router as subscriptions_router
from kommutator.subscriptions.worker import subscription_worker_of
from kommutator.workers.outbox import OutboxWorker
from kommutator.workers.owners import owners_of
from kommutator.workers.timers import TimerWorker

STATIC = Path(__file__).parent / "web" / "static"

# httpx logs every request URL at INFO, and some providers put the secret in the URL (Telegram's bot token).
logging.getLogger("httpx").setLevel(logging.WARNING)

# The API reference page. FastAPI's get_swagger_ui_html() starts Swagger UI with an inline <script>, which
# the Content-Security-Policy blocks; /static/docs.js does the same from a file.
_DOCS_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kommutator API</title>
<link rel="icon" type="image/svg+xml" href="/static/favicon.svg">
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css?v={__version__}">
</head>
<body>
<div id="swagger-ui" data-openapi-url="/api/v1/openapi.json"></div>
<noscript>The API reference needs JavaScript; the schema itself is at /api/v1/openapi.json.</noscript>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js?v={__version__}"></script>
<script src="/static/docs.js?v={__version__}"></script>
</body>
</html>
"""


def register_all() -> None:
    """Each domain registers what it adds to the core (channel types, intake hooks, timer handlers); nothing
    registers itself by being imported. Idempotent: tests build many apps in one process."""
    discover()
    conversations_setup.register_all()
    bot_setup.register_all()
    quality_setup.register_all()
    alert_destinations.register_all()
    routing_setup.register_all()
    reports_setup.register_all()
    crm_setup.register_all()


class Service(Protocol):
    """A background service of the server (workers, routing, channel listeners)."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


def create_app(settings: Settings | None = None, runtime: Runtime | None = None, *, demo: bool = False) -> FastAPI:
    """Build the app; the database is opened by the lifespan (or by the caller passing a runtime).

    ``demo`` adds the demo workspace's stand-in CRM that receives agent replies (kommutator demo).
    """
    settings = settings or (runtime.settings if runtime else load_settings())
    rt = runtime or Runtime.build(settings)
    register_all()

    hub_of(rt)  # subscribe the socket hub to the bus before any event
    if demo:  # the default flow's order lookups go to the demo CRM on this very server (demo/crm.py), by the
        # listen address like the demo integrator (the demo puts it on the outbound allow-list)
        rt.bot_settings.setdefault("crm_url", f"http://{settings.listen_host}:{settings.listen_port}/demo/crm")
    # The server's background services, started in this order with the app and stopped in reverse.
    # The process's registration first (stopped last): its stop releases what the workers still held.
    owners = owners_of(rt)
    services: list[Service] = [owners, TimerWorker(rt.db, owner=owners.id), OutboxWorker(rt, name=owners.id),
                               ChannelServices(rt), router_of(rt),
                               IntentTrainer(rt), bot_worker_of(rt), monitor_of(rt), AlertDeliveryWorker(rt),
                               suggester_of(rt), reports_worker_of(rt), outreach_worker_of(rt),
                               subscription_worker_of(rt), crm_enricher_of(rt),
                               retention_worker_of(rt), campaign_worker_of(rt), PresenceSweeper(rt)]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await rt.db.start()
        try:
            await owners.register()  # before any worker claims work in its name
        except Exception:  # the database is not reachable yet: the heartbeat registers when it is
            logging.getLogger(__name__).warning("could not register this process yet", exc_info=True)
        await rt.cluster.start()  # events of other processes flow from here on (cluster/)
        for service in services:
            service.start()
        try:
            yield
        finally:
            for service in reversed(services):
                await service.stop()
            await rt.cluster.stop()
            await rt.db.close()

    app = FastAPI(
        title="Kommutator API", version=__version__, lifespan=lifespan,
        description="Omnichannel contact centre. Authenticate with `Authorization: Bearer <API token>` "
                    "(create one at `POST /api/v1/api-tokens`) or a session cookie plus `X-CSRF-Token`. "
                    "Errors are `application/problem+json` with a stable `code`. POST accepts `Idempotency-Key`.",
        openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None,
        responses=ERROR_RESPONSES, openapi_tags=TAGS, generate_unique_id_function=operation_id,
    )
    app.state.runtime = rt
    install_error_handlers(app)

    # Webhooks first: routes are matched in order, and providers' requests are the hot path.
    app.router.routes.append(fast_webhook_route)
    app.include_router(webhooks_router)
    api = APIRouter(prefix="/api/v1")
    for router in (auth_router, agents_router, contacts_router, conversations_router, files_router,
                   channels_router, queues_router, audit_router, realtime_router, knowledge_router,
                   start_router, outbound_router, notifications_router, canned_router, inbox_router, bot_router,
                   intent_router, quality_router, forecast_router, assist_router, reports_router,
                   subscriptions_router, privacy_router, crm_card_router, campaigns_router):
        api.include_router(router)
    app.include_router(api)
    app.include_router(help_router)
    for adapter in channel_types().values():  # channel types' own public routes (the web chat's /widget/…)
        for type_router in adapter.routers():
            app.include_router(type_router)
    if demo:
        from kommutator.demo.crm import router as crm_router
        from kommutator.demo.integrator import router as demo_router
        from kommutator.demo.webchat import router as shop_router

        app.include_router(demo_router)
        app.include_router(crm_router)
        app.include_router(shop_router)

    @app.get("/api/v1/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Swagger UI from the vendored bundle; no inline script, so it works under the CSP and offline."""
        return HTMLResponse(_DOCS_PAGE)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness for proxies and orchestrators; says whether the cluster's Redis answers (docs/deployment.md)."""
        body = {"status": "ok", "version": __version__}
        shared = await rt.cluster.shared()
        if shared is None:
            return {**body, "cluster": "local"}
        return {**body, "cluster": "redis", "redis": "ok" if shared else "unreachable"}

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        page = STATIC / "index.html"
        if page.exists():
            return HTMLResponse(page.read_text(encoding="utf-8"))
        return RedirectResponse("/api/v1/docs")

    if STATIC.exists():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    install_openapi(app)
    app.add_middleware(IdempotencyMiddleware, get_db=lambda: rt.db)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       max_upload_bytes=settings.max_upload_bytes, is_upload=upload_operations(app))
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.hsts)
    return app
