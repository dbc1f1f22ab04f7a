"""VK Callback API events turned into normalised items.

Only private dialogs with the community are a contact centre's business: messages in group chats
(peer ids from 2000000000) and the community's own outgoing messages are left out, as are event types
the product does not use (typing, reactions, joins, …); VK still gets its ``ok``.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
from typing import Any

from kommutator.channels.base import InboundEdit, InboundFile, InboundItem, InboundMessage, InboundSender
from kommutator.channels.text import clean_text
from kommutator.common.jsonsafe import loads_json
from kommutator.errors import ProblemError

CHAT_PEER_START = 2_000_000_000
_MAX_ID_LENGTH = 255
# client_info.lang_id → the contact's language, for the languages the product speaks.
_LANGUAGES = {0: "ru", 3: "en"}
# Photo size letters from the smallest to the largest, for photos whose sizes carry no dimensions.
_SIZE_ORDER = "smxopqryzw"


def load_body(body: bytes) -> dict[str, Any]:
    """The Callback API's JSON object, or 400."""
    data = loads_json(body)  # 400 invalid_json / too_deep, 422 for NaN
    if not isinstance(data, dict):
        raise ProblemError(400, "invalid_vk_event", "A VK Callback API request is a JSON object.")
    return data


def _invalid(detail: str) -> ProblemError:
    return ProblemError(422, "invalid_vk_event", detail)


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"{field} must be an integer.")
    return value


def _event_id(body: dict[str, Any]) -> str:
    value = body.get("event_id")
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_ID_LENGTH:
        raise _invalid("event_id is missing; set the Callback API version of this server to 5.199 in VK.")
    return clean_text(value)


def _message_ref(message: dict[str, Any]) -> str | None:
    """Our id for a VK message: its id, or peer_cmid where VK gives none (id 0 in some dialogs)."""
    mid = message.get("id")
    if isinstance(mid, int) and not isinstance(mid, bool) and mid > 0:
        return str(mid)
    cmid, peer = message.get("conversation_message_id"), message.get("peer_id")
    if isinstance(cmid, int) and isinstance(peer, int) and not isinstance(cmid, bool):
        return f"{peer}_{cmid}"
    return None


def _button(raw: Any) -> str | None:
    """The button id from a keyboard press's payload (a JSON string in messages, an object in events)."""
    if isinstance(raw, str):
        try:
            raw = loads_json(raw)
        except ValueError:
            return None
    if isinstance(raw, dict):
        value = raw.get("button")
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return clean_text(str(value))[:64]
    return None


def _largest_photo(photo: dict[str, Any]) -> str | None:
    best: tuple[int, int, str] | None = None
    for size in photo.get("sizes") or []:
        if not isinstance(size, dict) or not isinstance(size.get("url"), str):
            continue
        width, height = size.get("width"), size.get("height")
        area = width * height if isinstance(width, int) and isinstance(height, int) else 0
        letter = size.get("type")
        rank = _SIZE_ORDER.find(letter) if isinstance(letter, str) and len(letter) == 1 else -1
        key = (area, rank, size["url"])
        if best is None or key[:2] > best[:2]:
            best = key
    if best is not None:
        return best[2]
    original = photo.get("orig_photo")
    if isinstance(original, dict) and isinstance(original.get("url"), str):
        return str(original["url"])
    return None


def _files(attachments: Any) -> tuple[tuple[InboundFile, ...], list[str]]:
    """Photos, documents and voice messages as files; the types of everything else."""
    files: list[InboundFile] = []
    other: list[str] = []
    for item in attachments if isinstance(attachments, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            continue
        kind = item["type"][:40]
        body = item.get(kind)
        if not isinstance(body, dict):
            other.append(kind)
            continue
        name = f"{body.get('owner_id', '')}_{body.get('id', '')}".strip("_") or "file"
        if kind == "photo" and (url := _largest_photo(body)):
            files.append(InboundFile(filename=f"photo_{name}.jpg", content_type="image/jpeg", ref=url))
        elif kind == "doc" and isinstance(body.get("url"), str):
            title = clean_text(str(body.get("title") or f"doc_{name}"))[:200]
            ext = str(body.get("ext") or "")
            if ext and not title.lower().endswith("." + ext.lower()):
                title = f"{title}.{ext}"
            guessed = mimetypes.guess_type(title)[0] or "application/octet-stream"
            files.append(InboundFile(filename=title, content_type=guessed, ref=body["url"]))
        elif kind == "audio_message" and isinstance(body.get("link_ogg"), str):
            files.append(InboundFile(filename=f"voice_{name}.ogg", content_type="audio/ogg", ref=body["link_ogg"]))
        else:
            other.append(kind)
    return tuple(files), other


def _sender(user_id: int, client_info: Any = None) -> InboundSender:
    language = None
    lang_id = client_info.get("lang_id") if isinstance(client_info, dict) else None
    if isinstance(lang_id, int):
        language = _LANGUAGES.get(lang_id)
    display = f"id{user_id}" if user_id > 0 else f"club{-user_id}"
    return InboundSender(external_id=str(user_id), display=display, language=language)


def _message_new(event_id: str, obj: Any) -> list[InboundItem]:
    if not isinstance(obj, dict):
        raise _invalid("object must be a JSON object.")
    # Since API 5.103 the message is wrapped with client_info; older servers send the message itself.
    wrapped = obj.get("message")
    message: dict[str, Any] = wrapped if isinstance(wrapped, dict) else obj
    peer = _int(message.get("peer_id", message.get("from_id")), "object.message.peer_id")
    sender = _int(message.get("from_id"), "object.message.from_id")
    if peer >= CHAT_PEER_START or peer != sender or message.get("out") == 1:
        return []
    text = message.get("text", "")
    if not isinstance(text, str):
        raise _invalid("object.message.text must be a string.")
    text = clean_text(text)
    files, other = _files(message.get("attachments"))
    if not text and not files and other:
        text = " ".join(f"[{kind}]" for kind in other)
    sent_at = None
    date = message.get("date")
    if isinstance(date, int) and not isinstance(date, bool) and 0 < date < 2**37:
        sent_at = dt.datetime.fromtimestamp(date, dt.UTC)
    payload: dict[str, Any] = {}
    if other:
        payload["vk_attachments"] = other
    cmid = message.get("conversation_message_id")
    if isinstance(cmid, int) and not isinstance(cmid, bool):
        payload["vk_conversation_message_id"] = cmid
    return [InboundMessage(event_id=event_id, sender=_sender(sender, obj.get("client_info")), text=text,
                           provider_message_id=_message_ref(message), sent_at=sent_at, payload=payload,
                           files=files, button=_button(message.get("payload")))]


def _message_edit(event_id: str, obj: Any) -> list[InboundItem]:
    if not isinstance(obj, dict):
        raise _invalid("object must be a JSON object.")
    ref = _message_ref(obj)
    text = obj.get("text", "")
    if ref is None or not isinstance(text, str) or obj.get("out") == 1:
        return []
    return [InboundEdit(event_id=event_id, provider_message_id=ref, text=clean_text(text))]


def _message_event(event_id: str, obj: Any) -> list[InboundItem]:
    """A callback button pressed: no message in the dialog, only the press."""
    if not isinstance(obj, dict):
        raise _invalid("object must be a JSON object.")
    user = _int(obj.get("user_id"), "object.user_id")
    peer = obj.get("peer_id", user)
    button = _button(obj.get("payload"))
    if button is None or peer != user:
        return []
    return [InboundMessage(event_id=event_id, sender=_sender(user), text=button, button=button)]


_HANDLERS = {"message_new": _message_new, "message_edit": _message_edit, "message_event": _message_event}


def parse_event(body: dict[str, Any]) -> list[InboundItem]:
    """The items one Callback API event carries (none for confirmations and events the product ignores)."""
    kind = body.get("type")
    if not isinstance(kind, str):
        raise _invalid("type is missing.")
    handler = _HANDLERS.get(kind)
    if handler is None:
        return []
    return handler(_event_id(body), body.get("object"))
