"""Reads about contacts."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.auth.principal import Principal
from kommutator.contacts import policy, preferred
from kommutator.contacts.models import Consent, Contact, Identity
from kommutator.contacts.schemas import ConsentRead, ContactFilters, ContactRead, IdentityRead
from kommutator.conversations.models import Conversation, ConversationLabel


async def get_contact(session: AsyncSession, principal: Principal, *, contact_id: int) -> Contact:
    """A live contact the principal may see, else 404 (contacts/policy.py)."""
    return await policy.check_see(session, principal, contact_id)


async def contacts_read(session: AsyncSession, contacts: list[Contact]) -> list[ContactRead]:
    ids = [c.id for c in contacts]
    idents: dict[int, list[IdentityRead]] = defaultdict(list)
    consents: dict[int, list[ConsentRead]] = defaultdict(list)
    if ids:
        for i in (await session.execute(select(Identity).where(Identity.contact_id.in_(ids))
                                        .order_by(Identity.id))).scalars():
            idents[i.contact_id].append(IdentityRead.model_validate(i))
        for c in (await session.execute(select(Consent).where(Consent.contact_id.in_(ids)))).scalars():
            consents[c.contact_id].append(ConsentRead.model_validate(c))
    ranks = await preferred.ranked(session, ids)
    return [ContactRead.model_validate(c).model_copy(update={
        "identities": idents[c.id], "consents": consents[c.id], "channel_ranking": ranks.get(c.id, []),
        "preferred_channel": next(iter(ranks.get(c.id, [])), None)}) for c in contacts]


def search_clause(q: str):  # type: ignore[no-untyped-def]
    """Match name, email, phone or any identity's external id, ignoring case.

    SQLite's ILIKE (lower() ... LIKE) folds ASCII letters only, so Cyrillic would match in one exact
    case; trying the usual spellings of the query (as typed, lower, upper, capitalised) covers that.
    """
    likes = [f"%{v}%" for v in dict.fromkeys((q, q.lower(), q.upper(), q.capitalize(), q.title()))]
    ident = select(Identity.contact_id).where(or_(*(Identity.external_id.ilike(like) for like in likes)))
    return or_(*(column.ilike(like) for like in likes for column in (Contact.name, Contact.email, Contact.phone)),
               Contact.id.in_(ident))


def filtered(stmt: Select[Any], f: ContactFilters) -> Select[Any]:
    """Narrow a query on contacts by the list's filters (the screen, the API and the CSV export share them)."""
    if f.q and f.q.strip():
        stmt = stmt.where(search_clause(f.q.strip()))
    if f.manager_id is not None:
        stmt = stmt.where(Contact.manager_id == f.manager_id)
    if f.preferred_channel is not None:
        stmt = stmt.where(preferred.is_preferred(f.preferred_channel))
    if f.segment:
        stmt = stmt.where(Contact.attributes["segment"].as_string() == f.segment)
    if f.label:
        labelled = (select(Conversation.contact_id).join(ConversationLabel,
                                                         ConversationLabel.conversation_id == Conversation.id)
                    .where(ConversationLabel.label == f.label.strip().lower()))
        stmt = stmt.where(Contact.id.in_(labelled))
    return stmt
