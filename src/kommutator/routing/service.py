"""The database side of routing: one routing pass assigns waiting conversations to agents.

A pass runs in one write transaction. It reads the online agents, their load (the weights of the
conversations assigned to them now), skills and teams into an in-memory ``RoutingIndex``, then walks the
waiting conversations in order — queue priority, conversation priority, time waited — and for each one:

1. a personal manager who is online with room gets it first; if the manager is away, the customer is asked
   (in their channel and language) whether to wait or talk to someone else, and the conversation is held
   for the manager until the customer chooses or the wait runs out;
2. otherwise the queue's strategy chooses among the agents with the required skills (and team);
3. outside business hours the customer is told when the team is back, and a long wait earns a notice with
   the queue position and an estimated wait.

Correct under concurrency: on PostgreSQL a pass holds a transaction-level advisory lock, so passes of all
server processes run one at a time and each sees the assignments the previous one committed (no agent over
capacity); waiting rows are locked ``FOR UPDATE`` and only a conversation still queued and unassigned is
assigned (never twice). On SQLite the single writer serialises everything already.

Passes run when something changes (a new or re-queued conversation, an agent coming online or freeing
capacity, a customer answering) and every few seconds anyway (timers, other processes' changes).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, case, func, select, text, type_coerce, update

from kommutator.agents.models import Skill, Team, TeamMember, User, UserSkill
from kommutator.channels.models import Channel
from kommutator.clock import now
from kommutator.common import hours
from kommutator.common.waiting import text_of as waiting_text
from kommutator.contacts.models import Contact
from kommutator.conversations import lifecycle
from kommutator.conversations.automatic import do_send_automatic
from kommutator.conversations.models import Conversation, Message
from kommutator.db import Tx
from kommutator.events import AgentChanged, ConversationCreated, ConversationUpdated, Event, MessageCreated
from kommutator.notifications.actions import do_notify
from kommutator.queues.models import Queue
from kommutator.routing.engine import Agent, Need, RoutingIndex
from kommutator.routing.models import ConversationSkill
from kommutator.routing.texts import agent_text
from kommutator.routing.texts import text as say
from kommutator.routing.texts import when as say_when
from kommutator.runtime import Runtime
from kommutator.workers.base import BackgroundTask, wait_for_wake
from kommutator.workers.models import Timer
from kommutator.workers.timers import do_cancel, do_schedule

log = logging.getLogger(__name__)

ROUTING_LOCK = 0x6B6F6D6D  # any constant; one advisory lock for all routing passes
ACCEPT_TIMER = "routing.accept"
HOLD_TIMER = "routing.hold"
WAIT_BUTTON, OTHER_BUTTON = "route:wait", "route:other"
DEFAULT_STRATEGY = "least_busy"
_PRIORITY_RANK = case({"urgent": 3, "high": 2, "normal": 1, "low": 0}, value=Conversation.priority, else_=1)


@dataclass
class PassResult:
    assigned: list[tuple[int, int]] = field(default_factory=list)  # (conversation, agent)
    notices: int = 0
    examined: int = 0


def _ts(at: dt.datetime | None) -> float:
    return at.timestamp() if at is not None else 0.0


_AGENT_ROWS = (select(User.id, User.name, User.capacity, User.channel_weights, User.last_assigned_at,
                      User.presence_changed_at)
               .where(User.active.is_(True), User.presence == "online"))


def _agent_of(r: Any, load: float, skills: dict[int, int], teams: frozenset[int]) -> Agent:
    return Agent(id=r.id, capacity=float(r.capacity), load=load, online=True, skills=skills, teams=teams,
                 idle_since=max(_ts(r.last_assigned_at), _ts(r.presence_changed_at)),
                 # Round robin's turn: whoever was assigned longest ago goes first, across passes.
                 turn=int(_ts(r.last_assigned_at) * 1_000_000),
                 weights={k: float(v) for k, v in (r.channel_weights or {}).items()})


# What of an agent's row the index depends on, as the driver gives it (no JSON or datetime decoding: at 10,000
# agents that decoding was most of a pass): a change makes the pass re-read that agent's row.
_SIGNATURES = (select(User.id, User.name, User.capacity, type_coerce(User.channel_weights, String),
                      type_coerce(User.last_assigned_at, String), type_coerce(User.presence_changed_at, String))
               .where(User.active.is_(True), User.presence == "online"))


async def _signatures(tx: Tx) -> dict[int, tuple[Any, ...]]:
    return {r[0]: tuple(r[1:]) for r in (await tx.conn.execute(_SIGNATURES)).all()}


async def _loads(tx: Tx, ids: list[int] | None) -> dict[int, float]:
    """Agents' loads (``ids``: only theirs; None: every agent with a conversation assigned)."""
    load: dict[int, float] = defaultdict(float)
    if ids is not None and not ids:
        return load
    stmt = (select(Conversation.assignee_id, func.sum(Conversation.routing_weight))
            .where(Conversation.status == "assigned").group_by(Conversation.assignee_id))
    if ids is not None:
        stmt = stmt.where(Conversation.assignee_id.in_(ids))
    for uid, total in (await tx.conn.execute(stmt)).all():
        if uid is not None:
            load[uid] = float(total or 0)
    return load


async def _skills_and_teams(tx: Tx, ids: list[int]) -> tuple[dict[int, dict[int, int]], dict[int, set[int]]]:
    skills: dict[int, dict[int, int]] = defaultdict(dict)
    teams: dict[int, set[int]] = defaultdict(set)
    if ids:
        for us in (await tx.session.execute(select(UserSkill).where(UserSkill.user_id.in_(ids)))).scalars():
            skills[us.user_id][us.skill_id] = us.level
        for tm in (await tx.session.execute(select(TeamMember).where(TeamMember.user_id.in_(ids)))).scalars():
            teams[tm.user_id].add(tm.team_id)
    return skills, teams


async def _load_index(tx: Tx) -> tuple[RoutingIndex, dict[int, str]]:
    index, names, _, _ = await _build_index(tx)
    return index, names


async def _build_index(tx: Tx) -> tuple[RoutingIndex, dict[int, str], dict[int, tuple[Any, ...]], dict[int, float]]:
    """The index from the database, the agents' names, their rows' signatures and their loads."""
    rows = (await tx.session.execute(_AGENT_ROWS)).all()
    ids = [r.id for r in rows]
    load = await _loads(tx, ids)
    skills, teams = await _skills_and_teams(tx, ids)
    skill_names = {sid: name for sid, name in (await tx.session.execute(select(Skill.id, Skill.name))).all()}
    index = RoutingIndex(skill_names=skill_names)
    names = {}
    for r in rows:
        names[r.id] = r.name
        index.upsert(_agent_of(r, load[r.id], skills[r.id], frozenset(teams[r.id])))
    return index, names, await _signatures(tx), {r.id: load[r.id] for r in rows}


class LiveIndex:
    """The routing index kept between passes, so that a pass does not rebuild it from the database.

    Each pass still reads the online agents' rows and their loads (both change in other processes too, and
    capacity must hold across them): agents whose row changed are re-read, those gone offline dropped, loads
    set to what the database says. Skills and teams are re-read for new agents, for all when this process saw
    an ``AgentChanged`` (``invalidate``), and every ``resync`` seconds in full, for what other processes
    changed. A pass that fails invalidates it too (its assignments were rolled back).
    """

    def __init__(self, resync: float = 15.0) -> None:
        self.resync = resync
        self.index: RoutingIndex | None = None
        self.names: dict[int, str] = {}
        self._rows: dict[int, tuple[Any, ...]] = {}  # agent -> _signature of its row when last read
        self._loads: dict[int, float] = {}  # agent -> its load when last read (an assignment changes its row too)
        self._built_at = 0.0
        self.rebuilds = 0  # observed by tests and benchmarks

    def invalidate(self) -> None:
        self.index = None

    async def current(self, tx: Tx) -> tuple[RoutingIndex, dict[int, str]]:
        clock = time.monotonic()
        if self.index is None or clock - self._built_at >= self.resync:
            self.index, self.names, self._rows, self._loads = await _build_index(tx)
            self._built_at = clock
            self.rebuilds += 1
            return self.index, self.names
        index = self.index
        signatures = await _signatures(tx)
        for gone in set(self._rows) - set(signatures):
            index.remove(gone)
            self.names.pop(gone, None)
            del self._rows[gone]
        load = await _loads(tx, None)
        changed = [uid for uid, sig in signatures.items()
                   if sig != self._rows.get(uid) or abs(self._loads.get(uid, 0.0) - load.get(uid, 0.0)) > 1e-9]
        if not changed:
            return index, self.names
        rows = {r.id: r for r in (await tx.session.execute(_AGENT_ROWS.where(User.id.in_(changed)))).all()}
        skills, teams = await _skills_and_teams(tx, [uid for uid in changed if uid not in self._rows])
        for uid in changed:
            r = rows.get(uid)
            if r is None:  # went offline between the two reads (another process, PostgreSQL): not a candidate
                if uid in self._rows:
                    index.remove(uid)
                    self.names.pop(uid, None)
                    del self._rows[uid]
                continue
            known = index.get(uid) if uid in self._rows else None
            if known is None:
                index.upsert(_agent_of(r, load[uid], skills[uid], frozenset(teams[uid])))
            else:
                index.upsert(_agent_of(r, load[uid], known.skills, known.teams))
            self._rows[uid] = signatures[uid]
            self._loads[uid] = load[uid]
            self.names[uid] = r.name
        return index, self.names


def _note(tx: Tx, conv: Conversation, body: str, at: dt.datetime, code: str, **params: object) -> None:
    """A line in the conversation's timeline about what routing did (no status change)."""
    lifecycle.apply(tx, conv, lifecycle.note(lifecycle.Now.of(conv), at=at, reason=body, code=code, params=params))


_QUIET = frozenset({"agents"})  # values that may change without a new timeline line (how many are busy)


def _why(tx: Tx, conv: Conversation, code: str, params: dict[str, Any], at: dt.datetime) -> None:
    """Keep why the conversation still waits (common/waiting.py); a timeline line only when the reason changes."""
    notices = conv.routing_notices or {}
    old = notices.get("why") or {}
    if old.get("code") == code and old.get("params") == params:
        return
    conv.routing_notices = {**notices, "why": {"code": code, "params": params,
                                               "since": old.get("since") if old.get("code") == code
                                               else at.isoformat()}}
    if old.get("code") == code and {k: v for k, v in (old.get("params") or {}).items() if k not in _QUIET} == \
            {k: v for k, v in params.items() if k not in _QUIET}:
        return
    _note(tx, conv, f"waiting: {waiting_text(code, params, 'en')}", at, f"waiting_{code}", **params)


async def _assign(tx: Tx, conv: Conversation, agent_id: int, weight: float, reason: str, queue: Queue | None,
                  at: dt.datetime, code: str, params: dict[str, object]) -> bool:
    """Assign if the conversation is still queued and unassigned (it is locked on PostgreSQL)."""
    if conv.status != "queued" or conv.assignee_id is not None:
        return False
    old_team = conv.team_id
    team = queue.team_id if conv.team_id is None and queue is not None else conv.team_id
    if "why" in (conv.routing_notices or {}):
        conv.routing_notices = {k: v for k, v in conv.routing_notices.items() if k != "why"}
    lifecycle.apply(tx, conv, lifecycle.move(
        lifecycle.Now.of(conv), "assigned", at=at, reason=reason, code=code, params=params,
        values={"assignee_id": agent_id, "team_id": team, "assigned_at": at, "accepted_at": None,
                "routing_weight": weight, "routing_hold": "", "hold_until": None},
        changes={"assignee_id": [None, agent_id], "team_id": [old_team, team], "status": ["queued", "assigned"]}))
    await tx.session.execute(update(User).where(User.id == agent_id).values(last_assigned_at=at))
    await do_cancel(tx, kind=HOLD_TIMER, subject_type="conversation", subject_id=conv.id)
    timeout = queue.accept_timeout_seconds if queue is not None else 0
    if timeout > 0:
        warn_at = at + dt.timedelta(seconds=timeout - warning_lead(timeout))
        await do_schedule(tx, kind=ACCEPT_TIMER, subject_type="conversation", subject_id=conv.id,
                          due_at=warn_at, payload={"agent_id": agent_id, "stage": "warn"})
    return True


def warning_lead(timeout: int) -> int:
    """How long before the accept timeout acts the agent is warned: a minute, or half of a short timeout."""
    return max(1, min(60, timeout // 2))


_WAIT_WORDS = re.compile(r"\b(1|wait|will wait|подожд\w*|жд\w*|дожд\w*|менеджер\w*|manager)\b", re.I)
_OTHER_WORDS = re.compile(r"\b(2|other|another|anyone|someone|now|друг\w*|люб\w*|сейчас|специалист\w*)\b", re.I)


def understand_choice(message_text: str, button: str | None, manager_name: str) -> str | None:
    """'wait', 'other' or None from a button press, a number or free text in Russian or English."""
    if button in (WAIT_BUTTON, OTHER_BUTTON):
        return "wait" if button == WAIT_BUTTON else "other"
    words = message_text.strip().lower()
    if not words:
        return None
    first = words.split()[0].rstrip(".)")
    if first in ("1", "2"):
        return "wait" if first == "1" else "other"
    other, wait = bool(_OTHER_WORDS.search(words)), bool(_WAIT_WORDS.search(words))
    name = manager_name.split()[0].lower() if manager_name else ""
    if name and len(name) > 2 and name[:4] in words:
        wait = True
    if other and not wait:
        return "other"
    if wait and not other:
        return "wait"
    return None


def _wait_minutes(queue: Queue | None) -> int:
    return max(1, math.ceil((queue.manager_wait_seconds if queue else 900) / 60))


async def _ask_choice(tx: Tx, conv: Conversation, manager_name: str, language: str | None, queue: Queue | None,
                      at: dt.datetime) -> None:
    until = at + dt.timedelta(seconds=queue.manager_wait_seconds if queue else 900)
    lifecycle.apply(tx, conv, lifecycle.hold(lifecycle.Now.of(conv), "choice", until=until))
    conv.routing_notices = {**conv.routing_notices, "manager": at.isoformat(), "unclear": 0}
    await do_send_automatic(tx, conv, say("manager_absent", language, name=manager_name), purpose="manager_absent",
                            buttons=((WAIT_BUTTON, say("button_wait", language, name=manager_name)),
                                     (OTHER_BUTTON, say("button_other", language))))
    await do_schedule(tx, kind=HOLD_TIMER, subject_type="conversation", subject_id=conv.id, due_at=until)
    _note(tx, conv, f"personal manager {manager_name} is not available; the customer was asked whether to wait", at,
          "manager_absent_asked", manager=manager_name)


async def _answer(tx: Tx, conv: Conversation, manager_name: str, language: str | None, queue: Queue | None,
                  at: dt.datetime) -> None:
    """The customer wrote while being asked: understand their choice (or ask again, at most twice)."""
    asked = conv.routing_notices.get("manager")
    seen = int(conv.routing_notices.get("answer_seen", 0))
    conditions = [Message.conversation_id == conv.id, Message.direction == "in", Message.id > seen]
    if asked:
        conditions.append(Message.created_at >= dt.datetime.fromisoformat(asked))
    latest = (await tx.session.execute(
        select(Message.id, Message.text, Message.payload).where(*conditions)
        .order_by(Message.id.desc()).limit(1))).first()
    if latest is None:
        return
    conv.routing_notices = {**conv.routing_notices, "answer_seen": latest.id}
    choice = understand_choice(latest.text, (latest.payload or {}).get("button"), manager_name)
    if choice is None:
        unclear = int(conv.routing_notices.get("unclear", 0)) + 1
        conv.routing_notices = {**conv.routing_notices, "unclear": unclear}
        if unclear < 2:
            await do_send_automatic(tx, conv, say("choice_unclear", language, name=manager_name),
                                    purpose="choice_unclear",
                                    buttons=((WAIT_BUTTON, say("button_wait", language, name=manager_name)),
                                             (OTHER_BUTTON, say("button_other", language))))
            return
        choice = "other"  # asked twice without an answer we understand: do not loop, find a human
        _note(tx, conv, "the customer's answer was not understood twice; routed to the queue", at,
              "choice_not_understood")
    if choice == "wait":
        lifecycle.apply(tx, conv, lifecycle.hold(lifecycle.Now.of(conv), "manager"))
        await do_send_automatic(tx, conv, say("will_wait", language, name=manager_name,
                                              minutes=_wait_minutes(queue)), purpose="will_wait")
        _note(tx, conv, f"the customer chose to wait for {manager_name}", at, "customer_waits", manager=manager_name)
    else:
        lifecycle.apply(tx, conv, lifecycle.hold(lifecycle.Now.of(conv), "free", until=None))
        await do_cancel(tx, kind=HOLD_TIMER, subject_type="conversation", subject_id=conv.id)
        await do_send_automatic(tx, conv, say("will_route", language), purpose="will_route")
        _note(tx, conv, "the customer chose another specialist", at, "customer_chose_other")


async def _notices(tx: Tx, conv: Conversation, queue: Queue | None, language: str | None, position: int,
                   rates: dict[int | None, float], at: dt.datetime, on_duty: set[int | None]) -> int:
    """Out-of-hours and long-wait notices, each when due; the number sent.

    Outside business hours the customer is told once when the team is back; with nobody of the queue's team on
    duty (a team without hours, at night), once that nobody is there now, instead of a queue position every few
    minutes that no one will change until morning."""
    if queue is None:
        return 0
    notices = conv.routing_notices
    if queue.business_hours and not hours.is_open(queue.business_hours, at):
        if "out_of_hours" in notices:
            return 0
        opens = hours.next_open(queue.business_hours, at)
        body = (say("out_of_hours", language, when=say_when(opens, queue.business_hours["timezone"], language, at))
                if opens else say("out_of_hours_unknown", language))
        conv.routing_notices = {**conv.routing_notices, "out_of_hours": at.isoformat()}
        await do_send_automatic(tx, conv, body, purpose="out_of_hours")
        return 1
    every = queue.wait_notice_seconds
    if every <= 0 or conv.queued_at is None:
        return 0
    if queue.team_id not in on_duty:
        if "nobody_on_duty" in notices or at < conv.queued_at + dt.timedelta(seconds=every):
            return 0
        conv.routing_notices = {**conv.routing_notices, "nobody_on_duty": at.isoformat(), "wait": at.isoformat()}
        await do_send_automatic(tx, conv, say("nobody_on_duty", language), purpose="nobody_on_duty")
        return 1
    last = notices.get("wait")
    due_from = dt.datetime.fromisoformat(last) + dt.timedelta(seconds=max(every, 300)) if last else (
        conv.queued_at + dt.timedelta(seconds=every))
    if at < due_from:
        return 0
    per_minute = rates.get(queue.id, 0.0)
    if per_minute > 0:
        body = say("wait_notice", language, position=position, minutes=max(1, math.ceil(position / per_minute)))
    else:
        body = say("wait_notice_no_eta", language, position=position)
    conv.routing_notices = {**conv.routing_notices, "wait": at.isoformat()}
    await do_send_automatic(tx, conv, body, purpose="wait_notice")
    return 1


async def _team_name(tx: Tx, team_id: int, cache: dict[int, str]) -> str:
    if team_id not in cache:
        cache[team_id] = await tx.session.scalar(select(Team.name).where(Team.id == team_id)) or str(team_id)
    return cache[team_id]


async def _assignment_rates(tx: Tx, queue_ids: set[int], at: dt.datetime) -> dict[int | None, float]:
    """Assignments per minute in each queue over the last hour (for the estimated wait)."""
    if not queue_ids:
        return {}
    since = at - dt.timedelta(hours=1)
    rows = (await tx.session.execute(
        select(Conversation.queue_id, func.count())
        .where(Conversation.queue_id.in_(queue_ids), Conversation.assigned_at >= since)
        .group_by(Conversation.queue_id))).all()
    return {qid: n / 60.0 for qid, n in rows}


async def do_route(tx: Tx, *, limit: int = 500, live: LiveIndex | None = None) -> PassResult:
    """One routing pass (see the module docstring); ``live``: the index kept between passes (else built here)."""
    if live is None:
        return await _route(tx, limit, None)
    try:
        return await _route(tx, limit, live)
    except BaseException:
        live.invalidate()  # its loads may count assignments that are rolled back now
        raise


async def _route(tx: Tx, limit: int, live: LiveIndex | None) -> PassResult:
    result = PassResult()
    postgres = tx.conn.dialect.name == "postgresql"
    if postgres:
        await tx.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ROUTING_LOCK})
    at = now()
    queues = {q.id: q for q in (await tx.session.execute(select(Queue))).scalars()}
    stmt = (select(Conversation, Contact.manager_id, Contact.language, Channel.type)
            .join(Contact, Contact.id == Conversation.contact_id)
            .outerjoin(Channel, Channel.id == Conversation.last_inbound_channel_id)
            .outerjoin(Queue, Queue.id == Conversation.queue_id)
            .where(Conversation.status == "queued", Conversation.assignee_id.is_(None))
            .order_by(func.coalesce(Queue.priority, 0).desc(), _PRIORITY_RANK.desc(), Conversation.queued_at,
                      Conversation.id)
            .limit(limit))
    if postgres:
        stmt = stmt.with_for_update(of=Conversation, skip_locked=True, key_share=True)
    waiting = (await tx.session.execute(stmt)).all()
    if not waiting:
        return result
    index, names = await live.current(tx) if live is not None else await _load_index(tx)
    names = dict(names)
    manager_ids = {m for _, m, _, _ in waiting if m is not None} - set(names)
    if manager_ids:
        names.update({r.id: r.name for r in (await tx.session.execute(
            select(User.id, User.name).where(User.id.in_(manager_ids)))).all()})
    rates = await _assignment_rates(tx, {c.queue_id for c, _, _, _ in waiting if c.queue_id is not None}, at)
    # Teams with someone online (None: anyone online, for queues of no team).
    on_duty: set[int | None] = set((await tx.session.execute(
        select(TeamMember.team_id).join(User, User.id == TeamMember.user_id)
        .where(User.active.is_(True), User.presence == "online").distinct())).scalars())
    if len(index):
        on_duty.add(None)
    # Skills a conversation needs beyond its queue's (e.g. named by the bot's hand-off).
    extra: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for cs in (await tx.session.execute(select(ConversationSkill).where(
            ConversationSkill.conversation_id.in_([c.id for c, _, _, _ in waiting])))).scalars():
        extra[cs.conversation_id].append((cs.skill_id, cs.min_level))
    positions: dict[int | None, int] = defaultdict(int)
    explained: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}  # why nobody: once per distinct need
    team_names: dict[int, str] = {}
    t = at.timestamp()
    for conv, contact_manager, language, channel_type in waiting:
        result.examined += 1
        queue = queues.get(conv.queue_id) if conv.queue_id is not None else None
        positions[conv.queue_id] += 1
        ctype = channel_type or ""
        # 1. The personal manager first.
        if conv.routing_hold == "" and conv.preferred_agent_id is None and contact_manager is not None:
            conv.preferred_agent_id = contact_manager
        manager = conv.preferred_agent_id if conv.routing_hold != "free" else None
        if manager is not None:
            agent = index.get(manager)
            name = names.get(manager, "")
            weight = agent.weight_for(ctype) if agent else 1.0
            if agent is not None and agent.online and agent.load + weight <= agent.capacity:
                held = conv.routing_hold in ("choice", "manager")
                if await _assign(tx, conv, manager, weight,
                                 f"routed to the customer's personal manager {name} (online, "
                                 f"{agent.load:g} of {agent.capacity:g} in use)", queue, at, "routed_manager",
                                 {"agent_id": manager, "agent": name, "load": agent.load,
                                  "capacity": agent.capacity}):
                    index.assign(manager, weight, t)
                    result.assigned.append((conv.id, manager))
                    if held:
                        await do_send_automatic(tx, conv, say("manager_back", language, name=name),
                                                purpose="manager_back")
                continue
            if conv.routing_hold == "":
                await _ask_choice(tx, conv, name, language, queue, at)
                _why(tx, conv, "manager_away", {"manager_id": manager, "manager": name}, at)
                result.notices += 1
                continue
            if conv.routing_hold == "choice":
                await _answer(tx, conv, name, language, queue, at)
                if conv.routing_hold == "choice":
                    _why(tx, conv, "manager_away", {"manager_id": manager, "manager": name}, at)
                if conv.routing_hold != "free":
                    if conv.routing_hold == "manager":
                        _why(tx, conv, "manager_waited", {"manager_id": manager, "manager": name}, at)
                    continue
            elif conv.routing_hold == "manager":
                _why(tx, conv, "manager_waited", {"manager_id": manager, "manager": name}, at)
                continue
        # 2. The queue's strategy among agents with the skills.
        result.notices += await _notices(tx, conv, queue, language, positions[conv.queue_id], rates, at, on_duty)
        required = tuple((int(r["skill_id"]), int(r.get("min_level", 1))) for r in (queue.required_skills or [])) \
            if queue is not None else ()
        required += tuple(extra.get(conv.id, ()))
        need = Need(conversation_id=conv.id, required=required,
                    team_id=queue.team_id if queue is not None else conv.team_id, channel_type=ctype)
        decision = None
        if index.available() > 0:
            strategy = queue.strategy if queue is not None else DEFAULT_STRATEGY
            decision = index.choose(need, strategy, t)
        if decision is None:
            if queue is not None and queue.business_hours and not hours.is_open(queue.business_hours, at):
                opens = hours.next_open(queue.business_hours, at)
                zone = str(queue.business_hours.get("timezone") or "UTC")
                _why(tx, conv, "closed" if opens else "closed_unknown",
                     {"opens": f"{opens.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} ({zone})", "opens_at":
                      opens.astimezone(dt.UTC).isoformat()} if opens else {}, at)
                continue
            key = (need.required, need.team_id)
            if key not in explained:
                code, found = index.explain(need)
                if "team_id" in found:
                    found["team"] = await _team_name(tx, found["team_id"], team_names)
                explained[key] = (code, found)
            _why(tx, conv, explained[key][0], dict(explained[key][1]), at)
            continue
        reason = (f"routed by {decision.strategy.replace('_', ' ')} to {names.get(decision.agent_id, '')}: "
                  f"{decision.rule}; {decision.considered} candidate(s) examined in {decision.pool}")
        params: dict[str, object] = {"agent_id": decision.agent_id, "agent": names.get(decision.agent_id, ""),
                                     "strategy": decision.strategy, "considered": decision.considered}
        if await _assign(tx, conv, decision.agent_id, decision.weight, reason, queue, at, "routed", params):
            index.assign(decision.agent_id, decision.weight, t)
            result.assigned.append((conv.id, decision.agent_id))
    return result


# --- Timers -----------------------------------------------------------------------------------------------

async def do_accept_timeout(tx: Tx, timer: Timer) -> None:
    """The assigned agent has not opened the conversation: first warn them; when the time is up and they are
    not busy answering anyone (no reply or typing within the timeout), put it back in the queue, say why in
    the timeline, and set them Away, telling them so. The customer is not told their queue position again."""
    conv = await tx.session.get(Conversation, timer.subject_id, with_for_update={"key_share": True})
    agent_id = int(timer.payload.get("agent_id", 0))
    if conv is None or conv.status != "assigned" or conv.assignee_id != agent_id or conv.accepted_at is not None:
        return
    ts = now()
    user = await tx.session.get(User, agent_id)
    queue = await tx.session.get(Queue, conv.queue_id) if conv.queue_id else None
    seconds = queue.accept_timeout_seconds if queue else 0
    if seconds <= 0 or user is None:
        return  # the timeout was switched off meanwhile
    locale = user.locale
    lead = warning_lead(seconds)
    if timer.payload.get("stage") == "warn":
        waited = int((ts - conv.assigned_at).total_seconds()) if conv.assigned_at else seconds - lead
        await do_notify(tx, user_ids=[agent_id], kind="accept_warning", severity="warning",
                        conversation_id=conv.id,
                        title=agent_text("accept_warning", locale, conversation_id=conv.id, seconds=lead),
                        body=agent_text("accept_warning_body", locale, waited=waited),
                        data={"code": "accept_warning", "params": {"conversation_id": conv.id, "seconds": lead}})
        await do_schedule(tx, kind=ACCEPT_TIMER, subject_type="conversation", subject_id=conv.id,
                          due_at=ts + dt.timedelta(seconds=lead), payload={"agent_id": agent_id, "stage": "act"})
        return
    busy_since = ts - dt.timedelta(seconds=seconds)
    if user.last_active_at is not None and user.last_active_at >= busy_since:
        # Answering other customers: never taken from them; looked at again after another timeout.
        await do_schedule(tx, kind=ACCEPT_TIMER, subject_type="conversation", subject_id=conv.id,
                          due_at=ts + dt.timedelta(seconds=seconds), payload={"agent_id": agent_id, "stage": "act"})
        return
    name = user.name
    set_away = user.presence == "online"
    why = f"{name} did not open it within {seconds} s and was not answering other customers; back to the queue"
    lifecycle.apply(tx, conv, lifecycle.move(
        lifecycle.Now.of(conv), "queued", at=ts, reason=why + (f"; {name} set to away" if set_away else ""),
        code="accept_timeout", params={"agent_id": agent_id, "agent": name, "seconds": seconds, "set_away": set_away},
        values={"assignee_id": None}, record_assignee=agent_id,
        changes={"assignee_id": [agent_id, None], "status": ["assigned", "queued"]}))
    # The queue keeps its place (queued_at stays) and the customer, already told, is not told again now.
    conv.routing_notices = {**conv.routing_notices, "wait": ts.isoformat()}
    if set_away:
        user.presence, user.presence_changed_at = "away", ts
        tx.publish(AgentChanged(user_id=agent_id, changes={"presence": ["online", "away"],
                                                           "reason": "did not accept a conversation"}))
    await do_notify(tx, user_ids=[agent_id], kind="accept_missed", severity="warning", conversation_id=conv.id,
                    title=agent_text("accept_missed", locale, conversation_id=conv.id),
                    body=agent_text("accept_missed_body", locale, seconds=seconds),
                    data={"code": "accept_missed", "params": {"conversation_id": conv.id, "seconds": seconds,
                                                              "set_away": set_away}})


async def do_hold_expired(tx: Tx, timer: Timer) -> None:
    """The wait for the personal manager ran out: ask again or go to the queue, as the queue says."""
    conv = await tx.session.get(Conversation, timer.subject_id, with_for_update={"key_share": True})
    ts = now()
    if conv is None or conv.status != "queued" or conv.routing_hold not in ("choice", "manager"):
        return
    if conv.hold_until is not None and conv.hold_until > ts:
        return
    queue = await tx.session.get(Queue, conv.queue_id) if conv.queue_id else None
    contact = await tx.session.get(Contact, conv.contact_id)
    language = contact.language if contact else None
    manager = await tx.session.get(User, conv.preferred_agent_id) if conv.preferred_agent_id else None
    name = manager.name if manager else ""
    if (queue.manager_wait_expiry if queue else "ask") == "ask" and conv.routing_hold == "manager":
        await _ask_choice(tx, conv, name, language, queue, ts)
    else:
        lifecycle.apply(tx, conv, lifecycle.hold(lifecycle.Now.of(conv), "free", until=None))
        await do_send_automatic(tx, conv, say("wait_over_queue", language, name=name), purpose="wait_over")
        _note(tx, conv, f"the wait for {name} ran out; routed to the queue", ts, "manager_wait_over", manager=name)
    lifecycle.apply(tx, conv, lifecycle.announce(lifecycle.Now.of(conv), values=None,
                                                 routing_hold=conv.routing_hold))


# --- The background router -----------------------------------------------------------------------------

def _concerns_routing(event: Event) -> bool:
    """Whether a pass may have something to do after ``event``. A conversation with the bot is not routed, and
    neither its creation nor its messages nor the bot's changes to it wake the router (at 50 messages/s in
    new conversations they woke a pass every 0.2 s); one leaving an agent (capacity freed) does."""
    if isinstance(event, MessageCreated):
        return event.direction == "in" and event.assignee_id is None and event.conversation_status != "bot"
    if isinstance(event, ConversationCreated):
        return event.status != "bot"
    if isinstance(event, ConversationUpdated) and event.status == "bot":
        before = event.changes.get("status")
        return ("assignee_id" in event.changes or event.assignee_id is not None
                or (isinstance(before, list | tuple) and bool(before) and before[0] not in ("bot", "queued")))
    return True


class Router(BackgroundTask):
    """Runs passes when something changed and every ``interval`` seconds; ``run_pass`` runs one (tests)."""

    name_in_logs = "router"

    def __init__(self, rt: Runtime, *, interval: float = 2.0, min_gap: float = 0.2) -> None:
        super().__init__()
        self.rt = rt
        self.interval = interval
        # Under a burst of events passes run back to back at most every min_gap seconds: a pass holds the
        # writer, and one pass serves everything that changed meanwhile.
        self.min_gap = min_gap
        self._wake = asyncio.Event()
        self.live = LiveIndex()
        rt.bus.subscribe(self._on_event, kinds=(ConversationCreated, ConversationUpdated, MessageCreated,
                                                AgentChanged))
        # Agents changed on another process (cluster/): this process's index of them is read afresh too. The pass
        # such a change calls for runs on the process that committed it.
        rt.bus.subscribe(self._on_remote_agent, kinds=(AgentChanged,), everywhere=True)

    async def _on_remote_agent(self, event: Event) -> None:
        self.live.invalidate()

    async def _on_event(self, event: Event) -> None:
        if isinstance(event, AgentChanged):
            self.live.invalidate()  # skills or teams may have changed: the next pass reads the agents afresh
        if not _concerns_routing(event):
            return
        self._wake.set()

    async def run_pass(self) -> PassResult:
        return await self.rt.db.write(lambda tx: do_route(tx, live=self.live))

    async def run_until_idle(self, max_passes: int = 20) -> list[PassResult]:
        """Passes until one assigns nothing (tests)."""
        results = []
        for _ in range(max_passes):
            r = await self.run_pass()
            results.append(r)
            if not r.assigned:
                break
        return results

    async def _loop(self) -> None:
        while True:
            await wait_for_wake(self._wake, self.interval)
            self._wake.clear()
            try:
                await self.run_pass()
                await asyncio.sleep(self.min_gap)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("routing pass failed; the next one retries")
                await asyncio.sleep(self.interval)


def router_of(rt: Runtime) -> Router:
    if rt.router is None:
        rt.router = Router(rt)
    return rt.router
