"""Match a customer's free-text answer to one of the options the bot offered.

The order of the checks is the order of confidence: the exact text of a label or synonym, then a number
("2", "#2", "второй", "the second one"), then the words of the labels and synonyms compared by stem with typos
tolerated, and last the same text retyped in the other keyboard layout. A weak or ambiguous answer gives None:
the bot should ask again rather than guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, NamedTuple

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from kommutator.common.text import STOPWORDS, Language, Token, normalize, swap_layout, tokens, words

Reason = Literal["number", "label", "synonym", "fuzzy"]

MIN_SCORE = 0.55  # below this the answer is not about any option
MARGIN = 0.1  # the best option must beat the runner-up by this much, else the answer is ambiguous
TOKEN_CUTOFF = 80.0  # rapidfuzz ratio for one word to count as a typo of another (words of 4+ letters)
WHOLE_CUTOFF = 85.0  # ratio of the whole answer to a whole phrase, spaces ignored ("статусзаказа")
LIGHT_WEIGHT = 0.3  # generic verbs in labels ("Оставить жалобу", "Check order status") count less than nouns


class MenuOption(NamedTuple):
    """One offered choice: the id the flow branches on, the label shown, and other ways to say it."""

    id: str
    label: str
    synonyms: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Match:
    """The chosen option, how sure (0–1), why, and whether the text had to be retyped in the other layout."""

    id: str
    score: float
    reason: Reason
    layout_fixed: bool = False


_LIGHT = frozenset(
    """
    оставить оставлять узнать проверить сделать получить посмотреть найти выбрать связаться написать
    где как когда что какой какая какие сколько
    leave check make get find see place choose view contact write where how when what which
    """.split()
)

_ORDINAL_STEMS_RU = {"перв": 1, "втор": 2, "трет": 3, "четверт": 4, "пят": 5, "шест": 6, "седьм": 7, "восьм": 8,
                     "девят": 9, "десят": 10}
_NUMBER_WORDS = {
    "один": 1, "одна": 1, "одно": 1, "два": 2, "две": 2, "три": 3, "четыре": 4, "пять": 5, "шесть": 6,
    "семь": 7, "восемь": 8, "девять": 9, "десять": 10,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10,
}
_ORDINALS_EN = {"first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "last"}
_LAST = {"последний", "последняя", "последнее", "последнюю", "last"}
# Words around a number that do not change which number it is: "вариант 2", "option #2 please", "давайте второй".
_NUMBER_FILLER = STOPWORDS | frozenset(
    """
    вариант варианта пункт пункта номер номера цифра цифру кнопка кнопку выбираю выбрал выбрала беру
    ок окей ладно тогда так наверное наверно
    option number no nr num item choice choose pick take go ok okay then just
    """.split()
)
_ORDINAL_SUFFIX = re.compile(r"(\d+)\s*-?\s*(?:ый|ой|ий|ая|ое|ую|ые|й|я|е|ю|st|nd|rd|th)\b")


@dataclass(frozen=True, slots=True)
class _Phrase:
    option: int
    kind: Literal["label", "synonym"]
    normalized: str
    tokens: tuple[Token, ...]  # content tokens (all tokens if the phrase is nothing but function words)


def match_option(text: str, options: Iterable[MenuOption | tuple[str, str, Sequence[str]]], language: Language,
                 ) -> Match | None:
    """Return the option ``text`` chooses, or None when it chooses none or it is unclear which.

    ``language`` is the menu's language; number words and stems of both Russian and English are understood
    whatever it is, since customers mix them.
    """
    opts = tuple(MenuOption(str(o[0]), str(o[1]), tuple(o[2]) if len(o) > 2 else ()) for o in options)
    if not opts:
        return None
    menu = _menu(opts)
    found = _match_text(text, opts, menu)
    if found is not None or not any(ch.isalpha() for ch in text[:200]):
        return found
    swapped = swap_layout(text)  # "cnfnec pfrfpf" was typed with the wrong layout on
    if swapped is None or len(words(swapped)) > 6:
        return None
    found = _match_text(swapped, opts, menu)  # "dnjhjq" is "второй" typed with the English layout on
    if found is None:
        return None
    return Match(found.id, found.score, found.reason, layout_fixed=True)


@dataclass(frozen=True, slots=True)
class _Menu:
    """What the matching needs of a menu, computed once per distinct menu."""

    phrases: tuple[_Phrase, ...]
    words: tuple[Token, ...]  # every distinct content word of every phrase
    # a word shared by several options tells them apart less: each counts 1 / how many options use it
    weight: dict[Token, float]
    distinctive: frozenset[Token]  # words one option alone uses, not generic verbs
    word_list: list[str]
    stem_list: list[str]
    short: list[bool]  # too short for typos to be told from other words


@lru_cache(maxsize=256)  # a flow offers the same few menus over and over
def _menu(opts: tuple[MenuOption, ...]) -> _Menu:
    phrases = []
    for i, opt in enumerate(opts):
        for kind, raw in [("label", opt.label), *(("synonym", s) for s in opt.synonyms)]:
            toks = tokens(raw)
            content = tuple(t for t in toks if t.word not in STOPWORDS) or tuple(toks)
            phrases.append(_Phrase(i, kind, normalize(raw), content))  # type: ignore[arg-type]
    users: dict[str, set[int]] = {}
    for p in phrases:
        for t in p.tokens:
            users.setdefault(t.stem, set()).add(p.option)
    vocab = tuple(dict.fromkeys(t for p in phrases for t in p.tokens))
    weight = {t: (LIGHT_WEIGHT if t.word in _LIGHT else 1.0) / len(users[t.stem]) for t in vocab}
    distinctive = frozenset(t for t in vocab if t.word not in _LIGHT and len(users[t.stem]) == 1)
    return _Menu(tuple(phrases), vocab, weight, distinctive, [t.word for t in vocab], [t.stem for t in vocab],
                 [len(t.word) < 4 for t in vocab])


def _match_text(text: str, opts: tuple[MenuOption, ...], menu: _Menu, *, allow_number: bool = True,
                ) -> Match | None:
    norm = normalize(text)
    if not norm:
        return None
    exact = {p.option: p for p in menu.phrases if p.normalized == norm}
    if len(exact) == 1:
        (p,) = exact.values()
        return Match(opts[p.option].id, 1.0, p.kind)
    if len(exact) > 1:
        return None  # two options share this text: only asking again can tell
    if allow_number:
        number = _number(text, len(opts))
        if number is not None:
            return Match(opts[number - 1].id, 1.0, "number") if 1 <= number <= len(opts) else None
    return _best_by_words(norm, opts, menu)


def _number(text: str, count: int) -> int | None:
    """Return the number ``text`` consists of (with filler words around it), or None if it is more than that."""
    ws = words(_ORDINAL_SUFFIX.sub(r"\1", text.casefold()))
    if not ws or len(ws) > 6:
        return None
    found: set[int] = set()
    for i, w in enumerate(ws):
        if w == "one" and i > 0 and (ws[i - 1] in _ORDINALS_EN or ws[i - 1].isdecimal()):
            continue  # "the second one": a pronoun, not a number
        if w.isdecimal():
            found.add(int(w) if len(w) < 6 else 0)
        elif w in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[w])
        elif w in _LAST:
            found.add(count)
        elif (n := _ordinal_ru(w)) is not None:
            found.add(n)
        elif w not in _NUMBER_FILLER:
            return None
    return found.pop() if len(found) == 1 else None


def _ordinal_ru(word: str) -> int | None:
    for prefix, n in _ORDINAL_STEMS_RU.items():
        # the ordinal endings only, so "пятница" or "второстепенный" are not numbers
        if word.startswith(prefix) and word[len(prefix):] in {"ый", "ой", "ий", "ая", "ое", "ую", "ья", "ье", "ью",
                                                              "ьи", "ые", "ого", "ому", "ем", "ом", "ых", "ей"}:
            return n
    return None


def _best_by_words(norm: str, opts: tuple[MenuOption, ...], menu: _Menu) -> Match | None:
    text = [t for t in tokens(norm) if t.word not in STOPWORDS][:40] or tokens(norm)[:40]
    closest = _closest(menu, text)
    best: dict[int, tuple[float, Reason]] = {}
    squashed = norm.replace(" ", "")
    for p in menu.phrases:
        score, exact = _phrase_score(p, len(text), menu, closest)
        reason: Reason = p.kind if exact else "fuzzy"
        if len(squashed) >= 5:
            whole = fuzz.ratio(squashed, p.normalized.replace(" ", ""), score_cutoff=WHOLE_CUTOFF) / 100
            if whole > score:
                score, reason = whole, "fuzzy"
        if score > best.get(p.option, (0.0, "fuzzy"))[0]:
            best[p.option] = (score, reason)
    ranked = sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)
    if not ranked or ranked[0][1][0] < MIN_SCORE:
        return None
    if len(ranked) > 1 and ranked[0][1][0] - ranked[1][1][0] < MARGIN:
        return None
    option, (score, reason) = ranked[0]
    return Match(opts[option].id, round(score, 3), reason)


def _closest(menu: _Menu, text: list[Token]) -> dict[Token, tuple[float, int]]:
    """For each menu word: how close the closest text word is (1 same stem, 0.8–1 a typo) and its index.

    Typos count for words of four letters or more: the Indel ratio of the words or of their stems for missing or
    extra letters, the OSA similarity for swapped neighbours ("stauts"). Menu words with no close text word are
    left out.
    """
    if not text:
        return {}
    ws = [t.word for t in text]
    ss = [t.stem for t in text]
    cutoff = TOKEN_CUTOFF / 100
    sim = np.maximum.reduce([
        process.cdist(menu.word_list, ws, scorer=fuzz.ratio, score_cutoff=TOKEN_CUTOFF, dtype=np.float32) / 100,
        process.cdist(menu.stem_list, ss, scorer=fuzz.ratio, score_cutoff=TOKEN_CUTOFF, dtype=np.float32) / 100,
        process.cdist(menu.word_list, ws, scorer=OSA.normalized_similarity, score_cutoff=cutoff, dtype=np.float32),
    ])
    sim[:, [len(w) < 4 for w in ws]] = 0.0
    sim[menu.short] = 0.0
    at = sim.argmax(axis=1).tolist()
    top = sim.max(axis=1).tolist()
    by_stem: dict[str, int] = {}
    by_word: dict[str, int] = {}
    for j, t in enumerate(text):
        by_stem.setdefault(t.stem, j)
        by_word.setdefault(t.word, j)
    out: dict[Token, tuple[float, int]] = {}
    for i, v in enumerate(menu.words):
        same = by_stem.get(v.stem, by_word.get(v.word))
        if same is not None:
            out[v] = (1.0, same)
        elif top[i] >= cutoff:
            out[v] = (top[i], at[i])
    return out


def _phrase_score(p: _Phrase, text_len: int, menu: _Menu, closest: dict[Token, tuple[float, int]],
                  ) -> tuple[float, bool]:
    """Score how much of the phrase the text says and how much of the text is about it; tell if typos were needed.

    A match on words that other options share too ("заказ" in "Новый заказ" and "Статус заказа") counts half
    unless the whole phrase is there.
    """
    total = said = 0.0
    typo = distinctive = False
    matched_text: set[int] = set()
    for t in p.tokens:
        weight = menu.weight[t]
        total += weight
        found = closest.get(t)
        if found is None:
            continue
        sim, at = found
        said += weight * sim
        matched_text.add(at)
        typo = typo or sim < 1.0
        distinctive = distinctive or t in menu.distinctive
    if not said:
        return 0.0, False
    recall = said / total
    score = 0.6 * recall + 0.4 * len(matched_text) / text_len
    if not distinctive and recall < 0.9:
        score *= 0.5
    return score, not typo
