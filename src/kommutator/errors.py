"""Errors a user or integrator can act on, answered as application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match

from kommutator.db import is_unavailable

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
}


class ProblemError(Exception):
    """Raise from actions and views; ``code`` is stable and machine-readable."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def not_found(what: str, ident: object) -> ProblemError:
    """404 ``<what>_not_found``; ``what`` is a snake_case name ("canned_response"), shown with spaces."""
    return ProblemError(404, f"{what}_not_found", f"There is no {what.replace('_', ' ')} with id {ident}.")


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: Any, scope: Any) -> list[str]:
    """The methods some route of ``app`` fully matches for this request's path."""
    allowed = []
    for method in _METHODS:
        probe = {"type": "http", "method": method, "path": scope["path"], "root_path": scope.get("root_path", ""),
                 "headers": [], "query_string": b""}
        if any(route.matches(probe)[0] == Match.FULL for route in app.router.routes):
            allowed.append(method)
    return allowed


def problem_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": f"https://kommutator.dev/problems/{code}", "title": _TITLES.get(status, "Error"),
            "status": status, "code": code, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def database_unavailable() -> JSONResponse:
    """503 while the database cannot be reached: nothing of the request was stored; send it again."""
    log.warning("the database is unreachable; answered 503")
    return problem_response(503, "database_unavailable",
                            "The database is unreachable at the moment, so nothing of this request was stored; "
                            "send it again in a few seconds.", headers={"Retry-After": "5"})


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        headers = exc.extra.pop("headers", None)
        return problem_response(exc.status, exc.code, exc.detail, headers=headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                return problem_response(
                    400, "invalid_json",
                    f"The request body is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')}).",
                )
            errors.append({"field": _loc(err.get("loc", ())), "message": err.get("msg", "invalid")})
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        return problem_response(
            422, "validation_failed", f"{first['field']}: {first['message']}", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "not_authenticated", 413: "body_too_large"}.get(
            exc.status_code, "http_error"
        )
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
        headers = getattr(exc, "headers", None)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "No such endpoint; see /api/v1/docs for the API."
        if exc.status_code == 405:
            # Starlette's Allow names the methods of the first route matching the path only (GET of
            # /users, not its POST): list every method some route of this path answers.
            allowed = allowed_methods(request.app, request.scope)
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
            detail = f"{request.method} is not supported here; use {', '.join(allowed) or 'another path'}."
        return problem_response(exc.status_code, code, detail, headers=headers)

    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: DBAPIError) -> JSONResponse:
        if is_unavailable(exc):
            return database_unavailable()
        # Text PostgreSQL cannot store (NUL bytes in a query parameter) is the caller's to fix.
        if "invalid byte sequence" in str(exc.orig) or "CharacterNotInRepertoire" in type(exc.orig).__name__:
            return problem_response(422, "invalid_text", "The request contains characters that cannot be stored "
                                                         "(such as NUL, \\u0000); remove them.")
        log.exception("database error", exc_info=exc)
        return problem_response(500, "internal_error", "Something went wrong on our side; it has been logged.")

    @app.exception_handler(OSError)
    async def _os_error(_: Request, exc: OSError) -> JSONResponse:
        # The driver's connect fails with a socket's error (refused, timed out) while the database is down.
        if is_unavailable(exc):
            return database_unavailable()
        raise exc  # any other: the unexpected-error handler below answers 500 and logs it

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if is_unavailable(exc):
            return database_unavailable()
        log.exception("unhandled error", exc_info=exc)
        return problem_response(500, "internal_error", "Something went wrong on our side; it has been logged.")
