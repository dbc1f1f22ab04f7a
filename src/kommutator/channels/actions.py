"""Connect, change and remove channels; credentials are validated by the adapter and encrypted."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select

from kommutator.agents.models import Team
from kommutator.audit.actions import do_audit
from kommutator.auth.principal import Principal
from kommutator.channels.base import ChannelConfig
from kommutator.channels.models import Channel
from kommutator.channels.registry import get_adapter
from kommutator.channels.schemas import ChannelCreate, ChannelUpdate
from kommutator.clock import now
from kommutator.common.schemas import refuse_bool_for_number
from kommutator.conversations.models import Message
from kommutator.crypto import SecretBox
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found
from kommutator.net.guard import OutboundGuard, refusal_at_save
from kommutator.queues.models import Queue


def check_model(model: type[BaseModel], data: dict[str, Any], what: str) -> dict[str, Any]:
    for name, field in model.model_fields.items():  # adapters' models are lax: true is not a number here either
        key = field.alias or name
        try:
            refuse_bool_for_number(field.annotation, data.get(key) if isinstance(data, dict) else None)
        except ValueError as exc:
            raise ProblemError(422, "invalid_channel_config", f"{what}.{key}: {exc}",
                               errors=[{"field": f"{what}.{key}", "message": str(exc)}]) from None
    try:
        return model.model_validate(data).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        errors = [{"field": f"{what}." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                  for e in exc.errors()]
        raise ProblemError(422, "invalid_channel_config", f"{errors[0]['field']}: {errors[0]['message']}",
                           errors=errors) from exc


async def check_targets(guard: OutboundGuard, channel_type: str, settings: dict[str, Any]) -> None:
    """422 when a server the settings name is a loopback, private or other special address (or resolves to
    one) that the outbound_allow_hosts setting does not allow; the same guard refuses it at connect time."""
    adapter = get_adapter(channel_type)
    valid = check_model(adapter.Settings, settings, "settings")
    errors = []
    for target in adapter.outbound_targets(valid):
        refused = await refusal_at_save(guard, target.host, target.port)
        if refused is not None:
            errors.append({"field": f"settings.{target.setting}", "message": refused.reason})
    if errors:
        raise ProblemError(422, "outbound_target_refused", f"{errors[0]['field']}: {errors[0]['message']}",
                           errors=errors)


async def check_team(tx: Tx, team_id: int | None) -> None:
    if team_id is not None and await tx.session.get(Team, team_id) is None:
        raise ProblemError(422, "team_not_found", f"There is no team with id {team_id}.")


async def check_queue(tx: Tx, queue_id: int | None) -> None:
    if queue_id is not None and await tx.session.get(Queue, queue_id) is None:
        raise ProblemError(422, "queue_not_found", f"queue_id: there is no queue with id {queue_id}.")


def config_of(channel: Channel, box: SecretBox, public_base_url: str = "") -> ChannelConfig:
    creds = box.decrypt(channel.credentials_encrypted) if channel.credentials_encrypted else {}
    return ChannelConfig(id=channel.id, type=channel.type, name=channel.name, settings=dict(channel.settings),
                         credentials=creds, enabled=channel.enabled, team_id=channel.team_id,
                         queue_id=channel.queue_id,
                         webhook_url=f"{public_base_url}/webhooks/{channel.id}" if public_base_url else "")


async def do_create_channel(tx: Tx, principal: Principal, data: ChannelCreate,
                            box: SecretBox) -> tuple[Channel, dict[str, Any]]:
    adapter = get_adapter(data.type)
    generated = {k: v for k, v in adapter.generate_credentials().items() if k not in data.credentials}
    settings = check_model(adapter.Settings, data.settings, "settings")
    creds = check_model(adapter.Credentials, {**generated, **data.credentials}, "credentials")
    await check_team(tx, data.team_id)
    await check_queue(tx, data.queue_id)
    channel = Channel(type=data.type, name=data.name, settings=settings, credentials_encrypted=box.encrypt(creds),
                      enabled=data.enabled, team_id=data.team_id, queue_id=data.queue_id)
    tx.session.add(channel)
    await tx.session.flush()
    do_audit(tx, principal, "channel.created", "channel", channel.id, type=data.type, name=data.name)
    return channel, generated


async def do_update_channel(tx: Tx, principal: Principal, channel_id: int, data: ChannelUpdate,
                            box: SecretBox) -> Channel:
    channel = await tx.session.get(Channel, channel_id)
    if channel is None:
        raise not_found("channel", channel_id)
    adapter = get_adapter(channel.type)
    fields = data.model_dump(exclude_unset=True, exclude_none=True)
    if "settings" in fields:
        channel.settings = check_model(adapter.Settings, fields["settings"], "settings")
    if "credentials" in fields:
        current = box.decrypt(channel.credentials_encrypted) if channel.credentials_encrypted else {}
        merged = check_model(adapter.Credentials, {**current, **fields["credentials"]}, "credentials")
        channel.credentials_encrypted = box.encrypt(merged)
    if "name" in fields:
        channel.name = fields["name"]
    if "team_id" in data.model_fields_set:
        await check_team(tx, data.team_id)
        channel.team_id = data.team_id
    if "queue_id" in data.model_fields_set:
        await check_queue(tx, data.queue_id)
        channel.queue_id = data.queue_id
    if "enabled" in fields:
        channel.enabled = fields["enabled"]
    channel.updated_at = now()
    do_audit(tx, principal, "channel.updated", "channel", channel_id, fields=sorted(fields))
    return channel


async def do_store_oauth_tokens(tx: Tx, principal: Principal | None, channel_id: int, tokens: dict[str, Any],
                                box: SecretBox) -> ChannelConfig:
    """Keep the tokens of an OAuth sign-in (``principal``: the administrator who signed in) or of a renewal
    (None) with the channel's other credentials, encrypted; the channel as it is now."""
    channel = await tx.session.get(Channel, channel_id)
    if channel is None:
        raise not_found("channel", channel_id)
    current = box.decrypt(channel.credentials_encrypted) if channel.credentials_encrypted else {}
    channel.credentials_encrypted = box.encrypt({**current, **tokens})
    if principal is not None:
        channel.updated_at = now()
        do_audit(tx, principal, "channel.signed_in", "channel", channel_id, method="oauth2")
    return config_of(channel, box)


async def do_delete_channel(tx: Tx, principal: Principal, channel_id: int) -> None:
    channel = await tx.session.get(Channel, channel_id)
    if channel is None:
        raise not_found("channel", channel_id)
    used = await tx.session.scalar(select(func.count()).select_from(Message).where(Message.channel_id == channel_id))
    if used:
        raise ProblemError(409, "channel_in_use",
                           f"Channel {channel.name!r} carried {used} messages; disable it instead "
                           "(PATCH enabled=false) so the history keeps its channel.")
    await tx.session.delete(channel)
    do_audit(tx, principal, "channel.deleted", "channel", channel_id, name=channel.name)
