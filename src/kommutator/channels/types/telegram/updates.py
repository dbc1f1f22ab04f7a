"""Telegram updates (webhook bodies and getUpdates results) turned into normalised inbound items.

Only private chats with the bot are conversations; updates the product does not use (group messages,
channel posts, member changes, service messages, edits that carry no text) give no items and are still
acknowledged, so Telegram does not send them again.

Ids: the event id is ``update:<update_id>`` (unique per bot, so per channel); a customer's message is
``<chat_id>:<message_id>``, the id an edit refers to; a button press is ``callback:<callback_query_id>``,
because the message it belongs to is our own message with its own ``<chat_id>:<message_id>``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kommutator.channels.base import InboundEdit, InboundFile, InboundItem, InboundMessage, InboundSender
from kommutator.channels.types.telegram.botapi import MAX_DOWNLOAD_BYTES
from kommutator.common.jsonsafe import loads_json
from kommutator.errors import ProblemError

# The update types this channel uses, for setWebhook and getUpdates ``allowed_updates``.
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")

TgId = Annotated[int, Field(ge=-(2**63), lt=2**63)]
_LANGUAGES = ("en", "ru")


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class TgUser(_Model):
    id: TgId
    is_bot: bool = False
    first_name: str = ""
    last_name: str = ""
    username: str | None = None
    language_code: str | None = None


class TgChat(_Model):
    id: TgId
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str = ""
    last_name: str = ""


class TgFile(_Model):
    """Document, voice, video, audio, video note, animation or one size of a photo."""

    file_id: str = Field(min_length=1, max_length=1000)
    file_unique_id: str = ""
    file_size: int | None = None
    file_name: str | None = None
    mime_type: str | None = None


class TgSticker(_Model):
    emoji: str | None = None


class TgLocation(_Model):
    latitude: float
    longitude: float


class TgVenue(_Model):
    location: TgLocation
    title: str = ""
    address: str = ""


class TgContact(_Model):
    phone_number: str = ""
    first_name: str = ""
    last_name: str = ""
    user_id: int | None = None


class TgPoll(_Model):
    question: str = ""


class TgButton(_Model):
    text: str = ""
    callback_data: str | None = None


class TgKeyboard(_Model):
    inline_keyboard: list[list[TgButton]] = Field(default_factory=list)


class TgReplied(_Model):
    message_id: TgId


class TgMessage(_Model):
    message_id: TgId
    date: int = 0  # 0 for an "inaccessible" message in a callback query
    chat: TgChat
    from_: TgUser | None = Field(default=None, alias="from")
    text: str | None = None
    caption: str | None = None
    photo: list[TgFile] | None = None
    document: TgFile | None = None
    animation: TgFile | None = None
    voice: TgFile | None = None
    video: TgFile | None = None
    video_note: TgFile | None = None
    audio: TgFile | None = None
    sticker: TgSticker | None = None
    location: TgLocation | None = None
    venue: TgVenue | None = None
    contact: TgContact | None = None
    poll: TgPoll | None = None
    reply_to_message: TgReplied | None = None
    reply_markup: TgKeyboard | None = None


class TgCallbackQuery(_Model):
    id: str = Field(min_length=1, max_length=200)
    from_: TgUser = Field(alias="from")
    message: TgMessage | None = None
    data: str | None = None


class TgUpdate(_Model):
    update_id: int = Field(ge=0, lt=2**63)
    message: TgMessage | None = None
    edited_message: TgMessage | None = None
    callback_query: TgCallbackQuery | None = None


def load_update(body: bytes) -> TgUpdate:
    """The update in a webhook body; 400 when it is not JSON, 422 when it is not an Update."""
    return validate_update(loads_json(body))  # 400 invalid_json / too_deep, 422 for NaN


def validate_update(data: Any) -> TgUpdate:
    try:
        return TgUpdate.model_validate(data)
    except (ValidationError, RecursionError) as exc:
        errors = ([{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
                   for e in exc.errors()] if isinstance(exc, ValidationError) else
                  [{"field": "body", "message": "nested too deeply"}])
        raise ProblemError(422, "invalid_update",
                           f"The body is not a Telegram Update: {errors[0]['field']}: {errors[0]['message']}.",
                           errors=errors[:20]) from None


def items_of(update: TgUpdate) -> list[InboundItem]:
    """The items one update carries: none, or one message, edit or button press."""
    event_id = f"update:{update.update_id}"
    item: InboundItem | None = None
    if update.message is not None:
        item = _message(event_id, update.message)
    elif update.edited_message is not None:
        item = _edit(event_id, update.edited_message)
    elif update.callback_query is not None:
        item = _callback(event_id, update.callback_query)
    return [item] if item is not None else []


def callback_query_id(body: bytes) -> str | None:
    """The id of the callback query a webhook body carries, to answer it in the webhook's reply."""
    try:
        data = loads_json(body)
    except ValueError:
        return None
    query = data.get("callback_query") if isinstance(data, dict) else None
    value = query.get("id") if isinstance(query, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 200 else None


def _clean(text: str | None) -> str:
    # PostgreSQL cannot store NUL; nobody types it.
    return (text or "").replace("\x00", "")


def _time(date: int) -> dt.datetime | None:
    if date <= 0:
        return None
    try:
        return dt.datetime.fromtimestamp(date, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _language(code: str | None) -> str | None:
    base = (code or "").split("-")[0].strip().lower()
    return base if base in _LANGUAGES else None


def _phone(value: str) -> str | None:
    digits = value.strip().removeprefix("+")
    return f"+{digits}" if digits.isdigit() and 5 <= len(digits) <= 20 else None


def _sender(chat: TgChat, user: TgUser | None, contact: TgContact | None = None) -> InboundSender:
    first, last = (user.first_name, user.last_name) if user is not None else (chat.first_name, chat.last_name)
    name = _clean(" ".join(p for p in (first.strip(), last.strip()) if p))[:200]
    username = (user.username if user is not None else chat.username) or None
    shares_own_number = contact is not None and user is not None and contact.user_id == user.id
    return InboundSender(
        external_id=str(chat.id), name=name,
        phone=_phone(contact.phone_number) if shares_own_number and contact is not None else None,
        language=_language(user.language_code if user is not None else None),
        display=f"@{_clean(username)}"[:200] if username else name or str(chat.id))


def _file(f: TgFile, default_name: str, default_type: str) -> InboundFile:
    return InboundFile(filename=_clean(f.file_name) or default_name, content_type=f.mime_type or default_type,
                       ref=f.file_id)


def _files(m: TgMessage) -> tuple[InboundFile, ...]:
    n = m.message_id
    found: list[InboundFile] = []
    if m.photo:
        fitting = [p for p in m.photo if p.file_size is None or p.file_size <= MAX_DOWNLOAD_BYTES]
        best = (fitting or m.photo)[-1]  # sizes come smallest first
        found.append(InboundFile(filename=f"photo_{n}.jpg", content_type="image/jpeg", ref=best.file_id))
    if m.document is not None:  # an animation (GIF) comes with the same file as its document
        found.append(_file(m.document, f"document_{n}", "application/octet-stream"))
    elif m.animation is not None:
        found.append(_file(m.animation, f"animation_{n}.mp4", "video/mp4"))
    if m.voice is not None:
        found.append(_file(m.voice, f"voice_{n}.ogg", "audio/ogg"))
    if m.video is not None:
        found.append(_file(m.video, f"video_{n}.mp4", "video/mp4"))
    if m.video_note is not None:
        found.append(_file(m.video_note, f"video_note_{n}.mp4", "video/mp4"))
    if m.audio is not None:
        found.append(_file(m.audio, f"audio_{n}.mp3", "audio/mpeg"))
    return tuple(found)


def _summary(m: TgMessage) -> str | None:
    """A line for content without text or files, so the agent sees what the customer sent."""
    if m.sticker is not None:
        return f"[sticker {m.sticker.emoji}]" if m.sticker.emoji else "[sticker]"
    if m.venue is not None:
        v = m.venue
        return f"[venue: {v.title}, {v.address} ({v.location.latitude:.6f}, {v.location.longitude:.6f})]"
    if m.location is not None:
        return f"[location: {m.location.latitude:.6f}, {m.location.longitude:.6f}]"
    if m.contact is not None:
        c = m.contact
        return "[contact: " + " ".join(p for p in (c.first_name, c.last_name, c.phone_number) if p) + "]"
    if m.poll is not None:
        return f"[poll: {m.poll.question}]"
    return None


def _message(event_id: str, m: TgMessage) -> InboundMessage | None:
    if m.chat.type != "private":
        return None
    text = _clean(m.text if m.text is not None else m.caption)
    files = _files(m)
    summary = _summary(m)
    if not text and not files and summary is None:
        return None  # a service message (pinned, payment, …): nothing for an agent
    if summary is not None:
        text = f"{text}\n{summary}" if text else summary
    payload: dict[str, Any] = {}
    if m.reply_to_message is not None:
        payload["reply_to"] = f"{m.chat.id}:{m.reply_to_message.message_id}"
    sender = _sender(m.chat, m.from_, m.contact)
    attributes = {"telegram_username": _clean(m.from_.username)} if m.from_ is not None and m.from_.username else {}
    return InboundMessage(event_id=event_id, sender=sender, text=_clean(text),
                          provider_message_id=f"{m.chat.id}:{m.message_id}", sent_at=_time(m.date),
                          payload=payload, attributes=attributes, files=files)


def _edit(event_id: str, m: TgMessage) -> InboundEdit | None:
    if m.chat.type != "private":
        return None
    text = m.text if m.text is not None else m.caption
    if text is None:
        return None  # e.g. a live location moving: nothing to show as an edit
    return InboundEdit(event_id=event_id, provider_message_id=f"{m.chat.id}:{m.message_id}", text=_clean(text))


def _callback(event_id: str, q: TgCallbackQuery) -> InboundMessage | None:
    if q.data is None:
        return None  # a game button: not ours
    chat = q.message.chat if q.message is not None else None
    if chat is not None and chat.type != "private":
        return None
    if chat is None:  # a button under an inline-mode message: the user's private chat has their id
        chat = TgChat(id=q.from_.id, type="private", first_name=q.from_.first_name, last_name=q.from_.last_name,
                      username=q.from_.username)
    data = _clean(q.data)
    label = None
    if q.message is not None and q.message.reply_markup is not None:
        label = next((b.text for row in q.message.reply_markup.inline_keyboard for b in row
                      if b.callback_data == q.data and b.text), None)
    payload: dict[str, Any] = {}
    if q.message is not None:
        payload["pressed_on"] = f"{chat.id}:{q.message.message_id}"
    return InboundMessage(event_id=event_id, sender=_sender(chat, q.from_), text=_clean(label) or data,
                          provider_message_id=f"callback:{q.id}", payload=payload, button=data,
                          attributes={"telegram_username": _clean(q.from_.username)} if q.from_.username else {})
