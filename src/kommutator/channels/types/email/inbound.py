"""Turn one received mail into the items the core ingests: a customer's message, or a delivery failure of
one of our mails (a bounce), never both; the same mail always gives the same ids, so redelivery is a no-op."""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from kommutator.channels.base import (
    ChannelConfig,
    InboundFile,
    InboundItem,
    InboundMessage,
    InboundSender,
    InboundStatus,
)
from kommutator.channels.types.email.parsing import ParsedEmail, parse_email
from kommutator.channels.types.email.unreadable import unreadable_note
from kommutator.common.schemas import MAX_ID

log = logging.getLogger(__name__)

# What the chat view shows, and what the message payload keeps of the original (the raw mail is stored whole
# with the inbound event): enough for any human mail, bounded for the 3 MB monsters.
MAX_TEXT = 100_000
MAX_PAYLOAD_TEXT = 200_000
MAX_PAYLOAD_HTML = 300_000
_MAX_THREAD_IDS = 50
_ID_ROOM = 250  # provider ids are 255 characters at most, event ids carry a 4-character prefix
_TOKEN = re.compile(r"\[#(\d{1,18})\]")

# Until the core's InboundMessage has the threading fields (see docs/channels/email.md), leave them out
# instead of failing; the message then lands in the contact's open conversation as for any channel.


def mail_key(message_id: str) -> str:
    """The provider id of a mail: its Message-ID (without <>), or a digest when it is too long to store."""
    if len(message_id) <= _ID_ROOM:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()


def event_id(parsed: ParsedEmail) -> str:
    """Dedupe key: the Message-ID, or the digest of the raw bytes for mail without one."""
    if parsed.message_id:
        return "mid:" + mail_key(parsed.message_id)
    return "sha:" + parsed.raw_sha256


def conversation_token(subject: str) -> int | None:
    """The conversation id of a "[#123]" token our replies put in the subject, if any."""
    for match in _TOKEN.finditer(subject):
        value = int(match.group(1))
        if 1 <= value <= MAX_ID:
            return value
    return None


def thread_ids(parsed: ParsedEmail) -> tuple[str, ...]:
    """The mails this one answers, oldest first, In-Reply-To last (the most specific)."""
    ids = [*parsed.references, *([parsed.in_reply_to] if parsed.in_reply_to else [])]
    out = list(dict.fromkeys(mail_key(i) for i in ids if i))
    if parsed.in_reply_to:  # dict.fromkeys kept its first place; the parent belongs last
        parent = mail_key(parsed.in_reply_to)
        out.remove(parent)
        out.append(parent)
    return tuple(out[-_MAX_THREAD_IDS:])


def _cut(text: str, limit: int) -> tuple[str, bool]:
    return (text, False) if len(text) <= limit else (text[:limit], True)


def _sender(channel: ChannelConfig, parsed: ParsedEmail, envelope_from: str | None) -> InboundSender:
    address = parsed.from_address or (envelope_from or "").strip().lower() or None
    if address is None and parsed.reply_to:
        address = parsed.reply_to[0].lower()
    if address is None:
        # Nobody to answer: one contact per such mail, so unrelated mails never share a conversation.
        unknown = f"no-sender:{parsed.raw_sha256[:16]}"
        return InboundSender(external_id=unknown, name="Unknown sender", display="(no sender address)")
    name = parsed.from_name.strip() if parsed.from_address else ""
    return InboundSender(external_id=address, name=name, email=address, display=name or address)


def _payload(parsed: ParsedEmail) -> dict[str, Any]:
    text, text_cut = _cut(parsed.text, MAX_PAYLOAD_TEXT)
    html, html_cut = _cut(parsed.html, MAX_PAYLOAD_HTML) if parsed.html is not None else (None, False)
    mail: dict[str, Any] = {
        "subject": parsed.subject, "from": parsed.from_address, "from_name": parsed.from_name,
        "to": list(parsed.to), "cc": list(parsed.cc), "reply_to": list(parsed.reply_to),
        "date": parsed.date.isoformat() if parsed.date else None,
        "message_id": parsed.message_id, "in_reply_to": parsed.in_reply_to, "references": list(parsed.references),
        "text": text, "html": html, "raw_sha256": parsed.raw_sha256,
    }
    if text_cut or html_cut:
        mail["truncated"] = True
    if parsed.defects:
        mail["defects"] = list(parsed.defects)[:20]
    payload: dict[str, Any] = {"email": mail, "auto_submitted": parsed.auto_submitted}
    if parsed.auto_submitted:
        payload["auto_reason"] = parsed.auto_reason
    return payload


def _bounce(channel: ChannelConfig, parsed: ParsedEmail) -> list[InboundItem]:
    bounce = parsed.bounce
    assert bounce is not None
    what = f"channel {channel.id}: bounce {event_id(parsed)} ({bounce.action} {bounce.status}) for " \
           f"{bounce.original_message_id or 'an unknown mail'} to {bounce.recipient or 'an unknown recipient'}"
    if not bounce.original_message_id:
        log.warning("%s: it names no Message-ID of ours, so it is dropped: %s", what, bounce.diagnostic)
        return []
    status = {"failed": "failed", "delivered": "delivered"}.get(bounce.action)
    if status is None:
        # "delayed" (the sender's server keeps trying), "relayed", "expanded": nothing has failed yet.
        log.info("%s: not a failure, ignored: %s", what, bounce.diagnostic)
        return []
    reason = ""
    if status == "failed":
        reason = f"Bounced: {bounce.diagnostic or 'the receiving mail server refused the mail'}"
        if bounce.recipient and bounce.recipient not in reason:
            reason += f" (to {bounce.recipient})"
        if bounce.status and bounce.status not in reason:
            reason += f" [status {bounce.status}]"
    return [InboundStatus(event_id=event_id(parsed), provider_message_id=mail_key(bounce.original_message_id),
                          status=status, reason=reason, at=parsed.date)]


def items_from(channel: ChannelConfig, parsed: ParsedEmail, *, envelope_from: str | None = None) -> list[InboundItem]:
    """The items of one parsed mail for ``channel``; bounces never become messages."""
    if parsed.bounce is not None:
        return _bounce(channel, parsed)
    sender = _sender(channel, parsed, envelope_from)
    if sender.email and sender.email == str(channel.settings.get("address", "")).lower():
        log.warning("channel %s: mail %s comes from the channel's own address; dropped to avoid a loop",
                    channel.id, event_id(parsed))
        return []
    # A mail with only attachments shows its subject in the chat; content that is not text says where it went.
    text = parsed.new_text.strip() or parsed.text.strip()
    if parsed.unreadable:
        text = unreadable_note(list(parsed.unreadable)) + (f"\n\n{text}" if text else "")
    text = text or parsed.subject.strip()
    text, _ = _cut(text, MAX_TEXT)
    key = event_id(parsed)
    threading: dict[str, Any] = {"thread_ids": thread_ids(parsed), "conversation_hint":
                                 conversation_token(parsed.subject), "subject": parsed.subject.strip()[:300]}
    files = tuple(InboundFile(filename=a.filename or "attachment", content_type=a.content_type or
                              "application/octet-stream", data=a.data) for a in parsed.attachments)
    return [InboundMessage(event_id=key, provider_message_id=key.removeprefix("mid:"), sender=sender, text=text,
                           sent_at=parsed.date, payload=_payload(parsed), files=files, **threading)]


def items_from_raw(channel: ChannelConfig, raw: bytes, *, envelope_from: str | None = None) -> list[InboundItem]:
    """Parse ``raw`` (never raises on a bad mail) and turn it into items."""
    return items_from(channel, parse_email(raw), envelope_from=envelope_from)
