"""Occupancy: the share of an agent's online time in which they had at least one active conversation.

Online time comes from the presence changes the reporting worker records (``PresenceChange``); active
conversations from the timeline (``conversation_transitions``): from the change that gives the agent a
conversation in status assigned or waiting to the next change that takes it away or ends it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.clock import now
from kommutator.conversations.models import Transition
from kommutator.reports.models import PresenceChange, ReportFact

ACTIVE = ("assigned", "waiting")
Spans = list[tuple[dt.datetime, dt.datetime]]


def _union(spans: Spans) -> Spans:
    out: Spans = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        elif b > a:
            out.append((a, b))
    return out


def _overlap(a: Spans, b: Spans) -> float:
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            total += (hi - lo).total_seconds()
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def online_spans(changes: list[tuple[str, dt.datetime]], start: dt.datetime, end: dt.datetime) -> Spans:
    """Online intervals within [start, end) from one agent's presence changes in time order."""
    spans: Spans = []
    since: dt.datetime | None = None
    for presence, at in changes:
        if presence == "online" and since is None:
            since = at
        elif presence != "online" and since is not None:
            spans.append((max(since, start), min(at, end)))
            since = None
    if since is not None:
        spans.append((max(since, start), end))
    return _union([(a, b) for a, b in spans if b > a])


def busy_spans(transitions: list[Transition], end: dt.datetime) -> dict[int, Spans]:
    """Per agent, the intervals with at least one active conversation (transitions of many conversations)."""
    per: dict[int, Spans] = defaultdict(list)
    by_conv: dict[int, list[Transition]] = defaultdict(list)
    for t in transitions:
        by_conv[t.conversation_id].append(t)
    for trs in by_conv.values():
        holder: int | None = None
        since: dt.datetime | None = None
        for t in trs:
            if holder is not None and since is not None:
                per[holder].append((since, t.at))
            holder = t.assignee_id if t.to_status in ACTIVE else None
            since = t.at if holder is not None else None
        if holder is not None and since is not None:
            per[holder].append((since, end))
    return {a: _union(s) for a, s in per.items()}


async def occupancy(session: AsyncSession, start: dt.datetime, end: dt.datetime, *,
                    agent_id: int | None = None) -> dict[int, float]:
    """Percent occupancy per agent with online time in [start, end)."""
    end = min(end, max(now(), start))
    if end <= start:
        return {}
    q = select(PresenceChange.user_id, PresenceChange.presence, PresenceChange.at).where(PresenceChange.at < end)
    if agent_id is not None:
        q = q.where(PresenceChange.user_id == agent_id)
    changes: dict[int, list[tuple[str, dt.datetime]]] = defaultdict(list)
    for uid, presence, at in (await session.execute(q.order_by(PresenceChange.user_id, PresenceChange.at,
                                                               PresenceChange.id))).all():
        changes[uid].append((presence, at))
    online = {uid: s for uid, ch in changes.items() if (s := online_spans(ch, start, end))}
    if not online:
        return {}
    overlapping = (select(ReportFact.conversation_id)
                   .where(ReportFact.started_at < end,
                          or_(ReportFact.resolved_at.is_(None), ReportFact.resolved_at >= start)))
    trs = list((await session.execute(select(Transition).where(Transition.conversation_id.in_(overlapping),
                                                               Transition.at < end)
                                      .order_by(Transition.conversation_id, Transition.id))).scalars())
    busy = busy_spans(trs, end)
    out = {}
    for uid, spans in online.items():
        total = sum((b - a).total_seconds() for a, b in spans)
        if total > 0:
            out[uid] = _overlap(spans, busy.get(uid, [])) / total * 100.0
    return out
