"""The supervisor's live view: queues, agents and the conversations nearest to a missed deadline."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.agents.models import TeamMember, User
from kommutator.clock import now
from kommutator.contacts.models import Contact
from kommutator.conversations.models import Conversation, Message, Transition
from kommutator.quality.models import QualityAlert, SlaClock
from kommutator.quality.service_level import HANDOFF, day_bounds, within_target, zone_of
from kommutator.queues.models import Queue

AT_RISK_LIMIT = 50
_IN_PROGRESS = ("assigned", "waiting", "snoozed")


async def service_level(s: AsyncSession, queue: Queue, at: dt.datetime) -> dict[str, Any]:
    """Today's (in the queue's time zone) share of the queue's conversations answered within its target, by the
    rule of ``quality/service_level.py`` that the reports use too."""
    since, until = day_bounds(at, zone_of(queue.business_hours))
    handoff = (select(func.min(Transition.at)).where(Transition.conversation_id == Conversation.id,
                                                      Transition.to_status.in_(HANDOFF))
               .correlate(Conversation).scalar_subquery())
    rows = (await s.execute(
        select(Conversation.id, Conversation.status, Conversation.first_response_at, handoff.label("handoff"))
        .where(Conversation.queue_id == queue.id, Conversation.created_at >= since,
               Conversation.created_at < until))).all()
    met = counted = 0
    for r in rows:
        result = within_target(r.handoff, r.first_response_at, queue.sl_target_seconds, at=at,
                               ended=r.status == "resolved")
        if result is not None:
            counted += 1
            met += result
    return {"percent": round(100 * met / counted, 1) if counted else None, "met": met, "counted": counted,
            "target_percent": queue.sl_target_percent, "target_seconds": queue.sl_target_seconds,
            "day_start": since, "timezone": zone_of(queue.business_hours).key}


async def live_view(s: AsyncSession, *, team_id: int | None = None) -> dict[str, Any]:
    at = now()
    queues_q = select(Queue).where(Queue.enabled.is_(True)).order_by(Queue.priority.desc(), Queue.name)
    if team_id is not None:
        queues_q = queues_q.where(Queue.team_id == team_id)
    queues = []
    for q in (await s.execute(queues_q)).scalars():
        waiting, oldest = (await s.execute(
            select(func.count(), func.min(Conversation.queued_at))
            .where(Conversation.queue_id == q.id, Conversation.status == "queued"))).one()
        queues.append({"id": q.id, "name": q.name, "team_id": q.team_id, "waiting": int(waiting or 0),
                       "longest_wait_seconds": round((at - oldest).total_seconds()) if oldest else 0,
                       "service_level": await service_level(s, q, at)})

    users_q = select(User).where(User.active.is_(True), User.role.in_(("agent", "supervisor"))).order_by(User.name)
    if team_id is not None:
        users_q = users_q.join(TeamMember, TeamMember.user_id == User.id).where(TeamMember.team_id == team_id)
    users = list((await s.execute(users_q)).scalars())
    ids = [u.id for u in users]
    load: dict[int, tuple[int, float]] = {}
    last_reply: dict[int, dt.datetime] = {}
    if ids:
        for uid, count, weight in (await s.execute(
                select(Conversation.assignee_id, func.count(), func.sum(Conversation.routing_weight))
                .where(Conversation.assignee_id.in_(ids), Conversation.status.in_(_IN_PROGRESS))
                .group_by(Conversation.assignee_id))).all():
            if uid is not None:
                load[uid] = (int(count), float(weight or 0))
        for uid, latest in (await s.execute(
                select(Message.sender_user_id, func.max(Message.created_at))
                .where(Message.sender_user_id.in_(ids), Message.direction == "out")
                .group_by(Message.sender_user_id))).all():
            if uid is not None and latest is not None:
                last_reply[uid] = latest
    agents = []
    for u in users:
        count, weight = load.get(u.id, (0, 0.0))
        replied = last_reply.get(u.id)
        agents.append({"id": u.id, "name": u.name, "role": u.role, "presence": u.presence, "capacity": u.capacity,
                       "in_progress": count, "load_percent": round(100 * weight / u.capacity) if u.capacity else 0,
                       "last_reply_at": replied,
                       "since_last_reply_seconds": round((at - replied).total_seconds()) if replied else None})

    risk_q = (select(SlaClock, Conversation, Contact.name)
              .join(Conversation, Conversation.id == SlaClock.conversation_id)
              .join(Contact, Contact.id == Conversation.contact_id)
              .where(SlaClock.status == "running", SlaClock.due_at.is_not(None))
              .order_by(SlaClock.due_at).limit(AT_RISK_LIMIT))
    if team_id is not None:
        risk_q = risk_q.where(Conversation.team_id == team_id)
    names = {u.id: u.name for u in users}
    at_risk = []
    for clock, conv, contact_name in (await s.execute(risk_q)).all():
        assert clock.due_at is not None
        at_risk.append({"conversation_id": conv.id, "subject": conv.subject, "contact_name": contact_name,
                        "status": conv.status, "assignee_id": conv.assignee_id,
                        "assignee_name": names.get(conv.assignee_id or 0, ""), "team_id": conv.team_id,
                        "target": clock.target, "due_at": clock.due_at,
                        "seconds_left": round((clock.due_at - at).total_seconds()),
                        "breached": clock.breached_at is not None, "warned": clock.warned_at is not None})
    waiting_q = (select(Conversation, Contact.name)
                 .join(Contact, Contact.id == Conversation.contact_id)
                 .where(Conversation.status == "queued", Conversation.assignee_id.is_(None))
                 .order_by(Conversation.queued_at, Conversation.id).limit(AT_RISK_LIMIT))
    if team_id is not None:
        waiting_q = waiting_q.where(Conversation.team_id == team_id)
    waiting_rows = [{"conversation_id": conv.id, "subject": conv.subject, "contact_name": contact_name,
                "queue_id": conv.queue_id, "team_id": conv.team_id, "queued_at": conv.queued_at,
                "waited_seconds": round((at - (conv.queued_at or conv.created_at)).total_seconds()),
                "waiting_reason": conv.waiting_reason}
               for conv, contact_name in (await s.execute(waiting_q)).all()]
    open_alerts = await s.scalar(select(func.count()).select_from(QualityAlert)
                                 .where(QualityAlert.acknowledged_at.is_(None)))
    return {"at": at, "queues": queues, "agents": agents, "at_risk": at_risk, "waiting": waiting_rows,
            "open_alerts": int(open_alerts or 0)}
