"""The demo's ~90 days of history: raw rows only, in the shapes and order the product writes them, with the
seasonality, hand-offs, breaches and ratings the reports and the forecast are meant to show."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from itertools import pairwise
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from kommutator.bot.models import BotSession
from kommutator.channels.models import Channel
from kommutator.config import Settings
from kommutator.contacts.models import ChannelScore
from kommutator.conversations.models import Conversation, Message, Transition
from kommutator.demo.seed import seed
from kommutator.quality.models import Rating, SlaClock
from kommutator.runtime import Runtime

MSK = ZoneInfo("Europe/Moscow")


async def test_history_is_consistent_seasonal_and_ends_before_now(settings: Settings) -> None:
    started = dt.datetime.now(dt.UTC)
    assert await seed(settings, history=True) is True
    rt = Runtime.build(settings)
    await rt.db.start()
    try:
        async with rt.db.read() as s:
            convs = list((await s.execute(select(Conversation))).scalars())
            transitions = defaultdict(list)
            rows = await s.execute(select(Transition).order_by(Transition.conversation_id, Transition.id))
            for t in rows.scalars():
                transitions[t.conversation_id].append(t)
            first_message = dict((await s.execute(select(Message.conversation_id, func.min(Message.created_at))
                                                  .group_by(Message.conversation_id))).all())
            last_message = dict((await s.execute(select(Message.conversation_id, func.max(Message.created_at))
                                                 .group_by(Message.conversation_id))).all())
            outcomes = Counter((await s.execute(select(BotSession.outcome))).scalars())
            scores = Counter((await s.execute(select(Rating.score))).scalars())
            clocks = Counter((await s.execute(select(SlaClock.target, SlaClock.status))).all())
            # Each customer's preferred channel is known from the history, as the intake would have kept it.
            inbound = Counter((await s.execute(
                select(Conversation.contact_id, Channel.type).join(Message, Message.conversation_id == Conversation.id)
                .join(Channel, Channel.id == Message.channel_id).where(Message.direction == "in"))).all())
            counted = {(r.contact_id, r.channel_type): r.messages
                       for r in (await s.execute(select(ChannelScore))).scalars()}
    finally:
        await rt.db.close()
    history = [c for c in convs if c.created_at < started - dt.timedelta(hours=2)]
    assert 5000 < len(history) < 12000
    assert min(c.created_at for c in history) < started - dt.timedelta(days=88)
    for c in history:
        steps = transitions[c.id]
        assert c.status == "resolved" and c.resolved_at is not None and c.updated_at < started
        assert c.resolved_at <= c.updated_at and c.last_message_at < started - dt.timedelta(hours=24)
        # The timeline is the lifecycle's: created with the bot, each step from the status the last one left.
        assert steps[0].from_status is None and steps[0].to_status == "bot" and steps[0].at == c.created_at
        assert all(a.to_status == b.from_status and a.at <= b.at for a, b in pairwise(steps))
        assert steps[-1].to_status == "resolved" and steps[-1].at == c.resolved_at
        assert first_message[c.id] == c.created_at and last_message[c.id] == c.last_message_at
        if c.first_response_at is not None:
            assert c.assigned_at is not None and c.queued_at is not None
            assert c.queued_at <= c.assigned_at <= c.first_response_at <= c.resolved_at
    assert counted == dict(inbound) and len(counted) > 1000
    assert {"contained", "handed_off"} == set(outcomes) and 0.15 < outcomes["contained"] / len(history) < 0.4
    assert set(scores) == {1, 2, 3, 4, 5} and scores[5] > scores[1] > 0
    assert clocks[("first_response", "missed")] > 0 and clocks[("first_response", "hit")] > 10 * clocks[
        ("first_response", "missed")] / 2
    # Seasonality in Moscow time: weekday late mornings are busy, nights quiet, weekends calmer.
    local = [c.created_at.astimezone(MSK) for c in history]
    by_hour = Counter(t.hour for t in local if t.weekday() < 5)
    assert by_hour[11] > 10 * by_hour[3]
    by_day = Counter(t.weekday() for t in local)
    assert by_day[0] > 1.5 * by_day[6]
