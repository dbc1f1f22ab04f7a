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
from kommutator.clock import now
from kommutator.common.text import stems
from kommutator.contacts.models import Contact
from kommutator.conversations.models import Conversation, Message
from kommutator.db import Tx
from kommutator.quality.alerts import do_raise_alert
from kommutator.quality.models import CommunicationStandard, QualityState, StandardViolation
from kommutator.quality.reply_gap import already_judged, gap_seconds, load_steps
from kommutator.quality.texts import duration, lang_of, one, text

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
    waiting = await _awaiting_since(tx, conv, messages[0].id)
    steps = await load_steps(tx, conv.id) if standard.max_reply_gap_seconds else []
    out: list[StandardViolation] = []
    for msg in messages:
        if msg.direction == "in":
            waiting = waiting or (msg.id, msg.created_at)
            continue
        if not (msg.direction == "out" and msg.sender_type == "agent" and msg.kind == "text"):
            continue
        # Only the time the conversation was this agent's and waited for them (not the bot's, not the queue's).
        gap = None
        if waiting is not None and msg.sender_user_id is not None and standard.max_reply_gap_seconds \
                and not await already_judged(tx, conv.id, msg.sender_user_id, waiting[0]):
            gap = gap_seconds(steps, msg.sender_user_id, waiting[1], msg.created_at)
        for d in check(msg.text, standard, language=language, first_reply=not replied_before, gap_seconds=gap):
            out.append(await _record(tx, conv, msg, d, waited_id=waiting[0] if waiting else None))
        replied_before, waiting = True, None
    return out


async def _awaiting_since(tx: Tx, conv: Conversation, before_id: int) -> tuple[int, dt.datetime] | None:
    """The customer's oldest message still unanswered before ``before_id``: (id, when it came in)."""
    last_reply = await tx.session.scalar(select(Message.id).where(
        Message.conversation_id == conv.id, Message.id < before_id, Message.direction == "out",
        Message.sender_type == "agent", Message.kind == "text").order_by(Message.id.desc()).limit(1))
    row = (await tx.session.execute(select(Message.id, Message.created_at).where(
        Message.conversation_id == conv.id, Message.direction == "in", Message.id > (last_reply or 0),
        Message.id < before_id).order_by(Message.id).limit(1))).first()
    return (row.id, row.created_at) if row else None


async def do_record_live_gap(tx: Tx, conv: Conversation, agent_id: int, waited_id: int, limit: int) -> None:
    """The limit passed while the customer waited for ``agent_id``: a violation now, before any reply."""
    d = Deviation("reply_gap", f"no reply within {limit} s", gap=float(limit))
    violation = StandardViolation(conversation_id=conv.id, message_id=waited_id, agent_id=agent_id,
                                  team_id=conv.team_id, rule=d.rule, detail=d.detail, created_at=now())
    await _raise_violation(tx, conv, violation, d, agent_id, live=True)


async def _record(tx: Tx, conv: Conversation, msg: Message, d: Deviation, *,
                  waited_id: int | None = None) -> StandardViolation:
    # A reply-gap violation names the customer's message that waited (one per agent and message).
    violation = StandardViolation(conversation_id=conv.id,
                                  message_id=waited_id if d.rule == "reply_gap" and waited_id else msg.id,
                                  agent_id=msg.sender_user_id, team_id=conv.team_id, rule=d.rule, detail=d.detail,
                                  created_at=msg.created_at)
    return await _raise_violation(tx, conv, violation, d, msg.sender_user_id, reply_id=msg.id)


async def _raise_violation(tx: Tx, conv: Conversation, violation: StandardViolation, d: Deviation,
                           agent_id: int | None, *, live: bool = False,
                           reply_id: int | None = None) -> StandardViolation:
    agent = await tx.session.get(User, agent_id) if agent_id else None
    name = agent.name if agent else "?"
    key = "rule.reply_gap_live" if live else f"rule.{d.rule}"

    def rule_in(lang: str) -> str:
        return text(key, lang, phrase=d.phrase, gap=duration(d.gap, lang))

    tx.session.add(violation)
    await tx.session.flush()

    def render(lang: str) -> tuple[str, str]:
        line = one("standard.violation", lang, conversation_id=conv.id, rule=rule_in(lang), agent=name)
        return line, line

    data: dict[str, object] = {"violation_id": violation.id, "rule": d.rule, "message_id": reply_id}
    if d.rule == "reply_gap":
        data["waited_message_id"] = violation.message_id
    alert = await do_raise_alert(
        tx, kind="standard.violation", title=render("en")[0], conversation_id=conv.id, render=render,
        body=f"{render('en')[0]}\n{render('ru')[0]}", team_id=conv.team_id, agent_id=agent_id, data=data)
    violation.alert_id = alert.id if alert else None
    return violation
