"""OAuth 2.0 sign-in of a channel, with the server's runtime: start, complete, and keep the tokens fresh.

The protocol itself (consent URL, PKCE, token calls, XOAUTH2) is ``channels/oauth.py``; this module stores what
it returns (``do_store_oauth_tokens``) and is called where a channel's work begins: the outbox before a send,
the channel host before a poll, the connection test.
"""

from __future__ import annotations

import asyncio

from kommutator.auth.principal import Principal
from kommutator.channels.actions import config_of, do_store_oauth_tokens
from kommutator.channels.models import Channel
from kommutator.channels.oauth import (
    OAuthError,
    authorize_url,
    exchange,
    needs_renewal,
    open_state,
    renew,
    uses_oauth,
    with_credentials,
)
from kommutator.errors import ProblemError, not_found
from kommutator.ingest.actions import channel_client
from kommutator.ingest.types import ChannelConfig
from kommutator.runtime import Runtime


def sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


async def _stored(rt: Runtime, channel_id: int) -> ChannelConfig:
    async with rt.db.read() as s:
        row = await s.get(Channel, channel_id)
    if row is None:
        raise not_found("channel", channel_id)
    return config_of(row, rt.box, rt.settings.public_base_url)


async def start(rt: Runtime, principal: Principal, channel_id: int) -> str:
    """The provider's consent page for the channel (administrators only)."""
    principal.require_admin()
    channel = await _stored(rt, channel_id)
    try:
        return authorize_url(channel, user_id=principal.user_id, public_base_url=rt.settings.public_base_url,
                             seal=rt.box.encrypt)
    except OAuthError as exc:
        raise ProblemError(422, "oauth_not_configured", sentence(exc)) from None


async def complete(rt: Runtime, principal: Principal, state: str, code: str) -> int:
    """Finish a sign-in the provider sent back: the channel id. OAuthError says what went wrong."""
    pending = open_state(state, rt.box.decrypt)
    if pending.user_id != principal.user_id or not principal.is_admin:
        raise OAuthError("this sign-in was started by another user; start it again from the channel screen", "config")
    channel = await _stored(rt, pending.channel_id)
    if not uses_oauth(channel):
        raise OAuthError("the channel no longer signs in with OAuth 2.0", "config")
    tokens = await exchange(channel, channel_client(rt), code=code, verifier=pending.verifier,
                            public_base_url=rt.settings.public_base_url)
    await rt.db.write(lambda tx: do_store_oauth_tokens(tx, principal, channel.id, tokens, rt.box))
    rt.channel_cache.pop(channel.id, None)
    return channel.id


async def fresh(rt: Runtime, channel: ChannelConfig) -> ChannelConfig:
    """The channel with an access token that is good for at least a minute (renewed and stored if needed);
    channels that do not use OAuth come back as they are. OAuthError when the provider refuses."""
    if not uses_oauth(channel) or not needs_renewal(channel):
        return channel
    lock = rt.oauth_renewals.setdefault(channel.id, asyncio.Lock())
    async with lock:
        current = await _stored(rt, channel.id)  # a renewal that finished while this one waited is used
        if not needs_renewal(current):
            return with_credentials(channel, current.credentials)
        tokens = await renew(current, channel_client(rt))
        await rt.db.write(lambda tx: do_store_oauth_tokens(tx, None, channel.id, tokens, rt.box))
        rt.channel_cache.pop(channel.id, None)
        return with_credentials(channel, {**current.credentials, **tokens})
