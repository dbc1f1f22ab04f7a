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
from kommutator.auth.principal import Principal
from kommutator.auth.schemas import ApiTokenCreate, ApiTokenCreated, ApiTokenRead, LoginRequest, Me
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import Id
from kommutator.db import Tx
from kommutator.errors import ProblemError
from kommutator.runtime import Runtime

router = APIRouter(tags=["auth"], route_class=SafeRoute)


def too_many_attempts(wait: int) -> ProblemError:
    return ProblemError(429, "too_many_login_attempts", f"Too many failed logins; try again in {wait} seconds.",
                        headers={"Retry-After": str(wait)})


def login_keys(email: str, ip: str) -> tuple[str, str]:
    """The limiter's keys of a password check: the account and the client address."""
    return f"user:{email.strip().lower()}", f"ip:{ip}"


async def check_current_password(rt: Runtime, principal: Principal, password: str | None) -> None:
    """Refuse changing one's own password without the current one (a borrowed session or token is not enough);
    wrong guesses count against the same limits as logins."""
    if not password:
        raise ProblemError(422, "current_password_required",
                           "current_password: to change your own password, give your current password as well.")
    async with rt.db.read() as s:
        user = await s.get(User, principal.user_id)
    assert user is not None
    account, address = keys = login_keys(user.email, principal.ip)
    if wait := await rt.login_limiter.acquire(*keys):
        raise too_many_attempts(wait)
    if not await asyncio.to_thread(verify_password, user.password_hash, password):
        raise ProblemError(403, "wrong_current_password",
                           "current_password: this is not your current password; type the one you log in with now.")
    await rt.login_limiter.reset(account)
    await rt.login_limiter.release(address)


@router.post("/auth/login", response_model=Me)
async def login(rt: RuntimeDep, body: LoginRequest, request: Request, response: Response) -> Me:
    """Log in with email and password; sets the session cookie and returns the CSRF token."""
    email = body.email.strip().lower()
    ip = client_ip(request)
    account, address = keys = login_keys(email, ip)
    # The attempt is counted before the password is checked: parallel guesses cannot all be let through.
    if wait := await rt.login_limiter.acquire(*keys):
        raise too_many_attempts(wait)
    async with rt.db.read() as s:
        user = (await s.execute(select(User).where(User.email == email))).scalar_one_or_none()
    ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, body.password)
    if user is None or not user.active or not ok:
        raise ProblemError(401, "invalid_credentials", "The email or password is wrong.")
    # The owner proved themselves: the account's failures are forgotten, and this attempt does not count
    # against the address (colleagues behind one office address are not locked out by each other's logins).
    await rt.login_limiter.reset(account)
    await rt.login_limiter.release(address)
    verified_hash = user.password_hash

    async def job(tx: Tx) -> tuple[str, str]:
        return await actions.do_start_session(tx, user.id, verified_hash=verified_hash,
                                              hours=rt.settings.session_hours, ip=ip,
                                              user_agent=request.headers.get("user-agent", ""))

    cookie, csrf = await rt.db.write(job)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=rt.settings.session_hours * 3600, httponly=True,
                        samesite="lax", secure=rt.settings.secure_cookies, path="/")
    async with rt.db.read() as s:
        (read,) = await users_read(s, [user])
    return Me(user=read, csrf_token=csrf)


@router.post("/auth/logout", status_code=204)
async def logout(rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    await rt.db.write(lambda tx: actions.do_end_session(tx, principal))  # its sockets close (AccessRevoked)
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


@router.delete("/api-tokens/{token_id}", status_code=204)
async def revoke_token(rt: RuntimeDep, principal: CurrentPrincipal, token_id: Id) -> Response:
    """Revoke one of your tokens (administrators: anyone's); 204 with no body, like every delete. It stops
    working at once, open sockets included; the list keeps it with its ``revoked_at``."""
    async def job(tx: Tx) -> ApiToken:
        return await actions.do_revoke_api_token(tx, principal, token_id)

    await rt.db.write(job)
    return Response(status_code=204)
