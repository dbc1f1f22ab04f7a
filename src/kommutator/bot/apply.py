"""Carry out one bot step in one transaction: what the bot says, the attributes it sets, the trail it leaves,
the hand-off to people or the resolution — exactly once per customer message (``last_input_id``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update

from kommutator.agents.models import Skill
from kommutator.bot.engine import (
    Action,
    CallHttp,
    Handoff,
    HttpResult,
    Resolve,
    SendText,
    SetAttribute,
    State,
)
from kommutator.bot.models import BotSession
from kommutator.clock import now
from kommutator.contacts.models import Contact
from kommutator.conversations import lifecycle
from kommutator.conversations.automatic import do_send_automatic
from kommutator.conversations.models import Conversation, Message
from kommutator.db import Tx
from kommutator.events import ContactChanged, MessageCreated
from kommutator.notifications.actions import do_notify
from kommutator.queues.models import Queue
from kommutator.routing.models import ConversationSkill
from kommutator.workers.models import Timer
from kommutator.workers.timers import do_cancel, do_schedule

TIMEOUT_TIMER = "bot.timeout"
DEFAULT_TIMEOUT = dt.timedelta(minutes=15)


@dataclass
class Step:
    """A step the worker computed outside any transaction, to apply if nothing changed meanwhile."""

    conversation_id: int
    expected_input_id: int  # the session's last_input_id when the step was computed
    input_id: int | None  # the customer message this step answers; None for a timeout
    state: State
    actions: list[Action] = field(default_factory=list)
    http: list[tuple[CallHttp, HttpResult]] = field(default_factory=list)
    kb_article: str = ""  # the knowledge-base article the bot answered with in this step
    timeout: dt.timedelta = DEFAULT_TIMEOUT


_PRIORITIES = ((5, "urgent"), (2, "high"), (1, "normal"), (0, "low"))
_SERVED = {"ru": "Обслужен автоматически", "en": "Served automatically"}


def priority_name(level: int) -> str:
    """A hand-off's priority 0–10 as the conversation's: 0 low, 1 normal, 2–4 high, 5 and more urgent."""
    return next(name for floor, name in _PRIORITIES if level >= floor)


async def _note(tx: Tx, conv: Conversation, text: str, payload: dict[str, Any]) -> None:
    """An internal line in the timeline, from the bot: agents see it, the customer never does."""
    msg = Message(conversation_id=conv.id, direction="internal", sender_type="bot", kind="note", text=text,
                  payload=payload, status="received", created_at=now())
    tx.session.add(msg)
    await tx.session.flush()
    tx.publish(MessageCreated(conversation_id=conv.id, team_id=conv.team_id, assignee_id=conv.assignee_id,
                              message_id=msg.id, direction="internal", sender_type="bot", message_kind="note"))


def _http_line(call: CallHttp, result: HttpResult) -> str:
    outcome = result.error or f"HTTP {result.status}"
    if result.error and result.status is not None:
        outcome = f"HTTP {result.status}: {result.error}"
    return f"{call.node}: {call.method} {call.url} → {outcome}"


async def _find_queue(tx: Tx, ref: str | int | None) -> Queue | None:
    if ref is None or ref == "":
        return None
    if isinstance(ref, int) or str(ref).isdigit():
        return await tx.session.get(Queue, int(ref))
    return await tx.session.scalar(select(Queue).where(func.lower(Queue.name) == str(ref).lower()))


async def _handoff(tx: Tx, conv: Conversation, contact: Contact | None, session: BotSession, h: Handoff,
                   ts: dt.datetime) -> None:
    queue = await _find_queue(tx, h.queue)
    missing: list[str] = []
    if h.queue not in (None, "") and queue is None:
        missing.append(f"queue {h.queue!r} does not exist; kept the channel's queue")
    old_queue, old_team, old_priority = conv.queue_id, conv.team_id, conv.priority
    values: dict[str, Any] = {"queued_at": ts}
    if queue is not None:
        values["queue_id"] = queue.id
        if queue.team_id is not None:
            values["team_id"] = queue.team_id
    if h.priority is not None:
        values["priority"] = priority_name(h.priority)
    if h.personal_manager and contact is not None and contact.manager_id is not None:
        values["preferred_agent_id"] = contact.manager_id
    for name in dict.fromkeys(h.skills):
        skill_id = await tx.session.scalar(select(Skill.id).where(func.lower(Skill.name) == name.lower()))
        if skill_id is None:
            missing.append(f"skill {name!r} does not exist")
        elif await tx.session.get(ConversationSkill, (conv.id, skill_id)) is None:
            tx.session.add(ConversationSkill(conversation_id=conv.id, skill_id=skill_id, min_level=1))
    changes: dict[str, Any] = {"status": ["bot", "queued"], "handed_off_by": "bot", "reason": h.reason}
    for key, was in (("queue_id", old_queue), ("team_id", old_team), ("priority", old_priority)):
        if values.get(key, was) != was:
            changes[key] = [was, values[key]]
    where = f" to queue {queue.name}" if queue is not None else ""
    lifecycle.apply(tx, conv, lifecycle.move(lifecycle.Now.of(conv), "queued", at=ts, values=values, changes=changes,
                                             reason=f"handed off by the bot{where}: {h.reason}"))
    summary = h.summary + ("\nNote: " + "; ".join(missing) + "." if missing else "")
    await _note(tx, conv, summary, {"pinned": True, "bot": {"event": "handoff", "reason": h.reason,
                                                            "vars": h.vars, "skills": list(h.skills)}})
    session.status, session.outcome, session.summary, session.finished_at = "handoff", "handed_off", summary, ts


async def _resolve(tx: Tx, conv: Conversation, session: BotSession, r: Resolve, outcome: str,
                   ts: dt.datetime) -> None:
    lifecycle.apply(tx, conv, lifecycle.move(
        lifecycle.Now.of(conv), "resolved", at=ts, values={"resolved_at": ts},
        reason=f"resolved by the bot: {r.reason}" if r.reason else "resolved by the bot",
        changes={"status": ["bot", "resolved"], "resolved_by": "bot", "outcome": outcome, "reason": r.reason}))
    session.status, session.outcome, session.finished_at = "resolved", outcome, ts
    session.summary = r.summary


def served_title(state: State, served: list[str]) -> str:
    """"Served automatically: order status for 12345" in the flow's language."""
    lang = "ru" if state.language == "ru" else "en"
    return f"{_SERVED[lang]}: {'; '.join(served)}" if served else _SERVED[lang]


def served_item(state: State, step_trail: list[str]) -> str:
    """What the customer chose, with the value they gave: "Статус заказа 12345" / "Order status for 12345"."""
    choices = [line.split("«", 1)[1].rstrip("»") for line in state.trail if ": chose «" in line]
    what = choices[-1] if choices else "request"
    values = [str(v) for k, v in state.vars.items() if not k.startswith(("http_", "kb_")) and isinstance(v, str | int)
              and len(str(v)) <= 40]
    if not values:
        return what
    # The first value collected is what the customer gave (e.g. the order number); later ones are looked up.
    return f"{what} {values[0]}" if state.language == "ru" else f"{what} for {values[0]}"


async def do_apply_step(tx: Tx, step: Step) -> bool:
    """Apply ``step`` unless it was applied already or the conversation left the bot; True when more customer
    messages wait for the bot."""
    session = await tx.session.get(BotSession, step.conversation_id, with_for_update=True)
    if session is None or session.status != "active" or session.last_input_id != step.expected_input_id:
        return False  # applied before (a crash after the commit) or finished meanwhile
    if step.input_id is None and not session.timeout_due:
        return False
    conv = await tx.session.get(Conversation, step.conversation_id, with_for_update=True)
    assert conv is not None
    ts = now()
    if conv.status != "bot":
        await do_stop(tx, session, "taken_over")
        return False
    contact = await tx.session.get(Contact, conv.contact_id)
    before = session.state or {}
    old_trail = list(before.get("trail", []))
    served = list(before.get("served", []))
    state = step.state
    new_trail = state.trail[len(old_trail):] if state.trail[:len(old_trail)] == old_trail else state.trail
    lines = list(new_trail)
    lines += [_http_line(c, r) for c, r in step.http]
    set_attrs = {a.name: a.value for a in step.actions if isinstance(a, SetAttribute)}
    if set_attrs and contact is not None:
        contact.attributes = {**(contact.attributes or {}), **set_attrs}
        contact.updated_at = ts
        tx.publish(ContactChanged(contact_id=contact.id, action="updated"))
        lines += [f"set contact attribute {k} = {v}" for k, v in set_attrs.items()]
    if step.kb_article:
        lines.append(f"answered from the knowledge base: «{step.kb_article}»")
    if any(r.ok for _, r in step.http) or any("helped" in line and "did not" not in line for line in new_trail):
        served.append(served_item(state, new_trail))
    # A note in the timeline when the bot did something (a lookup, an attribute, an answer from the knowledge
    # base); what it understood is in the session's trail and the hand-off summary, so a menu choice costs no row.
    if step.http or set_attrs or step.kb_article:
        await _note(tx, conv, "Bot: " + "; ".join(lines) + ".",
                    {"bot": {"event": "step", "trail": lines,
                             "http": [{"node": c.node, "method": c.method, "url": c.url, "status": r.status,
                                       "error": r.error} for c, r in step.http],
                             "attributes": set_attrs}})
    finished: Handoff | Resolve | None = None
    for action in step.actions:
        if isinstance(action, SendText):
            await do_send_automatic(tx, conv, action.text, buttons=action.buttons, sender="bot", purpose="bot")
        elif isinstance(action, Handoff):
            await _handoff(tx, conv, contact, session, action, ts)
            finished = action
            break
        elif isinstance(action, Resolve):
            # A customer who went silent after being served was served; one who never got anything left.
            outcome = "contained" if step.input_id is not None or served else "abandoned"
            await _resolve(tx, conv, session, action, outcome, ts)
            if outcome == "contained" and not served:
                served.append(served_item(state, new_trail))
            finished = action
            break
    session.state = {**state.to_dict(), "served": served}
    if step.input_id is not None:
        session.last_input_id = step.input_id
    session.timeout_due, session.updated_at = False, ts
    manager = contact.manager_id if contact is not None else None
    if finished is not None and manager is not None and served and (
            (isinstance(finished, Resolve) and session.outcome == "contained") or isinstance(finished, Handoff)):
        await do_notify(tx, user_ids=[manager], kind="bot.served", title=served_title(state, served),
                        body="\n".join(state.trail), conversation_id=conv.id,
                        data={"outcome": session.outcome, "served": served})
    if session.status == "active" and state.status == "waiting":
        await arm_timeout(tx, conv.id, ts + step.timeout)
    else:
        await do_cancel(tx, kind=TIMEOUT_TIMER, subject_type="conversation", subject_id=conv.id)
    more = session.status == "active" and await tx.session.scalar(
        select(Message.id).where(Message.conversation_id == conv.id, Message.direction == "in",
                                 Message.id > session.last_input_id).limit(1)) is not None
    if not more:
        session.due_at, session.claimed_until = None, None
    return more


async def arm_timeout(tx: Tx, conversation_id: int, due: dt.datetime) -> None:
    """Move the pending silent-customer timer to ``due`` (one row per conversation, not one per message)."""
    moved = await tx.conn.execute(update(Timer).where(
        Timer.kind == TIMEOUT_TIMER, Timer.subject_type == "conversation", Timer.subject_id == conversation_id,
        Timer.status == "pending").values(due_at=due))
    if not moved.rowcount:
        await do_schedule(tx, kind=TIMEOUT_TIMER, subject_type="conversation", subject_id=conversation_id,
                          due_at=due, replace=False)


async def do_stop(tx: Tx, session: BotSession, outcome: str) -> None:
    """The conversation left the bot (an agent took it, or it was closed): the session ends."""
    session.status, session.outcome, session.finished_at = "stopped", outcome, now()
    session.due_at, session.claimed_until, session.timeout_due = None, None, False
    await do_cancel(tx, kind=TIMEOUT_TIMER, subject_type="conversation", subject_id=session.conversation_id)
