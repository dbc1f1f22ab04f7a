"""Build the Cloud API message bodies for one of our messages: text split at WhatsApp's limits, reply
buttons or a list for choices, files as image / video / audio / document messages (the text as the first
file's caption when it fits), or the approved template when the 24-hour window is closed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kommutator.channels import text as texts
from kommutator.channels.base import Button, OutboundAttachment, OutboundMessage, SendError
from kommutator.channels.text import utf16_length
from kommutator.channels.types.whatsapp import media

TEXT_LIMIT = 4096
BODY_LIMIT = 1024  # the body of an interactive message
CAPTION_LIMIT = 1024  # the caption of an image, video or document
MAX_REPLY_BUTTONS = 3
REPLY_TITLE_LIMIT = 20
MAX_LIST_ROWS = 10
ROW_TITLE_LIMIT = 24
ROW_DESCRIPTION_LIMIT = 72
LIST_BUTTON_LIMIT = 20
TEMPLATE_PARAMETER_LIMIT = 1000

WINDOW_CLOSED = ("The customer last wrote more than 24 hours ago; WhatsApp only allows an approved template "
                 "message now — set a template in the channel settings")
WINDOW_CLOSED_FILES = ("The customer last wrote more than 24 hours ago; WhatsApp then allows only an approved "
                       "template message, which cannot carry files — send the file once the customer writes again, "
                       "or send the text alone")

_CHOOSE = {"ru": ("Выберите вариант:", "Выбрать"), "en": ("Please choose an option:", "Choose")}


@dataclass(frozen=True)
class Part:
    """One request of a message: its body, and for a media message the file to upload first (its media id
    then goes in ``body[type]["id"]``)."""

    body: dict[str, Any]
    attachment: OutboundAttachment | None = None

    def fingerprint(self) -> Any:
        file = self.attachment
        return [self.body, None if file is None else [file.id, file.sha256, file.size]]


@dataclass(frozen=True)
class Template:
    name: str
    language: str
    with_text: bool  # the template's body has one variable, {{1}}, filled with the agent's text


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Chunks of at most ``limit`` (UTF-16 units, as WhatsApp's clients count at worst), cut at a paragraph,
    line or space break where one lies in the second half of the chunk, else hard."""
    return texts.split_text(text, limit, size=utf16_length, breaks=texts.WORD_BREAKS, earliest=2)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a word break if one is near, marked with an ellipsis."""
    text = " ".join(text.split())
    if utf16_length(text) <= limit:
        return text
    cut = text[:texts.fit(text, limit - 1, size=utf16_length)]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"


def _unique(titles: list[str], limit: int) -> list[str]:
    """WhatsApp refuses two buttons with one title: number repeats (after shortening) as "Title 2"."""
    seen: set[str] = set()
    out = []
    for title in titles:
        candidate, n = title, 1
        while candidate.casefold() in seen:
            n += 1
            suffix = f" {n}"
            candidate = shorten(title, limit - len(suffix)) + suffix
        seen.add(candidate.casefold())
        out.append(candidate)
    return out


def _prompt(language: str | None) -> tuple[str, str]:
    return _CHOOSE.get((language or "en")[:2].lower(), _CHOOSE["en"])


def text_part(chunk: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": chunk, "preview_url": "http://" in chunk or "https://" in chunk}}


def buttons_part(body: str, buttons: tuple[Button, ...], language: str | None) -> dict[str, Any]:
    """Up to three reply buttons, or a list of up to ten rows."""
    if len(buttons) <= MAX_REPLY_BUTTONS:
        titles = _unique([shorten(b.label, REPLY_TITLE_LIMIT) or b.id for b in buttons], REPLY_TITLE_LIMIT)
        return {"type": "interactive", "interactive": {
            "type": "button", "body": {"text": body},
            "action": {"buttons": [{"type": "reply", "reply": {"id": b.id, "title": t}}
                                   for b, t in zip(buttons, titles, strict=True)]}}}
    titles = _unique([shorten(b.label, ROW_TITLE_LIMIT) or b.id for b in buttons], ROW_TITLE_LIMIT)
    rows = []
    for b, title in zip(buttons, titles, strict=True):
        row = {"id": b.id, "title": title}
        if title != " ".join(b.label.split()):
            row["description"] = shorten(b.label, ROW_DESCRIPTION_LIMIT)  # the full label, as far as it fits
        rows.append(row)
    return {"type": "interactive", "interactive": {
        "type": "list", "body": {"text": body},
        "action": {"button": shorten(_prompt(language)[1], LIST_BUTTON_LIMIT), "sections": [{"rows": rows}]}}}


def template_parameter(text: str) -> str:
    """A template parameter as WhatsApp takes it: no line breaks, tabs or runs of spaces (error 132018)."""
    return shorten(re.sub(r"\s+", " ", text), TEMPLATE_PARAMETER_LIMIT) or "-"


def template_part(template: Template, text: str) -> dict[str, Any]:
    body: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if template.with_text:
        # Template parameters may not hold line breaks, tabs or runs of spaces (error 132018).
        value = shorten(re.sub(r"\s+", " ", text), TEMPLATE_PARAMETER_LIMIT) or "-"
        body["components"] = [{"type": "body", "parameters": [{"type": "text", "text": value}]}]
    return {"type": "template", "template": body}


def media_part(item: media.Media, caption: str = "") -> Part:
    body: dict[str, Any] = {}
    if caption:
        body["caption"] = caption
    if item.kind == "document":
        body["filename"] = item.attachment.filename
    return Part({"type": item.kind, item.kind: body}, item.attachment)


def window_closed_parts(message: OutboundMessage, template: Template | None) -> list[Part]:
    if message.attachments:
        raise SendError(retryable=False, reason=WINDOW_CLOSED_FILES)
    if template is None:
        raise SendError(retryable=False, reason=WINDOW_CLOSED)
    return [Part(template_part(template, message.text))]


def _text_parts(text: str, buttons: tuple[Button, ...], language: str | None) -> list[Part]:
    if not buttons:
        return [Part(text_part(chunk)) for chunk in split_text(text)]
    if text and utf16_length(text) <= BODY_LIMIT:
        return [Part(buttons_part(text, buttons, language))]
    parts = [Part(text_part(chunk)) for chunk in split_text(text)]
    return [*parts, Part(buttons_part(_prompt(language)[0], buttons, language))]


def free_form_parts(message: OutboundMessage) -> list[Part]:
    """The requests that carry ``message`` inside the 24-hour window, in order. Every file is checked first,
    so that a file WhatsApp would refuse fails the message before any part of it goes out."""
    files = [media.check(a) for a in message.attachments]
    text, buttons = message.text.strip(), message.buttons
    if not text and not buttons and not files:
        raise SendError(retryable=False, reason="The message is empty.")
    if len(buttons) > MAX_LIST_ROWS:
        # More choices than a list holds: numbered lines the customer answers by number or label.
        text = "\n".join([text, *(f"{n}. {b.label}" for n, b in enumerate(buttons, 1))]).strip()
        buttons = ()
    if buttons:
        # The choice comes last, under the files, where the customer sees it.
        return [*(media_part(f) for f in files), *_text_parts(text, buttons, message.language)]
    if files and text and files[0].kind in media.CAPTIONED and utf16_length(text) <= CAPTION_LIMIT:
        return [media_part(files[0], text), *(media_part(f) for f in files[1:])]
    return [*_text_parts(text, (), message.language), *(media_part(f) for f in files)]
