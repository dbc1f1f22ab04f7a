"""Text normalisation, tokens, stems and keyboard-layout repair, shared by the bot's NLU and quality's checks.

Everything here is pure, deterministic and safe on any unicode input. Russian and English are told apart per
token by script (Cyrillic or Latin), not by the conversation's language: customers mix them ("мой order").
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import Literal, NamedTuple

import snowballstemmer

Language = Literal["ru", "en"]
LANGUAGES: tuple[Language, ...] = ("ru", "en")

MAX_CHARS = 1000  # nobody answers a menu or asks for a human in more; bounds the work on hostile input

_COMBINING = re.compile(r"[\u0300-\u036f]")
_APOSTROPHE = re.compile(r"(?<=\w)['’ʼ`](?=\w)")
_WORD = re.compile(r"[^\W_]+")
_CLAUSE = re.compile(r"[,.;:!?()\[\]\n…]+|\s[-–—]\s")
_CYRILLIC = re.compile(r"[а-я]")
_LATIN = re.compile(r"[a-z]")

_local = threading.local()  # snowball stemmers keep state while stemming: one per thread


class Token(NamedTuple):
    """A word as normalised and its stem."""

    word: str
    stem: str


def normalize(text: str) -> str:
    """Return ``text`` case-folded, ё → е, accents and punctuation dropped, whitespace collapsed."""
    return " ".join(words(text))


def _fold(text: str) -> str:
    # № would become "No" under NFKC and glue to the number after it ("№2" → "no2")
    text = unicodedata.normalize("NFKC", text[:MAX_CHARS].replace("№", " ")).casefold().replace("ё", "е")
    text = _COMBINING.sub("", text)  # stress marks; NFKC keeps й and ё composed, so they survive this
    return _APOSTROPHE.sub("", text)  # don't → dont, д'Артаньян → дартаньян


def words(text: str) -> list[str]:
    """Split ``text`` into normalised words (letters and digits of any script)."""
    return _WORD.findall(_fold(text))


def clauses(text: str) -> list[list[str]]:
    """Split ``text`` into clauses (at punctuation) of normalised words; empty clauses are dropped."""
    folded = _fold(text)
    return [w for part in _CLAUSE.split(folded) if (w := _WORD.findall(part))]


def _stemmer(language: str) -> snowballstemmer.BaseStemmer:
    stemmers = getattr(_local, "stemmers", None)
    if stemmers is None:
        stemmers = {"ru": snowballstemmer.stemmer("russian"), "en": snowballstemmer.stemmer("english")}
        _local.stemmers = stemmers
    return stemmers[language]


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Stem one normalised word with the Russian or English snowball stemmer, chosen by its script."""
    if _CYRILLIC.search(word):
        return str(_stemmer("ru").stemWord(word))
    if _LATIN.search(word):
        return str(_stemmer("en").stemWord(word))
    return word


def tokens(text: str) -> list[Token]:
    """Normalise, split and stem ``text``."""
    return [Token(w, stem(w)) for w in words(text)]


def stems(text: str) -> list[str]:
    """Return the stems of ``text``'s words (the word features of the intent model)."""
    return [stem(w) for w in words(text)]


# The Russian ЙЦУКЕН and US QWERTY layouts, key by key (lower case; the text is case-folded first).
_EN_KEYS = "`qwertyuiop[]asdfghjkl;'zxcvbnm,./"
_RU_KEYS = "ёйцукенгшщзхъфывапролджэячсмитьбю."
_TO_RU = str.maketrans(dict(zip(_EN_KEYS, _RU_KEYS, strict=True)))
_TO_EN = str.maketrans(dict(zip(_RU_KEYS[:-1], _EN_KEYS[:-1], strict=True)))


def script_of(text: str) -> Language | None:
    """Return which script most letters of ``text`` are in, or None if it has no Cyrillic or Latin letters."""
    folded = _fold(text)
    ru, en = len(_CYRILLIC.findall(folded)), len(_LATIN.findall(folded))
    if ru == en == 0:
        return None
    return "ru" if ru > en else "en"


def swap_layout(text: str) -> str | None:
    """Retype ``text`` in the other keyboard layout ("cnfnec" → "статус"), or None if it has no letters to swap.

    The direction follows the script most of the letters are in; the punctuation keys that carry Russian
    letters (``, . ; ' [ ]``) are converted too, so do this before normalising.
    """
    script = script_of(text)
    if script is None:
        return None
    folded = unicodedata.normalize("NFKC", text[:MAX_CHARS]).casefold()
    return folded.translate(_TO_RU if script == "en" else _TO_EN)


# Function words that carry no choice: pronouns, prepositions, particles, politeness. Normalised (ё → е).
STOPWORDS = frozenset(
    """
    а и в во на по с со у о об обо про за к ко до от из для при без над под же ли бы ну вот то это этот эта
    я мне меня мой моя мое мои моего моей моих моему мы нам нас наш наша наше наши ты тебе вы вам вас ваш ваша
    ваше ваши он она оно они его ее их там тут
    пожалуйста пож пжл плиз спасибо хочу хотел хотела хотим хотелось нужно надо можно давай давайте мне
    a an the to of in on at for from by with about and or but is are am be i me my mine we our you your
    it its this that please pls plz want would like need can could id im ive
    """.split()
)
