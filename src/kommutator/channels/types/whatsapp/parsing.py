"""Turn a WhatsApp Cloud API webhook body into normalised items.

Only the ``messages`` field carries what the product uses: ``value.messages[]`` (customer messages, edits,
deletions) and ``value.statuses[]`` (what became of ours). Every other field (account, template, call and
preference updates, echoes of messages sent from the WhatsApp Business app) is acknowledged and left out.

Meta adds message types without notice: an unknown type becomes a readable placeholder, never an error.
A body that is not a webhook at all (not JSON, no ``entry`` list, a message without an id) is refused with
400/422, so a broken sender learns about it instead of losing data silently.
"""

from __future__ import annotations

import datetime as dt
import logging
import mimetypes
from typing import Any

from kommutator.channels.base import (
    InboundEdit,
    InboundFile,
    InboundItem,
    InboundMessage,
    InboundSender,
    InboundStatus,
)
from kommutator.common.jsonsafe import loads_json
from kommutator.errors import ProblemError

log = logging.getLogger(__name__)

# WhatsApp's statuses, as ours; "played" (a voice message was listened to) comes after "read".
STATUSES = {"sent": "sent", "delivered": "delivered", "read": "read", "played": "read", "failed": "failed"}
MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")
MAX_ID_LENGTH = 200
DELETED_TEXT = "[the customer deleted this message]"

_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "audio/ogg": ".ogg",
               "audio/mpeg": ".mp3", "audio/aac": ".aac", "audio/amr": ".amr", "audio/mp4": ".m4a",
               "video/mp4": ".mp4", "video/3gpp": ".3gp", "application/pdf": ".pdf", "text/plain": ".txt"}


def _invalid(detail: str) -> ProblemError:
    return ProblemError(422, "invalid_whatsapp_payload", f"{detail} This is not a WhatsApp Cloud API webhook body.")


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _seq(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    """A scalar as text ("" for anything else): Meta sends ids and timestamps as strings, numbers sometimes."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, str | int | float):
        return str(value)
    return ""


def _list(parent: dict[str, Any], key: str, where: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid(f"{where}.{key} must be a list.")
    return value


def _wamid(value: Any, what: str) -> str:
    """A WhatsApp id we store (dedupe keys and message ids hold at most 255 characters)."""
    wamid = _str(value)
    if not wamid or len(wamid) > MAX_ID_LENGTH:
        raise _invalid(f"{what} must be a string of 1 to {MAX_ID_LENGTH} characters.")
    return wamid


def _timestamp(value: Any) -> dt.datetime | None:
    try:
        seconds = int(_str(value))
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None


def load(body: bytes) -> dict[str, Any]:
    """The webhook body as a JSON object; 400/422 when it is not one."""
    data = loads_json(body)  # 400 invalid_json / too_deep, 422 for NaN
    if not isinstance(data, dict):
        raise _invalid("The body must be a JSON object.")
    return data


def parse_webhook(data: dict[str, Any], *, phone_number_id: str) -> list[InboundItem]:
    """Items for our phone number, in the order WhatsApp listed them."""
    items: list[InboundItem] = []
    for entry in _list(data, "entry", "body"):
        if not isinstance(entry, dict):
            raise _invalid("Every entry must be an object.")
        for change in _list(entry, "changes", "entry"):
            if not isinstance(change, dict):
                raise _invalid("Every entry.changes item must be an object.")
            value = change.get("value")
            if change.get("field") != "messages" or not isinstance(value, dict):
                continue
            number = _str(_obj(value.get("metadata")).get("phone_number_id"))
            if number and number != phone_number_id:
                # With one app for several numbers every number's events may arrive here; they belong to
                # the channel of that number (see the setup instructions on webhook overrides).
                log.warning("WhatsApp event for phone number %s ignored on the channel of %s", number,
                            phone_number_id)
                continue
            items.extend(_value_items(value))
    return items


def _value_items(value: dict[str, Any]) -> list[InboundItem]:
    names: dict[str, str] = {}
    contacts = _list(value, "contacts", "value")
    for contact in contacts:
        c = _obj(contact)
        wa_id = _str(c.get("wa_id")) or _str(c.get("user_id"))
        name = _str(_obj(c.get("profile")).get("name")).strip()
        if wa_id and name:
            names[wa_id] = name
    only_name = next(iter(names.values())) if len(names) == 1 else ""
    items: list[InboundItem] = []
    for raw in _list(value, "messages", "value"):
        if not isinstance(raw, dict):
            raise _invalid("Every message must be an object.")
        item = _message(raw, names, only_name)
        if item is not None:
            items.append(item)
    for raw in _list(value, "statuses", "value"):
        if not isinstance(raw, dict):
            raise _invalid("Every status must be an object.")
        status = _status(raw)
        if status is not None:
            items.append(status)
    return items


def _sender(raw: dict[str, Any], names: dict[str, str], only_name: str) -> InboundSender:
    wa_id = _wamid(raw.get("from") or raw.get("from_user_id"), "A message's 'from'")
    phone = f"+{wa_id}" if wa_id.isdigit() and len(wa_id) <= 20 else None
    name = (names.get(wa_id) or names.get(_str(raw.get("from_user_id"))) or only_name)[:200]
    # WhatsApp numbers are verified by WhatsApp: a contact with the same verified phone elsewhere is linked.
    return InboundSender(external_id=wa_id, name=name, phone=phone, display=name or phone or wa_id,
                         verified_phone=phone is not None)


def _message(raw: dict[str, Any], names: dict[str, str], only_name: str) -> InboundItem | None:
    wamid = _wamid(raw.get("id"), "A message's 'id'")
    sender = _sender(raw, names, only_name)
    kind = _str(raw.get("type")) or "unknown"
    event_id = f"msg:{wamid}"
    body = _obj(raw.get(kind))
    if kind == "edit":
        text = _text_of(_obj(body.get("message")))
        if not text:
            return None
        original = _wamid(body.get("original_message_id"), "An edit's 'original_message_id'")
        return InboundEdit(event_id=event_id, provider_message_id=original, text=text)
    if kind == "revoke":
        original = _wamid(body.get("original_message_id"), "A deletion's 'original_message_id'")
        return InboundEdit(event_id=event_id, provider_message_id=original, text=DELETED_TEXT)
    if kind == "reaction" and not _str(body.get("emoji")):
        return None  # a reaction taken back: nothing to show
    payload = _context(raw)
    payload["type"] = kind
    text, button, files = _content(kind, raw.get(kind), payload)
    return InboundMessage(event_id=event_id, sender=sender, text=text, provider_message_id=wamid,
                          sent_at=_timestamp(raw.get("timestamp")), payload=payload, files=files, button=button)


def _context(raw: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    context = _obj(raw.get("context"))
    if _str(context.get("id")):
        payload["reply_to"] = _str(context.get("id"))
    if context.get("forwarded") is True:
        payload["forwarded"] = True
    if context.get("frequently_forwarded") is True:
        payload["frequently_forwarded"] = True
    referral = _obj(raw.get("referral"))
    if referral:
        payload["referral"] = {k: _str(v) for k, v in referral.items() if _str(v)}
    return payload


def _content(kind: str, content: Any, payload: dict[str, Any]) -> tuple[str, str | None, tuple[InboundFile, ...]]:
    """The message's text, the id of the button pressed, and its files."""
    body = _obj(content)
    if kind == "text":
        return _str(body.get("body")), None, ()
    if kind == "interactive":
        return _interactive(body, payload)
    if kind == "button":  # a quick-reply button of a template
        return _str(body.get("text")) or _str(body.get("payload")), _str(body.get("payload")) or None, ()
    if kind in MEDIA_TYPES and _str(body.get("id")):
        media_id = _str(body.get("id"))
        mime = _str(body.get("mime_type")) or "application/octet-stream"
        if kind == "audio" and body.get("voice") is True:
            payload["voice"] = True
        return _str(body.get("caption")), None, (InboundFile(filename=_filename(kind, body, media_id, mime),
                                                             content_type=mime, ref=media_id),)
    if kind == "location":
        payload["location"] = {k: body[k] for k in ("latitude", "longitude", "name", "address", "url") if k in body}
        return _location(body), None, ()
    if kind == "contacts":
        return _shared_contacts(content), None, ()
    if kind == "reaction":
        payload["reaction_to"] = _str(body.get("message_id"))
        return f"[reaction: {_str(body.get('emoji'))}]", None, ()
    if kind == "order":
        return _order(body), None, ()
    if kind == "system":
        return f"[WhatsApp: {_str(body.get('body')) or _str(body.get('type')) or 'system notice'}]", None, ()
    if kind == "unsupported":
        return f"[unsupported message type: {_str(body.get('type')) or 'unknown'}]", None, ()
    return f"[unsupported message type: {kind}]", None, ()


def _interactive(body: dict[str, Any], payload: dict[str, Any]) -> tuple[str, str | None, tuple[InboundFile, ...]]:
    kind = _str(body.get("type"))
    reply = _obj(body.get(kind))
    if kind in ("button_reply", "list_reply") and _str(reply.get("id")):
        if _str(reply.get("description")):
            payload["description"] = _str(reply.get("description"))
        return _str(reply.get("title")) or _str(reply.get("id")), _str(reply.get("id")), ()
    if kind == "nfm_reply":  # a WhatsApp Flow was completed
        try:
            answers = loads_json(_str(reply.get("response_json")) or "{}", where="response_json")
        except ValueError:
            answers = {}
        answers = {str(k): v for k, v in _obj(answers).items() if k != "flow_token"}
        payload["flow_response"] = answers
        lines = [f"{k}: {v}" for k, v in answers.items()]
        return "\n".join([f"[form {_str(reply.get('name')) or 'flow'} submitted]", *lines]), None, ()
    if kind == "call_permission_reply":
        return f"[call permission: {_str(reply.get('response')) or 'unknown'}]", None, ()
    return f"[unsupported message type: {'interactive ' + kind if kind else 'interactive'}]", None, ()


def _text_of(message: dict[str, Any]) -> str:
    """The text of a message body inside an edit: its text, or the caption of its media."""
    kind = _str(message.get("type"))
    inner = _obj(message.get(kind))
    return _str(inner.get("body")) if kind == "text" else _str(inner.get("caption"))


def _filename(kind: str, body: dict[str, Any], media_id: str, mime: str) -> str:
    given = _str(body.get("filename")).strip()
    if given:
        return given
    base = mime.split(";")[0].strip().lower()
    ext = _EXTENSIONS.get(base) or mimetypes.guess_extension(base) or ""
    return f"{'voice' if body.get('voice') is True else kind}-{media_id}{ext}"


def _location(body: dict[str, Any]) -> str:
    lat, lon = _str(body.get("latitude")), _str(body.get("longitude"))
    place = ", ".join(p for p in (_str(body.get("name")), _str(body.get("address"))) if p)
    parts = ["[location]"]
    if place:
        parts.append(place)
    if lat and lon:
        parts.append(f"https://maps.google.com/?q={lat},{lon}")
    return " ".join(parts)


def _shared_contacts(body: Any) -> str:
    lines = ["[shared contacts]"]
    for card in _seq(body):
        c = _obj(card)
        name = _str(_obj(c.get("name")).get("formatted_name")) or "(no name)"
        phones = ", ".join(_str(_obj(p).get("phone")) for p in _seq(c.get("phones")) if _str(_obj(p).get("phone")))
        lines.append(f"{name}: {phones}" if phones else name)
    return "\n".join(lines)


def _order(body: dict[str, Any]) -> str:
    lines = ["[order]"]
    for item in _seq(body.get("product_items")):
        i = _obj(item)
        lines.append(f"{_str(i.get('quantity')) or '?'} × {_str(i.get('product_retailer_id'))} "
                     f"at {_str(i.get('item_price'))} {_str(i.get('currency'))}".rstrip())
    if _str(body.get("text")):
        lines.append(_str(body.get("text")))
    return "\n".join(lines)


def _status(raw: dict[str, Any]) -> InboundStatus | None:
    state = _str(raw.get("status"))
    if raw.get("type") == "call" or state not in STATUSES:
        return None  # call statuses and ones we do not track (e.g. "deleted")
    wamid = _wamid(raw.get("id"), "A status's 'id'")
    reason = ""
    if state == "failed":
        reason = failure_reason(raw.get("errors"))
    return InboundStatus(event_id=f"status:{wamid}:{state}", provider_message_id=wamid, status=STATUSES[state],
                         reason=reason, at=_timestamp(raw.get("timestamp")))


def failure_reason(errors: Any) -> str:
    """A sentence from WhatsApp's errors[] of a failed message."""
    first = _obj(errors[0]) if isinstance(errors, list) and errors else {}
    title = _str(first.get("title")) or _str(first.get("message"))
    details = _str(_obj(first.get("error_data")).get("details"))
    code = _str(first.get("code"))
    text = "; ".join([title, details] if details and details != title else [title]).strip("; ") or "no reason given"
    return f"WhatsApp could not deliver the message: {text}" + (f" (error {code})" if code else "")
