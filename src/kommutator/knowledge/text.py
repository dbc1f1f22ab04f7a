"""Words of Russian and English text as search terms: tokens, stop words, Snowball stems, snippets.

This mirrors PostgreSQL's 'russian' configuration, which the PostgreSQL search uses: Cyrillic words get the
Russian Snowball stemmer, Latin words the English one (whatever the article's language), digits stay as they
are, and the same stop words are dropped. On SQLite the FTS5 table holds text stemmed here.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from typing import Any

import snowballstemmer

# Letters and digits; "_" and punctuation separate words, as PostgreSQL's parser does.
_WORD = re.compile(r"[^\W_]+")
_CYRILLIC = re.compile(r"[а-яё]")
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d{1,3}[.)])\s+")
_HEADING_MARK = re.compile(r"^\s*#{1,3}\s+")

# PostgreSQL's english.stop and russian.stop (the Snowball lists), with ё written е.
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers herself
it its itself they them their theirs themselves what which who whom this that these those am is are was were be
been being have has had having do does did doing a an the and but if or because as until while of at by for with
about against between into through during before after above below to from up down in out on off over under again
further then once here there when where why how all any both each few more most other some such no nor not only
own same so than too very s t can will just don should now
и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее мне было вот от меня еще
нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был него до вас нибудь опять уж вам ведь там потом
себя ничего ей может они тут где есть надо ней для мы тебя их чем была сам чтоб без будто чего раз тоже себе под
будет ж тогда кто этот того потому этого какой совсем ним здесь этом один почти мой тем чтобы нее сейчас были куда
зачем всех никогда можно при наконец два об другой хоть после над больше тот через эти нас про всего них какая
много разве три эту моя впрочем хорошо свою этой перед иногда лучше чуть том нельзя такой им более всегда конечно
всю между
""".split())

_local = threading.local()  # a Snowball stemmer keeps state while it works: one per thread


def _stemmer(language: str) -> Any:
    stemmers = getattr(_local, "stemmers", None)
    if stemmers is None:
        stemmers = _local.stemmers = {"ru": snowballstemmer.stemmer("russian"),
                                      "en": snowballstemmer.stemmer("english")}
    return stemmers[language]


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Stem one lower-case word with the stemmer of its script (digits and other scripts stay as they are)."""
    if _CYRILLIC.search(word):
        return str(_stemmer("ru").stemWord(word))
    if word.isascii() and not word.isdigit():
        return str(_stemmer("en").stemWord(word))
    return word


def words(text: str) -> list[re.Match[str]]:
    """Every word of ``text`` with its position."""
    return list(_WORD.finditer(text))


def normal(word: str) -> str:
    return word.lower().replace("ё", "е")


def terms(text: str) -> list[str]:
    """The stems of ``text`` in order, stop words left out."""
    out = []
    for m in _WORD.finditer(text):
        w = normal(m.group())
        if w not in STOP_WORDS:
            out.append(stem(w))
    return out


def query_terms(query: str, *, limit: int = 16) -> list[str]:
    """The distinct stems of a search query, at most ``limit`` of them."""
    return list(dict.fromkeys(terms(query)))[:limit]


def stemmed(text: str) -> str:
    """``text`` as the space-separated stems the SQLite index holds."""
    return " ".join(terms(text))


def plain(body: str) -> str:
    """The body without list and heading marks, one line per paragraph or item."""
    lines = (_HEADING_MARK.sub("", _LIST_MARK.sub("", line)).strip() for line in body.splitlines())
    return "\n".join(line for line in lines if line)


# Inline markdown an author may type; a customer on a plain-text channel should see the words, not the marks.
INLINE_MARKUP = [(re.compile(r"!?\[([^\]]*)\]\(([^)\s]*)\)"), r"\1 (\2)"),  # [text](url) → text (url)
                 (re.compile(r"(\*\*|__|~~|`+)(.+?)\1"), r"\2"),  # **bold**, __bold__, `code`
                 (re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])"), r"\1"),  # *emphasis*
                 (re.compile(r"^\s*>\s?", re.M), ""),  # > quote
                 (re.compile(r"^\s*([-*_]\s*){3,}$", re.M), "")]  # --- rule
_BULLET_MARK = re.compile(r"^\s*[-*•]\s+")


def strip_inline(text: str) -> str:
    """``text`` without inline markdown (bold, emphasis, code, links as "text (url)", quotes, rules)."""
    for pattern, repl in INLINE_MARKUP:
        text = pattern.sub(repl, text)
    return text


def reply_text(body: str) -> str:
    """The body as a reply to a customer: paragraphs kept, headings as plain lines, bullets as "• ", no markup."""
    lines: list[str] = []
    for raw in body.splitlines():
        line = strip_inline(_BULLET_MARK.sub("• ", _HEADING_MARK.sub("", raw))).strip()
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip()


def snippet(body: str, stems: Iterable[str], *, size: int = 28, max_chars: int = 300) -> str:
    """About ``size`` words of the body around its first search term (its beginning when none is there)."""
    # Headings and list items become sentences, so the pieces do not run into each other.
    lines = plain(body).splitlines()
    text = " ".join(" ".join(line if n == len(lines) - 1 or line[-1] in ".!?:;…" else line + "."
                             for n, line in enumerate(lines)).split())
    found = words(text)
    if not found:
        return text[:max_chars]
    wanted = set(stems)
    first = next((i for i, m in enumerate(found) if stem(normal(m.group())) in wanted), 0)
    start = max(0, min(first - 6, len(found) - size))
    last = min(len(found), start + size) - 1
    begin = found[start].start() if start else 0
    end = len(text) if last == len(found) - 1 else found[last].end()
    piece = text[begin:end]
    if len(piece) > max_chars:  # very long words
        piece, end = piece[:max_chars], begin + max_chars
    return ("…" if begin else "") + piece + ("…" if end < len(text) else "")
