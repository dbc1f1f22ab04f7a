"""Why a conversation is still waiting for an agent: the codes routing records and their texts in RU and EN.

Routing (``routing/service.py``) sets the reason on each waiting conversation in every pass
(``conversations.routing_notices["why"]``: a code and its values) and writes a timeline line only when it
changes; the API's conversation (``waiting_reason``), the supervisor's live view and the workspace's timeline
(``reason.waiting_<code>`` in ``js/texts/timeline.js``) read it. Shared here because the core's conversation
representation and quality's live view both show it and neither may import routing.
"""

from __future__ import annotations

from typing import Any

WHY: dict[str, dict[str, str]] = {
    "en": {
        "closed": "Outside the queue's business hours; it opens {opens}",
        "closed_unknown": "Outside the queue's business hours",
        "nobody_online": "Nobody who may take it is online",
        "nobody_online_team": "Nobody of the team {team} is online",
        "no_skill": "No agent with the skill {skill} ≥ {level} is online",
        "no_skill_together": "No online agent has all the skills it needs together ({skills})",
        "at_capacity": "Every fitting agent online is at capacity ({agents})",
        "manager_away": "The personal manager {manager} is away; the customer was asked whether to wait",
        "manager_waited": "Waiting for the personal manager {manager}, as the customer chose",
    },
    "ru": {
        "closed": "Очередь сейчас не работает; откроется {opens}",
        "closed_unknown": "Очередь сейчас не работает",
        "nobody_online": "Нет никого в сети, кто может его взять",
        "nobody_online_team": "Никого из команды {team} нет в сети",
        "no_skill": "В сети нет оператора с навыком {skill} не ниже {level}",
        "no_skill_together": "Ни у кого в сети нет всех нужных навыков сразу ({skills})",
        "at_capacity": "Все подходящие операторы в сети заняты до предела ({agents})",
        "manager_away": "Персональный менеджер {manager} не на связи; клиента спросили, будет ли он ждать",
        "manager_waited": "Ждёт персонального менеджера {manager}, как выбрал клиент",
    },
}
CODES = tuple(WHY["en"])


def text_of(code: str, params: dict[str, Any], language: str) -> str:
    """The reason in one language (``language`` ru or en); an unknown code reads as itself."""
    texts = WHY["ru" if language == "ru" else "en"]
    if code not in texts:
        return code
    values = {k: ("" if v is None else v) for k, v in params.items()}
    try:
        return texts[code].format(**values)
    except (KeyError, IndexError, ValueError):
        return code


def describe(why: Any) -> dict[str, Any] | None:
    """``{"code", "params", "en", "ru"}`` for a stored reason, None for none."""
    if not isinstance(why, dict) or not isinstance(why.get("code"), str):
        return None
    raw = why.get("params")
    params: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return {"code": why["code"], "params": params, "since": why.get("since"),
            "en": text_of(why["code"], params, "en"), "ru": text_of(why["code"], params, "ru")}
