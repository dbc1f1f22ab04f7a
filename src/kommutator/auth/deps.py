"""FastAPI dependencies that authenticate every request (session cookie + CSRF, or API token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy import select, update
from starlette.requests import HTTPConnection

from kommutator.agents.models import TeamMember, User
from kommutator.auth.clientip import client_address, parse_networks
from kommutator.auth.models import ApiToken, AuthSession
from kommutator.auth.principal import Principal
from kommutator.clock import now
from kommutator.crypto import same, token_hash
from kommutator.errors import ProblemError
from kommutator.runtime import Runtime, get_runtime

SESSION_COOKIE = "kmt_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def client_ip(request: HTTPConnection) -> str:
    """The client's address: the peer's, or behind a trusted reverse proxy the one it forwarded (clientip.py)."""
    peer = request.client.host if request.client else ""
    runtime = getattr(request.app.state, "runtime", None) if "app" in request.scope else None
    proxies: list[str] = runtime.settings.trusted_proxies if runtime is not None else []
    if not proxies:
        return peer
    return client_address(peer, request.headers.getlist("x-forwarded-for"), parse_networks(tuple(proxies)))


async def _load_principal(rt: Runtime, user: User, *, token_id: int | None, session_id: int | None,
                          ip: str) -> Principal:
    async with rt.db.read() as s:
        teams = (await s.execute(select(TeamMember.team_id).where(TeamMember.user_id == user.id))).scalars()
        team_ids = frozenset(teams)
    return Principal(user_id=user.id, name=user.name, role=user.role, team_ids=team_ids,
                     token_id=token_id, session_id=session_id, ip=ip)


async def authenticate(request: HTTPConnection, rt: Annotated[Runtime, Depends(get_runtime)]) -> Principal:
    """Resolve the caller; 401 when missing or invalid, 403 on a missing CSRF token."""
    header = request.headers.get("authorization", "")
    ip = client_ip(request)
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ProblemError(401, "invalid_authorization",
                               "Use 'Authorization: Bearer <API token>' or log in to get a session cookie.",
                               headers={"WWW-Authenticate": "Bearer"})
        digest = token_hash(token.strip())
        async with rt.db.read() as s:
            row = (await s.execute(
                select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_hash == digest)
            )).first()
        if row is None or row[0].revoked_at is not None or not row[1].active:
            raise ProblemError(401, "invalid_token", "The API token is unknown or was revoked.",
                               headers={"WWW-Authenticate": "Bearer"})
        api_token, user = row
        if api_token.last_used_at is None or (now() - api_token.last_used_at).total_seconds() > 60:
            tid = api_token.id

            async def touch(tx):  # type: ignore[no-untyped-def]
                await tx.session.execute(update(ApiToken).where(ApiToken.id == tid).values(last_used_at=now()))

            await rt.db.write(touch)
        return await _load_principal(rt, user, token_id=api_token.id, session_id=None, ip=ip)

    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise ProblemError(401, "not_authenticated",
                           "Log in first (POST /api/v1/auth/login) or send an API token as a Bearer header.")
    async with rt.db.read() as s:
        srow = (await s.execute(
            select(AuthSession, User).join(User, User.id == AuthSession.user_id)
            .where(AuthSession.token_hash == token_hash(cookie))
        )).first()
    if srow is None or srow[0].expires_at <= now() or not srow[1].active:
        raise ProblemError(401, "session_expired", "Your session has expired; log in again.")
    session, user = srow
    # WebSockets have no method and no custom headers from browsers: their handshake checks the Origin.
    if request.scope.get("method", "GET") not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not same(sent, session.csrf_token):
            raise ProblemError(403, "csrf_failed",
                               "Missing or wrong X-CSRF-Token header; use the token returned at login.")
    return await _load_principal(rt, user, token_id=None, session_id=session.id, ip=ip)


async def reload_principal(rt: Runtime, principal: Principal) -> Principal | None:
    """The principal as the database says now (role, teams), or None when its session or token has ended."""
    async with rt.db.read() as s:
        user = await s.get(User, principal.user_id)
        if user is None or not user.active:
            return None
        if principal.token_id is not None:
            alive = await s.scalar(select(ApiToken.id).where(ApiToken.id == principal.token_id,
                                                             ApiToken.revoked_at.is_(None)))
        else:
            alive = await s.scalar(select(AuthSession.id).where(AuthSession.id == principal.session_id,
                                                                AuthSession.expires_at > now()))
        if alive is None:
            return None
    return await _load_principal(rt, user, token_id=principal.token_id, session_id=principal.session_id,
                                 ip=principal.ip)


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
