"""The application factory: one ASGI app serving the API, webhooks and the web pages."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, RedirectResponse, Response

from kommutator import __version__
from kommutator.agents.api import router as agents_router
from kommutator.audit.api import router as audit_router
from kommutator.auth.api import router as auth_router
from kommutator.channels.api import fast_webhook_route
from kommutator.channels.api import router as channels_router
from kommutator.channels.api import webhooks as webhooks_router
from kommutator.channels.host import ChannelServices
from kommutator.channels.registry import discover
from kommutator.config import Settings, load_settings
from kommutator.contacts.api import router as contacts_router
from kommutator.conversations.api import router as conversations_router
from kommutator.conversations.files_api import router as files_router
from kommutator.errors import PROBLEM, install_error_handlers
from kommutator.knowledge.api import help_router
from kommutator.knowledge.api import router as knowledge_router
from kommutator.middleware import BodyLimitMiddleware, IdempotencyMiddleware, SecurityHeadersMiddleware
from kommutator.notifications.api import router as notifications_router
from kommutator.quality.api import router as quality_router
from kommutator.quality.delivery import AlertDeliveryWorker
from kommutator.quality.monitor import monitor_of
from kommutator.queues.api import router as queues_router
from kommutator.realtime.api import hub_of
from kommutator.realtime.api import router as realtime_router
from kommutator.routing.service import router_of
from kommutator.runtime import Runtime
from kommutator.workers.outbox import OutboxWorker
from kommutator.workers.timers import TimerWorker

STATIC = Path(__file__).parent / "web" / "static"

# httpx logs every request URL at INFO, and some providers put the secret in the URL (Telegram's bot token).
logging.getLogger("httpx").setLevel(logging.WARNING)

_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"description": desc, "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    for code, desc in ((400, "Malformed request"), (401, "Not authenticated"), (403, "Forbidden"),
                       (404, "Not found"), (409, "Conflict"), (413, "Body too large"),
                       (422, "Validation failed"), (429, "Too many requests"))
}


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


def create_app(settings: Settings | None = None, runtime: Runtime | None = None, *, demo: bool = False) -> FastAPI:
    """Build the app; the database is opened by the lifespan (or by the caller passing a runtime).

    ``demo`` adds the demo workspace's stand-in CRM that receives agent replies (kommutator demo).
    """
    settings = settings or (runtime.settings if runtime else load_settings())
    rt = runtime or Runtime.build(settings)
    discover()

    hub_of(rt)  # subscribe the socket hub to the bus before any event
    timers = TimerWorker(rt.db)
    outbox = OutboxWorker(rt)
    channel_services = ChannelServices(rt)
    routing = router_of(rt)
    quality, alert_deliveries = monitor_of(rt), AlertDeliveryWorker(rt)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await rt.db.start()
        timers.start()
        outbox.start()
        channel_services.start()
        routing.start()
        quality.start()
        alert_deliveries.start()
        try:
            yield
        finally:
            await alert_deliveries.stop()
            await quality.stop()
            await routing.stop()
            await channel_services.stop()
            await outbox.stop()
            await timers.stop()
            await rt.db.close()

    app = FastAPI(
        title="Kommutator API", version=__version__, lifespan=lifespan,
        description="Omnichannel contact centre. Authenticate with `Authorization: Bearer <API token>` "
                    "(create one at `POST /api/v1/api-tokens`) or a session cookie plus `X-CSRF-Token`. "
                    "Errors are `application/problem+json` with a stable `code`. POST accepts `Idempotency-Key`.",
        openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None,
        responses=_ERROR_RESPONSES,
    )
    app.state.runtime = rt
    install_error_handlers(app)

    # Webhooks first: routes are matched in order, and providers' requests are the hot path.
    app.router.routes.append(fast_webhook_route)
    app.include_router(webhooks_router)
    api = APIRouter(prefix="/api/v1")
    for router in (auth_router, agents_router, contacts_router, conversations_router, files_router,
                   channels_router, queues_router, audit_router, realtime_router, knowledge_router,
                   notifications_router, quality_router):
        api.include_router(router)
    app.include_router(api)
    app.include_router(help_router)
    if demo:
        from kommutator.demo.integrator import router as demo_router

        app.include_router(demo_router)

    @app.get("/api/v1/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Swagger UI from the vendored bundle; no inline script, so it works under the CSP and offline."""
        return HTMLResponse(_DOCS_PAGE)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        page = STATIC / "index.html"
        if page.exists():
            return HTMLResponse(page.read_text(encoding="utf-8"))
        return RedirectResponse("/api/v1/docs")

    if STATIC.exists():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    _add_problem_schema(app)
    app.add_middleware(IdempotencyMiddleware, get_db=lambda: rt.db)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    return app


def _add_problem_schema(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {})
        assert isinstance(components, dict)
        components.setdefault("schemas", {})["Problem"] = {
            "type": "object", "required": ["status", "code", "detail"],
            "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                           "code": {"type": "string"}, "detail": {"type": "string"},
                           "errors": {"type": "array", "items": {"type": "object"}}},
        }
        components.setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
        schema["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
