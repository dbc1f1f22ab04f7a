"""Create, change, merge and erase contacts; each asks contacts/policy.py first, before writing anything."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, delete, exists, select, update

from kommutator.audit.actions import do_audit
from kommutator.auth.principal import Principal
from kommutator.clock import now
from kommutator.contacts import policy
from kommutator.contacts.models import ChannelScore, Consent, Contact, Identity
from kommutator.contacts.schemas import ConsentIn, ContactCreate, ContactUpdate, IdentityIn
from kommutator.conversations import lifecycle
from kommutator.conversations.fold import do_fold_open_conversations
from kommutator.conversations.models import Conversation, Message
from kommutator.db import Tx
from kommutator.errors import ProblemError
from kommutator.events import ContactChanged
from kommutator.ingest.models import Channel


async def check_identities_free(tx: Tx, identities: list[IdentityIn], *, contact_id: int | None = None) -> None:
    for ident in identities:
        owner = await tx.session.scalar(select(Identity.contact_id).where(
            Identity.channel_type == ident.channel_type, Identity.external_id == ident.external_id))
        if owner is not None and owner != contact_id:
            raise ProblemError(409, "identity_taken",
                               f"{ident.channel_type}:{ident.external_id} already belongs to contact {owner}; "
                               "merge the two contacts instead.", contact_id=owner)


async def _set_consents(tx: Tx, contact_id: int, consents: list[ConsentIn]) -> None:
    for c in consents:
        row = await tx.session.get(Consent, (contact_id, c.channel_type))
        if row is None:
            tx.session.add(Consent(contact_id=contact_id, channel_type=c.channel_type, granted=c.granted,
                                   marketing=bool(c.marketing) and c.granted, source=c.source))
        else:
            row.granted, row.source, row.updated_at = c.granted, c.source, now()
            if c.marketing is not None:
                row.marketing = c.marketing
            if not c.granted:  # no messages at all on the channel: none for marketing either
                row.marketing = False


async def _merge_scores(tx: Tx, contact_id: int, other_id: int) -> None:
    """The preferred-channel scores add up (they share one time basis: contacts/preferred.py)."""
    own = {s.channel_type: s for s in (await tx.session.execute(
        select(ChannelScore).where(ChannelScore.contact_id == contact_id))).scalars()}
    theirs = select(ChannelScore).where(ChannelScore.contact_id == other_id)
    for s in list((await tx.session.execute(theirs)).scalars()):
        mine = own.get(s.channel_type)
        if mine is None:
            tx.session.add(ChannelScore(contact_id=contact_id, channel_type=s.channel_type, score=s.score,
                                        messages=s.messages, last_at=s.last_at))
        else:
            mine.score, mine.messages, mine.last_at = mine.score + s.score, mine.messages + s.messages, max(
                mine.last_at, s.last_at)
    await tx.session.execute(delete(ChannelScore).where(ChannelScore.contact_id == other_id))


async def do_create_contact(tx: Tx, principal: Principal | None, data: ContactCreate) -> Contact:
    await policy.check_create(tx.session, principal, data.manager_id)
    await check_identities_free(tx, data.identities)
    if len({(i.channel_type, i.external_id) for i in data.identities}) != len(data.identities):
        raise ProblemError(422, "duplicate_identity", "The same identity is listed twice.")
    contact = Contact(name=data.name, email=str(data.email).lower() if data.email else None, phone=data.phone,
                      language=data.language, language_source="agent" if data.language else None,
                      attributes=data.attributes, manager_id=data.manager_id)
    tx.session.add(contact)
    await tx.session.flush()
    tx.session.add_all([Identity(contact_id=contact.id, channel_type=i.channel_type, external_id=i.external_id,
                                 display=i.display) for i in data.identities])
    await _set_consents(tx, contact.id, data.consents)
    do_audit(tx, principal, "contact.created", "contact", contact.id)
    tx.publish(ContactChanged(contact_id=contact.id, action="created"))
    return contact


async def do_update_contact(tx: Tx, principal: Principal | None, contact_id: int, data: ContactUpdate) -> Contact:
    contact = await policy.check_see(tx.session, principal, contact_id)
    fields = data.model_dump(exclude_unset=True)
    await policy.check_update(tx.session, principal, contact, fields)
    for key in ("name", "attributes"):
        if key in fields and fields[key] is None:
            raise ProblemError(422, "validation_failed",
                               f"{key}: may not be null; leave it out to keep it (null inside attributes "
                               "removes one attribute).")
    consents = fields.pop("consents", None)
    for key, value in fields.items():
        if key == "email" and value:
            value = str(value).lower()
        if key == "attributes":
            value = {**contact.attributes, **value}
            value = {k: v for k, v in value.items() if v is not None}  # null removes an attribute
        setattr(contact, key, value)
        if key == "language":  # an explicit language wins over detection; clearing it hands it back
            contact.language_source = "agent" if value else None
    if consents is not None:
        await _set_consents(tx, contact_id, data.consents or [])
    contact.updated_at = now()
    do_audit(tx, principal, "contact.updated", "contact", contact_id, fields=sorted(data.model_fields_set))
    tx.publish(ContactChanged(contact_id=contact_id, action="updated"))
    return contact


async def do_add_identity(tx: Tx, principal: Principal, contact_id: int, ident: IdentityIn) -> Identity:
    policy.check_may(principal, "add_identity")
    await policy.check_see(tx.session, principal, contact_id)
    await check_identities_free(tx, [ident], contact_id=contact_id)
    existing = await tx.session.scalar(select(Identity).where(
        Identity.channel_type == ident.channel_type, Identity.external_id == ident.external_id))
    if existing is not None:
        return existing
    row = Identity(contact_id=contact_id, channel_type=ident.channel_type, external_id=ident.external_id,
                   display=ident.display)
    tx.session.add(row)
    await tx.session.flush()
    do_audit(tx, principal, "contact.identity_added", "contact", contact_id,
             identity=f"{ident.channel_type}:{ident.external_id}")
    return row


async def do_merge_contacts(tx: Tx, principal: Principal | None, contact_id: int, other_id: int) -> Contact:
    """Fold ``other`` into ``contact``: identities, conversations and consents move; nothing is lost.
    ``principal`` None: the system, after the customer proved a value both contacts share (outbound/proofs.py)."""
    if principal is not None:
        policy.check_may(principal, "merge")
    if contact_id == other_id:
        raise ProblemError(422, "merge_into_self", "A contact cannot be merged into itself.")
    keep = await policy.check_see(tx.session, principal, contact_id)
    other = await policy.check_see(tx.session, principal, other_id)
    # The ids go into the audit entry: what a merge moved is what a later split may need to move back.
    identity_ids = list((await tx.session.execute(
        select(Identity.id).where(Identity.contact_id == other_id).order_by(Identity.id))).scalars())
    conversation_ids = list((await tx.session.execute(
        select(Conversation.id).where(Conversation.contact_id == other_id).order_by(Conversation.id))).scalars())
    await tx.session.execute(update(Identity).where(Identity.contact_id == other_id).values(contact_id=contact_id))
    await tx.session.execute(update(Conversation).where(Conversation.contact_id == other_id)
                             .values(contact_id=contact_id))
    folded = await do_fold_open_conversations(tx, contact_id,
                                              actor_user_id=principal.user_id if principal is not None else None)
    own = {c.channel_type: c for c in (await tx.session.execute(
        select(Consent).where(Consent.contact_id == contact_id))).scalars()}
    for c in list((await tx.session.execute(select(Consent).where(Consent.contact_id == other_id))).scalars()):
        mine = own.get(c.channel_type)
        if mine is None:
            tx.session.add(Consent(contact_id=contact_id, channel_type=c.channel_type, granted=c.granted,
                                   marketing=c.marketing, source=c.source, updated_at=c.updated_at))
        elif c.updated_at > mine.updated_at:  # the latest decision of the person wins
            mine.granted, mine.marketing, mine.source, mine.updated_at = c.granted, c.marketing, c.source, c.updated_at
    await tx.session.execute(delete(Consent).where(Consent.contact_id == other_id))
    await _merge_scores(tx, contact_id, other_id)
    for field in ("name", "email", "phone", "language", "manager_id"):
        if not getattr(keep, field) and getattr(other, field):
            setattr(keep, field, getattr(other, field))
    if (not keep.language and other.language) or other.language_source == "agent" != keep.language_source:
        keep.language, keep.language_source = other.language, other.language_source
    keep.attributes = {**other.attributes, **keep.attributes}
    keep.updated_at = now()
    other.merged_into_id = contact_id
    other.updated_at = now()
    do_audit(tx, principal, "contact.merged", "contact", contact_id, merged=other_id, identities=identity_ids,
             conversations=conversation_ids, folded=[list(pair) for pair in folded])
    tx.publish(ContactChanged(contact_id=other_id, action="merged", merged_into=contact_id))
    tx.publish(ContactChanged(contact_id=contact_id, action="updated"))
    return keep


def _conversations_through(contact_id: int, channel_type: str, since: dt.datetime) -> Select[Conversation]:
    """A contact's conversations since ``since`` whose messages all went through channels of one type (and
    at least one came in through one)."""
    of_type = select(Channel.id).where(Channel.type == channel_type)
    came_in = exists().where(Message.conversation_id == Conversation.id, Message.direction == "in",
                             Message.channel_id.in_(of_type))
    elsewhere = exists().where(Message.conversation_id == Conversation.id, Message.channel_id.is_not(None),
                               Message.channel_id.not_in(of_type))
    return (select(Conversation).where(Conversation.contact_id == contact_id, Conversation.created_at >= since,
                                       came_in, ~elsewhere).order_by(Conversation.id))


async def do_split_identity(tx: Tx, principal: Principal, contact_id: int,
                            identity_id: int) -> tuple[Contact, list[int]]:
    """Undo a link or merge: one identity, and the conversations that came only through its channel type since
    it joined, move to a new contact. Returns the new contact and the moved conversation ids."""
    policy.check_may(principal, "split")
    # Locked like the inbound path locks it, so no message lands in a conversation while it moves.
    contact = await policy.check_see(tx.session, principal, contact_id, for_update=True)
    ident = await tx.session.get(Identity, identity_id)
    if ident is None or ident.contact_id != contact_id:
        raise ProblemError(404, "identity_not_found", f"Contact {contact_id} has no identity with id {identity_id}.")
    others = list((await tx.session.execute(
        select(Identity.channel_type).where(Identity.contact_id == contact_id, Identity.id != identity_id))).scalars())
    if not others:
        raise ProblemError(409, "only_identity",
                           f"Identity {identity_id} is the only identity of contact {contact_id}; there is nothing "
                           "to split it from.")
    ts = now()
    new = Contact(name=(ident.display or ident.external_id)[:200], email=ident.verified_email,
                  phone=ident.verified_phone, attributes={}, created_at=ts, updated_at=ts)
    tx.session.add(new)
    await tx.session.flush()
    linked_by = ident.linked_by
    ident.contact_id, ident.linked_by = new.id, None
    moved: list[Conversation] = []
    if ident.channel_type not in others:  # with another identity of the type left, its conversations are mixed
        moved = list((await tx.session.execute(
            _conversations_through(contact_id, ident.channel_type, ident.created_at))).scalars())
        consent = await tx.session.get(Consent, (contact_id, ident.channel_type))
        if consent is not None:
            tx.session.add(Consent(contact_id=new.id, channel_type=consent.channel_type, granted=consent.granted,
                                   source=consent.source, updated_at=consent.updated_at))
            await tx.session.delete(consent)
    for conv in moved:
        conv.contact_id = new.id
        conv.updated_at = ts
    contact.updated_at = ts
    moved_ids = [c.id for c in moved]
    do_audit(tx, principal, "contact.identity_split", "contact", contact_id, identity_id=identity_id,
             identity=f"{ident.channel_type}:{ident.external_id}", new_contact=new.id, linked_by=linked_by,
             conversations=moved_ids)
    do_audit(tx, principal, "contact.created", "contact", new.id, split_from=contact_id, identity_id=identity_id)
    tx.publish(ContactChanged(contact_id=new.id, action="created"))
    tx.publish(ContactChanged(contact_id=contact_id, action="updated"))
    for conv in moved:
        lifecycle.apply(tx, conv, lifecycle.announce(lifecycle.Now.of(conv), contact_id=[contact_id, new.id]))
    return new, moved_ids


