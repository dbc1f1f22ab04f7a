"""Which SLA policy a conversation is held to, and its targets after priority."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from kommutator.channels.models import Channel
from kommutator.contacts.models import Contact
from kommutator.conversations.models import Conversation
from kommutator.db import Tx
from kommutator.quality.models import SlaPolicy
from kommutator.queues.models import Queue


@dataclass(frozen=True)
class Targets:
    policy: SlaPolicy
    seconds: dict[str, int]  # target name -> seconds, only the targets the policy measures
    hours: dict[str, Any] | None  # business hours the clocks count in; None: wall clock
    warn_percent: int


def matches(policy: SlaPolicy, *, queue_id: int | None, channel: Channel | None,
            attributes: dict[str, Any]) -> bool:
    """Whether every condition of ``policy`` holds (an empty condition holds for anything)."""
    if policy.queue_ids and queue_id not in policy.queue_ids:
        return False
    if policy.channel_types and (channel is None or channel.type not in policy.channel_types):
        return False
    if policy.channel_ids and (channel is None or channel.id not in policy.channel_ids):
        return False
    for key, wanted in (policy.contact_attributes or {}).items():
        value = attributes.get(key)
        values = {str(v) for v in value} if isinstance(value, list) else {str(value)}
        if value is None or not values & {str(w) for w in wanted}:
            return False
    return True


def targets_of(policy: SlaPolicy, priority: str) -> dict[str, int]:
    """The policy's targets, tightened by the conversation's priority factor."""
    factor = float((policy.priority_factors or {}).get(priority, 1.0))
    raw = {"first_response": policy.first_response_seconds, "next_response": policy.next_response_seconds,
           "resolution": policy.resolution_seconds}
    return {name: max(1, round(value * factor)) for name, value in raw.items() if value}


async def enabled_policies(tx: Tx) -> list[SlaPolicy]:
    """The enabled policies in the order they are tried (by position, then id)."""
    return list((await tx.session.execute(select(SlaPolicy).where(SlaPolicy.enabled.is_(True))
                                          .order_by(SlaPolicy.position, SlaPolicy.id))).scalars())


async def targets_for(tx: Tx, conv: Conversation, *, policies: Sequence[SlaPolicy] | None = None) -> Targets | None:
    """The first enabled policy (by position, then id) matching the conversation; None when none does.

    ``policies``: ``enabled_policies`` read earlier in the same transaction (the monitor reads them once for
    several conversations)."""
    s = tx.session
    if policies is None:
        policies = await enabled_policies(tx)
    if not policies:
        return None
    channel = await s.get(Channel, conv.last_inbound_channel_id) if conv.last_inbound_channel_id else None
    contact = await s.get(Contact, conv.contact_id)
    attributes = dict(contact.attributes or {}) if contact else {}
    for policy in policies:
        if matches(policy, queue_id=conv.queue_id, channel=channel, attributes=attributes):
            hours = None
            if policy.clock == "business":
                hours = policy.business_hours
                if hours is None and conv.queue_id is not None:
                    queue = await s.get(Queue, conv.queue_id)
                    hours = queue.business_hours if queue else None
            return Targets(policy, targets_of(policy, conv.priority), hours, policy.warn_percent)
    return None
