"""Content that must not be shown as text: binary data where a mail's text should be (an Outlook .msg piped
in as mail, a file sent without MIME), and multipart bodies whose boundary is missing.

Such content is kept as an attachment with a name and type that say what it is, and the message text
says so, instead of 100,000 characters of mojibake or raw base64.
"""

from __future__ import annotations

import re
from collections import Counter

_SNIFF = 8192
# Magic numbers of the files people most often send "as the mail": name, type.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "message.msg", "application/vnd.ms-outlook"),  # OLE2 (Outlook .msg)
    (b"%PDF-", "document.pdf", "application/pdf"),
    (b"PK\x03\x04", "archive.zip", "application/zip"),
    (b"\x89PNG\r\n\x1a\n", "image.png", "image/png"),
    (b"\xff\xd8\xff", "image.jpg", "image/jpeg"),
    (b"GIF8", "image.gif", "image/gif"),
    (b"Rar!\x1a\x07", "archive.rar", "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", "archive.7z", "application/x-7z-compressed"),
    (b"\x1f\x8b", "archive.gz", "application/gzip"),
)
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\x08\x0e\x0f\x1b")  # ISO-2022 text shifts with ESC, SO and SI
_BASE64_LINE = re.compile(rb"^[A-Za-z0-9+/]{40,}={0,2}\r?$")
_BOUNDARY_LINE = re.compile(rb"^--([0-9A-Za-z'()+_,./:=?-]{1,70}?)(--)?[ \t]*\r?$", re.MULTILINE)
_UTF16 = (b"\xff\xfe", b"\xfe\xff")


def binary_kind(data: bytes, declared_charset: str | None = None) -> tuple[str, str] | None:
    """(file name, content type) when ``data`` is a file rather than text, else None."""
    if not data:
        return None
    for magic, name, content_type in _MAGIC:
        if data.startswith(magic):
            return name, content_type
    charset = (declared_charset or "").lower()
    if charset.startswith(("utf-16", "utf-32", "ucs")) or data.startswith(_UTF16):
        return None  # text whose encoding has NUL bytes
    sample = data[:_SNIFF]
    controls = sum(1 for byte in sample if byte < 0x20 and byte not in _TEXT_CONTROLS)
    if b"\x00" in sample or controls * 20 > len(sample):  # more than 5% control bytes: no text of any charset
        return "message.bin", "application/octet-stream"
    return None


def mostly_base64(text: bytes) -> bool:
    """True when most lines are base64 blocks: an encoded file shown as if it were the text."""
    lines = [line for line in text[: _SNIFF * 8].splitlines() if line.strip()]
    if len(lines) < 3:
        return False
    encoded = sum(1 for line in lines if _BASE64_LINE.match(line.strip()))
    return encoded * 2 > len(lines)


def guess_boundary(body: bytes) -> bytes | None:
    """The boundary a multipart body evidently uses although its Content-Type does not name it: the
    delimiter seen most often, at least twice or once closed with ``--``."""
    seen: Counter[bytes] = Counter()
    closed: set[bytes] = set()
    for match in _BOUNDARY_LINE.finditer(body[:2_000_000]):
        token = match.group(1)
        if match.group(2):
            closed.add(token)
        seen[token] += 1
    candidates = [(count + (1 if token in closed else 0), token) for token, count in seen.items()]
    candidates = [c for c in candidates if c[0] >= 2]
    if not candidates:
        return None
    return max(candidates)[1]


_NOTE = {
    "en": "The content of this mail could not be shown as text; it is kept as the attachment {names}.",
    "ru": "Содержимое письма не удалось показать как текст; оно сохранено во вложении {names}.",
}


def unreadable_note(names: list[str]) -> str:
    """The message text that tells the agent where the content went, in English and Russian."""
    listed = ", ".join(f"“{name}”" for name in names)
    return "\n".join(text.format(names=listed) for text in (_NOTE["en"], _NOTE["ru"]))
