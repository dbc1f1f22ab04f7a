"""Each conversation's KPI values, computed from its raw history (transitions, messages, rating, SLA clocks,
bot session), in wall-clock time and in its queue's business hours.

``compute`` is pure: the same history gives the same fact, whether the reporting worker computes it moments
after a change or ``kommutator reports rebuild`` computes it a year later. ``load_facts`` reads the history
of many conversations in a few statements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.bot.models import BotSession
from kommutator.conversations.models import Conversation, Message, Transition
from kommutator.ingest.models import Channel
from kommutator.quality.business_time import business_seconds
from kommutator.quality.models import Rating, SlaClock
from kommutator.quality.service_level import within_target
from kommutator.queues.models import Queue

HUMAN = ("queued", "assigned")


@dataclass
class History:
    """One conversation's history as rows (attribute access): the columns ``compute`` reads, nothing more."""

    conv: Any  # id, created_at, status, team_id, queue_id, assignee_id, queued_at, resolved_at, last_inbound_channel_id
    transitions: list[Any] = field(default_factory=list)  # at, from_status, to_status, assignee_id
    messages: list[Any] = field(default_factory=list)  # direction, sender_type, kind, channel_id, created_at
    rating: Any = None  # scale, score, created_at
    clocks: list[str] = field(default_factory=list)  # the SLA clocks' statuses
    bot: Any = None  # flow_id, outcome, state (its "intents": [intent, message id, ISO time] the bot recognised)


def hour_of(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def _is_reply(m: Any) -> bool:
    """An agent's reply the customer sees (bot and system messages and private notes are not)."""
    return bool(m.direction == "out" and m.sender_type == "agent" and m.kind != "note")


def _is_customer(m: Any) -> bool:
    return bool(m.direction == "in" and m.sender_type == "contact")


def compute(h: History, *, hours: dict[str, Any] | None, sl_target_seconds: int | None,
            channel_type: str | None) -> dict[str, Any]:
    """The fact row of one conversation (the ReportFact columns, without computed_at)."""
    conv = h.conv
    started = conv.created_at
    trs = h.transitions

    def span(a: dt.datetime | None, b: dt.datetime | None) -> tuple[float | None, float | None]:
        if a is None or b is None:
            return None, None
        if b < a:
            b = a
        return (b - a).total_seconds(), business_seconds(hours, a, b)

    handoff = next((t.at for t in trs if t.to_status in HUMAN), None)
    if handoff is None and not trs and conv.queued_at is not None:
        handoff = conv.queued_at  # a conversation from before the timeline existed
    assigned = next((t.at for t in trs if t.to_status == "assigned" and t.assignee_id is not None
                     and handoff is not None and t.at >= handoff), None)
    resolved = None
    if conv.status == "resolved":
        resolved = next((t.at for t in reversed(trs) if t.to_status == "resolved"), conv.resolved_at)
    reopens = sum(1 for t in trs if t.from_status == "resolved" and t.to_status != "resolved")
    agent_id, transfers = None, 0
    for t in trs:
        if t.assignee_id is not None:
            if agent_id is not None and t.assignee_id != agent_id:
                transfers += 1
            agent_id = t.assignee_id
    if agent_id is None:
        agent_id = conv.assignee_id

    first_response = None
    if handoff is not None:
        first_response = next((m.created_at for m in h.messages if _is_reply(m) and m.created_at >= handoff), None)
    waits: list[tuple[float, float]] = []
    if first_response is not None:
        pending: dt.datetime | None = None
        for m in h.messages:
            if m.created_at < first_response:
                continue
            if _is_customer(m) and pending is None:
                pending = m.created_at
            elif _is_reply(m) and pending is not None:
                w, wb = span(pending, m.created_at)
                waits.append((w or 0.0, wb or 0.0))
                pending = None

    wait_s, wait_bs = span(handoff, assigned)
    frt_s, frt_bs = span(handoff, first_response)
    handle_s, handle_bs = span(assigned, resolved)
    res_s, res_bs = span(started, resolved)

    def within(value: float | None) -> int | None:
        # The live view's rule (quality/service_level.py); never answered: missed once resolved.
        return within_target(handoff, first_response, sl_target_seconds, ended=resolved is not None, elapsed=value)

    clocks = [s for s in h.clocks if s != "cancelled"]
    sla = None
    if clocks:
        sla = 0 if "missed" in clocks else (1 if all(s == "hit" for s in clocks) else None)
    channel_id = next((m.channel_id for m in h.messages if _is_customer(m) and m.channel_id is not None),
                      conv.last_inbound_channel_id)
    r = h.rating
    fact: dict[str, Any] = {
        "conversation_id": conv.id, "channel_id": channel_id, "channel_type": channel_type,
        "team_id": conv.team_id, "queue_id": conv.queue_id, "agent_id": agent_id,
        "bot_flow_id": h.bot.flow_id if h.bot is not None else None,
        "started_at": started, "handoff_at": handoff, "assigned_at": assigned, "first_response_at": first_response,
        "resolved_at": resolved, "rated_at": r.created_at if r is not None else None,
        "started_hour": hour_of(started), "resolved_hour": hour_of(resolved) if resolved else None,
        "rated_hour": hour_of(r.created_at) if r is not None else None,
        "conversations": 1,
        "messages_in": sum(1 for m in h.messages if _is_customer(m)),
        "messages_out": sum(1 for m in h.messages if m.direction == "out"),
        "resolutions": 1 if resolved is not None else None, "reopens": reopens, "transfers": transfers,
        "wait_s": wait_s, "wait_bs": wait_bs, "first_response_s": frt_s, "first_response_bs": frt_bs,
        "response_s": sum(w for w, _ in waits) / len(waits) if waits else None,
        "response_bs": sum(b for _, b in waits) / len(waits) if waits else None, "responses": len(waits),
        "handle_s": handle_s, "handle_bs": handle_bs, "resolution_s": res_s, "resolution_bs": res_bs,
        "service_level": within(frt_s), "service_level_bs": within(frt_bs),
        "sla_compliance": sla if resolved is not None else None,
        "abandonment": (int(first_response is None) if handoff is not None and resolved is not None else None),
        "bot_containment": (int(h.bot.outcome == "contained" and handoff is None)
                            if h.bot is not None and resolved is not None else None),
        "csat": None, "csat_score": None, "nps": None, "nps_score": None,
    }
    if r is not None and r.scale == "csat":
        fact["csat"], fact["csat_score"] = int(r.score >= 4), r.score
    elif r is not None and r.scale == "nps":
        fact["nps"] = 100 if r.score >= 9 else (-100 if r.score <= 6 else 0)
        fact["nps_score"] = r.score
    return fact


INTENT_CUTS = ("channel_id", "channel_type", "team_id", "queue_id", "agent_id", "bot_flow_id")


def intents_heard(h: History, fact: dict[str, Any]) -> list[dict[str, Any]]:
    """The report_intents rows of one conversation: each intent the bot recognised in a customer message (from the
    bot session's history, as ``IntentHeard`` announced it), with the fact's cuts and how the bot session ended."""
    if h.bot is None:
        return []
    state = h.bot.state if isinstance(h.bot.state, dict) else {}
    out: list[dict[str, Any]] = []
    for item in state.get("intents") or []:
        try:
            intent, message_id, at = str(item[0])[:64], int(item[1]), dt.datetime.fromisoformat(str(item[2]))
        except (TypeError, ValueError, IndexError):
            continue  # not written by bot/apply.py: nothing to count
        out.append({"conversation_id": fact["conversation_id"], "message_id": message_id, "intent": intent,
                    "heard_at": at if at.tzinfo else at.replace(tzinfo=dt.UTC),
                    **{c: fact[c] for c in INTENT_CUTS},
                    "contained": int(h.bot.outcome == "contained"), "handed_off": int(h.bot.outcome == "handed_off")})
    return out


_C = Conversation
_LOAD = {
    "conv": select(_C.id, _C.created_at, _C.status, _C.team_id, _C.queue_id, _C.assignee_id, _C.queued_at,
                   _C.resolved_at, _C.last_inbound_channel_id).where(_C.id.in_(bindparam("ids", expanding=True))),
    "transitions": select(Transition.conversation_id, Transition.at, Transition.from_status, Transition.to_status,
                          Transition.assignee_id)
    .where(Transition.conversation_id.in_(bindparam("ids", expanding=True)))
    .order_by(Transition.conversation_id, Transition.id),
    "messages": select(Message.conversation_id, Message.direction, Message.sender_type, Message.kind,
                       Message.channel_id, Message.created_at)
    .where(Message.conversation_id.in_(bindparam("ids", expanding=True))).order_by(Message.conversation_id, Message.id),
    "ratings": select(Rating.conversation_id, Rating.scale, Rating.score, Rating.created_at)
    .where(Rating.conversation_id.in_(bindparam("ids", expanding=True))),
    "clocks": select(SlaClock.conversation_id, SlaClock.status)
    .where(SlaClock.conversation_id.in_(bindparam("ids", expanding=True))),
    "bots": select(BotSession.conversation_id, BotSession.flow_id, BotSession.outcome, BotSession.state)
    .where(BotSession.conversation_id.in_(bindparam("ids", expanding=True))),
    "queues": select(Queue.id, Queue.business_hours, Queue.sl_target_seconds)
    .where(Queue.id.in_(bindparam("ids", expanding=True))),
    "channels": select(Channel.id, Channel.type),
}


async def load_facts(session: AsyncSession, ids: Sequence[int]) -> tuple[list[dict[str, Any]], list[int]]:
    """The facts of the conversations ``ids`` (from their history), and the ids that no longer exist. Each fact
    carries its conversation's report_intents rows under ``"intents"``."""
    ids = sorted(set(ids))
    p = {"ids": ids}
    hist = {c.id: History(conv=c) for c in (await session.execute(_LOAD["conv"], p)).all()}
    if not hist:
        return [], ids
    p = {"ids": list(hist)}
    for t in (await session.execute(_LOAD["transitions"], p)).all():
        hist[t.conversation_id].transitions.append(t)
    for m in (await session.execute(_LOAD["messages"], p)).all():
        hist[m.conversation_id].messages.append(m)
    for r in (await session.execute(_LOAD["ratings"], p)).all():
        hist[r.conversation_id].rating = r
    for cid, status in (await session.execute(_LOAD["clocks"], p)).all():
        hist[cid].clocks.append(status)
    for b in (await session.execute(_LOAD["bots"], p)).all():
        hist[b.conversation_id].bot = b
    queue_ids = sorted({h.conv.queue_id for h in hist.values() if h.conv.queue_id is not None})
    queues = {q.id: q for q in (await session.execute(_LOAD["queues"], {"ids": queue_ids})).all()} if queue_ids else {}
    types = dict((await session.execute(_LOAD["channels"])).all())
    facts = []
    for h in hist.values():
        q = queues.get(h.conv.queue_id) if h.conv.queue_id is not None else None
        f = compute(h, hours=q.business_hours if q else None,
                    sl_target_seconds=q.sl_target_seconds if q else None, channel_type=None)
        f["channel_type"] = types.get(f["channel_id"]) if f["channel_id"] is not None else None
        f["intents"] = intents_heard(h, f)  # report_intents rows, stored beside the fact (reports/actions.py)
        facts.append(f)
    return facts, [i for i in ids if i not in hist]
