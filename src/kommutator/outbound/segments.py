"""Segments: a saved audience as rules over contacts, counted on demand and evaluated when a campaign starts.

Every rule but ``attributes`` is a SQL condition; attribute equality is checked on the loaded attributes (the
same on SQLite and PostgreSQL, whatever the JSON type), so an audience is read in one pass of ``(id,
attributes)`` rows — 100,000 contacts in a second or two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.auth.principal import Principal
from kommutator.clock import now
from kommutator.contacts import preferred
from kommutator.contacts.models import ChannelScore, Consent, Contact, Identity
from kommutator.conversations.models import Conversation, ConversationLabel
from kommutator.db import Tx
from kommutator.errors import not_found
from kommutator.outbound.models import Segment
from kommutator.outbound.schemas import SegmentCreate, SegmentRules, SegmentUpdate

_CHUNK = 5000


def _stmt(rules: SegmentRules, at: dt.datetime) -> Select[tuple[int, dict[str, Any]]]:
    stmt = select(Contact.id, Contact.attributes).where(Contact.merged_into_id.is_(None))
    if rules.language:
        stmt = stmt.where(Contact.language == rules.language)
    if rules.manager_id is not None:
        stmt = stmt.where(Contact.manager_id == rules.manager_id)
    if rules.labels:
        stmt = stmt.where(Contact.id.in_(
            select(Conversation.contact_id)
            .join(ConversationLabel, ConversationLabel.conversation_id == Conversation.id)
            .where(ConversationLabel.label.in_(rules.labels))))
    if rules.channel_types:
        reach = [Contact.id.in_(select(Identity.contact_id).where(Identity.channel_type.in_(rules.channel_types)))]
        if {"sms", "whatsapp"} & set(rules.channel_types):
            reach.append(Contact.phone.is_not(None))
        if "email" in rules.channel_types:
            reach.append(Contact.email.is_not(None))
        stmt = stmt.where(or_(*reach))
    if rules.preferred_channel:
        stmt = stmt.where(preferred.is_preferred(rules.preferred_channel))
    if rules.last_contact_within_days or rules.last_contact_before_days:
        last = (select(func.max(ChannelScore.last_at)).where(ChannelScore.contact_id == Contact.id)
                .correlate(Contact).scalar_subquery())
        if rules.last_contact_within_days:
            stmt = stmt.where(last >= at - dt.timedelta(days=rules.last_contact_within_days))
        if rules.last_contact_before_days:
            stmt = stmt.where(or_(last.is_(None), last < at - dt.timedelta(days=rules.last_contact_before_days)))
    if rules.consent == "marketing":
        stmt = stmt.where(Contact.id.in_(select(Consent.contact_id).where(Consent.marketing.is_(True))))
    elif rules.consent == "service":
        stmt = stmt.where(Contact.id.not_in(select(Consent.contact_id).where(Consent.granted.is_(False))))
    return stmt.order_by(Contact.id)


def _matches(attributes: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    attrs = attributes or {}
    for key, value in wanted.items():
        have = attrs.get(key)
        if have != value and str(have) != str(value):
            return False
    return True


async def contact_ids(session: AsyncSession, rules: SegmentRules) -> list[int]:
    """The contacts the rules select now, by id."""
    out: list[int] = []
    stream = await session.stream(_stmt(rules, now()).execution_options(yield_per=_CHUNK))
    async for contact_id, attributes in stream:
        if not rules.attributes or _matches(attributes, rules.attributes):
            out.append(int(contact_id))
    return out


async def audience(session: AsyncSession, segments: Iterable[Segment]) -> list[int]:
    """The union of the segments' contacts: each contact once, however many segments hold them."""
    ids: set[int] = set()
    for segment in segments:
        ids.update(await contact_ids(session, SegmentRules.model_validate(segment.rules)))
    return sorted(ids)


# --- Actions -----------------------------------------------------------------------------------------------------

async def do_create_segment(tx: Tx, principal: Principal, data: SegmentCreate) -> Segment:
    principal.require_supervisor()
    row = Segment(name=data.name.strip(), rules=data.rules.model_dump(exclude_defaults=True),
                  created_by_user_id=principal.user_id)
    tx.session.add(row)
    await tx.session.flush()
    return row


async def do_update_segment(tx: Tx, principal: Principal, segment_id: int, data: SegmentUpdate) -> Segment:
    principal.require_supervisor()
    row = await tx.session.get(Segment, segment_id)
    if row is None:
        raise not_found("segment", segment_id)
    if data.name is not None:
        row.name = data.name.strip()
    if data.rules is not None:
        row.rules = data.rules.model_dump(exclude_defaults=True)
    row.updated_at = now()
    return row


async def do_delete_segment(tx: Tx, principal: Principal, segment_id: int) -> None:
    principal.require_supervisor()
    row = await tx.session.get(Segment, segment_id)
    if row is None:
        raise not_found("segment", segment_id)
    await tx.session.delete(row)
