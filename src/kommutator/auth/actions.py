"""Log in, log out, issue and revoke API tokens."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import delete, func, select, update

from kommutator.agents.models import User
from kommutator.audit.actions import do_audit
from kommutator.auth.models import ApiToken, AuthSession
from kommutator.auth.principal import Principal
from kommutator.clock import now
from kommutator.crypto import new_token, token_hash
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found
from kommutator.events import AccessRevoked


async def do_start_session(tx: Tx, user_id: int, *, verified_hash: str | None, hours: int, ip: str,
                           user_agent: str) -> tuple[str, str]:
    """Create a login session; return the cookie value and the CSRF token.

    The password was checked outside the writer: if the user was deactivated or their password changed since
    (``verified_hash`` is what was checked), no session is made, so none survives that change.
    """
    user = await tx.session.get(User, user_id, with_for_update=True)
    if user is None or not user.active or user.password_hash != verified_hash:
        raise ProblemError(401, "invalid_credentials", "The email or password is wrong.")
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
        tx.publish(AccessRevoked(user_id=principal.user_id, session_ids=(principal.session_id,),
                                 reason="logged_out"))


async def do_end_user_sessions(tx: Tx, user_id: int, *, reason: str, keep_session_id: int | None = None,
                               revoke_tokens: bool = False) -> None:
    """End every login session of a user but ``keep_session_id`` (and revoke their API tokens if asked);
    their open sockets close after the commit."""
    stmt = select(AuthSession.id).where(AuthSession.user_id == user_id)
    if keep_session_id is not None:
        stmt = stmt.where(AuthSession.id != keep_session_id)
    session_ids = tuple((await tx.session.execute(stmt)).scalars())
    if session_ids:
        await tx.session.execute(delete(AuthSession).where(AuthSession.id.in_(session_ids)))
    token_ids: tuple[int, ...] = ()
    if revoke_tokens:
        token_ids = tuple((await tx.session.execute(select(ApiToken.id).where(
            ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None)))).scalars())
        if token_ids:
            await tx.session.execute(update(ApiToken).where(ApiToken.id.in_(token_ids)).values(revoked_at=now()))
    if session_ids or token_ids:
        tx.publish(AccessRevoked(user_id=user_id, session_ids=session_ids, token_ids=token_ids, reason=reason))


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
        tx.publish(AccessRevoked(user_id=row.user_id, token_ids=(row.id,), reason="token_revoked"))
    return row
