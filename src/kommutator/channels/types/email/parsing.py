"""Turning raw RFC 5322 mail into what the email channel needs; never raises on a bad message.

Everything that can go wrong in one header or one MIME part is caught there, the part is skipped and the
problem noted in ``defects``; if even the headers cannot be read the raw bytes are decoded as text.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import datetime as dt
import email.utils
import hashlib
import mimetypes
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser, HeaderParser
from functools import partial
from typing import TypeVar

from kommutator.channels.types.email.html import MAX_TEXT_HTML, html_to_text, sanitize_html
from kommutator.channels.types.email.quotes import extract_html_reply, extract_reply
from kommutator.channels.types.email.unreadable import binary_kind, guess_boundary, mostly_base64


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
    # Attachments holding what should have been the text but is not text (a binary file, an encoded body
    # whose parts cannot be found): the message says where its content went.
    unreadable: tuple[str, ...] = ()


MAX_DEPTH = 20  # MIME nesting levels we descend
MAX_PARTS = 100  # MIME parts we look at (the stdlib parser needs ~2 ms per part)
MAX_NESTED_MESSAGES = 30  # message/* parts the parser may recurse into
MAX_SUBJECT = 1000
_MAX_HEADER = 100_000  # characters of one header value we decode
_MAX_IDS = 200
_MAX_DEFECTS = 50
_SNIFF_BYTES = 16_384

T = TypeVar("T")

# --------------------------------------------------------------------------------------------- charsets

_CHARSET_ALIASES = {
    "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8", "x-unicode20utf8": "utf-8", "win-1251": "cp1251",
    "windows-1251": "cp1251", "x-cp1251": "cp1251", "cp-1251": "cp1251", "koi8r": "koi8-r", "x-koi8-r": "koi8-r",
    "koi8": "koi8-r", "us-ascii": "ascii", "ansi_x3.4-1968": "ascii", "gb2312": "gb18030", "gbk": "gb18030",
    "ks_c_5601-1987": "cp949", "iso-8859-8-i": "iso-8859-8", "x-mac-cyrillic": "mac-cyrillic",
    "x-user-defined": "latin-1",
}  # fmt: skip
_UNSAFE_CODECS = {
    "unicode_escape", "raw_unicode_escape", "idna", "punycode", "uu_codec", "hex_codec", "base64_codec",
    "quopri_codec", "zlib_codec", "bz2_codec", "rot_13", "undefined", "mbcs", "oem", "utf_7",
}  # fmt: skip
_WESTERN = {"latin-1", "iso8859-1", "cp1252", "iso8859-15", "ascii"}
_CYRILLIC = {"cp1251", "koi8-r", "koi8-u", "iso8859-5", "mac-cyrillic", "cp866"}
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")  # controls, lone surrogates


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    return None if info.name in _UNSAFE_CODECS else info.name


def _cyrillic_quality(text: str) -> tuple[float, int]:
    """Return (share of non-ASCII characters that read as Cyrillic words, count of lower-case Cyrillic)."""
    high = good = lower = 0
    for index, char in enumerate(text):
        if ord(char) < 128:
            continue
        high += 1
        if "\u0400" <= char <= "\u04ff":
            before = text[index - 1] if index else " "
            after = text[index + 1] if index + 1 < len(text) else " "
            if not (before.isascii() and before.isalpha()) and not (after.isascii() and after.isalpha()):
                good += 1
            if char.islower():
                lower += 1
    return (good / high if high else 0.0), lower


def _guess_cyrillic(data: bytes) -> tuple[str, str] | None:
    """Tell Windows-1251 from KOI8-R (Russian text is mostly lower case, the two swap cases); None if neither."""
    sample = data[:_SNIFF_BYTES]
    best: tuple[int, str] | None = None
    for codec in ("cp1251", "koi8-r"):
        try:
            quality, lower = _cyrillic_quality(sample.decode(codec))
        except UnicodeDecodeError:
            continue
        if quality >= 0.8 and (best is None or lower > best[0]):
            best = (lower, codec)
    if best is None:
        return None
    return data.decode(best[1], "replace"), best[1]


def _relabel(codec: str, declared_text: str, guessed_text: str) -> bool:
    if codec in _WESTERN:
        return _cyrillic_quality(guessed_text[:_SNIFF_BYTES])[1] >= 4
    return _cyrillic_quality(guessed_text[:_SNIFF_BYTES])[1] > 2 * _cyrillic_quality(declared_text[:_SNIFF_BYTES])[1]


def decode_bytes(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode text bytes: the declared charset, then UTF-8, Windows-1251/KOI8-R, Latin-1; never raises."""
    codec = _codec(declared)
    seven_bit = (codec or "").startswith("iso2022")  # ISO-2022-JP/KR are 7-bit: ASCII bytes, not ASCII text
    if codec == "ascii" or (data.isascii() and not seven_bit):
        if data.isascii():
            return data.decode("ascii"), "ascii"
        codec = None  # 8-bit text labelled ASCII: guess
    if codec:
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError, ValueError):
            text = None
        if text is not None:
            if codec in _WESTERN or codec in _CYRILLIC:
                # A wrong label (Cyrillic sent as Latin-1, or 1251 labelled KOI8-R) decodes without error.
                guess = _guess_cyrillic(data)
                if guess and guess[1] != codec and _relabel(codec, text, guess[0]):
                    return guess
            return text, codec
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    loose = data.decode("utf-8", "replace")
    sample = loose[:_SNIFF_BYTES]
    broken = sample.count("\ufffd")
    if sum(1 for char in sample if ord(char) > 127) - broken >= 4 * broken:
        return loose, "utf-8"  # UTF-8 with a truncated or damaged sequence or two
    guess = _guess_cyrillic(data)
    if guess:
        return guess
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _clean(text: str) -> str:
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


# ---------------------------------------------------------------------------------------------- headers

_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,64})\?([bBqQ])\?([^?\s]*)\?=")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


def _word_bytes(encoding: str, payload: str) -> bytes:
    if encoding in "bB":
        cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
        cleaned = cleaned[: len(cleaned) - len(cleaned) % 4] if len(cleaned) % 4 == 1 else cleaned
        try:
            return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
        except (binascii.Error, ValueError):
            return payload.encode("ascii", "replace")
    raw = payload.replace("_", " ").encode("ascii", "replace")
    return _QP_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def decode_header_value(value: str) -> str:
    """Decode a raw header value: 8-bit bytes by charset guessing, then RFC 2047 encoded words."""
    value = value[:_MAX_HEADER]
    try:
        raw = value.encode("ascii", "surrogateescape")
        value = decode_bytes(raw)[0]
    except UnicodeEncodeError:
        pass  # already text
    value = re.sub(r"\r?\n[ \t]*", " ", value)
    out: list[str] = []
    pending: tuple[str, bytes] | None = None  # adjacent encoded words of one charset decode together
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        charset = match.group(1).split("*", 1)[0]
        data = _word_bytes(match.group(2), match.group(3))
        if pending and not between.strip() and pending[0].lower() == charset.lower():
            pending = (pending[0], pending[1] + data)
        else:
            if pending:
                out.append(decode_bytes(pending[1], pending[0])[0])
            if between.strip() or not pending:
                out.append(between)
            pending = (charset, data)
        position = match.end()
    if pending:
        out.append(decode_bytes(pending[1], pending[0])[0])
    out.append(value[position:])
    return _clean("".join(out)).strip()


def _unfold(value: str) -> str:
    value = re.sub(r"\r?\n(?=[ \t])", "", value[:_MAX_HEADER])
    try:
        value = decode_bytes(value.encode("ascii", "surrogateescape"))[0]
    except UnicodeEncodeError:
        pass  # already text (headers of a part we decoded ourselves)
    return _clean(value)


class _Headers:
    """Raw header values of one message, read without trusting the structured header classes."""

    def __init__(self, message: Message) -> None:
        self.values: dict[str, list[str]] = {}
        for name, value in message.raw_items():
            self.values.setdefault(str(name).strip().lower(), []).append(str(value))

    def raw(self, name: str) -> str | None:
        """The first value, unfolded, 8-bit bytes decoded, RFC 2047 words left as they are."""
        values = self.all(name)
        return values[0].strip() if values else None

    def all(self, name: str) -> list[str]:
        return [_unfold(value) for value in self.values.get(name, [])]

    def text(self, name: str) -> str:
        raw = self.raw(name)
        return decode_header_value(raw) if raw else ""


def _addresses(values: Iterable[str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for name, address in email.utils.getaddresses(list(values)):
        address = address.strip().strip("<>").strip().lower()
        if address and " " not in address and len(address) <= 320:
            found.append((decode_header_value(name) if name else "", _clean(address)))
    return found


def _ids(value: str | None) -> list[str]:
    if not value:
        return []
    ids = re.findall(r"<\s*([^<>\s]+?)\s*>", value)
    if not ids:
        ids = [token.strip("<>") for token in value.split() if "@" in token]
    unique: list[str] = []
    for item in ids:
        item = _clean(item)
        if item and item not in unique:
            unique.append(item)
        if len(unique) >= _MAX_IDS:
            break
    return unique


def _date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    for candidate in (value, re.sub(r"\([^)]*\)", " ", value)):
        try:
            parsed = email.utils.parsedate_to_datetime(candidate.strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


# ------------------------------------------------------------------------------------------------ parts


@dataclass
class _Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)


@dataclass
class _Walk:
    """What a walk over the MIME tree collects besides the body text."""

    attachments: list[ParsedAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    parts: int = 0
    status_blocks: list[dict[str, str]] = field(default_factory=list)
    original_headers: list[_Headers] = field(default_factory=list)
    feedback_report: bool = False
    disposition_notification: bool = False
    unreadable: list[str] = field(default_factory=list)

    def defect(self, note: str) -> None:
        note = _clean(note)[:300]
        if note not in self.defects and len(self.defects) < _MAX_DEFECTS:
            self.defects.append(note)


def _safe(walk: _Walk, what: str, default: T, func: Callable[[], T]) -> T:
    try:
        return func()
    except Exception as exc:  # a broken message must never take the channel down
        walk.defect(f"{what}: {type(exc).__name__}: {str(exc)[:120]}")
        return default


_UNSAFE_NAME = re.compile('[\x00-\x1f\x7f<>:"|?*\u202a-\u202e\u2066-\u2069\u200e\u200f\ud800-\udfff]')
_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)


def safe_filename(name: str | None, content_type: str) -> str:
    """Make an attachment name safe to store and offer: no path parts, controls, bidi tricks or dot names."""
    name = name or ""
    if "=?" in name:
        name = decode_header_value(name)
    name = re.split(r"[/\\]", name)[-1]
    name = re.sub(r"\s+", " ", _UNSAFE_NAME.sub("_", name)).strip(" .")
    if _RESERVED.match(name):
        name = "_" + name
    if len(name) > 150:
        stem, dot, ext = name.rpartition(".")
        name = stem[:140] + dot + ext if dot and len(ext) <= 10 else name[:150]
    if not name:
        name = "attachment" + (mimetypes.guess_extension(content_type) or ".bin")
    return name


def _filename(part: Message) -> str | None:
    name = part.get_filename() or part.get_param("name", header="content-type")
    if isinstance(name, tuple):  # RFC 2231 triple from get_param
        name = email.utils.collapse_rfc2231_value(name)
    if not name:
        return None
    text = str(name)
    try:
        text = decode_bytes(text.encode("ascii", "surrogateescape"))[0]
    except UnicodeEncodeError:
        pass
    return text


def _part_text(part: Message, walk: _Walk) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    charset = _safe(walk, "charset", None, part.get_content_charset)
    text, used = decode_bytes(data, charset)
    if charset and _codec(charset) != used and not (used == "ascii" and data.isascii()):
        walk.defect(f"charset {charset!r} did not fit; decoded as {used}")
    elif not charset and used not in ("ascii", "utf-8"):
        walk.defect(f"no charset declared; decoded as {used}")
    text = _clean(text)
    if str(part.get_param("format", "")).lower() == "flowed":
        text = _unflow(text, delsp=str(part.get_param("delsp", "")).lower() == "yes")
    return text


def _unflow(text: str, *, delsp: bool) -> str:
    """Join RFC 3676 format=flowed soft line breaks."""
    out: list[str] = []
    current: tuple[str, str] | None = None
    for line in text.split("\n"):
        body = line.lstrip(">")
        quote = line[: len(line) - len(body)]
        body = body[1:] if body.startswith(" ") else body
        accumulated = current[1] + body if current and current[0] == quote else body
        if current and current[0] != quote:
            out.append(_quoted_line(*current))
        soft = body.endswith(" ") and body.rstrip() != "--"
        if soft:
            current = (quote, accumulated[:-1] if delsp else accumulated)
        else:
            out.append(_quoted_line(quote, accumulated))
            current = None
    if current:
        out.append(_quoted_line(*current))
    return "\n".join(out)


def _quoted_line(quote: str, body: str) -> str:
    return f"{quote} {body}" if quote else body


def _message_bytes(message: Message) -> bytes:
    try:
        return message.as_bytes()
    except Exception:  # re-serialising a broken message can fail
        try:
            return message.as_bytes(policy=policy.compat32)
        except Exception:
            return b""


def _attach(walk: _Walk, part: Message, content_type: str, data: bytes, name: str | None = None) -> str:
    if not _CONTENT_TYPE.match(content_type):
        content_type = "application/octet-stream"
    filename = safe_filename(name if name is not None else _filename(part), content_type)
    walk.attachments.append(ParsedAttachment(filename=filename, content_type=content_type, data=data))
    return filename


def _payload_bytes(part: Message) -> bytes:
    """The part's body as it was received (the transfer encoding not undone)."""
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _binary_body(part: Message, walk: _Walk) -> bool:
    """Keep a body part that is a file, not text, as an attachment; True when it was."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return False
    charset = _safe(walk, "charset", None, part.get_content_charset)
    kind = binary_kind(data, charset)
    if kind is None:
        return False
    walk.defect(f"the text part is binary data ({kind[1]}): kept as an attachment")
    walk.unreadable.append(_attach(walk, part, kind[1], data, _filename(part) or kind[0]))
    return True


_CONTENT_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,127}$")


def _field_blocks(part: Message) -> list[dict[str, str]]:
    """Read the field blocks of a message/delivery-status (or similar) part."""
    payload = part.get_payload()
    blocks: list[dict[str, str]] = []
    if isinstance(payload, list):
        for block in payload:
            if isinstance(block, Message):
                headers = _Headers(block)
                blocks.append({name: decode_header_value(values[0]) for name, values in headers.values.items()})
        return blocks
    text = payload if isinstance(payload, str) else ""
    for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        fields = HeaderParser(policy=policy.default).parsestr(chunk.strip() + "\n\n", headersonly=True)
        headers = _Headers(fields)
        if headers.values:
            blocks.append({name: decode_header_value(values[0]) for name, values in headers.values.items()})
    return blocks


def _walk(part: Message, depth: int, walk: _Walk, body: _Body | None) -> None:
    """Sort one MIME part into body text, attachments and report data; body None means "not body"."""
    walk.parts += 1
    if walk.parts > MAX_PARTS:
        walk.defect(f"more than {MAX_PARTS} MIME parts: the rest was skipped")
        return
    if depth > MAX_DEPTH:
        walk.defect(f"MIME nested deeper than {MAX_DEPTH} levels: the rest was skipped")
        return
    content_type = _safe(walk, "content-type", "application/octet-stream", part.get_content_type)
    maintype, _, subtype = content_type.partition("/")
    if maintype == "multipart":
        _walk_multipart(part, subtype, depth, walk, body)
        return
    disposition = _safe(walk, "content-disposition", None, part.get_content_disposition)
    filename = _safe(walk, "filename", None, lambda: _filename(part))
    if content_type in ("message/rfc822", "message/global"):
        inner = part.get_payload(0) if part.is_multipart() else None
        if isinstance(inner, Message):
            walk.original_headers.append(_Headers(inner))
            subject = _safe(walk, "subject", "", lambda: _Headers(inner).text("subject"))
            name = filename or (subject[:100] or "message")
            _attach(walk, part, content_type, _message_bytes(inner), name if name.endswith(".eml") else name + ".eml")
        return
    if maintype == "message" and subtype in ("delivery-status", "global-delivery-status"):
        walk.status_blocks.extend(_field_blocks(part))
    elif content_type == "message/feedback-report":
        walk.feedback_report = True
    elif content_type == "message/disposition-notification":
        walk.disposition_notification = True
    if content_type == "text/rfc822-headers":
        headers_text = _part_text(part, walk)
        walk.original_headers.append(_Headers(HeaderParser(policy=policy.default).parsestr(headers_text)))
        return
    is_attachment = disposition == "attachment" or filename is not None
    if body is not None and not is_attachment and content_type in ("text/plain", "text/html"):
        if not _binary_body(part, walk):
            (body.plain if subtype == "plain" else body.html).append(_part_text(part, walk))
        return
    if maintype == "text" and subtype in ("plain", "html") and not is_attachment:
        return  # text that is neither body nor attachment (e.g. extra parts of a report)
    if part.is_multipart():  # message/* parsed into sub-messages
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        data = b"\n".join(_message_bytes(block) for block in blocks if isinstance(block, Message))
    else:
        decoded = part.get_payload(decode=True)
        data = decoded if isinstance(decoded, bytes) else b""
    extension_name = filename
    if extension_name is None and maintype == "message":
        extension_name = subtype + ".txt"
    _attach(walk, part, content_type, data, extension_name)


def _walk_multipart(part: Message, subtype: str, depth: int, walk: _Walk, body: _Body | None) -> None:
    children = part.get_payload()
    if not isinstance(children, list):
        _walk_unsplit(part, subtype, depth, walk, body)
        return
    messages = [child for child in children if isinstance(child, Message)]
    if subtype == "alternative" and body is not None:
        choices: list[_Body] = []
        for child in messages:
            choice = _Body()
            _safe(walk, "part", None, partial(_walk, child, depth + 1, walk, choice))
            choices.append(choice)
        plain = next((choice.plain for choice in choices if choice.plain), [])
        html = next((choice.html for choice in reversed(choices) if choice.html), [])
        body.plain.extend(plain)
        body.html.extend(html)
        return
    for index, child in enumerate(messages):
        child_body = body
        if subtype in ("related", "report", "signed", "encrypted") and index > 0:
            child_body = None
        _safe(walk, "part", None, partial(_walk, child, depth + 1, walk, child_body))


def _walk_unsplit(part: Message, subtype: str, depth: int, walk: _Walk, body: _Body | None) -> None:
    """A multipart whose boundary is missing: find the parts by the delimiter its body uses; failing that,
    show it as text if it is text, else keep it whole as a mail file."""
    raw = _payload_bytes(part)
    boundary = guess_boundary(raw)
    if not re.fullmatch(r"[a-z0-9.+-]{1,60}", subtype):
        subtype = "mixed"
    if boundary is not None and depth < MAX_DEPTH:
        head = b'Content-Type: multipart/' + subtype.encode() + b'; boundary="' + boundary + b'"\r\n\r\n'
        rebuilt = BytesParser(policy=policy.default).parsebytes(head + raw)
        if isinstance(rebuilt.get_payload(), list):
            walk.defect(f"multipart/{subtype} without its boundary: parts found by the delimiter "
                        f"{boundary.decode('ascii', 'replace')!r}")
            _walk_multipart(rebuilt, subtype, depth + 1, walk, body)
            return
    if body is None:
        return
    if mostly_base64(raw) or binary_kind(raw) is not None:
        walk.defect(f"multipart/{subtype} without its boundary and no parts found: kept as a mail file")
        walk.unreadable.append(_attach(walk, part, "message/rfc822", _message_bytes(part), "message.eml"))
        return
    walk.defect(f"multipart/{subtype} without parts (missing boundary): read as text")
    body.plain.append(_part_text(part, walk))


# ------------------------------------------------------------------------------------------------ bounces

_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered\s+mail|delivery\s+status\s+notification|mail\s+delivery\s+failed|"
    r"delivery\s+(?:has\s+)?fail|failure\s+notice|returned\s+mail|delivery\s+notification|delayed\s+mail|"
    r"could\s+not\s+send\s+message|mail\s+system\s+error|non[- ]?delivery|"
    r"недоставленное\s+сообщение|не\s+удалось\s+доставить|сообщение\s+не\s+доставлено|ошибка\s+доставки",
    re.IGNORECASE,
)
_FAILURE_TEXT = re.compile(
    r"could\s+not\s+be\s+delivered|delivery\s+(?:to\s+the\s+following\s+recipients?\s+)?failed|"
    r"failed\s+permanently|undeliverable|permanent\s+error|не\s+может\s+быть\s+доставлено|не\s+доставлено",
    re.IGNORECASE,
)
_DELAY_TEXT = re.compile(
    r"\bdelay(?:ed)?\b|will\s+be\s+retried|still\s+being\s+retried|will\s+(?:continue\s+to\s+)?retry|"
    r"warning\s+only|задерж",
    re.IGNORECASE,
)
_ORIGINAL_MARKER = re.compile(
    r"^.*(?:original\s+message|message\s+follows|undelivered\s+message|returned\s+message|copy\s+of\s+the\s+message|"
    r"message\s+headers\s+follow|исходное\s+сообщение|копия\s+(?:исходного\s+)?сообщения).*$",
    re.IGNORECASE | re.MULTILINE,
)
_FORWARD_OR_REPLY = re.compile(r"^\s*(?:fwd?|re|aw|wg|tr|rv|sv|vs|отв|пересл)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
_STATUS_LINE = re.compile(r"\b[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}\b")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([245])\d\d\b")
_EMAIL = re.compile(r"[\w.+=-]+@[\w-]+(?:\.[\w-]+)+")
_DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}
# Lines that explain a non-standard bounce, best first: an SMTP reply with status, any SMTP reply, an error.
_DETAIL_LINES = (
    re.compile(r"^.*\b[45]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\b.*$", re.MULTILINE),
    re.compile(r"^\s*[45]\d\d[ -].*$|^.*\bsaid:\s*[45]\d\d\b.*$", re.MULTILINE),
    re.compile(
        r"^.*(?:error|rejected|not\s+found|does\s+not\s+exist|unknown|mailbox\s+(?:is\s+)?full|quota|denied|"
        r"timed?\s*out|ошибка|не\s+существует).*$",
        re.IGNORECASE | re.MULTILINE,
    ),
    re.compile(r"^.*(?:failed|could\s+not\s+be\s+delivered|не\s+доставлено).*$", re.IGNORECASE | re.MULTILINE),
)
_STATUS_FROM_TEXT = (
    (re.compile(r"does\s+not\s+exist|no\s+such\s+user|user\s+unknown|unknown\s+user|recipient\s+rejected|"
                r"address\s+rejected|not\s+found\s+by|не\s+существует", re.I), "1.1"),
    (re.compile(r"domain\s+name\s+not\s+found|dns\s+error|no\s+mx|host\s+not\s+found|domain\s+not\s+found", re.I),
     "1.2"),
    (re.compile(r"mailbox\s+(?:is\s+)?full|over\s+quota|quota\s+exceeded|insufficient\s+storage", re.I), "2.2"),
    (re.compile(r"too\s+large|size\s+limit", re.I), "3.4"),
    (re.compile(r"spam|blocked|blacklist|policy", re.I), "7.1"),
)  # fmt: skip


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _recipient_field(value: str | None) -> str | None:
    if not value:
        return None
    address = value.split(";", 1)[-1].strip().strip("<>").strip()
    return address.lower() or None


def _diagnostic(action: str, status: str, recipient: str | None, detail: str | None) -> str:
    who = recipient or "the recipient"
    _, subject, specific = [*status.split("."), "0", "0"][:3]
    code = f"{subject}.{specific}"
    if action == "delayed":
        sentence = f"Delivery to {who} is delayed; the mail server will keep trying"
    elif action in ("delivered", "relayed", "expanded"):
        sentence = f"The message was {action} to {who}"
    elif code in ("1.1", "1.0", "1.6", "1.10") and status.startswith("5"):
        sentence = f"The address {who} does not exist"
    elif code in ("1.2", "4.4"):
        sentence = f"No mail server could be found for {who}"
    elif code == "2.2":
        sentence = f"The mailbox of {who} is full"
    elif code == "2.1":
        sentence = f"The mailbox of {who} is disabled"
    elif code in ("3.4", "2.3"):
        sentence = f"The message was too large for {who}"
    elif subject == "7":
        sentence = f"The message to {who} was refused by the receiving server (policy or spam filter)"
    else:
        sentence = f"The message could not be delivered to {who}"
    return f"{sentence} ({_shorten(detail)})" if detail else sentence


def _first_id(headers_list: list[_Headers]) -> str | None:
    for headers in headers_list:
        ids = _ids(headers.raw("message-id"))
        if ids:
            return ids[0]
    return None


def _standard_bounce(walk: _Walk, fallback_id: str | None) -> Bounce | None:
    recipients = [block for block in walk.status_blocks if {"action", "final-recipient", "status"} & block.keys()]
    if not recipients:
        return None
    order = {"failed": 0, "delayed": 1}
    block = min(recipients, key=lambda b: order.get(b.get("action", "").strip().lower(), 2))
    status_match = _STATUS.search(block.get("status", "")) or _STATUS.search(block.get("diagnostic-code", ""))
    status = ".".join(status_match.groups()) if status_match else ""
    action = block.get("action", "").strip().lower().split()[0] if block.get("action", "").strip() else ""
    if not action:
        action = {"2": "delivered", "4": "delayed"}.get(status[:1], "failed")
    if not status:
        status = {"delivered": "2.0.0", "delayed": "4.0.0"}.get(action, "5.0.0")
    recipient = _recipient_field(block.get("final-recipient")) or _recipient_field(block.get("original-recipient"))
    detail = block.get("diagnostic-code", "")
    detail = detail.split(";", 1)[1] if re.match(r"^\s*[\w-]+\s*;", detail) else detail
    original = _first_id(walk.original_headers) or fallback_id
    return Bounce(original, recipient, action, status, _diagnostic(action, status, recipient, detail.strip() or None))


def _informal_bounce(
    headers: _Headers, subject: str, sender: str | None, text: str, walk: _Walk, fallback_id: str | None
) -> Bounce | None:
    """Recognise bounces that are not RFC 3464 reports (Gmail, Exchange, qmail, Russian MTAs…)."""
    if _FORWARD_OR_REPLY.match(subject):
        return None  # a customer forwarding a bounce to us wants an answer
    daemon = bool(sender) and sender.split("@", 1)[0] in _DAEMONS  # type: ignore[union-attr]
    machine = (
        daemon
        or "x-failed-recipients" in headers.values
        or any(
            value.strip().replace(" ", "") == "<>"
            for value in headers.all("return-path") + headers.all("x-envelope-from")
        )
        or bool(headers.text("auto-submitted") and headers.text("auto-submitted").lower() != "no")
        or bool(_STATUS_LINE.search(text[:20_000]))
    )
    # A customer may well write "Delivery failed" about a parcel: the subject alone is not enough.
    if not ((_BOUNCE_SUBJECT.search(subject) and machine) or (daemon and _FAILURE_TEXT.search(text[:20_000]))):
        return None
    marker = _ORIGINAL_MARKER.search(text)
    notice = text[: marker.start()] if marker else text
    original_part = text[marker.end() :] if marker else ""
    delayed = bool(_DELAY_TEXT.search(subject) or _DELAY_TEXT.search(notice[:5000])) and not re.search(
        r"failed\s+permanently|permanent", notice, re.IGNORECASE
    )
    action = "delayed" if delayed else "failed"
    own = {address for _, address in _addresses(headers.all("to") + headers.all("from"))}
    failed = [address for _, address in _addresses(headers.all("x-failed-recipients"))]
    recipient = failed[0] if failed else next((m.lower() for m in _EMAIL.findall(notice) if m.lower() not in own), None)
    detail = next((m.group().strip() for p in _DETAIL_LINES if (m := p.search(notice[:20_000]))), None)
    status_match = _STATUS.search(notice[:20_000])
    if status_match:
        status = ".".join(status_match.groups())
    else:
        status_class = "4" if delayed else "5"
        code_match = _SMTP_CODE.search(detail or "")
        if code_match and code_match.group(1) in "45":
            status_class = code_match.group(1)
        kind = next((code for pattern, code in _STATUS_FROM_TEXT if pattern.search(notice[:20_000])), "0.0")
        status = f"{status_class}.{kind}"
    id_match = re.search(r"^\s*message-id:\s*<([^<>\s]+)>", original_part or "", re.IGNORECASE | re.MULTILINE)
    original = _first_id(walk.original_headers) or (id_match.group(1) if id_match else None) or fallback_id
    return Bounce(original, recipient, action, status, _diagnostic(action, status, recipient, detail))


# ------------------------------------------------------------------------------------------- auto replies

_DAEMON_REASON = "sent by a mail daemon (MAILER-DAEMON/postmaster)"


def _auto_reason(
    headers: _Headers, content_type: str, report_type: str, senders: list[str], bounce: Bounce | None, walk: _Walk
) -> str:
    """Return why this mail must never get an automatic answer (RFC 3834), or "" when it may."""
    if bounce is not None:
        return "bounce (delivery status notification)"
    if report_type == "feedback-report" or walk.feedback_report:
        return "complaint (feedback report)"
    if report_type == "disposition-notification" or walk.disposition_notification:
        return "read receipt (disposition notification)"
    auto = headers.text("auto-submitted")
    if auto and auto.split(";", 1)[0].strip().lower() != "no":
        return f"Auto-Submitted: {_shorten(auto, 60)}"
    for name in ("return-path", "x-envelope-from"):
        if any(value.strip().replace(" ", "") == "<>" for value in headers.all(name)):
            return f"empty return path ({name.title()}: <>)"
    if any(sender.split("@", 1)[0] in _DAEMONS for sender in senders):
        return _DAEMON_REASON
    precedence = headers.text("precedence").lower().split(";")[0].strip()
    if precedence in ("bulk", "junk", "list"):
        return f"Precedence: {precedence}"
    for name in ("list-id", "list-unsubscribe"):
        if name in headers.values:
            return f"mailing list ({name.title()})"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder", "x-mail-autoreply", "x-autogenerated"):
        value = headers.text(name).lower()
        if name in headers.values and value != "no":
            return f"automatic reply ({name.title()})"
    if content_type == "multipart/report":
        return f"machine report ({report_type or 'unknown type'})"
    return ""


# ------------------------------------------------------------------------------------------------- parsing


def _prepare(raw: bytes, walk: _Walk) -> bytes:
    """Trim what would make the stdlib parser misread or crawl: leading blank lines, endless parts."""
    stripped = raw.lstrip(b" \t\r\n")
    if len(stripped) != len(raw) and b"\n" in raw[: len(raw) - len(stripped)]:
        walk.defect("blank lines before the headers were removed")
        raw = stripped
    boundaries = {
        m.group(1) or m.group(2)
        for m in re.finditer(rb'boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))', raw[: _MAX_HEADER * 50], re.I)
    }
    if boundaries:
        alternatives = b"|".join(re.escape(b) for b in list(boundaries)[:200])
        pattern = re.compile(rb"^--(?:" + alternatives + rb")(?:--)?[ \t]*\r?$", re.M)
        for count, match in enumerate(pattern.finditer(raw), start=1):
            if count > MAX_PARTS + 1:
                walk.defect(f"more than {MAX_PARTS} MIME parts: the message was cut")
                raw = raw[: match.start()]
                break
    nested = re.compile(rb"^content-type:[ \t]*(?:\r?\n[ \t]+)?message/", re.I | re.M)
    for count, match in enumerate(nested.finditer(raw), start=1):
        if count > MAX_NESTED_MESSAGES:
            walk.defect(f"more than {MAX_NESTED_MESSAGES} enclosed messages: the message was cut")
            raw = raw[: match.start()]
            break
    return raw


def _fallback(raw: bytes, digest: str, defects: list[str]) -> ParsedEmail:
    """Show what can be shown when even the headers could not be parsed."""
    kind = binary_kind(raw)
    if kind is not None:
        return ParsedEmail(
            message_id=None, in_reply_to=None, references=(), subject="", from_address=None, from_name="", to=(),
            cc=(), reply_to=(), date=None, text="", html=None, new_text="",
            attachments=(ParsedAttachment(kind[0], kind[1], raw),), auto_submitted=False, auto_reason="",
            bounce=None, raw_sha256=digest, defects=tuple(defects[:_MAX_DEFECTS]), unreadable=(kind[0],),
        )  # fmt: skip
    text = _clean(decode_bytes(raw)[0])
    head, separator, rest = text.partition("\n\n")
    if separator and re.match(r"^[\w-]+:", head):
        text = rest
    text = text.strip()
    return ParsedEmail(
        message_id=None, in_reply_to=None, references=(), subject="", from_address=None, from_name="", to=(), cc=(),
        reply_to=(), date=None, text=text, html=None, new_text=text, attachments=(), auto_submitted=False,
        auto_reason="", bounce=None, raw_sha256=digest, defects=tuple(defects[:_MAX_DEFECTS]),
    )  # fmt: skip


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse raw RFC 5322 bytes into a ParsedEmail; never raises."""
    digest = hashlib.sha256(raw).hexdigest()
    walk = _Walk()
    try:
        message = BytesParser(policy=policy.default).parsebytes(_prepare(raw, walk))
        headers = _Headers(message)
    except Exception as exc:  # last resort: keep the raw text readable
        return _fallback(raw, digest, [*walk.defects, f"unparseable message: {type(exc).__name__}: {exc}"[:200]])
    try:
        return _parse(message, headers, digest, walk)
    except Exception as exc:
        return _fallback(raw, digest, [*walk.defects, f"parsing failed: {type(exc).__name__}: {exc}"[:200]])


def _parse(message: Message, headers: _Headers, digest: str, walk: _Walk) -> ParsedEmail:
    for defect in getattr(message, "defects", []):
        walk.defect(type(defect).__name__)
    subject = _safe(walk, "subject", "", lambda: headers.text("subject"))
    if len(subject) > MAX_SUBJECT:
        walk.defect(f"subject longer than {MAX_SUBJECT} characters was cut")
        subject = subject[:MAX_SUBJECT]
    senders: list[tuple[str, str]] = _safe(walk, "from", [], lambda: _addresses(headers.all("from")))
    if not senders:
        senders = _safe(walk, "sender", [], lambda: _addresses(headers.all("sender")))
    from_name, from_address = senders[0] if senders else ("", None)
    if from_address is not None and not from_name:
        from_name = ""

    def address_list(name: str) -> tuple[str, ...]:
        found: list[tuple[str, str]] = _safe(walk, name, [], lambda: _addresses(headers.all(name)))
        return tuple(dict.fromkeys(address for _, address in found))

    message_ids: list[str] = _safe(walk, "message-id", [], lambda: _ids(headers.raw("message-id")))
    in_reply_to: list[str] = _safe(walk, "in-reply-to", [], lambda: _ids(headers.raw("in-reply-to")))
    references: list[str] = _safe(walk, "references", [], lambda: _ids(" ".join(headers.all("references"))))
    date = _safe(walk, "date", None, lambda: _date(headers.raw("date")))

    body = _Body()
    _safe(walk, "body", None, lambda: _walk(message, 0, walk, body))
    text, html, new_text = _body_texts(body, walk)

    content_type = _safe(walk, "content-type", "", message.get_content_type)
    report_type = _safe(walk, "report-type", "", lambda: str(message.get_param("report-type", "") or "")).lower()
    fallback_id = in_reply_to[0] if in_reply_to else (references[-1] if references else None)
    bounce: Bounce | None = None
    if report_type in ("delivery-status", "") and walk.status_blocks:
        bounce = _safe(walk, "delivery status", None, lambda: _standard_bounce(walk, fallback_id))
    if bounce is None and report_type not in ("feedback-report", "disposition-notification"):
        bounce = _safe(
            walk, "bounce", None, lambda: _informal_bounce(headers, subject, from_address, text, walk, fallback_id)
        )
    declared_senders: list[tuple[str, str]] = _safe(walk, "sender", [], lambda: _addresses(headers.all("sender")))
    sender_addresses = [address for _, address in [*senders, *declared_senders]]
    auto_reason = _safe(
        walk,
        "auto-submitted",
        "",
        lambda: _auto_reason(headers, content_type, report_type, sender_addresses, bounce, walk),
    )
    return ParsedEmail(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=tuple(references),
        subject=subject,
        from_address=from_address,
        from_name=from_name,
        to=address_list("to"),
        cc=address_list("cc"),
        reply_to=address_list("reply-to"),
        date=date,
        text=text,
        html=html,
        new_text=new_text,
        attachments=tuple(walk.attachments),
        auto_submitted=bool(auto_reason),
        auto_reason=auto_reason,
        bounce=bounce,
        raw_sha256=digest,
        defects=tuple(walk.defects),
        unreadable=tuple(walk.unreadable),
    )


def _body_texts(body: _Body, walk: _Walk) -> tuple[str, str | None, str]:
    """Return (text, sanitised html, new text) of the collected body parts."""
    raw_html = "\n".join(body.html)
    if len(raw_html) > MAX_TEXT_HTML:
        walk.defect(f"HTML longer than {MAX_TEXT_HTML} characters: text made from its beginning")
    html = _safe(walk, "html", None, lambda: sanitize_html(raw_html)) if body.html else None
    if any(part.strip() for part in body.plain) or (body.plain and html is None):
        text = "\n\n".join(part.strip("\n") for part in body.plain).strip()
        new_text = _safe(walk, "quotes", text, lambda: extract_reply(text))
    elif html is not None:
        text = _safe(walk, "html text", "", lambda: html_to_text(html))
        new_text = _safe(walk, "quotes", text, lambda: extract_html_reply(raw_html))
    else:
        text, new_text = "", ""
    return text, html, new_text or text
