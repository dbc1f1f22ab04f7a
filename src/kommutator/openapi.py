"""The OpenAPI document as client generators need it: readable operation ids, the security each operation
really uses, typed problems and the inbound webhook's bodies per channel type.

Everything here only describes the app; no behaviour changes with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from kommutator.auth.deps import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, authenticate
from kommutator.channels.registry import channel_types
from kommutator.errors import PROBLEM

# Tags whose words make a poor prefix for operation ids.
_PREFIXES = {"users, teams, skills": "agents", "canned responses": "canned", "website chat": "widget"}

TAGS = [
    {"name": "auth", "description": "Log in (session cookie + `X-CSRF-Token`), API tokens, who am I"},
    {"name": "users, teams, skills", "description": "Agents, their teams, skills and capacity"},
    {"name": "contacts", "description": "Customers and their identities on each channel"},
    {"name": "conversations", "description": "Conversations, messages, attachments, assignment, status"},
    {"name": "channels", "description": "Connected channels (administrators)"},
    {"name": "webhooks", "description": "Providers' inbound requests and the generic API channel's messages"},
    {"name": "queues", "description": "Queues and routing strategies"},
    {"name": "bot", "description": "Bot flows and what the bot did in a conversation"},
    {"name": "quality", "description": "Service standards, SLA and CSAT policies, alerts, live view"},
    {"name": "forecast", "description": "Staffing forecast per queue: arrivals, handle time, agents (Erlang C)"},
    {"name": "reports", "description": "KPIs, time series, agents and conversation-level export (JSON or CSV)"},
    {"name": "subscriptions", "description": "Event subscriptions: signed webhooks to CRMs and other integrations, "
                                             "their delivery log and replay (docs/subscriptions.md)"},
    {"name": "knowledge", "description": "Knowledge-base articles"},
    {"name": "canned responses", "description": "Saved replies"},
    {"name": "assist", "description": "Reply suggestions for agents and what agents did with them"},
    {"name": "notifications", "description": "The caller's notifications"},
    {"name": "outbound", "description": "Writing first: notifications to customers with fallback, message templates"},
    {"name": "campaigns", "description": "Campaigns to saved segments: each contact once, consent, quiet hours, "
                                         "throttle, pause, resume, cancel and stats (supervisors)"},
    {"name": "audit", "description": "The audit log (administrators)"},
    {"name": "website chat", "description": "The website chat widget's own endpoints, with the visitor token"},
]

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "kmt_…",
               "description": "An API token (`POST /api/v1/api-tokens`), acting with its owner's permissions."},
    "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                "description": "The session cookie set by `POST /api/v1/auth/login` (the web UI)."},
    "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
             "description": "With the session cookie, on every write: the `csrf_token` returned at login."},
    "widget": {"type": "http", "scheme": "bearer",
               "description": "The website chat visitor's token from `POST /widget/{channel_id}/session`."},
    "channel_token": {"type": "http", "scheme": "bearer", "bearerFormat": "kmi_…",
                      "description": "An API channel's inbound token (`generated_credentials.inbound_token`); "
                                     "other channel types' providers sign their requests instead."},
}
assert CSRF_HEADER == SECURITY_SCHEMES["csrf"]["name"].lower()


class ProblemFieldError(BaseModel):
    """One thing wrong with the request, naming the field it is about."""

    model_config = ConfigDict(extra="allow")
    field: str = Field(description="Dotted path of the field, e.g. `contact.email` or `definition.nodes.ask`")
    message: str = Field(description="What is wrong with it")
    where: str = Field(default="", description="Bot flows: the place in the definition")
    level: Literal["error", "warning"] = Field(default="error", description="Bot flows: how serious it is")


class Problem(BaseModel):
    """An error (RFC 9457 problem details); ``code`` is stable, ``detail`` says what to fix. Some problems carry
    more members (e.g. ``missing``, ``allowed``, ``max_bytes``)."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="A URI naming the kind of problem")
    title: str = Field(description="The HTTP status in words")
    status: int
    code: str = Field(description="Machine-readable and stable, e.g. `validation_failed`")
    detail: str = Field(description="A sentence saying what to fix")
    errors: list[ProblemFieldError] = Field(default_factory=list, description="The fields a problem is about")


class WebhookAck(BaseModel):
    """The answer to a webhook, given once its messages are committed (the API channel's fields shown; Telegram
    may get a Bot API method call instead, SMS and VK plain text or XML)."""

    model_config = ConfigDict(extra="allow")
    ok: bool = True
    duplicate: bool = Field(default=False, description="API channel: this message id came before: nothing new")
    conversation_id: int | None = Field(default=None, description="API channel: the message's conversation")
    message_id: int | None = Field(default=None, description="API channel: the message's id")


def operation_id(route: APIRoute) -> str:
    """``<domain>_<function>``, e.g. ``conversations_send_message``: the route's first tag, then its name."""
    tag = str(route.tags[0]) if route.tags else "misc"
    prefix = _PREFIXES.get(tag, re.sub(r"[^a-z0-9]+", "_", tag.lower()).strip("_"))
    unique = f"{prefix}_{route.name}"
    _ENDPOINTS[unique] = route.endpoint
    return unique


# The handler of each operation id, so the document can say which credentials it really takes: FastAPI calls
# operation_id() with each route while it is built, before its dependencies are resolved.
_ENDPOINTS: dict[str, Callable[..., Any]] = {}


def _uses(dependant: Dependant, call: object) -> bool:
    return dependant.call is call or any(_uses(d, call) for d in dependant.dependencies)


def _security(path: str, method: str, op: dict[str, Any]) -> list[dict[str, list[str]]]:
    endpoint = _ENDPOINTS.get(op.get("operationId", ""))
    dependant = get_dependant(path=path, call=endpoint) if endpoint is not None else None
    if dependant is not None and _uses(dependant, authenticate):
        if method.upper() in SAFE_METHODS:
            return [{"bearer": []}, {"session": []}]
        return [{"bearer": []}, {"session": [], "csrf": []}]
    if (dependant is not None and path.startswith("/widget/")
            and any(p.alias == "authorization" for p in dependant.header_params)):
        return [{"widget": []}]
    if path.startswith("/webhooks/") and method.upper() == "POST":
        return [{"channel_token": []}, {}]
    return []


def _webhook_body(components: dict[str, Any]) -> dict[str, Any]:
    """JSON bodies: the types' models, or any object. Other media types (SMS: Twilio's form posts) are only
    named in the description: a second content type makes generated clients' body argument optional and, with
    openapi-python-client 0.29, their code fail to import."""
    types = [(t, a) for t, a in sorted(channel_types().items()) if a.webhook_media_type is not None]
    modelled = [(t, a.WebhookBody) for t, a in types if a.WebhookBody is not None]
    _, defs = models_json_schema([(m, "validation") for _, m in modelled], ref_template="#/components/schemas/{model}")
    for name, schema in defs.get("$defs", {}).items():
        components.setdefault(name, schema)
    lines = [f"- `{t}`: `{m.__name__}`" for t, m in modelled]
    lines += [f"- `{t}`: the provider's own {a.webhook_media_type} body" for t, a in types if a.WebhookBody is None]
    schema = {"anyOf": [*({"$ref": f"#/components/schemas/{m.__name__}"} for _, m in modelled),
                        {"type": "object", "description": "Another channel type's provider event"}]}
    return {"required": True, "content": {"application/json": {"schema": schema}},
            "description": "The body depends on the channel's type (the API channel: `ApiInbound`, with its "
                           "inbound token as the bearer):\n" + "\n".join(lines)}


def _fill_webhooks(schema: dict[str, Any], components: dict[str, Any]) -> None:
    path = schema["paths"].get("/webhooks/{channel_id}", {})
    ack = {"200": {"description": "Accepted (committed before this answer)", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/WebhookAck"}},
        "text/plain": {"schema": {"type": "string"}}, "text/xml": {"schema": {"type": "string"}}}}}
    if "post" in path:
        path["post"]["requestBody"] = _webhook_body(components)
        path["post"]["responses"].update(ack)
    if "get" in path:
        path["get"]["responses"]["200"] = {
            "description": "A provider's verification request answered (e.g. WhatsApp's `hub.challenge`)",
            "content": {"text/plain": {"schema": {"type": "string"}}}}


def install_openapi(app: FastAPI) -> None:
    """Complete ``app.openapi()``: shared schemas, security schemes and per-operation security."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        _, defs = models_json_schema([(Problem, "validation"), (WebhookAck, "validation")],
                                     ref_template="#/components/schemas/{model}")
        components.update(defs["$defs"])
        schema["components"]["securitySchemes"] = SECURITY_SCHEMES
        schema.pop("security", None)
        for path, operations in schema["paths"].items():
            for method, op in operations.items():
                op["security"] = _security(path, method, op)
        _fill_webhooks(schema, components)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": desc, "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    for code, desc in ((400, "Malformed request"), (401, "Not authenticated"), (403, "Forbidden"),
                       (404, "Not found"), (409, "Conflict"), (413, "Body too large"),
                       (422, "Validation failed"), (429, "Too many requests"))
}
