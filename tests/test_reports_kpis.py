"""Each KPI of one conversation, from hand-built histories with known timestamps (reports/facts.py compute)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from kommutator.reports.facts import History, compute
from kommutator.reports.metrics import BUILTIN
from kommutator.reports.queries import distribution

T0 = dt.datetime(2031, 3, 3, 9, 0, tzinfo=dt.UTC)  # a Monday
# Monday to Friday 10:00-18:00 Moscow (07:00-15:00 UTC)
HOURS = {"timezone": "Europe/Moscow", "days": {d: [["10:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}}


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def conv(status: str = "resolved", **kw: Any) -> Any:
    base = {"id": 1, "created_at": at(0), "status": status, "team_id": 7, "queue_id": 3, "assignee_id": None,
            "queued_at": None, "resolved_at": None, "last_inbound_channel_id": 5}
    return SimpleNamespace(**{**base, **kw})


def tr(minute: float, frm: str | None, to: str, assignee: int | None = None) -> Any:
    return SimpleNamespace(at=at(minute), from_status=frm, to_status=to, assignee_id=assignee)


def msg(minute: float, who: str, kind: str = "text") -> Any:
    direction, sender = {"customer": ("in", "contact"), "agent": ("out", "agent"), "bot": ("out", "bot"),
                         "note": ("internal", "agent")}[who]
    return SimpleNamespace(created_at=at(minute), direction=direction, sender_type=sender,
                           kind="note" if who == "note" else kind, channel_id=5 if who == "customer" else None)


def fact(h: History, hours: dict[str, Any] | None = None, target: int | None = 60) -> dict[str, Any]:
    return compute(h, hours=hours, sl_target_seconds=target, channel_type="telegram")


def test_bot_handoff_wait_first_response_handle_and_resolution() -> None:
    h = History(conv=conv(), transitions=[
        tr(0, None, "bot"), tr(2, "bot", "queued"), tr(5, "queued", "assigned", 11),
        tr(30, "assigned", "resolved", 11)],
        messages=[msg(0, "customer"), msg(0.5, "bot"), msg(3, "note"), msg(6, "agent"), msg(10, "customer"),
                  msg(10.5, "customer"), msg(12, "agent")],
        bot=SimpleNamespace(flow_id=9, outcome="handed_off"))
    f = fact(h)
    assert f["wait_s"] == 3 * 60  # handoff at 2 → assigned at 5
    assert f["first_response_s"] == 4 * 60  # handoff at 2 → the agent at 6; the bot and the note are not replies
    assert f["response_s"] == 2 * 60  # the burst 10, 10.5 → reply at 12 counts from its first message
    assert f["responses"] == 1
    assert f["handle_s"] == 25 * 60 and f["resolution_s"] == 30 * 60
    assert f["service_level"] == 0  # 240 s > 60 s
    assert f["abandonment"] == 0 and f["bot_containment"] == 0 and f["bot_flow_id"] == 9
    assert f["agent_id"] == 11 and f["channel_id"] == 5 and f["channel_type"] == "telegram"
    assert f["resolved_hour"] == dt.datetime(2031, 3, 3, 9, tzinfo=dt.UTC)


def test_no_bot_step_counts_from_the_start_and_meets_the_service_level() -> None:
    h = History(conv=conv(status="assigned"), transitions=[tr(0, None, "queued"), tr(0.2, "queued", "assigned", 11)],
                messages=[msg(0, "customer"), msg(0.75, "agent")])
    f = fact(h)
    assert f["first_response_s"] == 45 and f["service_level"] == 1
    assert f["resolved_at"] is None and f["handle_s"] is None and f["resolutions"] is None
    assert f["abandonment"] is None  # still open: not known yet


def test_business_time_skips_the_night_and_the_weekend() -> None:
    # Friday 14:00 UTC (17:00 Moscow) → Monday 08:00 UTC (11:00 Moscow): 1 h on Friday + 1 h on Monday.
    fri = dt.datetime(2031, 3, 7, 14, 0, tzinfo=dt.UTC)
    mon = dt.datetime(2031, 3, 10, 8, 0, tzinfo=dt.UTC)
    minutes = (mon - T0).total_seconds() / 60
    start = (fri - T0).total_seconds() / 60
    h = History(conv=conv(created_at=fri), transitions=[tr(start, None, "queued"), tr(start, "queued", "assigned", 11),
                                                        tr(minutes + 30, "assigned", "resolved", 11)],
                messages=[msg(start, "customer"), msg(minutes, "agent")])
    f = fact(h, hours=HOURS)
    assert f["first_response_s"] == (mon - fri).total_seconds()
    assert f["first_response_bs"] == 2 * 3600
    assert f["resolution_bs"] == 2.5 * 3600
    assert f["service_level"] == 0 and f["service_level_bs"] == 0


def test_reopen_moves_the_resolution_and_counts_the_reopen() -> None:
    h = History(conv=conv(), transitions=[
        tr(0, None, "queued"), tr(1, "queued", "assigned", 11), tr(10, "assigned", "resolved", 11),
        tr(60 * 24 * 2, "resolved", "queued"), tr(60 * 24 * 2 + 1, "queued", "assigned", 12),
        tr(60 * 24 * 2 + 20, "assigned", "resolved", 12)],
        messages=[msg(0, "customer"), msg(2, "agent")])
    f = fact(h)
    assert f["reopens"] == 1 and f["transfers"] == 1 and f["agent_id"] == 12
    assert f["resolved_at"] == at(60 * 24 * 2 + 20)
    assert f["resolution_s"] == (60 * 24 * 2 + 20) * 60
    assert f["handle_s"] == (60 * 24 * 2 + 19) * 60  # the first assignment → the final resolution


def test_reopened_and_still_open_has_no_resolution() -> None:
    h = History(conv=conv(status="queued"), transitions=[tr(0, None, "queued"), tr(1, "queued", "resolved"),
                                                         tr(5, "resolved", "queued")],
                messages=[msg(0, "customer"), msg(5, "customer")])
    f = fact(h)
    assert f["resolved_at"] is None and f["resolved_hour"] is None and f["reopens"] == 1


def test_transfer_between_agents() -> None:
    h = History(conv=conv(), transitions=[tr(0, None, "queued"), tr(1, "queued", "assigned", 11),
                                          tr(3, "assigned", "assigned", 12), tr(9, "assigned", "resolved", 12)],
                messages=[msg(0, "customer"), msg(4, "agent")])
    f = fact(h)
    assert f["transfers"] == 1 and f["agent_id"] == 12 and f["wait_s"] == 60 and f["handle_s"] == 8 * 60


def test_abandoned_before_any_reply() -> None:
    h = History(conv=conv(), transitions=[tr(0, None, "queued"), tr(30, "queued", "resolved")],
                messages=[msg(0, "customer")])
    f = fact(h)
    assert f["abandonment"] == 1 and f["first_response_s"] is None and f["service_level"] == 0


def test_contained_by_the_bot() -> None:
    h = History(conv=conv(), transitions=[tr(0, None, "bot"), tr(3, "bot", "resolved")],
                messages=[msg(0, "customer"), msg(0.1, "bot")], bot=SimpleNamespace(flow_id=9, outcome="contained"))
    f = fact(h)
    assert f["bot_containment"] == 1 and f["abandonment"] is None and f["first_response_s"] is None
    assert f["service_level"] is None and f["wait_s"] is None


@pytest.mark.parametrize(("scale", "score", "expected"), [
    ("csat", 5, {"csat": 1, "csat_score": 5}), ("csat", 3, {"csat": 0, "csat_score": 3}),
    ("nps", 10, {"nps": 100, "nps_score": 10}), ("nps", 8, {"nps": 0}), ("nps", 6, {"nps": -100})])
def test_late_rating_lands_in_its_own_hour(scale: str, score: int, expected: dict[str, int]) -> None:
    three_days = at(60 * 24 * 3 + 7)
    h = History(conv=conv(), transitions=[tr(0, None, "queued"), tr(1, "queued", "resolved")],
                messages=[msg(0, "customer")],
                rating=SimpleNamespace(scale=scale, score=score, created_at=three_days))
    f = fact(h)
    assert {k: f[k] for k in expected} == expected
    assert f["rated_hour"] == dt.datetime(2031, 3, 6, 9, tzinfo=dt.UTC)
    assert f["started_hour"] == dt.datetime(2031, 3, 3, 9, tzinfo=dt.UTC)


@pytest.mark.parametrize(("clocks", "expected"), [
    (["hit", "hit"], 1), (["hit", "missed"], 0), (["hit", "running"], None), (["cancelled"], None), ([], None),
    (["hit", "cancelled"], 1)])
def test_sla_compliance_needs_every_target_met(clocks: list[str], expected: int | None) -> None:
    h = History(conv=conv(), transitions=[tr(0, None, "queued"), tr(1, "queued", "resolved")], clocks=clocks)
    assert fact(h)["sla_compliance"] == expected


def test_distribution_median_and_p90() -> None:
    d = distribution([10, 20, 30, 40, 50, 60, 70, 80, 90, 1000])
    assert (d.count, d.median, d.p90) == (10, 55.0, 90.0)
    assert d.mean == pytest.approx(145.0)
    assert distribution([]).count == 0


def test_every_metric_is_defined_in_both_languages() -> None:
    names = [m.name for m in BUILTIN]
    assert len(names) == len(set(names))
    for required in ("wait_time", "first_response_time", "response_time", "handle_time", "resolution_time",
                     "service_level", "sla_compliance", "abandonment", "bot_containment", "csat", "nps", "occupancy"):
        assert required in names, f"product.md's {required} is missing from reports/metrics.py BUILTIN"
    for m in BUILTIN:
        assert m.definition["en"] and m.definition["ru"] and m.title["en"] and m.title["ru"], m.name
