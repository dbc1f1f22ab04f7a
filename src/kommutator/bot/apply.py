"""Carry out one bot step in one transaction: what the bot says, the attributes it sets, the trail it leaves,
the hand-off to people or the resolution — exactly once per customer message (``last_input_id``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Connection

from kommutator.bot import step_sql as sql
from kommutator.bot.engine import (
    Action,
    CallHttp,
    CodeTyped,
    Handoff,
    HttpResult,
    Resolve,
    SendCode,
    SendText,
    SetAttribute,
    State,
)
from kommutator.bot.models import BotSession
from kommutator.bot.verify import do_bot_proofs
from kommutator.clock import now
from kommutator.conversations import lifecycle
from kommutator.conversations.locks import lock_conversation
from kommutator.db import Tx
from kommutator.events import Event, IntentHeard
from kommutator.notifications.actions import do_notify
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


def _http_line(call: CallHttp, result: HttpResult) -> str:
    outcome = result.error or f"HTTP {result.status}"
    if result.error and result.status is not None:
        outcome = f"HTTP {result.status}: {result.error}"
    return f"{call.node}: {call.method} {call.url} → {outcome}"


def _handoff(conn: Connection, conv: dict[str, Any], contact: Any, h: Handoff, ts: dt.datetime,
             events: list[Event]) -> dict[str, Any]:
    """Hand the conversation to people (queue, team, priority, skills, personal manager); the session's end."""
    queue = sql.find_queue(conn, h.queue)
    missing: list[str] = []
    if h.queue not in (None, "") and queue is None:
        missing.append(f"queue {h.queue!r} does not exist; kept the channel's queue")
    values: dict[str, Any] = {"queued_at": ts}
    if queue is not None:
        values["queue_id"] = queue.id
        if queue.team_id is not None:
            values["team_id"] = queue.team_id
    if h.priority is not None:
        values["priority"] = priority_name(h.priority)
    if h.personal_manager and contact is not None and contact.manager_id is not None:
        values["preferred_agent_id"] = contact.manager_id
    missing += sql.add_skills(conn, conv["id"], h.skills)
    changes: dict[str, Any] = {"status": ["bot", "queued"], "handed_off_by": "bot", "reason": h.reason}
    for key in ("queue_id", "team_id", "priority"):
        if values.get(key, conv[key]) != conv[key]:
            changes[key] = [conv[key], values[key]]
    where = f" to queue {queue.name}" if queue is not None else ""
    change = lifecycle.move(_now(conv), "queued", at=ts, values=values, changes=changes,
                            reason=f"handed off by the bot{where}: {h.reason}", code="bot_handoff",
                            params={"queue": queue.name if queue is not None else "", "why": h.reason})
    lifecycle.apply_core(conn, change, events)
    conv.update(change.values)
    summary = h.summary + ("\nNote: " + "; ".join(missing) + "." if missing else "")
    sql.insert_message(conn, conv, events, direction="internal", sender_type="bot", kind="note", text=summary, ts=ts,
                       payload={"pinned": True, "bot": {"event": "handoff", "reason": h.reason, "vars": h.vars,
                                                        "skills": list(h.skills), "asked": list(h.asked),
                                                        "chose": list(h.chose)}})
    return {"status": "handoff", "outcome": "handed_off", "summary": summary, "finished_at": ts}


def _resolve(conn: Connection, conv: dict[str, Any], r: Resolve, outcome: str, ts: dt.datetime,
             events: list[Event]) -> dict[str, Any]:
    lifecycle.apply_core(conn, lifecycle.move(
        _now(conv), "resolved", at=ts, values={"resolved_at": ts},
        reason=f"resolved by the bot: {r.reason}" if r.reason else "resolved by the bot", code="bot_resolved",
        params={"why": r.reason},
        changes={"status": ["bot", "resolved"], "resolved_by": "bot", "outcome": outcome, "reason": r.reason}),
        events)
    return {"status": "resolved", "outcome": outcome, "summary": r.summary, "finished_at": ts}


def _now(conv: dict[str, Any]) -> lifecycle.Now:
    return lifecycle.Now(conv["id"], conv["status"], conv["assignee_id"], conv["team_id"])


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


@dataclass(frozen=True)
class Applied:
    """What a step did, for the work after it: more input waiting, a manager to tell."""

    more: bool = False
    notify: tuple[int, str, str, dict[str, Any]] | None = None  # user, title, body, data
    proofs: tuple[SendCode | CodeTyped, ...] = ()  # one-time codes to send or check (bot/verify.py)


def apply_step(conn: Connection, step: Step, events: list[Event]) -> Applied:
    """Apply ``step`` unless it was applied already or the conversation left the bot (synchronous: runs inside
    one ``run_sync``; events join ``events``)."""
    cid = step.conversation_id
    lock_conversation(conn, cid, with_contact=True)  # the one lock order: contact, conversation, session
    session = conn.execute(sql.SESSION, {"cid": cid}).first()
    if session is None or session.status != "active" or session.last_input_id != step.expected_input_id:
        return Applied()  # applied before (a crash after the commit) or finished meanwhile
    if step.input_id is None and not session.timeout_due:
        return Applied()
    found = sql.conversation_for_step(conn, cid)
    assert found is not None
    conv, contact = found
    ts = now()
    if conv["status"] != "bot":
        stop(conn, cid, "taken_over", ts)
        return Applied()
    before = session.state or {}
    old_trail = list(before.get("trail", []))
    served = list(before.get("served", []))
    heard = list(before.get("intents", []))  # [intent, message id, ISO time]: the bot report's top intents
    state = step.state
    if step.input_id is not None:
        for intent in dict.fromkeys(state.heard):
            heard.append([intent, step.input_id, ts.isoformat()])
            events.append(IntentHeard(conversation_id=cid, team_id=conv["team_id"], assignee_id=conv["assignee_id"],
                                      intent=intent, message_id=step.input_id))
    new_trail = state.trail[len(old_trail):] if state.trail[:len(old_trail)] == old_trail else state.trail
    lines = list(new_trail)
    lines += [_http_line(c, r) for c, r in step.http]
    set_attrs = {a.name: a.value for a in step.actions if isinstance(a, SetAttribute)}
    if set_attrs and contact is not None:
        sql.set_attributes(conn, contact, set_attrs, events, ts)
        lines += [f"set contact attribute {k} = {v}" for k, v in set_attrs.items()]
    if step.kb_article:
        lines.append(f"answered from the knowledge base: «{step.kb_article}»")
    if any(r.ok for _, r in step.http) or any("helped" in line and "did not" not in line for line in new_trail):
        served.append(served_item(state, new_trail))
    # A note in the timeline when the bot did something (a lookup, an attribute, an answer from the knowledge
    # base); what it understood is in the session's trail and the hand-off summary, so a menu choice costs no row.
    if step.http or set_attrs or step.kb_article:
        sql.insert_message(conn, conv, events, direction="internal", sender_type="bot", kind="note", ts=ts,
                           text="Bot: " + "; ".join(lines) + ".",
                           payload={"bot": {"event": "step", "trail": lines,
                                            "http": [{"node": c.node, "method": c.method, "url": c.url,
                                                      "status": r.status, "error": r.error} for c, r in step.http],
                                            "attributes": set_attrs}})
    finished: Handoff | Resolve | None = None
    ended: dict[str, Any] = {}
    target: sql.ReplyTarget | None = None
    for action in step.actions:
        if isinstance(action, SendText):
            if target is None:
                target = sql.reply_target(conn, conv)
            sql.send_text(conn, conv, events, action.text, buttons=action.buttons, ts=ts, target=target)
        elif isinstance(action, Handoff):
            ended = _handoff(conn, conv, contact, action, ts, events)
            finished = action
            break
        elif isinstance(action, Resolve):
            # A customer who went silent after being served was served; one who never got anything left.
            outcome = "contained" if step.input_id is not None or served else "abandoned"
            ended = _resolve(conn, conv, action, outcome, ts, events)
            if outcome == "contained" and not served:
                served.append(served_item(state, new_trail))
            finished = action
            break
    last_input = step.input_id if step.input_id is not None else session.last_input_id
    active = not ended
    manager = contact.manager_id if contact is not None else None
    notify = None
    if finished is not None and manager is not None and served and (
            (isinstance(finished, Resolve) and ended["outcome"] == "contained") or isinstance(finished, Handoff)):
        notify = (int(manager), served_title(state, served), "\n".join(state.trail),
                  {"outcome": ended["outcome"], "served": served})
    if active and state.status == "waiting":
        sql.arm_timer(conn, TIMEOUT_TIMER, cid, ts + step.timeout, ts)
    else:
        sql.cancel_timer(conn, TIMEOUT_TIMER, cid)
    more = active and conn.execute(sql.MORE_INPUT, {"cid": cid, "after": last_input}).first() is not None
    values: dict[str, Any] = {"state": {**state.to_dict(), "heard": [], "served": served, "intents": heard},
                              "last_input_id": last_input,
                              "timeout_due": False, "updated_at": ts, **ended}
    if not more:
        values.update(due_at=None, claimed_until=None)
    conn.execute(sql.UPDATE_SESSION.values(**{k: bindparam(f"{k}_v") for k in values}),
                 {"cid": cid, **{f"{k}_v": v for k, v in values.items()}})
    return Applied(more=more, notify=notify,
                   proofs=tuple(a for a in step.actions if isinstance(a, SendCode | CodeTyped)))


async def do_apply_step(tx: Tx, step: Step) -> bool:
    """Apply ``step`` in this transaction; True when more customer messages wait for the bot."""
    events: list[Event] = []
    applied = await tx.conn.run_sync(lambda c: apply_step(c, step, events))
    for event in events:
        tx.publish(event)
    if applied.proofs:
        await do_bot_proofs(tx, step.conversation_id, applied.proofs)
    if applied.notify is not None:
        user_id, title, body, data = applied.notify
        await do_notify(tx, user_ids=[user_id], kind="bot.served", title=title, body=body,
                        conversation_id=step.conversation_id, data=data)
    return applied.more


def stop(conn: Connection, conversation_id: int, outcome: str, ts: dt.datetime) -> None:
    """The conversation left the bot (an agent took it, or it was closed): the session ends."""
    conn.execute(sql.UPDATE_SESSION.values(status="stopped", outcome=outcome, finished_at=bindparam("ts"),
                                           due_at=None, claimed_until=None, timeout_due=False),
                 {"cid": conversation_id, "ts": ts})
    sql.cancel_timer(conn, TIMEOUT_TIMER, conversation_id)


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
