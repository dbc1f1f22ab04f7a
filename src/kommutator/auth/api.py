"""/api/v1/auth (login, logout, me) and /api/v1/api-tokens."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from kommutator.agents.models import User
from kommutator.agents.queries import users_read
from kommutator.auth import actions
from kommutator.auth.deps import SESSION_COOKIE, CurrentPrincipal, RuntimeDep, client_ip
from kommutator.auth.models import ApiToken, AuthSession
from kommutator.auth.passwords import verify_password
from kommutator.auth.schemas import ApiTokenCreate, ApiTokenCreated, ApiTokenRead, LoginRequest, Me
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import Id
from kommutator.db import Tx
from kommutator.errors import ProblemError
from kommutator.realtime.api import hub_of

router = APIRouter(tags=["auth"], route_class=SafeRoute)


@router.post("/auth/login", response_model=Me)
async def login(rt: RuntimeDep, body: LoginRequest, request: Request, response: Response) -> Me:
    """Log in with email and password; sets the session cookie and returns the CSRF token."""
    email = body.email.strip().lower()
    ip = client_ip(request)
    keys = (f"user:{email}", f"ip:{ip}")
    wait = rt.login_limiter.retry_after(*keys)
    if wait:
        raise ProblemError(429, "too_many_login_attempts",
                           f"Too many failed logins; try again in {wait} seconds.",
                           headers={"Retry-After": str(wait)})
    async with rt.db.read() as s:
        user = (await s.execute(select(User).where(User.email == email))).scalar_one_or_none()
    ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, body.password)
    if user is None or not user.active or not ok:
        rt.login_limiter.failed(*keys)
        raise ProblemError(401, "invalid_credentials", "The email or password is wrong.")
    rt.login_limiter.succeeded(f"user:{email}")

    async def job(tx: Tx) -> tuple[str, str]:
        return await actions.do_start_session(tx, user, hours=rt.settings.session_hours, ip=ip,
                                              user_agent=request.headers.get("user-agent", ""))

    cookie, csrf = await rt.db.write(job)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=rt.settings.session_hours * 3600, httponly=True,
                        samesite="lax", secure=rt.settings.cookie_secure, path="/")
    async with rt.db.read() as s:
        (read,) = await users_read(s, [user])
    return Me(user=read, csrf_token=csrf)


@router.post("/auth/logout", status_code=204)
async def logout(rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    await rt.db.write(lambda tx: actions.do_end_session(tx, principal))
    if principal.session_id is not None:  # this server's open screens of the session stop hearing events
        hub_of(rt).end(session_id=principal.session_id)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/auth/me", response_model=Me)
async def me(rt: RuntimeDep, principal: CurrentPrincipal) -> Me:
    """The current user, and (for cookie sessions) the CSRF token to send on writes."""
    async with rt.db.read() as s:
        user = await s.get(User, principal.user_id)
        assert user is not None
        (read,) = await users_read(s, [user])
        csrf = None
        if principal.session_id is not None:
            csrf = await s.scalar(select(AuthSession.csrf_token).where(AuthSession.id == principal.session_id))
    return Me(user=read, csrf_token=csrf)


@router.get("/api-tokens", response_model=list[ApiTokenRead])
async def list_tokens(rt: RuntimeDep, principal: CurrentPrincipal) -> list[ApiTokenRead]:
    """Your API tokens (administrators see everyone's). The secret itself is never shown again."""
    stmt = select(ApiToken).order_by(ApiToken.id)
    if not principal.is_admin:
        stmt = stmt.where(ApiToken.user_id == principal.user_id)
    async with rt.db.read() as s:
        return [ApiTokenRead.model_validate(t) for t in (await s.execute(stmt)).scalars()]


@router.post("/api-tokens", response_model=ApiTokenCreated, status_code=201)
async def create_token(rt: RuntimeDep, principal: CurrentPrincipal, body: ApiTokenCreate) -> ApiTokenCreated:
    """Issue an API token acting with your permissions; the response is the only time it is shown."""
    row, token = await rt.db.write(lambda tx: actions.do_create_api_token(tx, principal, body.name))
    return ApiTokenCreated.model_validate({**ApiTokenRead.model_validate(row).model_dump(), "token": token})


@router.delete("/api-tokens/{token_id}", response_model=ApiTokenRead)
async def revoke_token(rt: RuntimeDep, principal: CurrentPrincipal, token_id: Id) -> ApiTokenRead:
    async def job(tx: Tx) -> ApiToken:
        return await actions.do_revoke_api_token(tx, principal, token_id)

    return ApiTokenRead.model_validate(await rt.db.write(job))
