"""Reads for the forecast: when conversations entered a queue, and how long agents handled them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.conversations.models import Conversation, Transition

# A conversation enters the queue's work when it is put in the queue new, from the bot, or reopened; a
# conversation sent back to the queue by routing (an agent did not open it) is the same arrival, not a new one.
_ARRIVAL_FROM = ("bot", "resolved")


def _arrival_filter(queue_id: int):  # type: ignore[no-untyped-def]
    return ((Transition.to_status == "queued")
            & (Transition.from_status.is_(None) | Transition.from_status.in_(_ARRIVAL_FROM))
            & (Conversation.queue_id == queue_id))


async def arrivals(s: AsyncSession, *, queue_id: int, since: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    """The instants conversations entered the queue in [since, until), oldest first.

    The queue is the conversation's queue now: the timeline does not record the queue of each step.
    """
    rows = await s.execute(
        select(Transition.at).join(Conversation, Conversation.id == Transition.conversation_id)
        .where(_arrival_filter(queue_id), Transition.at >= since, Transition.at < until).order_by(Transition.at))
    return [r[0] for r in rows]


async def first_arrival(s: AsyncSession, *, queue_id: int) -> dt.datetime | None:
    return await s.scalar(select(func.min(Transition.at))
                          .join(Conversation, Conversation.id == Transition.conversation_id)
                          .where(_arrival_filter(queue_id)))


async def handle_times(s: AsyncSession, *, queue_id: int, since: dt.datetime, until: dt.datetime) -> list[float]:
    """Seconds from assignment to resolution (product.md's handle time) of each handling that ended with a
    resolution in [since, until): from the first assignment after the conversation entered the queue (a
    transfer to another agent does not restart it) to the resolution."""
    rows = await s.execute(
        select(Transition.conversation_id, Transition.to_status, Transition.at)
        .join(Conversation, Conversation.id == Transition.conversation_id)
        .where(Conversation.queue_id == queue_id, Transition.to_status.in_(("assigned", "resolved")),
               Transition.at >= since - dt.timedelta(days=30), Transition.at < until)
        .order_by(Transition.conversation_id, Transition.at, Transition.id))
    out: list[float] = []
    current: int | None = None
    started: dt.datetime | None = None
    for conv_id, status, at in rows:
        if conv_id != current:
            current, started = conv_id, None
        if status == "assigned":
            if started is None:
                started = at
        elif started is not None:
            if at >= since:
                out.append((at - started).total_seconds())
            started = None
    return out
