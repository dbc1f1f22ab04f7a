"""Reads behind the report pages beyond the summary: traffic by hour of the week, the bot's hand-offs and top
intents, and the ratings (distribution and comments). Each takes the same ``Scope`` as every report (period, zone,
filters — an agent's own figures included), applied through the conversation's fact row."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.conversations.models import Message, Transition
from kommutator.quality.models import Rating
from kommutator.reports.metrics import Metric
from kommutator.reports.models import ReportFact, ReportIntent
from kommutator.reports.queries import Scope, _filtered, series

_facts = cast(Table, ReportFact.__table__)
_intents = cast(Table, ReportIntent.__table__)


async def heatmap(session: AsyncSession, scope: Scope, metric: Metric) -> list[list[tuple[int, float]]]:
    """(count, sum) of the metric's values per local weekday (Monday first) and hour, from the hourly rollups."""
    cells = [[(0, 0.0) for _ in range(24)] for _ in range(7)]
    for per_hour in (await series(session, scope, metric, "hour")).values():
        for start, (n, total) in per_hour.items():
            n0, t0 = cells[start.weekday()][start.hour]
            cells[start.weekday()][start.hour] = (n0 + n, t0 + total)
    return cells


async def bot_handoffs(session: AsyncSession, scope: Scope, *, top: int = 20) -> dict[str, list[tuple[str, int]]]:
    """Why the bot handed conversations to people in the period and the menu choices the customers had made
    before, most frequent first: from the hand-off note the bot pins to each conversation it hands off (its
    ``reason`` and ``chose``), found through the period's bot → queued transitions."""
    stmt = (select(Transition.conversation_id)
            .where(Transition.to_status == "queued", Transition.from_status == "bot",
                   Transition.at >= scope.start, Transition.at < scope.end))
    if scope.filters:  # through each transition's fact row (its key), not every fact matching the filters
        stmt = _filtered(stmt.join(_facts, _facts.c.conversation_id == Transition.conversation_id), _facts,
                         scope.filters)
    ids = sorted(set((await session.execute(stmt)).scalars()))
    reasons: Counter[str] = Counter()
    choices: Counter[str] = Counter()
    for i in range(0, len(ids), 500):
        notes = (select(Message.payload)
                 .where(Message.conversation_id.in_(ids[i:i + 500]), Message.sender_type == "bot",
                        Message.kind == "note", Message.created_at >= scope.start, Message.created_at < scope.end))
        for (payload,) in (await session.execute(notes)).all():
            bot = (payload or {}).get("bot") or {}
            if bot.get("event") != "handoff":
                continue
            reasons[str(bot.get("reason") or "")] += 1
            for choice in bot.get("chose") or []:
                choices[str(choice)] += 1
    return {"reasons": reasons.most_common(top), "choices": choices.most_common(top)}


async def top_intents(session: AsyncSession, scope: Scope, *, top: int = 20) -> list[tuple[str, int, int, int]]:
    """The intents the bot recognised most often in customers' messages in the period, most frequent first:
    (intent, times heard, of them in conversations the bot served, of them in conversations it handed to people),
    from report_intents (the scope's filters apply to the conversation's cuts, as everywhere)."""
    i = _intents.c
    stmt = (select(i.intent, func.count(), func.sum(i.contained), func.sum(i.handed_off))
            .where(i.heard_at >= scope.start, i.heard_at < scope.end)
            .group_by(i.intent).order_by(func.count().desc(), i.intent).limit(top))
    rows = (await session.execute(_filtered(stmt, _intents, scope.filters))).all()
    return [(str(r[0]), int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in rows]


async def rating_counts(session: AsyncSession, scope: Scope) -> dict[str, dict[int, int]]:
    """How many ratings of each score arrived in the period, per scale (csat 1–5, nps 0–10)."""
    at = _facts.c.rated_at
    out: dict[str, dict[int, int]] = {"csat": {s: 0 for s in range(1, 6)}, "nps": {s: 0 for s in range(11)}}
    for scale, col in (("csat", _facts.c.csat_score), ("nps", _facts.c.nps_score)):
        stmt = (select(col, func.count()).where(at >= scope.start, at < scope.end, col.is_not(None)).group_by(col))
        for score, n in (await session.execute(_filtered(stmt, _facts, scope.filters))).all():
            out[scale][int(score)] = int(n)
    return out


async def rating_comments(session: AsyncSession, scope: Scope, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ratings of the period that came with a comment."""
    at = _facts.c.rated_at
    stmt = (select(Rating.conversation_id, Rating.scale, Rating.score, Rating.comment, Rating.created_at,
                   _facts.c.agent_id)
            .join(_facts, _facts.c.conversation_id == Rating.conversation_id)
            .where(at >= scope.start, at < scope.end, Rating.comment != "")
            .order_by(at.desc(), Rating.conversation_id.desc()).limit(limit))
    rows = (await session.execute(_filtered(stmt, _facts, scope.filters))).all()
    return [{"conversation_id": r[0], "scale": r[1], "score": r[2], "comment": r[3],
             "at": r[4] if isinstance(r[4], dt.datetime) else None, "agent_id": r[5]} for r in rows]
