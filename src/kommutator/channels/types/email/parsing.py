"""Turning raw RFC 5322 mail into what the email channel needs; never raises on a bad message.

(The interface below is fixed; the implementation is being written.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Bounce:
    """A delivery status notification about one of our mails."""

    original_message_id: str | None  # the bounced mail's Message-ID, without <>
    recipient: str | None
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # e.g. 5.1.1
    diagnostic: str  # a sentence for the agent


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str | None  # without <>; None when missing
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    from_address: str | None  # lower-cased addr-spec
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    date: dt.datetime | None
    text: str  # the whole body as plain text (from text/plain, else from sanitised HTML)
    html: str | None  # sanitised HTML of the body, if it had HTML
    new_text: str  # text with quoted replies, forwarded-header blocks and signatures stripped
    attachments: tuple[ParsedAttachment, ...]
    auto_submitted: bool  # RFC 3834: never auto-reply (auto-submitted, bulk/junk/list, <> path, daemons)
    auto_reason: str
    bounce: Bounce | None
    raw_sha256: str
    defects: tuple[str, ...]  # what was broken and repaired or skipped


def parse_email(raw: bytes) -> ParsedEmail:
    raise NotImplementedError
