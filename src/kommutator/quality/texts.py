"""Texts of alerts (staff) and of the rating questions (customers), in Russian and English."""

from __future__ import annotations

TARGET_NAMES = {
    "en": {"first_response": "first response", "next_response": "next response", "resolution": "resolution"},
    "ru": {"first_response": "первый ответ", "next_response": "следующий ответ", "resolution": "решение"},
}

_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "sla.warning": "Conversation #{conversation_id}: {target} due in {left}",
        "sla.breach": "Conversation #{conversation_id}: {target} deadline missed",
        "standard.violation": "Conversation #{conversation_id}: {rule} ({agent})",
        "csat.negative": "Conversation #{conversation_id}: the customer rated {score} of {top}",
        "rule.greeting": "no greeting in the first reply",
        "rule.forbidden_phrase": "forbidden phrase “{phrase}”",
        "rule.reply_gap": "reply after {gap}",
        "rule.reply_gap_live": "no reply for {gap}",
        "csat.question": "How would you rate our help? Choose 1 (very bad) to 5 (excellent).",
        "nps.question": "How likely are you to recommend us to a friend, from 0 (not at all) to 10 (very likely)?",
        "csat.comment": "Thank you! Would you like to tell us why? Just write it here.",
        "csat.thanks": "Thank you for your rating!",
        "csat.thanks_comment": "Thank you, we will take it into account.",
        "open": "Open",
    },
    "ru": {
        "sla.warning": "Диалог #{conversation_id}: {target} — осталось {left}",
        "sla.breach": "Диалог #{conversation_id}: нарушен срок — {target}",
        "standard.violation": "Диалог #{conversation_id}: {rule} ({agent})",
        "csat.negative": "Диалог #{conversation_id}: клиент поставил {score} из {top}",
        "rule.greeting": "нет приветствия в первом ответе",
        "rule.forbidden_phrase": "запрещённая фраза «{phrase}»",
        "rule.reply_gap": "ответ через {gap}",
        "rule.reply_gap_live": "нет ответа уже {gap}",
        "csat.question": "Оцените, пожалуйста, нашу помощь: от 1 (очень плохо) до 5 (отлично).",
        "nps.question": "Насколько вероятно, что вы порекомендуете нас другу, от 0 (точно нет) до 10 (точно да)?",
        "csat.comment": "Спасибо! Расскажете, почему такая оценка? Просто напишите здесь.",
        "csat.thanks": "Спасибо за оценку!",
        "csat.thanks_comment": "Спасибо, мы учтём ваш отзыв.",
        "open": "Открыть",
    },
}

CSAT_LABELS = {
    "en": ("Very bad", "Bad", "OK", "Good", "Excellent"),
    "ru": ("Очень плохо", "Плохо", "Нормально", "Хорошо", "Отлично"),
}


def lang_of(language: str | None) -> str:
    return "ru" if (language or "").lower().startswith("ru") else "en"


def text(key: str, language: str | None, **values: object) -> str:
    return _TEXTS[lang_of(language)][key].format(**values)


def duration(seconds: float, language: str | None) -> str:
    """'1 h 5 min' / '1 ч 5 мин'."""
    seconds = max(0, round(seconds))
    ru = lang_of(language) == "ru"
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    parts = []
    if h:
        parts.append(f"{h} {'ч' if ru else 'h'}")
    if m:
        parts.append(f"{m} {'мин' if ru else 'min'}")
    if s and not h:
        parts.append(f"{s} {'с' if ru else 's'}")
    return " ".join(parts) or ("0 с" if ru else "0 s")


def one(key: str, language: str | None, **values: object) -> str:
    """The text in one language, with targets and durations in that language too."""
    lang = lang_of(language)
    shown = dict(values)
    for name, val in values.items():
        if name == "target" and isinstance(val, str):
            shown[name] = TARGET_NAMES[lang].get(val, val)
        if name in ("left", "gap") and isinstance(val, int | float):
            shown[name] = duration(val, lang)
    return text(key, lang, **shown)


def both(key: str, **values: object) -> str:
    """The English and the Russian text, for emails and Telegram messages whose reader's language is unknown
    (people in the workspace get their own language: ``alerts.do_raise_alert``'s ``render``)."""
    return f"{one(key, 'en', **values)}\n{one(key, 'ru', **values)}"
