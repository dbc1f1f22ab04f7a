"""A customer proves an email address or phone number is theirs with a one-time code (docs/contacts.md).

The bot's ``verify_identity`` step and the web chat's widget both come here. A code goes out like any message:
a message row (what the timeline shows: "code sent to a…@example.com", never the code) and an outbox row whose
payload carries the code's text until the outbox worker has sent it (workers/outbox.py then drops it) — so the
send happens after the transaction that asked for it commits, never inside it. The proof row keeps only a salted
scrypt hash. On the right code the value becomes a verified value of the contact: an identity of its channel type
(email, sms) joins the contact, and a contact that already had the value verified is merged with this one.
Nothing links on a value nobody proved.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.audit.actions import do_audit
from kommutator.channels.base import Draft, Reach, Refusal
from kommutator.channels.registry import get_adapter
from kommutator.clock import now
from kommutator.contacts import actions as contact_actions
from kommutator.contacts.codes import CODE_TTL, MAX_ATTEMPTS, mask
from kommutator.contacts.models import Consent, Contact, Identity
from kommutator.contacts.proof_models import IdentityProof
from kommutator.conversations.models import Conversation, Message
from kommutator.db import Tx
from kommutator.events import ContactChanged, MessageCreated
from kommutator.ingest.models import Channel
from kommutator.ingest.types import ChannelConfig
from kommutator.outbound.texts import problem, refused, sentence
from kommutator.workers.models import OutboxItem

PER_VALUE_PER_HOUR = 5  # codes one address or number may get in an hour, whoever asks
PER_CONTACT_PER_HOUR = 10  # codes one contact may ask for in an hour, to any values
# The channel type that carries a code for each kind of value, and the identity the proven value becomes.
CARRIER = {"email": "email", "phone": "sms"}
_KIND_RU = {"email": "почте", "phone": "SMS"}


@dataclass(frozen=True)
class Checked:
    """The outcome of a typed code: verified (``contact_id`` is the contact kept), wrong, failed, expired, none."""

    status: str
    attempts_left: int = 0
    contact_id: int | None = None


async def _carrier(tx: Tx, kind: str, language: str) -> Channel:
    channel = await tx.session.scalar(select(Channel).where(
        Channel.type == CARRIER[kind], Channel.enabled.is_(True)).order_by(Channel.id).limit(1))
    if channel is None:
        raise problem(422, "proof_channel_missing", language, kind=kind, kind_ru=_KIND_RU[kind])
    return channel


async def _check_rate(tx: Tx, contact_id: int, kind: str, value: str, language: str) -> None:
    since = now() - dt.timedelta(hours=1)
    per_value = await tx.session.scalar(select(func.count()).select_from(IdentityProof).where(
        IdentityProof.kind == kind, IdentityProof.value == value, IdentityProof.created_at >= since))
    per_contact = await tx.session.scalar(select(func.count()).select_from(IdentityProof).where(
        IdentityProof.contact_id == contact_id, IdentityProof.created_at >= since))
    if (per_value or 0) >= PER_VALUE_PER_HOUR or (per_contact or 0) >= PER_CONTACT_PER_HOUR:
        raise problem(429, "proof_rate_limited", language)


async def do_send_code(tx: Tx, *, contact_id: int, conversation_id: int, kind: str, value: str, code: str,
                       code_hash: str, language: str, source: str) -> IdentityProof:
    """Record a proof for ``value`` (normalised) and queue its code through the value's channel type; earlier
    pending codes of the contact stop counting. 422/429 with a sentence when it cannot be sent."""
    await _check_rate(tx, contact_id, kind, value, language)
    channel = await _carrier(tx, kind, language)
    consent = await tx.session.get(Consent, (contact_id, channel.type))
    if consent is not None and not consent.granted:
        raise problem(422, "no_consent", language, channel=channel.name)
    ts = now()
    minutes = int(CODE_TTL.total_seconds() // 60)
    text = sentence("proof_code_text", language, code=code, minutes=minutes)
    subject = sentence("proof_code_subject", language)
    config = ChannelConfig(id=channel.id, type=channel.type, name=channel.name, settings=dict(channel.settings),
                           credentials={}, enabled=channel.enabled, team_id=channel.team_id, queue_id=channel.queue_id)
    try:  # the channel's own rule for a first message (an SMS's length, an email's subject)
        to = get_adapter(channel.type).first_message(
            config, Reach(chat_id=value, phone=value, email=value, last_inbound_at=None),
            Draft(text=text, subject=subject), ts)
    except Refusal as exc:
        raise refused(exc, language) from None
    await tx.session.execute(update(IdentityProof).where(
        IdentityProof.contact_id == contact_id, IdentityProof.status == "pending").values(status="replaced"))
    conv = await tx.session.get(Conversation, conversation_id)
    assert conv is not None
    proof = IdentityProof(contact_id=contact_id, conversation_id=conversation_id, kind=kind, value=value,
                          code_hash=code_hash, source=source, channel_id=channel.id, status="pending", attempts=0,
                          created_at=ts, expires_at=ts + CODE_TTL)
    tx.session.add(proof)
    await tx.session.flush()
    shown = sentence("proof_code_sent", "en", target=mask(kind, value))
    msg = Message(conversation_id=conv.id, direction="out", sender_type="system", sender_user_id=None, kind="text",
                  channel_id=channel.id, text=shown, payload={"identity_proof": proof.id}, status="queued",
                  created_at=ts, status_updated_at=ts)
    tx.session.add(msg)
    await tx.session.flush()
    # The code's text rides in the outbox row only until it is sent (workers/outbox.py drops it then).
    tx.session.add(OutboxItem(kind="message", message_id=msg.id, channel_id=channel.id,
                              ordering_key=f"{channel.id}:{to}", next_attempt_at=ts,
                              payload={"to": to, "text": text, "subject": subject}))
    proof.message_id = msg.id
    tx.publish(MessageCreated(conversation_id=conv.id, team_id=conv.team_id, assignee_id=conv.assignee_id,
                              message_id=msg.id, direction="out", sender_type="system", message_kind="text",
                              channel_id=channel.id))
    do_audit(tx, None, "contact.proof_sent", "contact", contact_id, kind=kind, target=mask(kind, value),
             source=source, proof_id=proof.id)
    return proof


async def pending_proof(session: AsyncSession, contact_id: int) -> IdentityProof | None:
    """The contact's code waiting to be typed back (the latest one asked for), if any."""
    found: IdentityProof | None = (await session.execute(
        select(IdentityProof).where(IdentityProof.contact_id == contact_id, IdentityProof.status == "pending")
        .order_by(IdentityProof.id.desc()).limit(1))).scalar_one_or_none()
    return found


async def do_check_code(tx: Tx, *, contact_id: int, code_hash: str, matches: bool,
                        identity_id: int | None = None) -> Checked:
    """Count a typed code against the contact's pending proof whose hash is ``code_hash``; ``matches`` is the
    comparison the caller made outside the transaction (scrypt takes tens of milliseconds: not on the writer).
    The right code links the value (``do_link_proven``). Every try counts, so the caller commits the outcome and
    answers from it: nothing is raised here."""
    proof = (await tx.session.execute(
        select(IdentityProof).where(IdentityProof.contact_id == contact_id, IdentityProof.status == "pending",
                                    IdentityProof.code_hash == code_hash)
        .limit(1).with_for_update())).scalar_one_or_none()
    if proof is None:
        return Checked("none")
    ts = now()
    if proof.expires_at <= ts:
        proof.status = "expired"
        return Checked("expired")
    proof.attempts += 1
    if not matches:
        left = MAX_ATTEMPTS - proof.attempts
        if left <= 0:
            proof.status = "failed"
            do_audit(tx, None, "contact.proof_failed", "contact", contact_id, proof_id=proof.id,
                     target=mask(proof.kind, proof.value))
            return Checked("failed")
        return Checked("wrong", attempts_left=left)
    proof.status, proof.verified_at = "verified", ts
    kept = await do_link_proven(tx, contact_id=contact_id, kind=proof.kind, value=proof.value, proof_id=proof.id,
                                identity_id=identity_id)
    return Checked("verified", contact_id=kept)


async def do_link_proven(tx: Tx, *, contact_id: int, kind: str, value: str, proof_id: int,
                         identity_id: int | None) -> int:
    """``value`` is proven to be the contact's: the identity the customer proved it from and an identity of the
    value's own channel type carry it verified; a contact that already had it verified (exactly one) is merged
    with this one, the older contact kept. Returns the contact kept."""
    column = Identity.verified_email if kind == "email" else Identity.verified_phone
    owners = sorted({int(c) for c in (await tx.session.execute(
        select(Identity.contact_id).join(Contact, Contact.id == Identity.contact_id)
        .where(Contact.merged_into_id.is_(None), column == value, Identity.contact_id != contact_id))).scalars()})
    keep, merged = contact_id, None
    if len(owners) == 1:  # two or more: the value is shared (after a split); a person decides, as for links
        keep, merged = min(contact_id, owners[0]), max(contact_id, owners[0])
        await contact_actions.do_merge_contacts(tx, None, keep, merged)
    attr = "verified_email" if kind == "email" else "verified_phone"
    if identity_id is not None:
        own = await tx.session.get(Identity, identity_id)
        if own is not None:
            setattr(own, attr, value)
    carrier = CARRIER[kind]
    ident = await tx.session.scalar(select(Identity).where(Identity.channel_type == carrier,
                                                           Identity.external_id == value))
    if ident is None:
        tx.session.add(Identity(contact_id=keep, channel_type=carrier, external_id=value, display=value,
                                linked_by=kind, created_at=now(), **{attr: value}))
    elif ident.contact_id == keep:
        setattr(ident, attr, value)
    contact = await tx.session.get(Contact, keep)
    assert contact is not None
    field = "email" if kind == "email" else "phone"
    if not getattr(contact, field):
        setattr(contact, field, value)
    contact.updated_at = now()
    do_audit(tx, None, "contact.identity_proven", "contact", keep, kind=kind, target=mask(kind, value),
             proof_id=proof_id, merged=merged)
    tx.publish(ContactChanged(contact_id=keep, action="identity_linked"))
    return keep
