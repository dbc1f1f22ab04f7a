"""Wire formats of the staffing forecast."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class SlotForecast(BaseModel):
    start: dt.datetime = Field(description="UTC start of the half hour")
    end: dt.datetime
    date: dt.date = Field(description="The local date (the forecast's time zone)")
    time: str = Field(description="Local wall-clock start, HH:MM")
    fold: int = Field(description="1 for the second pass through a local time repeated when clocks go back")
    arrivals: float = Field(description="Conversations expected to enter the queue")
    traffic_erlangs: float = Field(description="arrivals × handle time ÷ slot length")
    agents: int = Field(description="Agents handling the queue needed for the service-level target (Erlang C)")
    agents_scheduled: int = Field(description="agents ÷ (1 − shrinkage), rounded up")
    service_level: float = Field(description="Per cent answered within the target time with that many agents")
    occupancy: float = Field(description="Per cent of the agents' time busy: traffic ÷ agents (× concurrency)")
    average_wait_seconds: float = Field(description="Average wait before an agent answers (ASA)")


class DayForecast(BaseModel):
    date: dt.date
    arrivals: float
    peak_agents: int
    peak_agents_scheduled: int
    agent_hours: float


class ForecastHistory(BaseModel):
    weeks: int = Field(description="Past weeks of the same half hour averaged")
    first_arrival: dt.datetime | None = Field(description="Where the queue's history begins (local midnight)")
    weekly_totals: list[int] = Field(description="Arrivals in each whole 7-day window before the cutoff, oldest first")
    trend_factor: float = Field(description="What the weighted average is multiplied by for the trend")
    trend_slope_per_week: float
    handled_conversations: int = Field(description="Handlings (assignment → resolution) the handle time is from")
    average_handle_seconds: float | None


class ForecastParams(BaseModel):
    target_percent: float
    target_seconds: int
    arrivals_multiplier: float
    aht_seconds: float = Field(description="The handle time used")
    aht_source: Literal["history", "override", "default"]
    shrinkage: float
    concurrency: int


class ForecastTotals(BaseModel):
    arrivals: float
    agent_hours: float
    peak_agents: int
    peak_agents_scheduled: int


class QueueForecast(BaseModel):
    """A week of half hours of one queue: arrivals, and the agents its service-level target needs."""

    queue_id: int
    queue_name: str
    timezone: str
    start: dt.date
    end: dt.date
    cutoff: dt.datetime = Field(description="Only what happened before this instant was used")
    history: ForecastHistory
    params: ForecastParams
    totals: ForecastTotals
    days: list[DayForecast]
    slots: list[SlotForecast]


class SlotAccuracy(BaseModel):
    start: dt.datetime
    date: dt.date
    time: str
    forecast: float
    actual: int


class DayAccuracy(BaseModel):
    date: dt.date
    forecast: float
    actual: int


class WeekAccuracy(BaseModel):
    start: dt.date
    end: dt.date
    forecast_total: float
    actual_total: int
    had_history: bool = Field(description="False when the queue had no history before the week began")
    wape: float | None = Field(description="Σ|forecast − actual| ÷ Σ actual over the half hours, per cent")
    mape: float | None = Field(description="Mean of |forecast − actual| ÷ actual over half hours with arrivals")
    day_wape: float | None = Field(description="WAPE of the daily totals, per cent")
    days: list[DayAccuracy]
    slots: list[SlotAccuracy]


class ErrorSummary(BaseModel):
    wape: float | None = Field(description="Over every half hour of the weeks, per cent")
    mape: float | None
    day_wape: float | None = Field(description="Over every day of the weeks, per cent")


class ForecastAccuracy(BaseModel):
    """Past whole weeks, each forecast from the history before it began, against the actual arrivals."""

    queue_id: int
    queue_name: str
    timezone: str
    history_weeks: int
    weeks: list[WeekAccuracy]
    overall: ErrorSummary
