"""ASGI middleware: body size limit, security headers, Idempotency-Key on POST."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kommutator.clock import now
from kommutator.common.models import IdempotencyKey
from kommutator.db import Database, Tx
from kommutator.errors import problem_response

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")


class BodyTooLarge(HTTPException):
    """Raised while a handler reads a streamed body past the limit; FastAPI lets HTTPException through."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body exceeds {max_bytes} bytes; send less.")


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413, counted as they stream in, whatever their content type; only
    the operations that take a file upload (``is_upload(method, path)``) allow ``max_upload_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_upload_bytes: int = 0,
                 is_upload: Callable[[str, str], bool] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Multipart uploads may carry a file up to the upload cap plus the form fields around it.
        self.max_upload_bytes = max(max_upload_bytes + 65_536, max_bytes)
        self.is_upload = is_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope["headers"]:
            if name == b"content-type" and value.lower().startswith(b"multipart/form-data") and (
                    self.is_upload is None or self.is_upload(scope["method"], scope["path"])):
                limit = self.max_upload_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(scope, receive, send, limit)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(413, "body_too_large", f"The request body exceeds {limit} bytes; send less.")
        await response(scope, receive, send)


class SecurityHeadersMiddleware:
    """Content-Security-Policy and friends on every response; Strict-Transport-Security when ``hsts`` is set."""

    def __init__(self, app: ASGIApp, hsts: str = "") -> None:
        self.app = app
        self.extra = ((b"strict-transport-security", hsts.encode()),) if hsts else ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {h[0].lower() for h in headers}
                for name, value in ((b"content-security-policy", CSP.encode()),
                                    (b"x-content-type-options", b"nosniff"),
                                    (b"referrer-policy", b"same-origin"),
                                    (b"x-frame-options", b"DENY"), *self.extra):
                    if name not in names:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class IdempotencyMiddleware:
    """Honour ``Idempotency-Key`` on POST: a retry returns the stored result; another body is 422.

    The key is scoped to the caller's credential (token or session). A request still running with the
    same key answers 409; a 5xx is not stored, so the client may retry it.
    """

    TTL = dt.timedelta(hours=24)
    STALE = dt.timedelta(minutes=5)

    def __init__(self, app: ASGIApp, get_db: Any) -> None:
        self.app = app
        self.get_db = get_db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        key_raw = headers.get(b"idempotency-key")
        if key_raw is None:
            await self.app(scope, receive, send)
            return
        key = key_raw.decode("latin-1").strip()
        if not 1 <= len(key) <= 255:
            await problem_response(400, "invalid_idempotency_key",
                                   "Idempotency-Key must be 1-255 characters.")(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        credential = headers.get(b"authorization") or headers.get(b"cookie") or b"anonymous"
        principal = hashlib.sha256(credential).hexdigest()[:32]
        path = scope["path"] + ("?" + scope["query_string"].decode("latin-1") if scope["query_string"] else "")
        digest = hashlib.sha256(b"POST " + path.encode() + b"\n" + body).hexdigest()
        db: Database = self.get_db()
        claim = await self._claim(db, principal, key, path, digest)
        if claim is not None:
            await claim(scope, receive, send)
            return

        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

        async def replay_receive() -> Message:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        finally:
            await self._finish(db, principal, key, captured)

    async def _claim(self, db: Database, principal: str, key: str, path: str, digest: str) -> Any:
        """Return a response to send instead of running the request, or None to run it."""
        async with db.read() as s:
            row = (await s.execute(select(IdempotencyKey).where(IdempotencyKey.principal == principal,
                                                                IdempotencyKey.key == key))).scalar_one_or_none()
        ts = now()
        if row is not None and row.created_at < ts - self.TTL:
            row = None
            await db.write(lambda tx: tx.session.execute(delete(IdempotencyKey).where(
                IdempotencyKey.principal == principal, IdempotencyKey.key == key)))
        if row is not None:
            if row.request_hash != digest:
                return problem_response(422, "idempotency_key_reused",
                                        "This Idempotency-Key was used with a different request; use a new key.")
            if row.status == "done":
                from starlette.responses import Response

                return Response(row.response_body or b"", status_code=row.response_status or 200,
                                media_type=row.response_type, headers={"Idempotent-Replayed": "true"})
            if row.created_at > ts - self.STALE:
                return problem_response(409, "idempotency_key_in_progress",
                                        "A request with this Idempotency-Key is still running; retry shortly.")
            await db.write(lambda tx: tx.session.execute(delete(IdempotencyKey).where(
                IdempotencyKey.id == row.id)))

        async def insert(tx: Tx) -> None:
            tx.session.add(IdempotencyKey(principal=principal, key=key, method="POST", path=path[:500],
                                          request_hash=digest, status="in_progress", created_at=ts))
            await tx.session.flush()

        try:
            await db.write(insert)
        except IntegrityError:
            return problem_response(409, "idempotency_key_in_progress",
                                    "A request with this Idempotency-Key is still running; retry shortly.")
        return None

    async def _finish(self, db: Database, principal: str, key: str, captured: dict[str, Any]) -> None:
        status = int(captured["status"])
        where = (IdempotencyKey.principal == principal, IdempotencyKey.key == key)
        if status >= 500:
            await db.write(lambda tx: tx.session.execute(delete(IdempotencyKey).where(*where)))
            return
        ctype = next((v.decode("latin-1") for k, v in captured["headers"] if k.lower() == b"content-type"), None)
        body = captured["body"].decode("utf-8", "replace")
        await db.write(lambda tx: tx.session.execute(update(IdempotencyKey).where(*where).values(
            status="done", response_status=status, response_body=body, response_type=ctype)))
