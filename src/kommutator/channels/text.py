"""Text helpers the channel adapters share: lengths as providers count them, splitting a long text into the
pieces a provider takes, and cleaning text a provider sent us."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

# Where a text is best cut, most preferred first. Sentence breaks keep a piece's last sentence whole (VK, SMS);
# word breaks cut only at paragraphs, lines and spaces (Telegram, WhatsApp).
SENTENCE_BREAKS = ("\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ")
WORD_BREAKS = ("\n\n", "\n", " ")
# Characters that belong to the one before them: a hard cut moves back over them (and over a ZWJ sequence).
_JOINERS = frozenset("\u200d\ufe0e\ufe0f")


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, as Telegram, WhatsApp and SMS gateways count (an emoji counts two)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def fit(text: str, limit: int, *, size: Callable[[str], int] = len) -> int:
    """The longest prefix of ``text`` (in code points, so never half a surrogate pair) whose ``size`` is at
    most ``limit``."""
    if size is len:
        return max(0, min(limit, len(text)))
    if size is utf16_length:
        units = 0
        for index, char in enumerate(text):
            units += 2 if ord(char) > 0xFFFF else 1
            if units > limit:
                return index
        return len(text)
    low, high = 0, max(0, min(limit, len(text)))
    while low < high:
        middle = (low + high + 1) // 2
        if size(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


def _soft_cut(text: str, end: int) -> int:
    """A hard cut at or before ``end`` that keeps combining marks and emoji sequences whole, when possible."""
    if end >= len(text):
        return end
    cut = end
    while cut > 1 and (unicodedata.combining(text[cut]) or text[cut] in _JOINERS or text[cut - 1] == "\u200d"):
        cut -= 1
    return cut if cut > end // 2 else end


def split_text(text: str, limit: int, *, size: Callable[[str], int] = len,
               breaks: tuple[str, ...] = SENTENCE_BREAKS, earliest: int = 3) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` (measured by ``size``) at the first of ``breaks`` that
    lies past ``1/earliest`` of a piece (so that a break near the start does not leave a tiny piece); a word
    longer than a piece is cut where it must be, keeping combining marks and emoji sequences whole when it
    can. Whitespace at the cuts and around the text is dropped."""
    pieces: list[str] = []
    rest = text.strip()
    while rest and size(rest) > limit:
        end = max(1, fit(rest, limit, size=size))
        window = rest[:end]
        cut = 0
        for separator in breaks:
            at = window.rfind(separator)
            if at >= end // earliest:
                cut = at + len(separator)
                break
        if not cut:
            cut = _soft_cut(rest, end)
        piece = rest[:cut].rstrip()
        if piece:
            pieces.append(piece)
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def clean_text(value: str) -> str:
    """Provider text made storable: NUL characters dropped, lone surrogates (from JSON escapes) replaced."""
    value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


# GSM 03.38: the basic character set (one septet each) and the extension table (two septets: escape + char).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def sms_segments(text: str) -> tuple[str, int, int]:
    """How an SMS carries ``text``: its encoding ("GSM-7" or "UCS-2"), the number of segments, and its length
    in that encoding's units (septets or UTF-16 units). One segment holds 160 septets or 70 UCS-2 units; a
    concatenated message gives 7 septets / 3 units of each segment to the header, so 153 / 67."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text):
        units = sum(2 if c in GSM7_EXTENDED else 1 for c in text)
        return "GSM-7", (1 if units <= 160 else -(-units // 153)), units
    units = utf16_length(text)
    return "UCS-2", (1 if units <= 70 else -(-units // 67)), units
