"""Strip quoted replies, forwarded-header blocks and signatures so the chat view shows only what is new."""

from __future__ import annotations

import re

from kommutator.channels.types.email.html import Node, parse_html, remove_from, render_text

_MAX_LINE = 1000  # longer lines are never reply headers; skipping them keeps the regexes cheap
_MAX_PASSES = 10
_MAX_SCAN_LINES = 5000  # reply headers further down are not looked for: hostile text must stay cheap

_WROTE = (
    r"(?:wrote|writes|said|написал\(а\)|написала|написал|пишет|писал\(а\)|писала|писал|schrieb|a\s+écrit|"
    r"escribió|escribio|ha\s+scritto|schreef|skrev|kirjoitti|napsal|napisał|pisze|yazdı|έγραψε|írta|scrie|escreveu)"
)
_WEEKDAYS = (
    r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?|пн|вт|ср|чт|пт|сб|вс|понедельник|вторник|среда|среду|четверг|"
    r"пятница|пятницу|суббота|субботу|воскресенье"
)
# How a reply header starts: "On …", its translations, a weekday, or a date.
_HEADER_START = (
    r"[-_*>\s]*(?:(?:on|le|am|el|il|op|em|den|dne|w\s+dniu|dnia|på|в|στις|quoting|citando|zitat\s+von)\b|"
    rf"(?:{_WEEKDAYS})\b|\d{{1,4}}[./-]\d{{1,2}}[./-]\d{{1,4}}|\d{{1,2}}\s+\w+\.?\s+\d{{4}}|\d{{4}}\s*年)"
)
_AFTER_WROTE = r"\s*(?:\(\w+\))?\s*:?\s*[-_*]*\s*$"
_REPLY_WROTE = re.compile(rf"^{_HEADER_START}.{{0,350}}?{_WROTE}{_AFTER_WROTE}", re.IGNORECASE)
# "reply text On Wed, Apr 4, 2012 at 3:59 PM, bob@example.com wrote:" — a header sharing the reply's line.
_INLINE_WROTE = re.compile(
    rf"(?:[-_]{{2,}}\s*)?\b(?:on|le|am|el|il|op)\s+(?:{_WEEKDAYS}|\d).{{0,300}}?{_WROTE}{_AFTER_WROTE}", re.IGNORECASE
)
# Old Gmail: "2011/4/7 Nathan <support@example.com>" right above the quote.
_DATE_NAME_ADDRESS = re.compile(r"^\d{4}[/.-]\d{1,2}[/.-]\d{1,2}\s+.{1,120}<[^<>\s]+@[^<>\s]+>\s*:?\s*$")
_STARTS_LIKE_HEADER = re.compile(_HEADER_START, re.IGNORECASE)
_TIME_RE = re.compile(r"\d{1,2}:\d{2}")
_RU_FROM = re.compile(r"\sот\s", re.IGNORECASE)
# The words a reply header ends with, for a cheap test before any regex runs on a line.
_WROTE_WORDS = (
    "wrote", "writes", "said", "sent", "написал(а)", "написала", "написал", "пишет", "писал(а)", "писала", "писал",
    "schrieb", "a écrit", "escribió", "escribio", "ha scritto", "schreef", "skrev", "kirjoitti", "napsal",
    "napisał", "pisze", "yazdı", "έγραψε", "írta", "scrie", "escreveu", "geschreven",
)  # fmt: skip
_QUOTE_PREFIX = re.compile(r"^\s*(?:>\s?)+")
_WROTE_LINE = re.compile(rf"^.{{1,250}}\b{_WROTE}\s*:\s*[-_*]*\s*$", re.IGNORECASE)
_SEPARATOR = re.compile(
    r"^\s*[-=_*]{2,}\s*(?:original\s+message|forwarded\s+message|message\s+d'origine|message\s+transféré|"
    r"ursprüngliche\s+nachricht|weitergeleitete\s+nachricht|mensaje\s+original|mensaje\s+reenviado|"
    r"messaggio\s+originale|oorspronkelijk\s+bericht|doorgestuurd\s+bericht|исходное\s+сообщение|"
    r"пересылаемое\s+сообщение|пересланное\s+сообщение|переадресованное\s+сообщение|"
    r"начало\s+переадресованного\s+сообщения|reply\s+message|antwort\s+nachricht|oprindelig\s+meddelelse|"
    r"ursprungligt\s+meddelande|opprinnelig\s+melding|alkuperäinen\s+viesti|oryginalna\s+wiadomość|"
    r"původní\s+zpráva|mensagem\s+original|original)\s*[-=_*]{2,}\s*$"
    r"|^\s*(?:begin\s+forwarded\s+message|начало\s+переадресованного\s+сообщения|"
    r"начало\s+пересылаемого\s+сообщения)\s*:?\s*$",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
_HEADER_ROLES = {
    "sender": ("from", "от", "отправитель", "de", "von", "da", "van", "fra", "från", "lähettäjä", "od"),
    "date": ("sent", "date", "отправлено", "дата", "envoyé", "gesendet", "datum", "inviato", "verzonden", "enviado",
             "enviada", "sendt", "skickat", "lähetetty", "wysłano", "odesláno"),
    "recipient": ("to", "кому", "à", "an", "aan", "para", "til", "till", "vastaanottaja", "do", "komu"),
    "subject": ("subject", "тема", "objet", "betreff", "oggetto", "onderwerp", "asunto", "assunto", "emne", "ämne",
                "aihe", "temat", "předmět"),
    "copy": ("cc", "bcc", "копия", "reply-to", "kopie", "kopia"),
}  # fmt: skip
_RFC_DATE = re.compile(r"\d{1,2}\s+\w{3}\s+\d{4}\s+\d{1,2}:\d{2}")
_ROLE_OF = {key: role for role, keys in _HEADER_ROLES.items() for key in keys}
_HEADER_KEY = re.compile(
    r"^\s*\*?\s*(" + "|".join(re.escape(key) for key in _ROLE_OF) + r")\s*\*?\s*:", re.IGNORECASE
)
_SIGNATURE_DELIMITER = re.compile(r"^--\s?$")
_DEVICE = r"(?:my\s+|моего\s+|моём\s+|моем\s+)?[\w.\-®™ ]{2,50}(?:\s*\([^()\s]{1,80}\))?\.?"
_MOBILE_FOOTER = re.compile(
    rf"^\s*(?:sent\s+(?:from|with|via|using)\s+{_DEVICE}|get\s+outlook\s+for\s+\w+|"
    rf"отправлено\s+(?:с|со|из|через|с\s+помощью)\s+{_DEVICE}|"
    r"von\s+meinem\s+[\w.\- ]{2,40}\s+gesendet|envoyé\s+(?:de|depuis)\s+mon\s+[\w.\- ]{2,40}|"
    r"enviado\s+(?:desde|de)\s+mi\s+[\w.\- ]{2,40}|inviato\s+da\s+[\w.\- ]{2,40}|"
    r"verzonden\s+(?:vanaf|met)\s+[\w.\- ]{2,40})\s*$",
    re.IGNORECASE,
)
_RULE_LINE = re.compile(r"^[\s\-_=*~>]*$")
_HEADER_FOLLOWS = re.compile(
    r"^\s*\*?\s*(?:from|от|de|von|van|da|date|дата|sent|отправлено|subject|тема)\s*\*?\s*:", re.IGNORECASE
)
_QUOTE_CLASSES = (
    "gmail_quote", "gmail_quote_container", "moz-cite-prefix", "moz-forward-container", "protonmail_quote",
    "zmail_extra", "yahoo_quoted", "gmail_signature", "moz-signature", "yandex-signature",
)  # fmt: skip
_CUT_IDS = ("divrplyfwdmsg", "olk_src_body_section", "appendonsend", "yahoo_quoted", "stopspelling", "zwchr")


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _unquote(line: str) -> str:
    return _QUOTE_PREFIX.sub("", line, count=1) if ">" in line[:200] else line


def _ends_like_reply_header(line: str) -> bool:
    if line.endswith(":"):
        return True
    tail = " ".join(line[-60:].lower().rstrip(" :-_*").split())
    return tail.endswith(_WROTE_WORDS)


def _header_role(line: str) -> str | None:
    match = _HEADER_KEY.match(line) if len(line) < _MAX_LINE else None
    return _ROLE_OF.get(match.group(1).lower()) if match else None


def _header_block_at(lines: list[str], index: int) -> bool:
    """Tell whether a forwarded/replied header block (From:, Sent:, To:, Subject: …) starts at index."""
    first = _header_role(_unquote(lines[index]))
    if first not in ("sender", "date", "subject"):
        return False
    roles: dict[str, str] = {first: lines[index]}
    for line in lines[index + 1 : index + 9]:
        if not line.strip():
            break
        role = _header_role(_unquote(line))
        if role:
            roles.setdefault(role, line)
    if "sender" not in roles:
        # "Date: Wed, 16 May 2012 00:15:02 -0600 / To: bob@example.com": a header block without its From line.
        return "date" in roles and bool(_RFC_DATE.search(roles["date"])) and "@" in roles.get("recipient", "")
    if "@" in roles["sender"] or "mailto:" in roles["sender"].lower():
        return "date" in roles or "subject" in roles or len(roles) >= 3
    # "From: Moscow / To: Kazan / Date: 12 March" in a customer's own text is not a reply header.
    return "date" in roles and "subject" in roles


def _is_reply_header(text: str) -> bool:
    """Tell "On <date>, <name> wrote:" and mail.ru/Yandex "<date> <time>, <name> <addr>:" headers."""
    if _REPLY_WROTE.match(text):
        return True
    return (
        text.endswith(":")
        and bool(_STARTS_LIKE_HEADER.match(text))
        and bool(_TIME_RE.search(text[:250]))
        and ("@" in text or bool(_RU_FROM.search(text)))
    )


def _reply_header_end(lines: list[str], end: int) -> int | None:
    """If lines[..end] close an "On … wrote:" style header, return the line where that header starts."""
    line = _unquote(lines[end]).strip()
    if not line or len(line) > _MAX_LINE or not _ends_like_reply_header(line):
        return None
    quoted = _is_quoted(lines[end])
    joined = ""
    for start in range(end, max(end - 4, -1), -1):
        candidate = lines[start]
        if not candidate.strip() or _is_quoted(candidate) != quoted or len(candidate) > _MAX_LINE:
            break
        joined = (_unquote(candidate).strip() + " " + joined).strip()
        if len(joined) > 600:
            break
        if _is_reply_header(joined):
            return start
    return end if _WROTE_LINE.match(line) else None


def _find_splitter(lines: list[str]) -> tuple[int, int, str] | None:
    """Return (first line, last line, text before the header on its first line) of the first reply header."""
    previous_quoted = False
    for index, raw in enumerate(lines[:_MAX_SCAN_LINES]):
        if not raw.strip():
            continue
        quoted = _is_quoted(raw)
        starts_quote = quoted and not previous_quoted
        previous_quoted = quoted
        if quoted and not starts_quote:
            continue
        line = _unquote(raw)
        if len(line) > _MAX_LINE:
            continue
        if _SEPARATOR.match(line) or _header_block_at(lines, index):
            return index, index, ""
        if _UNDERSCORES.match(line):
            following = next((i for i in range(index + 1, min(index + 4, len(lines))) if lines[i].strip()), None)
            if following is not None and _header_block_at(lines, following):
                return index, index, ""
        start = _reply_header_end(lines, index)
        if start is not None:
            inline = _INLINE_WROTE.search(line) if start == index else None
            prefix = line[: inline.start()].rstrip() if inline and inline.start() > 0 else ""
            return start, index, prefix
        if not quoted and _DATE_NAME_ADDRESS.match(line.strip()) and _next_is_quoted(lines, index):
            return index, index, ""
    return None


def _next_is_quoted(lines: list[str], index: int) -> bool:
    following = next((line for line in lines[index + 1 : index + 4] if line.strip()), "")
    return _is_quoted(following)


_LINK_FRAGMENT = re.compile(r"^\s*(?:\(?\S*(?:https?://|www\.)\S*\)?|\S{0,80}\))\s*>?\s*$")


def _quote_run_end(lines: list[str], start: int) -> int:
    """Return the index after a ">" block, stepping over links a client wrapped out of the quote."""
    index = start
    while index < len(lines):
        line = lines[index]
        if _is_quoted(line) or not line.strip():
            index += 1
        elif _LINK_FRAGMENT.match(line) and _next_is_quoted(lines, index):
            index += 1
        else:
            break
    return index


def _without_splitter(lines: list[str], start: int, end: int, prefix: str) -> list[str]:
    """Drop a reply header and what it introduces; keep text written below a ">" quote (bottom-posting)."""
    before = [*lines[:start], prefix] if prefix else lines[:start]
    after = end + 1
    while after < len(lines) and not lines[after].strip():
        after += 1
    if after < len(lines) and _is_quoted(lines[after]):
        rest = _quote_run_end(lines, after)
        if any(line.strip() for line in lines[rest:]) and not _is_signature_only(lines[rest:]):
            return before + lines[rest:]
    return before


def _strip_quote_blocks(lines: list[str]) -> list[str]:
    """Drop a ">" block at the very top or bottom; keep interleaved (inline) answers as they are."""
    runs: list[tuple[bool, int, int]] = []  # (quoted, first line, last line) over non-blank lines
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        quoted = _is_quoted(line)
        if runs and runs[-1][0] == quoted:
            runs[-1] = (quoted, runs[-1][1], index)
        else:
            runs.append((quoted, index, index))
    if not any(quoted for quoted, _, _ in runs):
        return lines
    if len(runs) >= 2 and not runs[-1][0] and runs[-2][0] and _is_signature_only(lines[runs[-1][1] :]):
        runs.pop()
    if runs and runs[-1][0]:
        lines = lines[: runs[-1][1]]
        runs.pop()
    if len(runs) >= 2 and runs[0][0]:
        lines = lines[runs[1][1] :]
    return lines


def _is_signature_only(lines: list[str]) -> bool:
    content = [line for line in lines if line.strip()]
    if not content:
        return True
    if _SIGNATURE_DELIMITER.match(content[0].strip()) and len(content) <= 12:
        return True
    return len(content) <= 2 and bool(_MOBILE_FOOTER.match(content[0]))


def _trim(lines: list[str]) -> list[str]:
    while lines and _RULE_LINE.match(lines[-1]) and not _SIGNATURE_DELIMITER.match(lines[-1].strip()):
        lines = lines[:-1]
    while lines and not lines[0].strip():
        lines = lines[1:]
    return lines


def strip_quotes(text: str) -> str:
    """Remove quoted replies and forwarded-header blocks from plain text; signatures stay."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for _ in range(_MAX_PASSES):
        splitter = _find_splitter(lines)
        if splitter is None:
            break
        lines = _trim(_without_splitter(lines, *splitter))
    lines = _trim(_strip_quote_blocks(lines))
    return "\n".join(lines).strip()


def strip_signature(text: str) -> str:
    """Remove a trailing signature: "-- " delimiter blocks and mobile footers such as "Sent from my iPhone"."""
    lines = text.split("\n")
    content = [index for index, line in enumerate(lines) if line.strip()]
    for position, index in enumerate(content):
        if position < len(content) - 15 or not _SIGNATURE_DELIMITER.match(lines[index].rstrip("\n")):
            continue
        after = [lines[i] for i in content[position + 1 :]]
        # "-- " is the standard delimiter; a bare "--" could be a separator in the text, so ask for less after it.
        limit = 12 if lines[index].endswith(" ") else 6
        if len(after) <= limit and all(len(line) <= 120 for line in after):
            lines = lines[:index]
            break
    content = [index for index, line in enumerate(lines) if line.strip()]
    for index in content[-4:]:
        if len(lines[index]) <= 100 and _MOBILE_FOOTER.match(lines[index]):
            lines = lines[:index]
            break
    return "\n".join(_trim(lines)).strip()


def extract_reply(text: str) -> str:
    """Return only the new part of a plain-text mail; the whole text when nothing would be left."""
    reply = strip_signature(strip_quotes(text))
    return reply if reply else text.strip()


def _text_after(nodes: list[Node], index: int, limit: int = 300) -> str:
    out: list[str] = []
    size = 0
    for node in nodes[index + 1 : index + 400]:
        if node.tag == "#text":
            out.append(node.text)
            size += len(node.text)
            if size >= limit:
                break
    return "".join(out)


def _is_cut_marker(nodes: list[Node], index: int) -> bool:
    """Tell whether everything from this element on is the quoted original (Outlook, Hotmail, Yahoo…)."""
    node = nodes[index]
    element_id = node.attrs.get("id", "").lower()
    if element_id and any(element_id.startswith(marker) or element_id.endswith(marker) for marker in _CUT_IDS):
        return True
    if node.has_class("yahoo_quoted"):
        return True
    if node.tag == "hr":
        return bool(_HEADER_FOLLOWS.match(_text_after(nodes, index)))
    if node.tag == "div" and "border-top" in node.attrs.get("style", "").lower():
        return bool(_HEADER_FOLLOWS.match(node.text_content(300)))
    return False


def _is_quote_element(node: Node) -> bool:
    if node.tag == "blockquote" or node.has_class(*_QUOTE_CLASSES):
        return True
    if node.attrs.get("data-signatureblock", "").lower() == "true":
        return True
    if node.attrs.get("data-marker", "") in ("__QUOTED_TEXT__", "__HEADERS__"):
        return True
    return node.attrs.get("id", "").lower() in ("signature", "divtagdefaultwrapper_signature")


def strip_html_quotes(html: str) -> str:
    """Render mail HTML as text without its quoted part (gmail_quote, blockquote, Outlook/Hotmail headers)."""
    root = parse_html(html)
    nodes = list(root.iter())
    for index, node in enumerate(nodes):
        if node.tag != "#text" and _is_cut_marker(nodes, index):
            remove_from(node)
            break
    for node in root.iter():
        node.children = [child for child in node.children if child.tag == "#text" or not _is_quote_element(child)]
    return render_text(root)


def extract_html_reply(html: str) -> str:
    """Return only the new part of an HTML mail as plain text; the whole text when nothing would be left."""
    reply = strip_signature(strip_quotes(strip_html_quotes(html)))
    if reply:
        return reply
    return extract_reply(render_text(parse_html(html)))
