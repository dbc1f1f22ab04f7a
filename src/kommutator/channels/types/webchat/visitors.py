"""Visitors of a web chat channel: the channel as the widget sees it, tokens, profiles, who is on duty."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from kommutator.agents.models import TeamMember, User
from kommutator.channels.base import ChannelConfig
from kommutator.channels.types.webchat.models import WebchatVisitor
from kommutator.channels.types.webchat.settings import WebchatSettings
from kommutator.clock import now
from kommutator.contacts.models import Contact, Identity
from kommutator.conversations.inbound import opens_with_self_service
from kommutator.crypto import new_token, token_hash
from kommutator.db import Tx
from kommutator.errors import ProblemError
from kommutator.runtime import Runtime

CHANNEL_TYPE = "webchat"
# New visitors one client address may start per minute on one chat, and messages one visitor may send per
# minute: far above a person's pace, low enough that a script cannot fill the database through a public form.
NEW_VISITORS_PER_MINUTE = 30
MESSAGES_PER_MINUTE = 40


async def check_rate(rt: Runtime, kind: str, key: str) -> None:
    """Count one more new visitor (``kind`` "visitor") or message ("message") for ``key``; 429 over the limit.

    The counts are the cluster's (cluster/): every server process counts against the same window."""
    per_minute = NEW_VISITORS_PER_MINUTE if kind == "visitor" else MESSAGES_PER_MINUTE
    limiter = rt.cluster.limiter(f"webchat_{kind}", per_minute)
    wait = await limiter.acquire(key)  # checked and counted in one step
    if wait:
        what = "new chats from your address" if kind == "visitor" else "messages"
        raise ProblemError(429, "too_many_requests", f"Too many {what} in a minute; try again in {wait} s.",
                           headers={"Retry-After": str(wait)})


@dataclass(frozen=True)
class Webchat:
    """A web chat channel and its validated settings."""

    config: ChannelConfig
    settings: WebchatSettings

    @property
    def id(self) -> int:
        return self.config.id


async def load_webchat(rt: Runtime, channel_id: int) -> Webchat:
    """The enabled web chat channel with this id; 404 for any other channel, so ids of others are not probed."""
    from kommutator.channels.api import load_channel

    try:
        config = await load_channel(rt, channel_id)
    except ProblemError:
        config = None
    if config is None or config.type != CHANNEL_TYPE or not config.enabled:
        raise ProblemError(404, "chat_not_found", f"There is no website chat with id {channel_id}; check the "
                                                  "data-channel attribute of the script tag.")
    return Webchat(config, WebchatSettings.model_validate(config.settings))


def check_origin(chat: Webchat, origin: str | None) -> None:
    """403 when a browser on a website not in ``allowed_origins`` talks to the chat (empty list: any)."""
    allowed = chat.settings.allowed_origins
    if not allowed or origin is None:
        return  # non-browser clients send no Origin, and could forge one anyway
    if origin.lower().rstrip("/") not in allowed:
        raise ProblemError(403, "origin_not_allowed",
                           f"The website {origin} may not embed this chat; an administrator can add it to the "
                           "channel's allowed_origins.")


def display_name(visitor: WebchatVisitor) -> str:
    return visitor.name or f"Visitor {visitor.external_id[-4:]}"


def visitor_read(visitor: WebchatVisitor) -> dict[str, Any]:
    return {"name": visitor.name, "email": visitor.email, "phone": visitor.phone}


async def do_open_session(tx: Tx, *, chat: Webchat, token: str | None,
                          language: str | None) -> tuple[WebchatVisitor, str]:
    """The visitor holding ``token`` on this channel, or a new visitor with a new token (a lost, foreign or
    expired token simply starts over: the widget stores whatever comes back)."""
    if token:
        visitor = await tx.session.scalar(select(WebchatVisitor).where(
            WebchatVisitor.token_hash == token_hash(token), WebchatVisitor.channel_id == chat.id))
        if visitor is not None:
            visitor.last_seen_at = now()
            if language and not visitor.language:
                visitor.language = language
            return visitor, token
    token = new_token("kmw")
    visitor = WebchatVisitor(channel_id=chat.id, token_hash=token_hash(token),
                             external_id=f"wv_{secrets.token_hex(12)}", name="", language=language,
                             created_at=now(), last_seen_at=now())
    tx.session.add(visitor)
    await tx.session.flush()
    return visitor, token


async def authenticate_visitor(rt: Runtime, chat: Webchat, authorization: str | None) -> WebchatVisitor:
    """The visitor of ``Authorization: Bearer <visitor token>``; 401 otherwise."""
    scheme, _, token = (authorization or "").partition(" ")
    visitor = await visitor_by_token(rt, chat, token.strip()) if scheme.lower() == "bearer" else None
    if visitor is None:
        raise ProblemError(401, "invalid_visitor_token",
                           "Send the visitor token from POST /widget/{channel_id}/session as "
                           "'Authorization: Bearer <token>'.")
    return visitor


async def visitor_by_token(rt: Runtime, chat: Webchat, token: str) -> WebchatVisitor | None:
    if not token:
        return None
    async with rt.db.read() as s:
        visitor: WebchatVisitor | None = await s.scalar(select(WebchatVisitor).where(
            WebchatVisitor.token_hash == token_hash(token), WebchatVisitor.channel_id == chat.id))
    return visitor


async def contact_of(rt: Runtime, visitor: WebchatVisitor) -> int | None:
    """The contact the visitor's messages joined (none before the first message)."""
    async with rt.db.read() as s:
        contact_id: int | None = await s.scalar(select(Identity.contact_id).where(
            Identity.channel_type == CHANNEL_TYPE, Identity.external_id == visitor.external_id))
    return contact_id


async def agents_online(rt: Runtime, chat: Webchat) -> bool:
    """Whether an agent who would get the chat (of the channel's team; any, without a team) is online."""
    query = select(User.id).where(User.presence == "online", User.active.is_(True))
    if chat.config.team_id is not None:
        query = query.join(TeamMember, TeamMember.user_id == User.id).where(
            TeamMember.team_id == chat.config.team_id)
    async with rt.db.read() as s:
        return await s.scalar(query.limit(1)) is not None


async def has_bot(rt: Runtime, chat: Webchat) -> bool:
    """Whether the bot answers on this chat (a flow is attached): then the chat stays open with nobody on duty."""
    async with rt.db.read() as s:
        return bool(await s.run_sync(lambda sync: opens_with_self_service(sync.connection(), chat.id)))


async def do_update_visitor(tx: Tx, *, visitor_id: int, name: str | None = None, email: str | None = None,
                            phone: str | None = None) -> WebchatVisitor:
    """Keep what the visitor told us (pre-chat or offline form); their contact gets the values it lacks."""
    visitor = await tx.session.get(WebchatVisitor, visitor_id, with_for_update=True)
    assert visitor is not None
    before = display_name(visitor)
    if name:
        visitor.name = name
    if email:
        visitor.email = email.lower()
    if phone:
        visitor.phone = phone
    contact_id = await tx.session.scalar(select(Identity.contact_id).where(
        Identity.channel_type == CHANNEL_TYPE, Identity.external_id == visitor.external_id))
    contact = await tx.session.get(Contact, contact_id) if contact_id is not None else None
    if contact is not None:
        if name and contact.name in ("", before, visitor.external_id):
            contact.name = name
        if email and not contact.email:
            contact.email = email.lower()
        if phone and not contact.phone:
            contact.phone = phone
    return visitor


def missing_prechat(chat: Webchat, visitor: WebchatVisitor) -> list[str]:
    """The pre-chat fields the channel asks for that the visitor has not given yet."""
    have = {"name": bool(visitor.name), "email": bool(visitor.email), "phone": bool(visitor.phone)}
    return [f for f in chat.settings.prechat_fields if not have[f]]
