"""The sentences outbound refusals say, in English and Russian; the API answers in the caller's language."""

from __future__ import annotations

import re
from typing import Any

from kommutator.channels.base import Refusal
from kommutator.errors import ProblemError

# A template's placeholder: {{name}}.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")

SENTENCES: dict[str, tuple[str, str]] = {
    "no_consent": ("The customer has refused messages on {channel}; choose another channel.",
                   "Клиент отказался от сообщений в канале {channel}; выберите другой канал."),
    "no_marketing_consent": ("The customer has not agreed to marketing messages on {channel}.",
                             "Клиент не давал согласия на рекламные сообщения в канале {channel}."),
    "no_reachable_channel": ("None of the customer's channels can take this message: {reasons}.",
                             "Ни один канал клиента не может принять это сообщение: {reasons}."),
    "channel_not_found": ("There is no enabled channel {channel}; choose one from the list of channels.",
                          "Нет включённого канала {channel}; выберите канал из списка."),
    "template_not_found": ("There is no template {template!r} in {template_language}; create it under Templates "
                           "first.",
                           "Нет шаблона {template!r} на языке {template_language}; сначала создайте его в разделе "
                           "«Шаблоны»."),
    "template_parameters_missing": ("The template {template!r} needs the parameters {missing}; give them.",
                                    "Шаблону {template!r} нужны параметры {missing}; укажите их."),
    "template_parameters_unknown": ("The template {template!r} has no parameters {unknown}.",
                                    "У шаблона {template!r} нет параметров {unknown}."),
    "template_placeholders_mismatch": ("The body's placeholders ({used}) must be exactly the parameters "
                                       "({parameters}).",
                                       "Подстановки в тексте ({used}) должны совпадать со списком параметров "
                                       "({parameters})."),
    "template_exists": ("A template {name!r} in {template_language} exists already; choose another name or "
                        "language.",
                        "Шаблон {name!r} на языке {template_language} уже есть; выберите другое название или язык."),
    "conversation_open": ("The customer already has an open conversation ({conversation_id}); write there.",
                          "У клиента уже есть открытый диалог ({conversation_id}); напишите в нём."),
    "contact_ambiguous": ("Several contacts have this {what}; send by contact_id.",
                          "Этот {what} есть у нескольких клиентов; отправьте по contact_id."),
    "contact_not_found": ("There is no contact with this {what}.", "Нет клиента с таким {what}."),
    # Identity proof by a one-time code (outbound/proofs.py): the code itself, and why one was not sent or taken.
    "proof_code_text": ("Your verification code: {code}. It is valid for {minutes} minutes. Do not tell it to "
                        "anyone.",
                        "Ваш код подтверждения: {code}. Он действует {minutes} минут. Никому его не сообщайте."),
    "proof_code_subject": ("Your verification code", "Код подтверждения"),
    "proof_code_sent": ("A verification code was sent to {target}.", "Код подтверждения отправлен на {target}."),
    "proof_value_invalid": ("{value!r} is not an email address or a phone number in international form "
                            "(+7 912 345-67-89).",
                            "{value!r} — не адрес почты и не номер телефона в международном виде "
                            "(+7 912 345-67-89)."),
    "proof_channel_missing": ("Codes cannot be sent by {kind} here; give another address or number.",
                              "Сюда нельзя отправить код по {kind_ru}; укажите другой адрес или номер."),
    "proof_rate_limited": ("Too many codes were asked for in the last hour; try again later.",
                           "За последний час запрошено слишком много кодов; попробуйте позже."),
    "proof_needs_conversation": ("Write us a message first, then confirm your address or number.",
                                 "Сначала напишите нам сообщение, затем подтвердите адрес или номер."),
    "proof_not_found": ("No code is waiting for confirmation; ask for a new one.",
                        "Нет кода, ожидающего подтверждения; запросите новый."),
    "proof_expired": ("The code has expired; ask for a new one.", "Срок действия кода истёк; запросите новый."),
    "proof_code_wrong": ("That code is not right; {left} tries left.",
                         "Код неверный; осталось попыток: {left}."),
    "proof_failed": ("Too many wrong codes; ask for a new one.", "Слишком много неверных кодов; запросите новый."),
    "campaign_audience_empty": ("The campaign's segments hold no contacts now; change the segments' rules or pick "
                                "other segments.",
                                "В сегментах кампании сейчас нет ни одного клиента; измените условия сегментов или "
                                "выберите другие."),
    "campaign_placeholder_missing": ("{count} contacts of the audience have no value for {{{{{name}}}}}; give a "
                                     "default like {{{{{name}|…}}}} or narrow the segment.",
                                     "У {count} клиентов аудитории нет значения для {{{{{name}}}}}; укажите значение "
                                     "по умолчанию, например {{{{{name}|…}}}}, или сузьте сегмент."),
    "campaign_placeholders_mismatch": ("The texts use different placeholders ({languages}); use the same in each "
                                       "language.",
                                       "В текстах разные подстановки ({languages}); используйте одинаковые во всех "
                                       "языках."),
    "campaign_text_required": ("Give the campaign's text in Russian or English, or a template.",
                               "Укажите текст кампании на русском или английском либо шаблон."),
    "campaign_segment_not_found": ("There is no segment {segment}; create it first.",
                                   "Нет сегмента {segment}; сначала создайте его."),
    "campaign_timezone_unknown": ("{timezone!r} is not a time zone; use a name like Europe/Moscow.",
                                  "{timezone!r} — не часовой пояс; укажите название вроде Europe/Moscow."),
    "campaign_status": ("The campaign is {state}; it cannot be {action}.",
                        "Кампания в состоянии «{state}»; её нельзя {action_ru}."),
}


def pick_language(accept_language: str) -> str:
    """ru when the caller prefers Russian (Accept-Language), else en."""
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("ru"):
            return "ru"
        if tag.startswith("en"):
            return "en"
    return "en"


def sentence(key: str, language: str | None, **params: Any) -> str:
    """One sentence of the catalogue in ``language`` (Russian for "ru", else English)."""
    en, ru = SENTENCES[key]
    return (ru if language == "ru" else en).format(**params)


def problem(status: int, code: str, language: str, *, field: str = "", **params: Any) -> ProblemError:
    """The refusal in the caller's language with both sentences; ``field`` names the input at fault (the screens
    show the sentence beside it)."""
    en, ru = SENTENCES[code]
    sentences = {"en": en.format(**params), "ru": ru.format(**params)}
    extra: dict[str, Any] = {"errors": [{"field": field, "message": sentences[language]}]} if field else {}
    return ProblemError(status, code, sentences[language], sentences=sentences, **extra)


def refused(refusal: Refusal, language: str) -> ProblemError:
    """A channel rule's refusal as a 422 in the caller's language, with both sentences."""
    sentences = {"en": refusal.en, "ru": refusal.ru}
    return ProblemError(422, refusal.code, sentences[language], sentences=sentences, **refusal.extra)
