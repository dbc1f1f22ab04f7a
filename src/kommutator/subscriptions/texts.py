"""What the subscriptions tell people (administrators), in English and Russian."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "disabled.title": "Event subscription “{name}” was turned off",
        "disabled.body": "{url} has not accepted events since {since} ({attempts} attempts; last: {error}). "
                         "Fix the receiver, then turn the subscription on in Administration → Event "
                         "subscriptions: the events owed to it are sent then, in order.",
    },
    "ru": {
        "disabled.title": "Подписка на события «{name}» отключена",
        "disabled.body": "{url} не принимает события с {since} ({attempts} попыток; последняя ошибка: {error}). "
                         "Исправьте получателя и включите подписку в разделе «Администрирование → Подписки на "
                         "события»: накопленные события будут отправлены по порядку.",
    },
}


def text(language: str, key: str, **values: object) -> str:
    return TEXTS.get(language, TEXTS["en"])[key].format(**values)
