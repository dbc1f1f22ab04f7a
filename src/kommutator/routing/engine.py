"""The automatic call distributor's decision: which agent takes a waiting conversation, in memory and fast.

Pure: no storage, no clock (callers pass ``now``). The routing service builds a RoutingIndex from the database,
asks ``choose()`` for each waiting conversation and records what it ``assign()``s.

Why this shape: scanning every agent costs about a millisecond at 10,000 agents (performance.md, P6). The index
keeps, for each strategy in use, a heap per skill, per team and one over everybody, holding only *available* agents
(online, load below capacity) in the strategy's order, and beside them the set of available agents per team, per
skill and per skill level. ``choose()`` walks the smallest heap every eligible agent must be in, best first, until
one passes the remaining checks; when the sets show that few agents meet all of a conversation's requirements (two
skills and a team, say, where a walk would pass hundreds), it intersects the sets and ranks those few directly.
Heap entries are never updated in place: when an agent's key or groups change, fresh entries are pushed and the
index remembers the live one (the same tuple in each of its heaps); older ones are stale, dropped when a walk meets
them, and a heap holding more than twice its live entries is rebuilt.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kommutator.routing import strategies
from kommutator.routing.strategies import Strategy

# Loads are sums of float weights (0.5 for an email, ...): a rounding residue must not refuse or admit a conversation.
EPS = 1e-9

# Sets per skill level go up to this level (the schema allows 1..10); a need above it uses this level's set, which
# still holds everyone eligible, and the level itself is checked on each candidate.
MAX_LEVEL = 10
# When the sets say at most about this many agents meet every requirement, rank them directly instead of walking.
DIRECT = 32

_Group = tuple[str, int, int]  # ("all", 0, 0), ("team", team, 0), ("skill", skill, 0: any level | level >= 2)
_ALL: _Group = ("all", 0, 0)
_Entry = tuple[Any, ...]  # (*strategy key, agent id)
_EMPTY: frozenset[int] = frozenset()


@dataclass
class Agent:
    id: int
    capacity: float                      # max concurrent load
    load: float = 0.0                    # sum of weights of conversations assigned now
    online: bool = True                  # only online agents are chosen
    skills: dict[int, int] = field(default_factory=dict)     # skill_id -> level (1..5)
    teams: frozenset[int] = frozenset()
    idle_since: float = 0.0              # when the agent last got a conversation or came online (seconds)
    weights: dict[str, float] = field(default_factory=dict)  # channel type -> weight (default 1.0)
    # Sequence number of the agent's last assignment, for round robin (0: never). assign() advances it; when
    # building an index from the database, seed it with any integer that grows with users.last_assigned_at
    # (e.g. its epoch microseconds): the index continues numbering above the largest seed.
    turn: int = 0

    def weight_for(self, channel_type: str) -> float:
        """Return how much one conversation of this channel type counts against capacity."""
        return self.weights.get(channel_type, 1.0)

    @property
    def available(self) -> bool:
        """Online with spare capacity."""
        return self.online and self.load < self.capacity - EPS


@dataclass(frozen=True)
class Need:
    """What a waiting conversation requires."""

    conversation_id: int
    required: tuple[tuple[int, int], ...] = ()  # (skill_id, min_level), all must hold
    team_id: int | None = None                  # only agents in this team (None: any team)
    channel_type: str = ""
    exclude: frozenset[int] = frozenset()       # agents not to choose (e.g. one whose accept timer ran out)


@dataclass(frozen=True)
class Decision:
    agent_id: int
    weight: float        # the load this conversation adds for that agent
    strategy: str
    considered: int      # candidates examined (live heap entries walked, or the candidates ranked directly)
    pool: str            # what was searched: "skill Billing (12 agents)" (a heap walked) or
                         # "skill Billing ≥ 3 ∩ team Sales (4 agents)" (the sets intersected, those ranked)
    rule: str            # why this agent, one sentence for the timeline


def _fit_weight(agent: Agent, need: Need) -> float | None:
    """The load ``need`` adds if an available agent has room, the team and the skills for it, else None (the
    hot-path check; ``eligible`` below states the same rule independently, as the tests' reference)."""
    weight = agent.weights.get(need.channel_type, 1.0) if agent.weights else 1.0
    if agent.load + weight > agent.capacity + EPS:
        return None
    if need.team_id is not None and need.team_id not in agent.teams:
        return None
    skills = agent.skills
    for skill, level in need.required:
        if skills.get(skill, 0) < level:
            return None
    return weight


def eligible(agent: Agent, need: Need) -> bool:
    """Say whether ``agent`` may take ``need`` now (the rule ``choose()`` applies; handy for brute-force checks)."""
    if not agent.available or agent.id in need.exclude:
        return False
    if agent.load + agent.weight_for(need.channel_type) > agent.capacity + EPS:
        return False
    if need.team_id is not None and need.team_id not in agent.teams:
        return False
    return all(agent.skills.get(skill, 0) >= level for skill, level in need.required)


def _heap_groups(agent: Agent) -> list[_Group]:
    return [_ALL, *(("skill", s, 0) for s in agent.skills), *(("team", t, 0) for t in agent.teams)]


def _set_groups(agent: Agent) -> list[_Group]:
    return [*_heap_groups(agent),
            *(("skill", s, lvl) for s, level in agent.skills.items() for lvl in range(2, min(level, MAX_LEVEL) + 1))]


def _copy(agent: Agent) -> Agent:
    return replace(agent, skills=dict(agent.skills), weights=dict(agent.weights), teams=frozenset(agent.teams))


class _Order:
    """One strategy's heaps, and each available agent's live entry: the one tuple object in all of its heaps."""

    __slots__ = ("heaps", "live", "strategy")

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.heaps: dict[_Group, list[_Entry]] = {}
        self.live: dict[int, _Entry] = {}


class RoutingIndex:
    """Agents by availability, skill and team, ready to answer 'who takes this conversation' in microseconds."""

    def __init__(self, *, skill_names: Mapping[int, str] | None = None, team_names: Mapping[int, str] | None = None,
                 compact_slack: int = 64, direct: int = DIRECT) -> None:
        """``skill_names``/``team_names`` only make ``Decision.pool``/``rule`` readable. Tuning (tests vary them):
        ``compact_slack`` is how many stale entries a heap may hold beyond its live ones before it is rebuilt;
        ``direct`` how few agents meeting every requirement are ranked directly rather than walked (0: always walk).
        """
        self._agents: dict[int, Agent] = {}
        self._turn = 0                            # last assignment's sequence number
        self._members: dict[_Group, set[int]] = {}  # available agents per group (= live entries of each heap)
        self._orders: dict[str, _Order] = {}       # strategy name -> its heaps, built on first use
        self._skill_names = dict(skill_names or {})
        self._team_names = dict(team_names or {})
        self._slack = compact_slack
        self._direct = direct

    # -- reads -----------------------------------------------------------------------------------------------

    def get(self, agent_id: int) -> Agent | None:
        """Return a copy of the agent as the index sees it (change it through upsert and friends)."""
        agent = self._agents.get(agent_id)
        return _copy(agent) if agent is not None else None

    def __len__(self) -> int:
        return len(self._agents)

    def available(self) -> int:
        """Count agents online with spare capacity."""
        return len(self._members.get(_ALL, _EMPTY))

    def stats(self) -> dict[str, Any]:
        """Return sizes for benchmarks and tests: agents, available, heaps and entries (live and stale)."""
        heaps = [h for o in self._orders.values() for h in o.heaps.values()]
        live = sum(len(self._members.get(g, _EMPTY)) for o in self._orders.values() for g in o.heaps)
        return {"agents": len(self._agents), "available": self.available(), "strategies": sorted(self._orders),
                "heaps": len(heaps), "entries": sum(map(len, heaps)), "live_entries": live,
                "sets": len(self._members), "set_members": sum(map(len, self._members.values()))}

    # -- changes ---------------------------------------------------------------------------------------------

    def upsert(self, agent: Agent) -> None:
        """Add the agent or replace what the index knows of it; ``turn`` never moves back."""
        if not (agent.capacity >= 0 and math.isfinite(agent.capacity)):
            raise ValueError(f"agent {agent.id}: capacity must be a finite number >= 0, not {agent.capacity!r}")
        if not (agent.load >= 0 and math.isfinite(agent.load)):
            raise ValueError(f"agent {agent.id}: load must be a finite number >= 0, not {agent.load!r}")
        bad = {k: w for k, w in agent.weights.items() if not (w > 0 and math.isfinite(w))}
        if bad:
            raise ValueError(f"agent {agent.id}: channel weights must be finite numbers > 0; fix {bad!r}")
        new = _copy(agent)
        old = self._agents.get(agent.id)
        if old is not None:
            if old.available:
                self._leave(old)
            new.turn = max(new.turn, old.turn)
        self._turn = max(self._turn, new.turn)
        self._agents[new.id] = new
        if new.available:
            self._join(new)
        self._renew(new, regroup=True)

    def remove(self, agent_id: int) -> None:
        """Forget the agent (nothing happens if it is unknown)."""
        agent = self._agents.pop(agent_id, None)
        if agent is not None:
            if agent.available:
                self._leave(agent)
            for order in self._orders.values():
                order.live.pop(agent_id, None)

    def set_online(self, agent_id: int, online: bool, at: float) -> None:
        """Mark the agent online (idle from ``at`` when it was offline) or offline."""
        agent = self._agent(agent_id)
        if agent.online == online:
            return
        was = agent.available
        agent.online = online
        if online:
            agent.idle_since = at
        self._renew(agent, was)

    def set_capacity(self, agent_id: int, capacity: float) -> None:
        """Change how much load the agent may carry (conversations already assigned stay)."""
        if not (capacity >= 0 and math.isfinite(capacity)):
            raise ValueError(f"agent {agent_id}: capacity must be a finite number >= 0, not {capacity!r}")
        agent = self._agent(agent_id)
        if agent.capacity == capacity:
            return
        was = agent.available
        agent.capacity = capacity
        self._renew(agent, was)

    def assign(self, agent_id: int, weight: float, now: float) -> None:
        """Record a conversation of ``weight`` given to the agent: load grows, idle restarts, its turn moves on.

        No capacity check here: pass what ``choose()`` decided (a supervisor's manual assignment may exceed it).
        """
        agent = self._agent(agent_id)
        was = agent.available
        agent.load = round(agent.load + weight, 9)
        agent.idle_since = now
        self._turn += 1
        agent.turn = self._turn
        self._renew(agent, was)

    def release(self, agent_id: int, weight: float, now: float) -> None:
        """Record a conversation of ``weight`` leaving the agent (resolved, transferred); load never goes below 0."""
        agent = self._agent(agent_id)
        was = agent.available
        agent.load = max(0.0, round(agent.load - weight, 9))
        self._renew(agent, was)

    # -- the decision ----------------------------------------------------------------------------------------

    def warm(self, strategy: str) -> None:
        """Build the strategy's heaps now rather than in the first choose() that uses it."""
        strat = strategies.get(strategy)
        if strat.name not in self._orders:
            self._build(strat)

    def choose(self, need: Need, strategy: str, now: float) -> Decision | None:
        """Return the agent the strategy puts first among those eligible for ``need``, or None; changes nothing."""
        strat = strategies.get(strategy)
        order = self._orders.get(strat.name)
        if order is None:
            order = self._build(strat)
        members = self._members
        # Every eligible agent is in each of these sets: one per required skill (at its level) and the team's.
        sets: list[tuple[int, _Group, set[int] | frozenset[int]]] = []
        for skill, level in need.required:
            if level >= 1:
                g = ("skill", skill, 0 if level == 1 else min(level, MAX_LEVEL))
                s = members.get(g, _EMPTY)
                sets.append((len(s), g, s))
        if need.team_id is not None:
            g = ("team", need.team_id, 0)
            s = members.get(g, _EMPTY)
            sets.append((len(s), g, s))
        if not sets:
            found = self._walk(order, _ALL, need)
            pool = self._describe([_ALL])
        else:
            named = [g for _, g, _ in sets]
            sets.sort(key=lambda t: t[0])
            n, narrowest, smallest = sets[0]
            if n == 0:
                return None
            candidates: set[int] | frozenset[int] | None = None
            direct = self._direct
            if n <= direct:
                candidates, named = smallest, [narrowest]
            elif len(sets) > 1:
                total = len(members.get(_ALL, _EMPTY))
                expected = n * math.prod(m / total for m, _, _ in sets[1:])
                if expected <= 2 * direct:
                    candidates = smallest.intersection(*(s for _, _, s in sets[1:]))
                    if len(candidates) > 4 * direct:
                        candidates = None  # the estimate was wrong (requirements that go together): walk
            if candidates is not None:
                found = self._rank(candidates, need, strat.key)
                pool = self._describe(named, len(candidates))
            else:
                # The narrowest heap: a skill's (all levels) or the team's.
                heap_group = min((("skill", g[1], 0) if g[0] == "skill" else g for _, g, _ in sets),
                                 key=lambda h: len(members.get(h, _EMPTY)))
                found = self._walk(order, heap_group, need)
                pool = self._describe([heap_group])
        if found is None:
            return None
        agent, weight, considered = found
        return Decision(agent_id=agent.id, weight=weight, strategy=strat.name, considered=considered, pool=pool,
                        rule=self._rule(strat, agent, need, weight, now))

    def explain(self, need: Need) -> tuple[str, dict[str, Any]]:
        """Why ``choose(need)`` finds nobody: a code of ``common/waiting.py`` and its values. Walks the agents
        the index knows (the online ones), so a pass asks once per distinct need, not per conversation."""
        pool = [a for a in self._agents.values() if a.online and (need.team_id is None or need.team_id in a.teams)]
        if not pool:
            return ("nobody_online_team", {"team_id": need.team_id}) if need.team_id is not None \
                else ("nobody_online", {})
        for skill, level in need.required:
            if not any(a.skills.get(skill, 0) >= level for a in pool):
                return "no_skill", {"skill_id": skill, "skill": self._skill_names.get(skill, str(skill)),
                                    "level": level}
        fit = [a for a in pool if all(a.skills.get(s, 0) >= lvl for s, lvl in need.required)]
        if not fit:
            return "no_skill_together", {"skills": ", ".join(
                f"{self._skill_names.get(s, str(s))} ≥ {lvl}" for s, lvl in need.required)}
        return "at_capacity", {"agents": len(fit)}

    def _walk(self, order: _Order, group: _Group, need: Need) -> tuple[Agent, float, int] | None:
        """Pop the group's heap best first until an eligible agent comes up; push everything back."""
        heap = order.heaps.get(group)
        if not heap:
            return None
        agents, live = self._agents, order.live
        exclude = need.exclude
        popped: list[_Entry] = []
        found: tuple[Agent, float, int] | None = None
        try:
            while heap:
                entry = heapq.heappop(heap)
                aid = entry[-1]
                if live.get(aid) is not entry:
                    continue  # stale: the agent changed since, its live entry is elsewhere in the heap
                popped.append(entry)
                if aid in exclude:
                    continue
                agent = agents[aid]
                weight = _fit_weight(agent, need)
                if weight is not None:
                    found = (agent, weight, len(popped))
                    break
        finally:
            if len(popped) > 32 and len(popped) * 8 > len(heap):
                heap.extend(popped)
                heapq.heapify(heap)
            else:
                for entry in popped:
                    heapq.heappush(heap, entry)
        return found

    def _rank(self, candidates: set[int] | frozenset[int], need: Need, key: Any) -> tuple[Agent, float, int] | None:
        """Check each candidate (all available) and keep the one with the smallest key."""
        agents = self._agents
        exclude = need.exclude
        best: tuple[Any, ...] | None = None
        found: tuple[Agent, float, int] | None = None
        for aid in candidates:
            if aid in exclude:
                continue
            agent = agents[aid]
            weight = _fit_weight(agent, need)
            if weight is not None:
                k = key(agent, agent.turn)
                if best is None or k < best:
                    best, found = k, (agent, weight, len(candidates))
        return found

    # -- internals -------------------------------------------------------------------------------------------

    def _agent(self, agent_id: int) -> Agent:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise KeyError(f"agent {agent_id} is not in the routing index; upsert() it first") from None

    def _join(self, agent: Agent) -> None:
        members = self._members
        for g in _set_groups(agent):
            s = members.get(g)
            if s is None:
                members[g] = {agent.id}
            else:
                s.add(agent.id)

    def _leave(self, agent: Agent) -> None:
        members = self._members
        for g in _set_groups(agent):
            members[g].discard(agent.id)

    def _renew(self, agent: Agent, was_available: bool | None = None, regroup: bool = False) -> None:
        """After a change: join or leave the sets if availability flipped (``was_available`` given); in each built
        strategy, push a fresh entry when the agent's key changed (or its groups: ``regroup``), forget it when the
        agent is no longer available."""
        available = agent.available
        if was_available is not None and was_available != available:
            if available:
                self._join(agent)
            else:
                self._leave(agent)
        if not self._orders:
            return
        aid = agent.id
        if not available:
            for order in self._orders.values():
                order.live.pop(aid, None)
            return
        groups: list[_Group] | None = None
        members = self._members
        for order in self._orders.values():
            key = order.strategy.key(agent, agent.turn)
            old = order.live.get(aid)
            if old is not None and not regroup and old[:-1] == key:
                continue  # e.g. longest idle after a release: same key, the live entry stands
            entry = order.live[aid] = (*key, aid)
            if groups is None:
                groups = _heap_groups(agent)
            heaps = order.heaps
            for g in groups:
                heap = heaps.get(g)
                if heap is None:
                    heaps[g] = [entry]
                    continue
                heapq.heappush(heap, entry)
                if len(heap) > 2 * len(members[g]) + self._slack:
                    self._compact(heap, order.live)

    @staticmethod
    def _compact(heap: list[_Entry], live: dict[int, _Entry]) -> None:
        heap[:] = [e for e in heap if live.get(e[-1]) is e]
        heapq.heapify(heap)

    def _build(self, strat: Strategy) -> _Order:
        order = _Order(strat)
        heaps, live = order.heaps, order.live
        for agent in self._agents.values():
            if agent.available:
                entry = live[agent.id] = (*strat.key(agent, agent.turn), agent.id)
                for g in _heap_groups(agent):
                    heap = heaps.get(g)
                    if heap is None:
                        heaps[g] = [entry]
                    else:
                        heap.append(entry)
        for heap in heaps.values():
            heapq.heapify(heap)
        self._orders[strat.name] = order
        return order

    def _describe(self, groups: list[_Group], size: int | None = None) -> str:
        """'skill Billing (12 agents)', 'skill Billing ≥ 3 ∩ team Sales (4 agents)', 'all (9000 agents)'."""
        names = []
        for kind, gid, level in groups:
            if kind == "skill":
                names.append(f"skill {self._skill_names.get(gid, gid)}" + (f" ≥ {level}" if level else ""))
            elif kind == "team":
                names.append(f"team {self._team_names.get(gid, gid)}")
            else:
                names.append("all")
        if size is None:
            size = len(self._members.get(groups[0], _EMPTY))
        return f"{' ∩ '.join(names)} ({size} agent{'' if size == 1 else 's'})"

    def _rule(self, strat: Strategy, agent: Agent, need: Need, weight: float, now: float) -> str:
        parts = [strat.explain(agent, agent.turn, now)]
        parts += [f"skill {self._skill_names.get(s, s)} ≥ {level} (level {agent.skills.get(s, 0)})"
                  for s, level in need.required]
        if need.team_id is not None:
            parts.append(f"team {self._team_names.get(need.team_id, need.team_id)}")
        if weight != 1.0:
            parts.append(f"{need.channel_type or 'this channel'} counts {weight:g}")
        return ", ".join(parts)
