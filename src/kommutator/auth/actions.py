"""Log in, log out, issue and revoke API tokens."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import delete, func, select

from kommutator.agents.models import User
from kommutator.audit.actions import do_audit
from kommutator.auth.models import ApiToken, AuthSession
from kommutator.auth.principal import Principal
from kommutator.clock import now
from kommutator.crypto import new_token, token_hash
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found


async def do_start_session(tx: Tx, user: User, *, hours: int, ip: str, user_agent: str) -> tuple[str, str]:
    """Create a login session; return the cookie value and the CSRF token."""
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    tx.session.add(AuthSession(token_hash=token_hash(cookie), csrf_token=csrf, user_id=user.id,
                               expires_at=now() + dt.timedelta(hours=hours), ip=ip, user_agent=user_agent[:300]))
    # Expired sessions of this user are cleaned up as they log in again.
    await tx.session.execute(delete(AuthSession).where(AuthSession.user_id == user.id,
                                                       AuthSession.expires_at <= now()))
    who = Principal(user_id=user.id, name=user.name, role=user.role, team_ids=frozenset(), ip=ip)
    do_audit(tx, who, "auth.login", "user", user.id)
    return cookie, csrf


async def do_end_session(tx: Tx, principal: Principal) -> None:
    if principal.session_id is not None:
        await tx.session.execute(delete(AuthSession).where(AuthSession.id == principal.session_id))


async def do_create_api_token(tx: Tx, principal: Principal, name: str) -> tuple[ApiToken, str]:
    exists = await tx.session.scalar(select(func.count()).select_from(ApiToken).where(
        ApiToken.user_id == principal.user_id, ApiToken.name == name))
    if exists:
        raise ProblemError(409, "token_name_taken", f"You already have a token named {name!r}; pick another name.")
    token = new_token("kmt")
    row = ApiToken(name=name, prefix=token[:10], token_hash=token_hash(token), user_id=principal.user_id)
    tx.session.add(row)
    await tx.session.flush()
    do_audit(tx, principal, "api_token.created", "api_token", row.id, name=name)
    return row, token


async def do_revoke_api_token(tx: Tx, principal: Principal, token_id: int) -> ApiToken:
    row = await tx.session.get(ApiToken, token_id)
    if row is None or (row.user_id != principal.user_id and not principal.is_admin):
        raise not_found("api_token", token_id)
    if row.revoked_at is None:
        row.revoked_at = now()
        do_audit(tx, principal, "api_token.revoked", "api_token", token_id, name=row.name)
    return row
