"""Tell whether a customer asks to be put through to a person ("оператор", "живой человек", "agent please").

Rules over stems, not a model: the phrases are few, a miss or a false alarm must be explainable, and a rule can
be fixed the day a customer trips it. A mention of a person counts as a request when

* it is the message, or nearly ("оператор!", "живой человек", "human please");
* a request verb comes before it in the same clause ("позовите специалиста", "can I talk to a representative"),
  or right after it in Russian ("оператора дайте");
* it follows "с"/"to"/"with" or a qualifier ("поговорить с человеком", "real person", "live agent") in a clause
  without a past-tense verb ("я уже говорил с оператором" is a report, not a request);
* or the customer rejects the bot itself ("не бот", "надоел ваш робот", "stop bot").

It is not a request when negated in its clause ("оператор не нужен", "I don't need an agent"), part of a term
("human resources", "оператор связи", "travel agent"), a self-description ("я менеджер", "I am a human
resources manager"), a count ("на 5 человек") or a question about the bot ("are you human?"). Known limits:
a request verb aimed at something else still counts ("I need to know if the agent got my email"), a complaint
phrased as a negation is read as one ("не могу дозвониться до оператора" is not a request), and sarcasm is
beyond it; see docs/bot-nlu.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from kommutator.common.text import STOPWORDS, Language, Token, clauses, normalize, stem, swap_layout, words

FUZZY_CUTOFF = 80.0  # a word of 5+ letters this close to a target word is taken as a typo of it


class _Lexicon:
    """Words matched by stem (Cyrillic, where endings vary) or by form (Latin), typos tolerated if asked."""

    def __init__(self, entries: str, *, fuzzy: bool = False) -> None:
        ws = entries.split()
        self.ru_stems = frozenset(stem(w) for w in ws if not w.isascii())
        self.en_forms = frozenset(f for w in ws if w.isascii() for f in (w, w + "s"))
        self.fuzzy = tuple(ws) if fuzzy else ()

    def __contains__(self, t: Token) -> bool:
        if t.stem in self.ru_stems or t.word in self.en_forms:
            return True
        if len(t.word) < 5 or not self.fuzzy:
            return False
        return any(
            max(fuzz.ratio(t.word, w), 100 * OSA.normalized_similarity(t.word, w)) >= FUZZY_CUTOFF
            for w in self.fuzzy
            if abs(len(w) - len(t.word)) <= 2
        )


_TARGETS = _Lexicon(
    """
    оператор человек специалист консультант менеджер сотрудник агент администратор
    human person agent representative rep operator employee manager supervisor advisor consultant specialist
    """,
    fuzzy=True,
)
# Mentions that need a verb, a preposition or a qualifier before them to mean a person to talk to.
_WEAK_TARGETS = _Lexicon("люди людьми поддержка someone somebody anyone anybody people staff support service")
_QUALIFIERS = _Lexicon("живой реальный настоящий нормальный адекватный обычный live real actual proper human")
_BOTS = _Lexicon("бот робот автоответчик чатбот bot robot chatbot", fuzzy=False)
_ANNOYED = _Lexicon("надоел надоело достал задолбал хватит тупой бесполезный stop enough hate stupid useless dumb")

_REQUEST_RU = frozenset(
    """
    позовите позови позвать зовите зови дайте дай соедините соедини соединить переключите переключи переключить
    переведите переведи перевести свяжите свяжи связать связаться подключите подключи подключить хочу хотим
    хочется хотелось хотел хотела нужен нужна нужно нужны надо можно давайте давай поговорить пообщаться общаться
    говорить пригласите пригласи вызовите вызови требую прошу попросите пусть где есть подключите
    """.split()
)
_REQUEST_EN = frozenset(
    """
    talk speak chat connect transfer get want need give call escalate reach contact put let send pass switch
    forward redirect bring have speaking talking
    """.split()
)
_PAST_EN = frozenset("spoke spoken told said gave got sent was were had".split())
_NEGATION = frozenset("не нет без никакой никаких никого ни no not dont never without nobody doesnt didnt cant".split())
_WITH = frozenset("с со к до to with".split())
_SELF = frozenset("я i am im as вы ты you are r u".split())  # "я менеджер", "I am a ...", "are you human"
_QUANTITY = frozenset("сколько много мало несколько двух трех четырех пяти many few several".split())
_FILLER = STOPWORDS | frozenset(
    """
    срочно быстро сейчас скорее уже ну алло эй ау блин
    now asap quickly urgent urgently hello hey hi just some real
    """.split()
)
# Terms where the word names something other than a person to talk to: (word before, word after) by stem.
_TERM_BEFORE = frozenset(stem(w) for w in """
    мобильный сотовый мтс билайн мегафон теле2
    estate travel insurance secret free user tour mobile network cell crane forklift in per
    """.split())
_TERM_AFTER = frozenset(stem(w) for w in """
    связи сотовой мобильной мтс билайн мегафон теле2 паук
    resources resource rights error nature race trafficking smith precedence
    """.split())
_IDIOMS = re.compile(
    r"\b(есть кто живой|кто нибудь живой|есть живые|is (there|anyone|anybody) (a |an )?(real |live )?"
    r"(human|person|someone|anyone|agent)|get me (a |an )?(human|person|agent)|human being)\b"
)
_PAST_RU = re.compile(r"^[а-я]{2,}(л|ла|ли|лся|лась|лись)$")


def wants_human(text: str, language: Language) -> bool:
    """Return True if ``text`` asks for a human agent.

    Both Russian and English wording is understood whatever ``language`` is; a short message typed in the
    wrong keyboard layout ("jgthfnjh") is retyped and checked again.
    """
    if _detect(text):
        return True
    if len(words(text)) > 4:
        return False
    swapped = swap_layout(text)
    return swapped is not None and _detect(swapped)


def _detect(text: str) -> bool:
    if _IDIOMS.search(normalize(text)):
        return True
    parts = [[Token(w, stem(w)) for w in clause] for clause in clauses(text)][:30]
    if not parts:
        return False
    for toks in parts:
        if _rejects_bot(toks) or any(_requested(toks, i) for i in range(len(toks))):
            return True
    return _short_request([t for toks in parts for t in toks])


def _is_target(t: Token) -> bool:
    return t in _TARGETS or t.word in _WEAK_TARGETS.en_forms or t.stem in _WEAK_TARGETS.ru_stems


def _requested(toks: list[Token], i: int) -> bool:
    t = toks[i]
    if not _is_target(t) or _excluded(toks, i) or _negated(toks, i):
        return False
    if any(_is_request_verb(toks, j) for j in range(max(0, i - 5), i)):
        return True
    if any(toks[j].word in _REQUEST_RU for j in range(i + 1, min(len(toks), i + 3))):
        return True  # Russian puts the verb after as often: "оператора дайте", "специалист нужен"
    if _has_past(toks[:i]):
        return False
    j = i - 1
    while j >= 0 and (toks[j] in _QUALIFIERS or toks[j].word in {"a", "an", "the", "one", "some"}):
        j -= 1  # "с живым человеком", "to a real person"
    qualified = i > 0 and toks[i - 1] in _QUALIFIERS and t not in _QUALIFIERS
    return qualified or (j >= 0 and toks[j].word in _WITH)


def _is_request_verb(toks: list[Token], j: int) -> bool:
    w = toks[j].word
    if w in _REQUEST_RU:
        return True
    if _is_past_en(w):
        # a report ("I talked to an agent") unless passive: "can I be transferred to a person"
        return j > 0 and toks[j - 1].word in {"be", "get", "being"} and toks[j].stem in _REQUEST_EN
    return w.isascii() and toks[j].stem in _REQUEST_EN


def _has_past(toks: Iterable[Token]) -> bool:
    return any((_PAST_RU.match(t.word) and t.word not in _REQUEST_RU) or _is_past_en(t.word) for t in toks)


def _is_past_en(word: str) -> bool:
    return word in _PAST_EN or (word.endswith("ed") and len(word) > 4 and word.isascii() and word not in _REQUEST_EN)


def _excluded(toks: list[Token], i: int) -> bool:
    """Tell whether the mention is part of a term, a count, a self-description or a question about the bot."""
    prev = toks[i - 1] if i > 0 else None
    nxt = toks[i + 1] if i + 1 < len(toks) else None
    if prev is not None and (prev.stem in _TERM_BEFORE or prev.word.isdecimal() or prev.word in _QUANTITY):
        return True
    if nxt is not None and nxt.stem in _TERM_AFTER:
        return True
    for j in range(i - 1, max(-1, i - 5), -1):
        if _is_request_verb(toks, j):
            break
        if toks[j].word in _SELF:
            return True
    return False


def _negated(toks: list[Token], i: int) -> bool:
    if any(t.word in _NEGATION for t in toks[:i]):
        return True
    after = [t.word for t in toks[i + 1:i + 3]]
    return bool(after) and after[0] in _NEGATION


def _rejects_bot(toks: list[Token]) -> bool:
    for i, t in enumerate(toks):
        if t not in _BOTS:
            continue
        window = toks[max(0, i - 3):i]
        if any(b.word in _SELF for b in window):
            continue  # "я не бот", "are you a bot?"
        if any(b.word in _NEGATION for b in window) or any(a in _ANNOYED for a in toks):
            return True
    return False


def _short_request(toks: list[Token]) -> bool:
    """Tell whether the message is little more than a call for a person: "оператор!", "live agent pls"."""
    content = [(i, t) for i, t in enumerate(toks) if t.word not in _FILLER]
    if not content or len(content) > 4:
        return False
    strong = [i for i, t in content if t in _TARGETS and not _excluded(toks, i) and not _negated(toks, i)]
    weak = [i for i, t in content if _is_target(t) and not _excluded(toks, i) and not _negated(toks, i)]
    unknown = [t for i, t in content if i not in weak and t not in _QUALIFIERS and not _is_request_verb(toks, i)]
    return (bool(strong) and len(unknown) <= 1) or (bool(weak) and not unknown)


def declines_human(text: str) -> bool:
    """Return True if ``text`` mentions a person only to say it is not needed: "оператор не нужен, я сам
    разберусь", "no need for an agent". A menu must then not pick its "talk to an agent" option by the word."""
    if wants_human(text, "ru"):
        return False
    for clause in clauses(text)[:30]:
        toks = [Token(w, stem(w)) for w in clause]
        if any(_is_target(t) and _negated(toks, i) for i, t in enumerate(toks)):
            return True
    return False
