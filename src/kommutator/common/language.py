"""The language a customer writes in (Russian or English), and how a contact's language follows it.

A contact's language decides every text the system writes to them (the bot's, routing's notices, the rating
question). Where it comes from, strongest first (``Contact.language_source``):

* ``agent``: set explicitly (an agent, an administrator or an integrator through the contacts API); never
  changed by what the customer writes. Clearing it (``null``) hands it back to detection.
* ``provider``: the channel's own hint about the person (Telegram's ``language_code``, VK's ``lang_id``, the
  API channel's ``contact.language``, the visitor's browser language in the web chat); it follows each hint.
* ``text``: read from what the customer writes: Cyrillic or Latin letters (see ``detect``).

Text is a weaker witness than a hint, so it is used only when a message carries no hint. A first message
with a few letters is enough to choose a language where there is none; changing a known language needs a
*clear* message (``CLEAR_LETTERS`` letters, ``CLEAR_SHARE`` of them in one script), so "ok" or an order number
from a Russian customer does not turn their messages English, while a real sentence in the other language
does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Language = Literal["ru", "en"]
Source = Literal["agent", "provider", "text"]
SOURCES: tuple[str, ...] = ("agent", "provider", "text")

MIN_LETTERS = 2  # fewer letters than this say nothing ("1", "?", "👍")
MIN_SHARE = 0.7  # below this share of one script a text is mixed and says nothing
CLEAR_LETTERS = 12
CLEAR_SHARE = 0.85
_CYRILLIC, _LATIN = re.compile("[\u0400-\u04ff]"), re.compile("[A-Za-z]")
# Written in Latin letters whatever the writer's language: links, addresses, @names, order codes (any word with
# a digit). Anchored at word starts, so each word is scanned once: linear in the text's length.
_NOT_WORDS = re.compile(r"(?<!\S)(?:\S*[\d@]\S*|(?:https?://|www\.)\S*)", re.IGNORECASE)
LOOK_AT = 2000  # characters of a message read: enough to tell, and a long message costs no more


@dataclass(frozen=True)
class Detected:
    language: Language
    clear: bool  # enough letters, in one script, to change a language already known


def normal(language: str | None) -> Language | None:
    """"ru", "ru-RU", "RU" → "ru"; "en…" → "en"; anything else (unknown, other languages) → None."""
    code = (language or "").strip().lower()[:2]
    return "ru" if code == "ru" else "en" if code == "en" else None


def detect(text: str) -> Detected | None:
    """The script of a text: Russian for Cyrillic letters, English for Latin ones; None when too short or mixed."""
    words = _NOT_WORDS.sub(" ", text[:LOOK_AT])
    cyrillic, latin = len(_CYRILLIC.findall(words)), len(_LATIN.findall(words))
    total = cyrillic + latin
    if total < MIN_LETTERS:
        return None
    language: Language = "ru" if cyrillic >= latin else "en"
    most = max(cyrillic, latin)
    share = most / total
    if share < MIN_SHARE:
        return None
    return Detected(language, clear=most >= CLEAR_LETTERS and share >= CLEAR_SHARE)


def follow(current: str | None, source: str | None, *, hint: str | None,
           text: str) -> tuple[Language, Source] | None:
    """The contact's new (language, source) after a message, or None to keep what it has (see the module)."""
    if source == "agent" and current:
        return None
    hinted = normal(hint)
    if hinted is not None:
        return None if (current, source) == (hinted, "provider") else (hinted, "provider")
    found = detect(text)
    if found is None or found.language == current:
        return None
    if current and not found.clear:
        return None
    return found.language, "text"
