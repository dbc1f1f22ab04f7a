"""Twilio's form posts turned into normalised items: an incoming SMS/MMS, or a delivery report."""

from __future__ import annotations

import mimetypes
import re
from urllib.parse import parse_qsl

from kommutator.channels.base import InboundFile, InboundItem, InboundMessage, InboundSender, InboundStatus
from kommutator.channels.text import clean_text
from kommutator.errors import ProblemError

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_MAX_MEDIA = 10  # Twilio delivers at most 10 media per MMS
_MAX_FIELD = 255

# Twilio's MessageStatus → ours; queued/accepted/sending change nothing on a message we already sent.
_STATUSES = {"queued": "queued", "accepted": "queued", "scheduled": "queued", "sending": "queued",
             "sent": "sent", "delivered": "delivered", "read": "read",
             "undelivered": "failed", "failed": "failed", "canceled": "failed"}
_INBOUND_STATUSES = frozenset({"received", "receiving"})

# Error codes of delivery reports, in words an agent understands.
ERROR_MEANINGS = {
    "30001": "the sender's queue overflowed; send again later",
    "30002": "the SMS account is suspended",
    "30003": "the customer's phone is unreachable (switched off or out of coverage)",
    "30004": "the message was blocked (the customer or their carrier blocks this sender)",
    "30005": "the number is unknown to its carrier or no longer in service",
    "30006": "the number is a landline or its carrier cannot receive SMS",
    "30007": "the carrier filtered the message (spam or content rules)",
    "30008": "the carrier reported an unknown error",
    "30034": "the sender number is not registered for A2P 10DLC messaging in the US",
    "21610": "the customer has unsubscribed (replied STOP); they must text START to receive messages again",
}


def form_params(body: bytes) -> list[tuple[str, str]]:
    """Every key and value of an application/x-www-form-urlencoded body, in order, repeats kept."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemError(400, "invalid_form", "The request body is not UTF-8 form data.") from exc
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=1000)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProblemError(400, "invalid_form", f"The request body is not form data ({exc}).") from exc


def _field(params: dict[str, str], key: str, *, required: bool = True) -> str:
    value = clean_text(params.get(key, "")).strip()
    if required and not value:
        raise ProblemError(422, "invalid_sms_event", f"{key} is missing.")
    if len(value) > _MAX_FIELD:
        raise ProblemError(422, "invalid_sms_event", f"{key} is longer than {_MAX_FIELD} characters.")
    return value


def failure_reason(status: str, code: str, said: str = "") -> str:
    """A delivery failure in a sentence: the error code's meaning, or where to look it up."""
    meaning = ERROR_MEANINGS.get(code)
    if meaning:
        return f"SMS {status}: {meaning} (error {code})"
    if code:
        detail = f": {said}" if said else ""
        return f"SMS {status} (error {code}{detail}; see https://www.twilio.com/docs/errors/{code})"
    return f"SMS {status}; the carrier gave no reason"


def _status(params: dict[str, str], sid: str, raw_status: str) -> list[InboundItem]:
    status = _STATUSES.get(raw_status)
    if status is None:
        return []
    reason = ""
    if status == "failed":
        reason = failure_reason(raw_status, _field(params, "ErrorCode", required=False),
                                _field(params, "ErrorMessage", required=False))
    return [InboundStatus(event_id=f"{sid}:{raw_status}", provider_message_id=sid, status=status, reason=reason)]


def _media(params: dict[str, str], sid: str) -> tuple[InboundFile, ...]:
    try:
        count = min(int(params.get("NumMedia", "0") or 0), _MAX_MEDIA)
    except ValueError:
        count = _MAX_MEDIA
    files = []
    for n in range(max(count, 0)):
        url = params.get(f"MediaUrl{n}", "")
        if not url.startswith(("https://", "http://")):
            continue
        ctype = clean_text(params.get(f"MediaContentType{n}", "")).strip() or "application/octet-stream"
        ext = mimetypes.guess_extension(ctype.split(";")[0]) or ""
        files.append(InboundFile(filename=f"{sid}_{n}{ext}", content_type=ctype, ref=url))
    return tuple(files)


def parse_form(params: list[tuple[str, str]]) -> list[InboundItem]:
    """The item one Twilio request carries: a delivery report when it has a MessageStatus of ours,
    otherwise an incoming message."""
    first: dict[str, str] = {}
    for key, value in params:
        first.setdefault(key, value)
    sid = _field(first, "MessageSid", required=False) or _field(first, "SmsSid")
    # Older Twilio-compatible gateways report only SmsStatus; incoming messages carry SmsStatus=received.
    raw_status = (_field(first, "MessageStatus", required=False) or _field(first, "SmsStatus", required=False)).lower()
    if raw_status and raw_status not in _INBOUND_STATUSES:
        return _status(first, sid, raw_status)
    phone = _field(first, "From")
    body = clean_text(first.get("Body", ""))
    e164 = bool(_E164.match(phone))
    # The carrier delivered it from this number: verified, so the same phone on another channel is one contact.
    sender = InboundSender(external_id=phone, phone=phone if e164 else None, display=phone, verified_phone=e164)
    payload = {"to": _field(first, "To", required=False)}
    segments = first.get("NumSegments", "")
    if segments.isdigit() and len(segments) < 4:
        payload["segments"] = segments
    return [InboundMessage(event_id=sid, provider_message_id=sid, sender=sender, text=body, payload=payload,
                           files=_media(first, sid))]
