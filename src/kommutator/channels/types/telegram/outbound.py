"""Our messages to a Telegram chat: text split at the 4096 limit, buttons as an inline keyboard, files as
multipart ``sendDocument``.

One reply may take several Bot API calls (a long text, files). Telegram has no idempotency key, so the
calls already made for a message are remembered (in this process) and a retry after a failure part way
continues with the next call instead of sending the first parts again.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kommutator.channels import text as texts
from kommutator.channels.base import Button, OutboundAttachment, OutboundMessage, SendError, SendResult
from kommutator.channels.files import read as read_attachment
from kommutator.channels.text import utf16_length
from kommutator.channels.types.telegram.botapi import MAX_UPLOAD_BYTES, BotApi, BotApiError, send_error

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64  # bytes
MAX_BUTTONS = 100
_UPLOAD_TIMEOUT = 120.0
_CHAT_ID = re.compile(r"-?[0-9]{1,20}")


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Parts of at most ``limit`` UTF-16 code units, cut at a paragraph, line or word boundary in the second
    half of a part when there is one (else mid-word); whitespace at the cuts is dropped, as Telegram does."""
    return texts.split_text(text, limit, size=utf16_length, breaks=texts.WORD_BREAKS, earliest=2)


def inline_keyboard(buttons: tuple[Button, ...]) -> dict[str, Any] | None:
    """One button per row; its id travels as callback_data and comes back in the press."""
    if not buttons:
        return None
    if len(buttons) > MAX_BUTTONS:
        raise SendError(retryable=False, reason=f"Telegram shows at most {MAX_BUTTONS} buttons under a message; "
                                                f"this one has {len(buttons)}")
    for b in buttons:
        size = len(b.id.encode("utf-8"))
        if not 1 <= size <= CALLBACK_DATA_LIMIT:
            raise SendError(retryable=False, reason=f"the id of button {b.label!r} is {size} bytes; Telegram "
                                                    f"carries 1–{CALLBACK_DATA_LIMIT} bytes: use a shorter id")
    return {"inline_keyboard": [[{"text": b.label.strip() or b.id, "callback_data": b.id}] for b in buttons]}


@dataclass(frozen=True)
class Step:
    """One Bot API call of a message: a text part, or a file with an optional caption."""

    text: str = ""
    attachment: OutboundAttachment | None = None
    keyboard: dict[str, Any] | None = None


def attachment_path(attachment: OutboundAttachment) -> Path:
    """Where the file's bytes are (the attachment's ``url`` is our own API, which needs an API token)."""
    if attachment.path is None:
        raise SendError(retryable=False, reason=f"the file {attachment.filename!r} is not on this server's disk")
    if attachment.size > MAX_UPLOAD_BYTES:
        raise SendError(retryable=False, reason=f"the file {attachment.filename!r} is {attachment.size // 2**20} MB; "
                                                "bots can send files of at most 50 MB")
    return attachment.path


def plan(message: OutboundMessage) -> list[Step]:
    """The calls that deliver ``message``; buttons go on the last. A single file with a short text is one
    captioned message."""
    keyboard = inline_keyboard(message.buttons)
    for attachment in message.attachments:
        attachment_path(attachment)  # refuse before any part goes out
    text = message.text.strip()
    files = message.attachments
    steps: list[Step]
    if len(files) == 1 and text and utf16_length(text) <= CAPTION_LIMIT:
        steps = [Step(text=text, attachment=files[0])]
    else:
        steps = [Step(text=part) for part in split_text(text)] + [Step(attachment=a) for a in files]
    if not steps:
        raise SendError(retryable=False, reason="the message has neither text nor files; there is nothing to send")
    if keyboard is not None:
        steps[-1] = replace(steps[-1], keyboard=keyboard)
    return steps


def chat_id_of(to: str) -> int | str:
    """The chat id as the Bot API takes it: a number, or a public @username."""
    if _CHAT_ID.fullmatch(to.strip()):
        return int(to)
    if to.startswith("@") and len(to) > 1:
        return to
    raise SendError(retryable=False, reason=f"{to!r} is not a Telegram chat id")


class Progress:
    """The calls already made per message (idempotency key), so that a retry does not repeat them; bounded."""

    def __init__(self, size: int = 10_000) -> None:
        self._done: OrderedDict[str, tuple[int, str | None]] = OrderedDict()
        self._size = size

    def get(self, key: str) -> tuple[int, str | None]:
        return self._done.get(key, (0, None))

    def put(self, key: str, done: int, first_id: str | None) -> None:
        self._done[key] = (done, first_id)
        self._done.move_to_end(key)
        while len(self._done) > self._size:
            self._done.popitem(last=False)

    def forget(self, key: str) -> None:
        self._done.pop(key, None)


async def _call(api: BotApi, chat_id: int | str, step: Step) -> Any:
    if step.attachment is None:
        params: dict[str, Any] = {"chat_id": chat_id, "text": step.text}
        if step.keyboard is not None:
            params["reply_markup"] = step.keyboard
        return await api.call("sendMessage", params)
    a = step.attachment
    attachment_path(a)
    data = await read_attachment(a, MAX_UPLOAD_BYTES, provider="Telegram")
    fields: dict[str, Any] = {"chat_id": str(chat_id)}
    if step.text:
        fields["caption"] = step.text
    if step.keyboard is not None:
        fields["reply_markup"] = step.keyboard
    return await api.call("sendDocument", fields, files={"document": (a.filename, data, a.content_type)},
                          request_timeout=_UPLOAD_TIMEOUT)


def _message_ref(result: Any, chat_id: int | str) -> str | None:
    """``<chat_id>:<message_id>`` of a sent Message, the form inbound messages and edits use."""
    if not isinstance(result, dict) or not isinstance(result.get("message_id"), int):
        return None
    chat = result.get("chat")
    numeric = chat.get("id") if isinstance(chat, dict) else None
    return f"{numeric if isinstance(numeric, int) else chat_id}:{result['message_id']}"


async def deliver(api: BotApi, message: OutboundMessage, progress: Progress) -> SendResult:
    """Make the calls of ``message`` not made yet; the id of its first Telegram message."""
    steps = plan(message)
    chat_id = chat_id_of(message.to)
    key = message.idempotency_key
    done, first_id = progress.get(key)
    for index in range(done, len(steps)):
        try:
            result = await _call(api, chat_id, steps[index])
        except BotApiError as exc:
            error = send_error(exc)
            if not error.retryable:
                progress.forget(key)
            if index:
                error = SendError(retryable=error.retryable, retry_after=error.retry_after,
                                  reason=f"{error.reason} (parts 1–{index} of {len(steps)} were delivered)")
            raise error from None
        except SendError:
            progress.forget(key)
            raise
        if first_id is None:
            first_id = _message_ref(result, chat_id)
        progress.put(key, index + 1, first_id)
    progress.forget(key)
    return SendResult(provider_message_id=first_id)
