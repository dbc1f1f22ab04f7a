"""The route class of every API router: JSON request bodies are read through ``common.jsonsafe``."""

from __future__ import annotations

import email.message
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, params
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from kommutator.common.jsonsafe import loads_json


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


class _ParsedRequest(Request):
    """The request with its body already read and its JSON already checked."""

    def __init__(self, request: Request, raw: bytes, parsed: Any) -> None:
        super().__init__(request.scope, request.receive)
        self._raw, self._parsed = raw, parsed

    async def body(self) -> bytes:
        return self._raw

    async def json(self) -> Any:
        return self._parsed


class SafeRoute(APIRoute):
    """Parse a JSON body with depth, size and NaN checks (400 ``too_deep`` / ``invalid_json``, 422 naming the
    field) before FastAPI validates it, instead of FastAPI's unbounded ``json.loads``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        reads_json = self.body_field is not None and not isinstance(self.body_field.field_info, params.Form)
        if not reads_json:
            return handler

        async def checked(request: Request) -> Response:
            if _is_json(request.headers.get("content-type")):
                raw = await request.body()
                if raw:
                    request = _ParsedRequest(request, raw, loads_json(raw))
            return await handler(request)

        return checked


def upload_operations(app: FastAPI) -> Callable[[str, str], bool]:
    """A test (method, path) -> whether that operation takes a multipart upload, from the OpenAPI document, so
    the larger upload limit applies to those operations only (a webhook's multipart body keeps the body limit)."""
    patterns: list[tuple[str, re.Pattern[str]]] | None = None

    def accepts(method: str, path: str) -> bool:
        nonlocal patterns
        if patterns is None:
            patterns = []
            for template, operations in app.openapi().get("paths", {}).items():
                for verb, operation in operations.items():
                    content = (operation.get("requestBody") or {}).get("content", {}) if isinstance(
                        operation, dict) else {}
                    if "multipart/form-data" in content:
                        regex = "^" + re.sub(r"\\{[^}/]+\\}", "[^/]+", re.escape(template)) + "$"
                        patterns.append((verb.upper(), re.compile(regex)))
        return any(m == method and p.match(path) for m, p in patterns)

    return accepts
