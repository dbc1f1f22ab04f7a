"""What a newcomer should see working in the demo from the first minute: canned responses, an SLA policy and
the rating question after a conversation (kommutator demo). Each is made through its domain's own action."""

from __future__ import annotations

from kommutator.auth.principal import Principal
from kommutator.canned.actions import do_create_canned
from kommutator.canned.schemas import CannedCreate
from kommutator.db import Tx
from kommutator.quality.actions import do_save_csat, do_save_policy
from kommutator.quality.schemas import CsatWrite, PolicyCreate

# shortcut, title, body
CANNED: list[tuple[str, str, str]] = [
    ("hello", "Greeting (EN)", "Hello {contact.name}! My name is {agent.name}. How can I help you?"),
    ("privet", "Приветствие (RU)", "Здравствуйте, {contact.name}! Меня зовут {agent.name}. Чем могу помочь?"),
    ("check", "Checking the order", "Thank you! I am checking your order now, it will take a minute."),
    ("proveryu", "Проверяю заказ", "Спасибо! Проверяю ваш заказ, это займёт минуту."),
    ("bye", "Closing (EN)", "Is there anything else I can help you with? Have a nice day!"),
    ("poka", "Завершение (RU)", "Могу ещё чем-нибудь помочь? Хорошего дня!"),
]


async def do_seed_service(tx: Tx, admin: Principal, *, supervisor_id: int) -> None:
    """Canned responses for everyone, an SLA policy for the website channels, CSAT after every conversation."""
    for shortcut, title, body in CANNED:
        await do_create_canned(tx, admin, CannedCreate(shortcut=shortcut, title=title, body=body))
    await do_save_policy(tx, admin, PolicyCreate(
        name="Website chat standard", first_response_seconds=120, next_response_seconds=300,
        resolution_seconds=4 * 3600, warn_percent=75, notify_user_ids=[supervisor_id]))
    await do_save_csat(tx, admin, None, CsatWrite(enabled=True, scale="csat", ask_comment=True))
