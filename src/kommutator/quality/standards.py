"""Communication standards checked on each agent reply: a greeting first, no forbidden phrases, no long gaps.

Phrases match by word stems (``common/text.py``), so "не знаю" also catches "Не знаю!" and "я не знаю";
a greeting counts when it is among the first words of the conversation's first agent reply.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select

from kommutator.agents.models import User
from kommutator.common.text import stems
from kommutator.contacts.models import Contact
from kommutator.conversations.models import Conversation, Message
from kommutator.db import Tx
from kommutator.quality.alerts import do_raise_alert
from kommutator.quality.models import CommunicationStandard, QualityState, StandardViolation
from kommutator.quality.texts import both, duration, lang_of, text

GREETING_WORDS = 8  # a greeting must open the reply
DEFAULT_GREETINGS = {
    "ru": ["здравствуйте", "добрый день", "добрый вечер", "доброе утро", "приветствую", "привет"],
    "en": ["hello", "hi", "good morning", "good afternoon", "good evening", "greetings", "hey"],
}


@dataclass(frozen=True)
class Deviation:
    rule: str  # greeting, forbidden_phrase, reply_gap
    detail: str
    phrase: str = ""
    gap: float = 0.0


def _contains(haystack: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return n > 0 and any(haystack[i:i + n] == phrase for i in range(len(haystack) - n + 1))


def check(message: str, standard: CommunicationStandard, *, language: str | None, first_reply: bool,
          gap_seconds: float | None) -> list[Deviation]:
    """The standard's rules this reply breaks (pure: tests call it directly)."""
    found: list[Deviation] = []
    said = stems(message)
    langs = [lang_of(language), "en" if lang_of(language) == "ru" else "ru"]
    if first_reply and standard.greeting_required:
        greetings = [p for lg in langs for p in ((standard.greetings or {}).get(lg) or DEFAULT_GREETINGS[lg])]
        if not any(_contains(said[:GREETING_WORDS], stems(p)) for p in greetings):
            found.append(Deviation("greeting", "no greeting in the first reply"))
    for lg in langs:
        for phrase in (standard.forbidden or {}).get(lg, []):
            if _contains(said, stems(phrase)):
                found.append(Deviation("forbidden_phrase", f"forbidden phrase: {phrase}", phrase=phrase))
    limit = standard.max_reply_gap_seconds
    if limit and gap_seconds is not None and gap_seconds > limit:
        found.append(Deviation("reply_gap", f"replied after {round(gap_seconds)} s (limit {limit} s)",
                               gap=gap_seconds))
    return found


async def all_standards(tx: Tx) -> list[CommunicationStandard]:
    return list((await tx.session.execute(select(CommunicationStandard)
                                          .order_by(CommunicationStandard.id))).scalars())


async def standard_for(tx: Tx, team_id: int | None, *,
                       standards: Sequence[CommunicationStandard] | None = None) -> CommunicationStandard | None:
    """The team's own standard, else the general one; ``standards``: ``all_standards`` read earlier."""
    if standards is None:
        rows: Sequence[CommunicationStandard] = (await tx.session.execute(
            select(CommunicationStandard).where(or_(CommunicationStandard.team_id == team_id,
                                                    CommunicationStandard.team_id.is_(None)))
            .order_by(CommunicationStandard.id))).scalars().all()
    else:
        rows = [r for r in standards if r.team_id is None or r.team_id == team_id]
    own = [r for r in rows if r.team_id is not None]
    chosen = own or list(rows)
    return chosen[0] if chosen and chosen[0].enabled else None


async def do_check_new_replies(tx: Tx, conv: Conversation, state: QualityState, *,
                                standards: Sequence[CommunicationStandard] | None = None) -> list[StandardViolation]:
    """Check the agent replies sent since the last check; record and alert each deviation."""
    messages = list((await tx.session.execute(
        select(Message).where(Message.conversation_id == conv.id, Message.id > state.checked_message_id)
        .order_by(Message.id))).scalars())
    if not messages:
        return []
    state.checked_message_id = messages[-1].id
    standard = await standard_for(tx, conv.team_id, standards=standards)
    if standard is None:
        return []
    contact = await tx.session.get(Contact, conv.contact_id)
    language = contact.language if contact else None
    earlier_reply = await tx.session.scalar(select(Message.id).where(
        Message.conversation_id == conv.id, Message.id < messages[0].id, Message.direction == "out",
        Message.sender_type == "agent", Message.kind == "text").limit(1))
    replied_before = earlier_reply is not None
    awaiting: dt.datetime | None = await _awaiting_since(tx, conv, messages[0].id)
    out: list[StandardViolation] = []
    for msg in messages:
        if msg.direction == "in":
            awaiting = awaiting or msg.created_at
            continue
        if not (msg.direction == "out" and msg.sender_type == "agent" and msg.kind == "text"):
            continue
        gap = (msg.created_at - awaiting).total_seconds() if awaiting else None
        for d in check(msg.text, standard, language=language, first_reply=not replied_before, gap_seconds=gap):
            out.append(await _record(tx, conv, msg, d))
        replied_before, awaiting = True, None
    return out


async def _awaiting_since(tx: Tx, conv: Conversation, before_id: int) -> dt.datetime | None:
    """When the customer's oldest message still unanswered before ``before_id`` came in."""
    last_reply = await tx.session.scalar(select(Message.id).where(
        Message.conversation_id == conv.id, Message.id < before_id, Message.direction == "out",
        Message.sender_type == "agent", Message.kind == "text").order_by(Message.id.desc()).limit(1))
    return await tx.session.scalar(select(Message.created_at).where(
        Message.conversation_id == conv.id, Message.direction == "in", Message.id > (last_reply or 0),
        Message.id < before_id).order_by(Message.id).limit(1))


async def _record(tx: Tx, conv: Conversation, msg: Message, d: Deviation) -> StandardViolation:
    agent = await tx.session.get(User, msg.sender_user_id) if msg.sender_user_id else None
    name = agent.name if agent else "?"
    rule_en = text(f"rule.{d.rule}", "en", phrase=d.phrase, gap=duration(d.gap, "en"))
    rule_ru = text(f"rule.{d.rule}", "ru", phrase=d.phrase, gap=duration(d.gap, "ru"))
    violation = StandardViolation(conversation_id=conv.id, message_id=msg.id, agent_id=msg.sender_user_id,
                                  team_id=conv.team_id, rule=d.rule, detail=d.detail, created_at=msg.created_at)
    tx.session.add(violation)
    await tx.session.flush()
    body = both("standard.violation", conversation_id=conv.id, rule="{rule}", agent=name)
    en, ru = body.split("\n")
    alert = await do_raise_alert(
        tx, kind="standard.violation", title=en.replace("{rule}", rule_en), conversation_id=conv.id,
        render=lambda lang: ((en.replace("{rule}", rule_en),) * 2 if lang == "en"
                             else (ru.replace("{rule}", rule_ru),) * 2),
        body=f"{en.replace('{rule}', rule_en)}\n{ru.replace('{rule}', rule_ru)}", team_id=conv.team_id,
        agent_id=msg.sender_user_id, data={"violation_id": violation.id, "rule": d.rule, "message_id": msg.id})
    violation.alert_id = alert.id if alert else None
    return violation
