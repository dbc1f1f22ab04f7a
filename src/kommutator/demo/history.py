"""About 90 days of past conversations for the demo, so reports and the staffing forecast have something to show.

Only raw history is written — contacts and identities, conversations, messages, the timeline
(``conversation_transitions``), bot sessions, SLA clocks and ratings — in the shapes the product's own code
writes them (the intake, the bot's hand-off, routing, an agent's replies and resolution, the rating question and
answer), with timestamps in order. Everything was resolved a day before now, so nothing of it is live work.

Traffic has daily and weekly seasonality in Moscow time (busy weekday mornings and afternoons, quiet nights,
calm weekends) and a slow growth; the bot contains about a quarter; waits grow at the peaks, where first-response
targets are missed; ratings are mostly good, worse after a long wait. Written with Core bulk inserts: a few
seconds for ~8 000 conversations on SQLite.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, func, insert, select

from kommutator.bot.models import BotSession
from kommutator.contacts.models import ChannelScore, Contact, Identity
from kommutator.contacts.preferred import weight
from kommutator.conversations.models import Conversation, Message, Transition
from kommutator.db import Tx
from kommutator.quality.csat import ASK_WITHIN
from kommutator.quality.models import QualityState, Rating, SlaClock

MSK = ZoneInfo("Europe/Moscow")
DAYS = 90
SEED = 14

# Conversations opened per hour of a Monday–Friday in Moscow (before the day-of-week factor).
HOURLY = [0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.6, 1.5, 3.5, 6.0, 7.5, 8.0, 7.0, 6.5, 7.5, 7.5, 7.0, 6.0, 5.0, 4.5,
          4.0, 3.0, 1.8, 0.9]
DOW = [1.15, 1.05, 1.0, 1.0, 0.95, 0.55, 0.45]  # Monday … Sunday
WEEKEND_SHIFT = 1  # people write an hour later at the weekend

FIRST = ["Ivan", "Olga", "Pavel", "Elena", "Sergey", "Anna", "Dmitry", "Maria", "Alexei", "Natalia", "Emily", "James",
         "Sarah", "Tom", "Laura", "Mark"]
LAST = ["Ivanov", "Petrova", "Sidorov", "Kuznetsova", "Smirnov", "Popova", "Orlov", "Volkova", "Clark", "Miller",
        "Becker", "Wilson", "Evans", "Brown"]

TOPICS = {  # key: (queue, ru opening, en opening, ru agent reply, en agent reply, bot choice)
    "status": ("General support", "Где мой заказ {n}?", "Where is my order {n}?",
               "Здравствуйте! Заказ {n} передан курьеру, привезут завтра.",
               "Hello! Order {n} is with the courier and arrives tomorrow.", "Order status"),
    "refund": ("Billing", "Хочу вернуть деньги за заказ {n}.", "I'd like a refund for order {n}.",
               "Здравствуйте! Оформила возврат по заказу {n}, деньги придут за 3 дня.",
               "Hello! The refund for order {n} is on its way, 3 working days.", "Talk to an agent"),
    "charge": ("Billing", "С меня дважды списали оплату.", "I was charged twice.",
               "Здравствуйте! Вижу двойное списание, вторую оплату отменили.",
               "Hello! I can see the double charge; the second one is cancelled.", "Talk to an agent"),
    "order": ("Orders", "Хочу оформить заказ на 3 товара.", "I want to place an order for 3 items.",
              "Здравствуйте! Оформила заказ {n}, ссылка на оплату в письме.",
              "Hello! Order {n} is placed, the payment link is in your email.", "New order"),
    "complaint": ("General support", "Курьер опоздал на два часа.", "The courier was two hours late.",
                  "Здравствуйте! Приносим извинения, начислили бонус 300 ₽.",
                  "Hello! We are sorry; we have added a 300 ₽ bonus to your account.", "Leave a complaint"),
    "address": ("General support", "Как изменить адрес доставки?", "How do I change the delivery address?",
                "Здравствуйте! Изменила адрес, курьер предупреждён.",
                "Hello! The address is changed and the courier knows.", "Talk to an agent"),
}
TOPIC_WEIGHTS = {"status": 30, "refund": 12, "charge": 8, "order": 20, "complaint": 10, "address": 20}
BOT_ANSWERS = {"ru": "Заказ {n} в пути, доставка завтра с 10 до 14.", "en": "Order {n} is on its way: tomorrow, 10–14."}
FOLLOW_UPS = {"ru": ["Спасибо, а можно побыстрее?", "Хорошо, жду.", "А чек пришлёте?"],
              "en": ["Thanks, can it be faster?", "OK, I'll wait.", "Will you send the receipt?"]}
AGENT_FOLLOW_UPS = {"ru": ["Конечно, уже отправила.", "Да, всё сделаю.", "Проверила — всё в порядке."],
                    "en": ["Sure, it's sent.", "Yes, done.", "I checked, all is fine."]}
GOOD_COMMENTS = ["Быстро и вежливо, спасибо!", "Great help, thanks!", "Всё понятно объяснили."]
BAD_COMMENTS = ["Долго ждал ответа.", "Waited far too long.", "Курьер так и не приехал.", "Nobody solved my problem."]
CSAT_QUESTION = {"ru": "Пожалуйста, оцените, как мы вам помогли (1–5).",
                 "en": "Please rate how we helped you (1-5)."}
CSAT_LABELS = ["1", "2", "3", "4", "5"]


@dataclass
class Demo:
    """What the history needs of the demo workspace."""

    queues: dict[str, tuple[int, int | None]]  # name -> (id, team id)
    agents: dict[int, list[tuple[int, str]]]  # team id -> [(user id, name)]
    channels: list[tuple[int, str, int]]  # (id, type, weight)
    flow_id: int | None
    policy_id: int | None
    first_response_seconds: int = 600
    resolution_seconds: int = 4 * 3600


@dataclass
class Rows:
    conversations: list[dict[str, Any]] = field(default_factory=list)
    messages: list[list[dict[str, Any]]] = field(default_factory=list)  # per conversation, without its id
    transitions: list[list[dict[str, Any]]] = field(default_factory=list)
    sessions: list[dict[str, Any] | None] = field(default_factory=list)
    clocks: list[list[dict[str, Any]]] = field(default_factory=list)
    rating: list[dict[str, Any] | None] = field(default_factory=list)
    quality: list[dict[str, Any] | None] = field(default_factory=list)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def arrivals(rng: random.Random, start: dt.date, end: dt.datetime) -> list[dt.datetime]:
    """When conversations open: a Poisson count per local half hour with the seasonal rate, spread within it."""
    out: list[dt.datetime] = []
    day = start
    while True:
        growth = 1 + 0.2 * (day - start).days / DAYS
        wd = day.weekday()
        for half in range(48):
            hour = half // 2
            if wd >= 5:
                hour = (hour - WEEKEND_SHIFT) % 24
            lam = HOURLY[hour] / 2 * DOW[wd] * growth * rng.lognormvariate(0, 0.12)
            base = dt.datetime.combine(day, dt.time(half // 2, 30 * (half % 2)), tzinfo=MSK).astimezone(dt.UTC)
            for _ in range(_poisson(rng, lam)):
                at = base + dt.timedelta(seconds=rng.uniform(0, 1800))
                if at >= end:
                    return sorted(out)
                out.append(at)
        day += dt.timedelta(days=1)


def _orders_open(at: dt.datetime) -> bool:
    local = at.astimezone(MSK)
    return local.weekday() < 6 and 9 <= local.hour < 21


def build(rng: random.Random, demo: Demo, contacts: list[tuple[int, str, str]], starts: list[dt.datetime],
          identities: dict[tuple[int, str], str], until: dt.datetime | None = None) -> Rows:
    """Every row of every conversation (ids of conversations are filled in when they are inserted)."""
    rows = Rows()
    chan_ids = [c for c in demo.channels]
    weights = [c[2] for c in demo.channels]
    topics, topic_w = list(TOPIC_WEIGHTS), list(TOPIC_WEIGHTS.values())
    busy_until: dict[str, list[dt.datetime]] = {}
    for n, t0 in enumerate(starts):
        contact_id, lang, _name = contacts[rng.randrange(len(contacts))]
        channel_id, channel_type, _ = rng.choices(chan_ids, weights)[0]
        identities.setdefault((contact_id, channel_type), f"hist-{channel_type}-{contact_id}")
        topic = rng.choices(topics, topic_w)[0]
        queue_name, ru, en, ru_reply, en_reply, choice = TOPICS[topic]
        order_no = str(40000 + rng.randrange(60000))
        opening = (ru if lang == "ru" else en).format(n=order_no)
        msgs: list[dict[str, Any]] = []
        trans: list[dict[str, Any]] = []
        clocks: list[dict[str, Any]] = []

        def msg(at: dt.datetime, direction: str, sender: str, text: str, *, user: int | None = None,
                kind: str = "text", payload: dict[str, Any] | None = None, key: str = "",
                msgs: list[dict[str, Any]] = msgs, channel_id: int = channel_id, n: int = n) -> None:
            inbound = direction == "in"
            msgs.append({"direction": direction, "sender_type": sender, "sender_user_id": user, "kind": kind,
                         "channel_id": None if kind == "note" else channel_id,
                         "provider_message_id": f"hist-{n}-{key or len(msgs)}" if inbound else None,
                         "text": text, "payload": payload or {},
                         "status": "received" if inbound or kind == "note" else "delivered", "status_reason": "",
                         "created_at": at, "status_updated_at": None if inbound or kind == "note" else at})

        def step(at: dt.datetime, frm: str | None, to: str, reason: str, *, assignee: int | None = None,
                 team: int | None = None, actor: int | None = None, trans: list[dict[str, Any]] = trans) -> None:
            trans.append({"from_status": frm, "to_status": to, "assignee_id": assignee, "team_id": team,
                          "actor_user_id": actor, "reason": reason, "at": at})

        step(t0, None, "bot", f"new message on {channel_type} channel {channel_id}")
        msg(t0, "in", "contact", opening)
        greeting = ("Здравствуйте! Я бот магазина. Чем помочь?" if lang == "ru"
                    else "Hello! I'm the shop's bot. How can I help?")
        msg(t0 + dt.timedelta(seconds=1), "out", "bot", greeting)
        t_choice = t0 + dt.timedelta(seconds=rng.uniform(8, 40))
        msg(t_choice, "in", "contact", choice, payload={"button": choice.lower().replace(" ", "_")})
        contained = (topic == "status" and rng.random() < 0.75) or rng.random() < 0.06
        conv: dict[str, Any] = {
            "contact_id": contact_id, "priority": "high" if topic == "complaint" and rng.random() < 0.3 else "normal",
            "subject": opening[:120], "last_inbound_channel_id": channel_id, "created_at": t0,
            "last_customer_message_at": t_choice, "routing_weight": 1.0, "routing_notices": {},
            "routing_hold": "", "status": "resolved"}
        session: dict[str, Any] | None = None
        rating: dict[str, Any] | None = None
        quality: dict[str, Any] | None = None
        if contained:
            t_end = t_choice + dt.timedelta(seconds=rng.uniform(2, 6))
            msg(t_end, "out", "bot", BOT_ANSWERS[lang].format(n=order_no))
            t_res = t_end + dt.timedelta(seconds=rng.uniform(60, 240))
            step(t_res, "bot", "resolved", "resolved by the bot: answered")
            default_queue = demo.queues["General support"]
            conv.update(queue_id=default_queue[0], team_id=default_queue[1], resolved_at=t_res, updated_at=t_res,
                        last_message_at=t_end)
            if demo.flow_id is not None:
                session = {"status": "resolved", "outcome": "contained", "summary": f"{choice}: {order_no}",
                           "state": {"node": "end", "language": lang, "vars": {"order": order_no},
                                     "trail": [f"menu: chose «{choice}»"]},
                           "created_at": t0, "updated_at": t_res, "finished_at": t_res}
        else:
            if queue_name == "Orders" and not _orders_open(t0):
                queue_name = "General support"
            queue_id, team_id = demo.queues[queue_name]
            t_q = t_choice + dt.timedelta(seconds=rng.uniform(3, 90))
            reason = "the customer asked for an agent" if choice == "Talk to an agent" else choice.lower()
            step(t_q, "bot", "queued", f"handed off by the bot to queue {queue_name}: {reason}", team=team_id)
            msg(t_q, "internal", "bot", f"{choice}. {opening}", kind="note",
                payload={"pinned": True, "bot": {"event": "handoff", "reason": reason, "vars": {"order": order_no},
                                                 "skills": []}})
            # The wait grows when the team's agents are busy: a queue of free-at times per team.
            agents = demo.agents.get(team_id or 0) or demo.agents[0]
            free = busy_until.setdefault(queue_name, [t_q] * len(agents))
            k = min(range(len(free)), key=lambda i: free[i])
            wait = max(0.0, (free[k] - t_q).total_seconds()) + rng.expovariate(1 / 25)
            hour = t_q.astimezone(MSK).hour
            if hour < 8 or hour >= 22:  # nobody on shift at night: the first agent of the morning takes it
                wait += rng.uniform(900, 5 * 3600)
            elif rng.random() < 0.08:  # an agent stuck with a hard case
                wait += rng.uniform(240, 1500)
            wait = min(wait, 9 * 3600.0)
            abandoned = (wait > 1200 and rng.random() < 0.5) or rng.random() < 0.02
            t_a = t_q + dt.timedelta(seconds=wait)
            agent_id, agent_name = agents[k]
            step(t_a, "queued", "assigned", f"assigned to {agent_name} (least busy)", assignee=agent_id,
                 team=team_id)
            t = t_a + dt.timedelta(seconds=rng.uniform(5, 40))
            first_reply: dt.datetime | None = None
            last_in = t_choice
            if not abandoned:
                t = t + dt.timedelta(seconds=rng.uniform(10, 100))
                msg(t, "out", "agent", (ru_reply if lang == "ru" else en_reply).format(n=order_no), user=agent_id)
                first_reply = t
                for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
                    t += dt.timedelta(seconds=rng.uniform(30, 300))
                    msg(t, "in", "contact", rng.choice(FOLLOW_UPS[lang]))
                    last_in = t
                    t += dt.timedelta(seconds=rng.uniform(15, 200))
                    msg(t, "out", "agent", rng.choice(AGENT_FOLLOW_UPS[lang]), user=agent_id)
            t_res = t + dt.timedelta(seconds=rng.uniform(60, 420))
            step(t_res, "assigned", "resolved", "the customer left" if abandoned else f"set by {agent_name}",
                 assignee=agent_id, team=team_id, actor=agent_id)
            free[k] = max(free[k], t_a) + (t_res - t_a) / 2.2  # agents work on about two chats at once
            conv.update(queue_id=queue_id, team_id=team_id, assignee_id=agent_id, queued_at=t_q, assigned_at=t_a,
                        accepted_at=t_a + dt.timedelta(seconds=rng.uniform(3, 30)), first_response_at=first_reply,
                        resolved_at=t_res, updated_at=t_res, last_message_at=t, last_customer_message_at=last_in)
            if demo.flow_id is not None:
                session = {"status": "handoff", "outcome": "handed_off", "summary": f"{choice}. {opening}",
                           "state": {"node": "handoff", "language": lang, "vars": {"order": order_no},
                                     "trail": [f"menu: chose «{choice}»"]},
                           "created_at": t0, "updated_at": t_q, "finished_at": t_q}
            if demo.policy_id is not None:
                target = demo.first_response_seconds
                due = t_q + dt.timedelta(seconds=target)
                frt = None if first_reply is None else (first_reply - t_q).total_seconds()
                clocks.append({"target": "first_response", "started_at": t_q, "target_seconds": target,
                               "due_at": due, "warn_at": t_q + dt.timedelta(seconds=target * 0.8),
                               "status": "cancelled" if frt is None else ("hit" if frt <= target else "missed"),
                               "elapsed_seconds": round(frt if frt is not None else (t_res - t_q).total_seconds()),
                               "counted_at": first_reply or t_res, "hit_at": first_reply,
                               "warned_at": due - dt.timedelta(seconds=target * 0.2) if frt and frt > target * 0.8
                               else None, "breached_at": due if (frt is None and (t_res - t_q).total_seconds() > target)
                               or (frt is not None and frt > target) else None})
                res_target = demo.resolution_seconds
                elapsed = (t_res - t0).total_seconds()
                clocks.append({"target": "resolution", "started_at": t0, "target_seconds": res_target,
                               "due_at": t0 + dt.timedelta(seconds=res_target),
                               "warn_at": t0 + dt.timedelta(seconds=res_target * 0.8),
                               "status": "hit" if elapsed <= res_target else "missed",
                               "elapsed_seconds": round(elapsed),
                               "counted_at": t_res, "hit_at": t_res if elapsed <= res_target else None,
                               "warned_at": None, "breached_at": t0 + dt.timedelta(seconds=res_target)
                               if elapsed > res_target else None})
            if not abandoned:
                asked = t_res + dt.timedelta(seconds=2)
                msg(asked, "out", "system", CSAT_QUESTION[lang],
                    payload={"automatic": "csat", "buttons": [{"id": f"csat:{i}", "label": CSAT_LABELS[i - 1]}
                                                             for i in range(1, 6)]})
                conv["last_message_at"] = asked
                quality = {"policy_id": demo.policy_id, "csat_state": "skipped", "csat_scale": "csat",
                           "csat_asked_at": asked, "updated_at": asked, "checked_message_id": 0}
                if rng.random() < 0.55:
                    slow = wait > 300
                    score = rng.choices([5, 4, 3, 2, 1], [25, 25, 15, 15, 20] if slow else [60, 25, 7, 3, 5])[0]
                    answered = asked + dt.timedelta(seconds=rng.uniform(20, 1800))
                    msg(answered, "in", "contact", str(score), payload={"button": f"csat:{score}"})
                    comment = ""
                    if (score <= 2 and rng.random() < 0.7) or (score >= 4 and rng.random() < 0.15):
                        comment = rng.choice(BAD_COMMENTS if score <= 2 else GOOD_COMMENTS)
                        answered += dt.timedelta(seconds=rng.uniform(10, 90))
                        msg(answered, "in", "contact", comment)
                    conv.update(last_message_at=answered, last_customer_message_at=answered, updated_at=answered)
                    rating = {"contact_id": contact_id, "scale": "csat", "score": score, "comment": comment,
                              "channel_id": channel_id, "agent_id": agent_id, "created_at": answered}
                    quality.update(csat_state="done", updated_at=answered)
        # As the intake and do_send_message keep them: the latest message of any kind, the customer's latest.
        conv["last_message_at"] = max(m["created_at"] for m in msgs)
        conv["last_customer_message_at"] = max(m["created_at"] for m in msgs if m["direction"] == "in")
        if until is not None and max(conv["last_message_at"], trans[-1]["at"]) >= until:
            continue  # it would still be going on now (a night's wait): history holds only what has finished
        rows.conversations.append(conv)
        rows.messages.append(msgs)
        rows.transitions.append(trans)
        rows.sessions.append(session)
        rows.clocks.append(clocks)
        rows.rating.append(rating)
        rows.quality.append(quality)
    return rows


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def _sqlite_time(v: dt.datetime | None) -> str | None:
    """Naive UTC with microseconds, as db.UtcDateTime and SQLite's DATETIME store it (every value here is UTC)."""
    return None if v is None else v.replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_json(v: Any) -> str | None:
    return None if v is None else json.dumps(v)


def _converter(table: Table, column: str) -> Any:
    kind = type(table.c[column].type).__name__
    return _sqlite_time if kind == "UtcDateTime" else _sqlite_json if kind == "JSON" else None


def _default(table: Table, column: str) -> Any:
    default = table.c[column].default
    arg = getattr(default, "arg", None)
    return arg(None) if callable(arg) else arg


async def _insert(tx: Tx, table: Table, rows: list[dict[str, Any]], *, ids: bool = False) -> list[int]:
    """Insert ``rows`` (all with the same keys) in one executemany; their new ids, in order, when asked.

    On SQLite the rows go straight to the driver: SQLAlchemy's per-value processing of ~300 000 timestamps took
    most of the seeding time. The one writer owns the database, so new rowids follow the largest one.
    """
    if not rows:
        return []
    if tx.conn.dialect.name != "sqlite":
        if ids:
            stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            return [int(i) for i in (await tx.session.execute(stmt, rows)).scalars()]
        await tx.session.execute(insert(table), rows)
        return []
    compiled = insert(table).values({c: bindparam(c) for c in rows[0]}).compile(dialect=tx.conn.dialect)
    order = list(compiled.positiontup or [])
    missing = [c for c in order if c not in rows[0]]  # columns with a Python default (e.g. updated_at)
    if missing:
        defaults = {c: _default(table, c) for c in missing}
        rows = [{**defaults, **r} for r in rows]
    top = int((await tx.conn.execute(select(func.coalesce(func.max(table.c.id), 0)))).scalar_one()) if ids else 0
    conv = [(c, _converter(table, c)) for c in order]
    await tx.conn.exec_driver_sql(str(compiled), [tuple(f(r[c]) if f else r[c] for c, f in conv) for r in rows])
    return list(range(top + 1, top + 1 + len(rows))) if ids else []


async def write_history(tx: Tx, demo: Demo, *, now: dt.datetime, days: int = DAYS) -> int:
    """Seed ``days`` of resolved history ending a day before ``now``; the number of conversations."""
    rng = random.Random(SEED)
    # History ends a day before now: the quality monitor's start-up sweep re-checks every conversation resolved in
    # the last ASK_WITHIN (rating questions after downtime), which would keep a fresh demo's writer busy.
    quiet = now - ASK_WITHIN
    end = quiet - dt.timedelta(hours=3)
    first_day = (now.astimezone(MSK) - dt.timedelta(days=days)).date()
    starts = arrivals(rng, first_day, end)
    contacts_t, identities_t = _table(Contact), _table(Identity)
    people: list[dict[str, Any]] = []
    for _ in range(1200):
        lang = "ru" if rng.random() < 0.7 else "en"
        people.append({"name": f"{rng.choice(FIRST)} {rng.choice(LAST)}", "language": lang, "attributes": {},
                       "created_at": dt.datetime.combine(first_day, dt.time(0), tzinfo=MSK).astimezone(dt.UTC)
                       - dt.timedelta(days=rng.randrange(400)), "email": None, "phone": None})
    ids = await _insert(tx, contacts_t, people, ids=True)
    contacts = [(int(cid), str(p["language"]), str(p["name"])) for cid, p in zip(ids, people, strict=True)]
    identities: dict[tuple[int, str], str] = {}
    rows = build(rng, demo, contacts, starts, identities, until=quiet - dt.timedelta(minutes=10))
    columns = ("queue_id", "team_id", "assignee_id", "queued_at", "assigned_at", "accepted_at", "first_response_at")
    for c in rows.conversations:
        for column in columns:  # one executemany needs the same keys in every row
            c.setdefault(column, None)
    if identities:
        created = {cid: p["created_at"] for cid, p in zip(ids, people, strict=True)}
        await _insert(tx, identities_t, [
            {"contact_id": cid, "channel_type": ctype, "external_id": ext, "display": "",
             "created_at": created[cid]} for (cid, ctype), ext in identities.items()])
    convs_t = _table(Conversation)
    conv_ids = await _insert(tx, convs_t, rows.conversations, ids=True)
    messages, transitions, sessions, clocks, ratings, quality = [], [], [], [], [], []
    for cid, msgs, trans, session, cl, rating, q in zip(conv_ids, rows.messages, rows.transitions, rows.sessions,
                                                         rows.clocks, rows.rating, rows.quality, strict=True):
        messages += [{**m, "conversation_id": cid} for m in msgs]
        transitions += [{**t, "conversation_id": cid} for t in trans]
        if session is not None:
            sessions.append({**session, "conversation_id": cid, "flow_id": demo.flow_id, "flow_version": 1,
                             "last_input_id": 0, "timeout_due": False})
        clocks += [{**c, "conversation_id": cid, "policy_id": demo.policy_id, "seq": 0, "business": False,
                    "updated_at": c["counted_at"]} for c in cl]
        if rating is not None:
            ratings.append({**rating, "conversation_id": cid})
        if q is not None:
            quality.append({**q, "conversation_id": cid})
    for model, batch in ((Message, messages), (Transition, transitions), (BotSession, sessions),
                         (SlaClock, clocks), (Rating, ratings), (QualityState, quality)):
        await _insert(tx, _table(model), batch)
    await _insert(tx, _table(ChannelScore), _channel_scores(demo, rows.conversations, conv_ids, messages))
    return len(conv_ids)


def _channel_scores(demo: Demo, conversations: list[dict[str, Any]], conv_ids: list[Any],
                    messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The preferred-channel scores the intake would have kept for these customers' messages (contacts/preferred.py):
    so the card and the contacts list show a preferred channel for the demo's history too."""
    types = {channel_id: ctype for channel_id, ctype, _ in demo.channels}
    contact_of = {cid: c["contact_id"] for cid, c in zip(conv_ids, conversations, strict=True)}
    scores: dict[tuple[int, str], dict[str, Any]] = {}
    for m in messages:
        ctype = types.get(m["channel_id"])
        if m["direction"] != "in" or ctype is None:
            continue
        key = (int(contact_of[m["conversation_id"]]), ctype)
        row = scores.setdefault(key, {"contact_id": key[0], "channel_type": ctype, "score": 0.0, "messages": 0,
                                      "last_at": m["created_at"]})
        row["score"] += weight(m["created_at"])
        row["messages"] += 1
        row["last_at"] = max(row["last_at"], m["created_at"])
    return list(scores.values())
