"""Erasing a person (GDPR art. 17, 152-FZ art. 21): every holding of the registry, their files, and the audit
log pseudonymised — in one transaction; the files go after it commits.

What is removed: the rows that cascade from the contact (identities, consents, conversations and everything
under them, ratings, outreach), the rows that only name a conversation or a message by id (notifications, raw
provider events, deliveries to subscribers), the web-chat visitors behind their identities, and their files.
The audit log keeps that something was done and by whom, but no longer what the person's data was: entries
about the contact lose their details, and any detail quoting their email, phone or name is blanked.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import String, cast, delete, or_, select, update

from kommutator.audit.actions import do_audit
from kommutator.audit.models import AuditEntry
from kommutator.auth.principal import Principal
from kommutator.contacts import policy
from kommutator.contacts.models import Contact, Identity
from kommutator.conversations.models import Attachment, Conversation, Message
from kommutator.db import Base, Tx
from kommutator.events import ContactChanged
from kommutator.ingest.models import InboundEvent
from kommutator.notifications.models import Notification
from kommutator.subscriptions.models import Delivery

ERASED = "[erased]"
# The one change the audit log accepts (its triggers check it): details replaced, marked with this key.
PSEUDONYMISED = "_pseudonymised"


async def do_erase_person(tx: Tx, principal: Principal, contact_id: int) -> list[str]:
    """Erase the contact and the profiles merged into it; returns the storage keys of their files, which the
    caller deletes once this transaction has committed."""
    policy.check_may(principal, "erase")
    contact = await policy.check_see(tx.session, principal, contact_id)
    s = tx.session
    contact_ids = [contact_id, *(await s.execute(select(Contact.id).where(Contact.merged_into_id == contact_id)))
                   .scalars()]
    people = (await s.execute(select(Contact.name, Contact.email, Contact.phone)
                              .where(Contact.id.in_(contact_ids)))).all()
    identities = (await s.execute(select(Identity.channel_type, Identity.external_id, Identity.display,
                                         Identity.verified_email, Identity.verified_phone)
                                  .where(Identity.contact_id.in_(contact_ids)))).all()
    conversation_ids = list((await s.execute(select(Conversation.id)
                                             .where(Conversation.contact_id.in_(contact_ids)))).scalars())
    message_ids = select(Message.id).where(Message.conversation_id.in_(conversation_ids))
    files = list((await s.execute(select(Attachment.storage_key).where(Attachment.message_id.in_(message_ids))))
                 .scalars())

    await s.execute(delete(InboundEvent).where(InboundEvent.message_id.in_(message_ids)))
    await s.execute(delete(Notification).where(Notification.conversation_id.in_(conversation_ids)))
    keys = [f"contact:{i}" for i in contact_ids] + [f"conversation:{i}" for i in conversation_ids]
    await s.execute(delete(Delivery).where(Delivery.order_key.in_(keys)))
    webchat = [i.external_id for i in identities if i.channel_type == "webchat"]
    if webchat:
        visitors = Base.metadata.tables["webchat_visitors"]
        await s.execute(delete(visitors).where(visitors.c.external_id.in_(webchat)))
    await s.execute(delete(Conversation).where(Conversation.id.in_(conversation_ids)))
    await s.execute(delete(Contact).where(Contact.merged_into_id == contact_id))
    await s.delete(contact)

    # The audit log: what was done stays, what the person's data was goes.
    await s.execute(update(AuditEntry).where(AuditEntry.subject_type == "contact",
                                             AuditEntry.subject_id.in_([str(i) for i in contact_ids]))
                    .values(detail={"erased": True, PSEUDONYMISED: True}))
    quoted = {v for p in people for v in (p.email, p.phone) if v and len(v) >= 5}
    quoted |= {v for i in identities for v in (i.verified_email, i.verified_phone, i.external_id) if v and len(v) >= 5}
    quoted |= {p.name for p in people if p.name and len(p.name) >= 5}
    if quoted:
        text = cast(AuditEntry.detail, String)
        entries = (await s.execute(select(AuditEntry.id, AuditEntry.detail)
                                   .where(or_(*(text.contains(v) for v in quoted))))).all()
        for entry_id, detail in entries:
            blanked = _blank(detail, quoted)
            await s.execute(update(AuditEntry).where(AuditEntry.id == entry_id)
                            .values(detail={**blanked, PSEUDONYMISED: True} if isinstance(blanked, dict)
                                    else {"detail": blanked, PSEUDONYMISED: True}))
    do_audit(tx, principal, "contact.erased", "contact", contact_id, conversations=len(conversation_ids),
             files=len(files))
    tx.publish(ContactChanged(contact_id=contact_id, action="deleted"))
    return files


def _blank(value: object, quoted: set[str]) -> object:
    if isinstance(value, str):
        for v in quoted:
            value = value.replace(v, ERASED)
        return value
    if isinstance(value, dict):
        return {k: _blank(v, quoted) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank(v, quoted) for v in value]
    return value


def remove_files(root: Path, keys: list[str]) -> int:
    removed = 0
    for key in keys:
        path = root / key
        if path.is_file():
            path.unlink()
            removed += 1
    return removed
