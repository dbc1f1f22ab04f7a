"""Report tables: one fact row per conversation (its KPI values and cuts) and hourly rollups of them.

Both are derived from raw history (transitions, messages, ratings, SLA clocks, bot sessions) by
``reports/facts.py``; ``kommutator reports rebuild`` can always recompute them, so nothing here is the
only copy of anything.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId

# The moments a metric is counted at ("anchor"): a conversation's KPIs land in the hour the event that
# completes them happened, so a rating three days later lands in its own day and a reopen moves resolution.
ANCHORS = ("started", "resolved", "rated")


class ReportFact(Base):
    """One conversation's KPI values (wall-clock ``*_s``, business time ``*_bs``) and its cuts."""

    __tablename__ = "report_facts"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    # Cuts
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    channel_type: Mapped[str | None] = mapped_column(String(20))
    team_id: Mapped[int | None] = mapped_column(BigInteger)
    queue_id: Mapped[int | None] = mapped_column(BigInteger)
    agent_id: Mapped[int | None] = mapped_column(BigInteger)
    bot_flow_id: Mapped[int | None] = mapped_column(BigInteger)
    # Moments, and the UTC hours they fall in (the rollups' keys)
    started_at: Mapped[dt.datetime]
    handoff_at: Mapped[dt.datetime | None]
    assigned_at: Mapped[dt.datetime | None]
    first_response_at: Mapped[dt.datetime | None]
    resolved_at: Mapped[dt.datetime | None]
    rated_at: Mapped[dt.datetime | None]
    started_hour: Mapped[dt.datetime]
    resolved_hour: Mapped[dt.datetime | None]
    rated_hour: Mapped[dt.datetime | None]
    # Counts
    conversations: Mapped[int] = mapped_column(Integer, default=1)
    messages_in: Mapped[int] = mapped_column(Integer, default=0)
    messages_out: Mapped[int] = mapped_column(Integer, default=0)
    resolutions: Mapped[int | None] = mapped_column(Integer)
    reopens: Mapped[int] = mapped_column(Integer, default=0)
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    # Durations in seconds
    wait_s: Mapped[float | None] = mapped_column(Float)
    wait_bs: Mapped[float | None] = mapped_column(Float)
    first_response_s: Mapped[float | None] = mapped_column(Float)
    first_response_bs: Mapped[float | None] = mapped_column(Float)
    response_s: Mapped[float | None] = mapped_column(Float)  # mean of the conversation's reply times
    response_bs: Mapped[float | None] = mapped_column(Float)
    responses: Mapped[int] = mapped_column(Integer, default=0)
    handle_s: Mapped[float | None] = mapped_column(Float)
    handle_bs: Mapped[float | None] = mapped_column(Float)
    resolution_s: Mapped[float | None] = mapped_column(Float)
    resolution_bs: Mapped[float | None] = mapped_column(Float)
    # Shares as 0/1 (None: does not apply to this conversation)
    service_level: Mapped[int | None] = mapped_column(Integer)
    service_level_bs: Mapped[int | None] = mapped_column(Integer)
    sla_compliance: Mapped[int | None] = mapped_column(Integer)
    abandonment: Mapped[int | None] = mapped_column(Integer)
    bot_containment: Mapped[int | None] = mapped_column(Integer)
    # Ratings
    csat: Mapped[int | None] = mapped_column(Integer)  # 1 for a 4-5 rating, 0 for 1-3
    csat_score: Mapped[int | None] = mapped_column(Integer)  # 1-5
    nps: Mapped[int | None] = mapped_column(Integer)  # +100 promoter, 0 passive, -100 detractor
    nps_score: Mapped[int | None] = mapped_column(Integer)  # 0-10
    computed_at: Mapped[dt.datetime] = mapped_column(default=now)

    __table_args__ = (Index("ix_report_facts_started", "started_at"),
                      Index("ix_report_facts_resolved", "resolved_at"),
                      Index("ix_report_facts_rated", "rated_at"),
                      Index("ix_report_facts_started_hour", "started_hour"),
                      Index("ix_report_facts_resolved_hour", "resolved_hour"),
                      Index("ix_report_facts_rated_hour", "rated_hour"),
                      Index("ix_report_facts_agent", "agent_id", "started_at"),
                      Index("ix_report_facts_computed", "computed_at"))


class ReportHourly(Base):
    """Count and sum of one metric's values over the facts of one UTC hour and one combination of cuts, per
    histogram bucket of the values (``reports/histogram.py``): summing rows gives counts and means, summing
    them per bucket gives medians and percentiles of any period."""

    __tablename__ = "report_hourly"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    hour: Mapped[dt.datetime]
    metric: Mapped[str] = mapped_column(String(40))
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    channel_type: Mapped[str | None] = mapped_column(String(20))
    team_id: Mapped[int | None] = mapped_column(BigInteger)
    queue_id: Mapped[int | None] = mapped_column(BigInteger)
    agent_id: Mapped[int | None] = mapped_column(BigInteger)
    bot_flow_id: Mapped[int | None] = mapped_column(BigInteger)
    bucket: Mapped[int] = mapped_column(Integer, default=0)
    n: Mapped[int] = mapped_column(Integer)
    total: Mapped[float] = mapped_column(Float)

    # PostgreSQL: the summary's columns ride in the index, so the overview reads it alone (index-only scan)
    __table_args__ = (Index("ix_report_hourly_hour", "hour", "metric",
                            postgresql_include=["bucket", "n", "total", "agent_id"]),)


class ReportDaily(Base):
    """The histogram of one metric over one UTC day, all cuts together (``agent_key`` −1) and per agent (the agent's
    id; 0: no agent): what the unfiltered summary (the overview, its previous period), the agents report and an
    agent's own figures read for the whole days of their period (the hourly rollups give the hours at its edges).
    Kept from the hourly rollups by adding the difference each recomputed hour makes."""

    __tablename__ = "report_daily"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[dt.datetime]
    metric: Mapped[str] = mapped_column(String(40))
    agent_key: Mapped[int] = mapped_column(BigInteger)
    bucket: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer)
    total: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ux_report_daily", "agent_key", "day", "metric", "bucket", unique=True,
                            postgresql_include=["n", "total"]),)


class ReportIntent(Base):
    """One intent the bot recognised in one customer message of a conversation (``IntentHeard``), with that
    conversation's cuts and how its bot session ended: the bot report's top intents. Derived from the bot
    session's history like the facts (stored and rebuilt with them)."""

    __tablename__ = "report_intents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(BigInteger)
    intent: Mapped[str] = mapped_column(String(64))
    heard_at: Mapped[dt.datetime]
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    channel_type: Mapped[str | None] = mapped_column(String(20))
    team_id: Mapped[int | None] = mapped_column(BigInteger)
    queue_id: Mapped[int | None] = mapped_column(BigInteger)
    agent_id: Mapped[int | None] = mapped_column(BigInteger)
    bot_flow_id: Mapped[int | None] = mapped_column(BigInteger)
    contained: Mapped[int] = mapped_column(Integer)  # 1: the bot served the customer (session outcome contained)
    handed_off: Mapped[int] = mapped_column(Integer)  # 1: the bot handed the conversation to people

    __table_args__ = (Index("ix_report_intents_heard", "heard_at", "intent"),
                      Index("ix_report_intents_conversation", "conversation_id"))


class PresenceChange(Base):
    """An agent's presence from ``at`` on (online, away, offline): the time available that occupancy divides by.

    Recorded by the reporting worker from ``AgentChanged`` events (the user row keeps only the latest presence);
    it is history, so ``reports rebuild`` keeps it.
    """

    __tablename__ = "report_presence"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    presence: Mapped[str] = mapped_column(String(10))
    at: Mapped[dt.datetime]

    __table_args__ = (Index("ix_report_presence_user", "user_id", "at"),)
