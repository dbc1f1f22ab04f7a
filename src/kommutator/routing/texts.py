"""What routing tells customers, in their language (Russian or English; English when unknown)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

TEXTS: dict[str, dict[str, str]] = {
    "manager_absent": {
        "en": "Your personal manager {name} is not available right now. Would you like to wait for {name}, "
              "or talk to another specialist now?",
        "ru": "Ваш персональный менеджер {name} сейчас не на связи. Хотите дождаться ответа менеджера "
              "или поговорить с другим специалистом прямо сейчас?",
    },
    "button_wait": {"en": "Wait for {name}", "ru": "Дождаться менеджера"},
    "button_other": {"en": "Another specialist now", "ru": "Другой специалист сейчас"},
    "choice_unclear": {
        "en": "Sorry, I did not understand. Please answer 1 to wait for {name} or 2 to talk to another specialist.",
        "ru": "Извините, я не понял. Ответьте 1, чтобы дождаться менеджера, или 2, чтобы поговорить "
              "с другим специалистом.",
    },
    "will_wait": {
        "en": "Fine: {name} will answer you as soon as they are back. We keep your request for them for up to "
              "{minutes} min.",
        "ru": "Хорошо: {name} ответит вам, как только вернётся. Мы сохраним ваше обращение для менеджера "
              "до {minutes} мин.",
    },
    "will_route": {
        "en": "Fine: the next available specialist will answer you.",
        "ru": "Хорошо: вам ответит первый освободившийся специалист.",
    },
    "wait_over_queue": {
        "en": "{name} is still not available, so your request goes to the next available specialist.",
        "ru": "{name} всё ещё не на связи, поэтому ваше обращение передано первому освободившемуся специалисту.",
    },
    "manager_back": {
        "en": "{name} is back and will answer you now.",
        "ru": "{name} снова на связи и сейчас ответит вам.",
    },
    "wait_notice": {
        "en": "You are number {position} in the queue. Estimated wait: about {minutes} min. "
              "Please stay in this chat; your messages are saved.",
        "ru": "Вы {position}-й в очереди. Примерное время ожидания: около {minutes} мин. "
              "Оставайтесь в этом чате, ваши сообщения сохранены.",
    },
    "wait_notice_no_eta": {
        "en": "You are number {position} in the queue. A specialist will answer as soon as one is free; "
              "your messages are saved.",
        "ru": "Вы {position}-й в очереди. Специалист ответит, как только освободится; ваши сообщения сохранены.",
    },
    "out_of_hours": {
        "en": "We are closed now and will be back {when}. Your message is saved, and a specialist will answer "
              "it when we open.",
        "ru": "Сейчас мы не работаем и вернёмся {when}. Ваше сообщение сохранено, специалист ответит на него, "
              "как только мы откроемся.",
    },
    "nobody_on_duty": {
        "en": "All our specialists are away right now. Your message is saved, and a specialist will answer it as "
              "soon as one is back.",
        "ru": "Сейчас все специалисты отошли. Ваше сообщение сохранено, специалист ответит на него, как только "
              "вернётся.",
    },
    "out_of_hours_unknown": {
        "en": "We are closed now. Your message is saved, and a specialist will answer it when we open.",
        "ru": "Сейчас мы не работаем. Ваше сообщение сохранено, специалист ответит на него, как только мы откроемся.",
    },
}

# What routing tells an agent (in their interface language, users.locale).
AGENT_TEXTS: dict[str, dict[str, str]] = {
    "accept_warning": {
        "en": "Open conversation #{conversation_id} within {seconds} s",
        "ru": "Откройте разговор №{conversation_id} в течение {seconds} с",
    },
    "accept_warning_body": {
        "en": "It was assigned to you {waited} s ago and is not opened yet. If you do not open it (or answer "
              "another customer meanwhile), it goes back to the queue and you are set to Away.",
        "ru": "Он назначен вам {waited} с назад и ещё не открыт. Если вы его не откроете (и не будете отвечать "
              "другому клиенту), он вернётся в очередь, а ваш статус станет «Отошёл».",
    },
    "accept_missed": {
        "en": "Conversation #{conversation_id} went back to the queue; you are set to Away",
        "ru": "Разговор №{conversation_id} вернулся в очередь; ваш статус — «Отошёл»",
    },
    "accept_missed_body": {
        "en": "You did not open it within {seconds} s. Set yourself Online to get conversations again.",
        "ru": "Вы не открыли его за {seconds} с. Чтобы снова получать разговоры, выберите статус «В сети».",
    },
}

_WEEKDAYS = {
    "en": ("on Monday", "on Tuesday", "on Wednesday", "on Thursday", "on Friday", "on Saturday", "on Sunday"),
    "ru": ("в понедельник", "во вторник", "в среду", "в четверг", "в пятницу", "в субботу", "в воскресенье"),
}


def lang_of(language: str | None) -> str:
    return "ru" if (language or "").lower().startswith("ru") else "en"


def text(key: str, language: str | None, **values: object) -> str:
    return TEXTS[key][lang_of(language)].format(**values)


def when(at: dt.datetime, timezone: str, language: str | None, now: dt.datetime) -> str:
    """'today at 09:00', 'tomorrow at 09:00' or 'on Monday at 09:00', in the queue's zone, plus the zone."""
    lang = lang_of(language)
    zone = ZoneInfo(timezone)
    local, today = at.astimezone(zone), now.astimezone(zone).date()
    clock = local.strftime("%H:%M")
    days = (local.date() - today).days
    if days == 0:
        day = "сегодня" if lang == "ru" else "today"
    elif days == 1:
        day = "завтра" if lang == "ru" else "tomorrow"
    else:
        day = _WEEKDAYS[lang][local.weekday()] + " " + local.strftime("%d.%m")
    at_word = "в" if lang == "ru" else "at"
    return f"{day} {at_word} {clock} ({timezone})"


def agent_text(key: str, locale: str | None, **values: object) -> str:
    """A text for an agent, in their interface language."""
    return AGENT_TEXTS[key][lang_of(locale)].format(**values)
