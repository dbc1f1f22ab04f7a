"""The routing engine: each strategy's order, each eligibility rule, and the heaps agreeing with a brute-force scan
after any sequence of changes."""

from __future__ import annotations

import pkgutil
import random

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, precondition, rule

from kommutator.routing import strategies
from kommutator.routing.engine import EPS, Agent, Decision, Need, RoutingIndex, eligible

BILLING, TECH, SALES_SKILL = 1, 2, 3
SUPPORT, SALES = 10, 20


def index_of(*agents: Agent, **kw: object) -> RoutingIndex:
    index = RoutingIndex(**kw)  # type: ignore[arg-type]
    for a in agents:
        index.upsert(a)
    return index


def chosen(index: RoutingIndex, need: Need, strategy: str = "least_busy", now: float = 1000.0) -> int | None:
    d = index.choose(need, strategy, now)
    return d.agent_id if d else None


def order(index: RoutingIndex, strategy: str, now: float = 1000.0) -> list[int]:
    """Agents in the order the strategy picks them, by assigning each decision and taking it out."""
    out: list[int] = []
    need = Need(conversation_id=0, exclude=frozenset())
    while (d := index.choose(need, strategy, now)) is not None:
        out.append(d.agent_id)
        need = Need(conversation_id=0, exclude=frozenset(out))
    return out


# -- the registry ----------------------------------------------------------------------------------------------

def test_every_module_of_the_strategies_package_is_a_registered_strategy() -> None:
    modules = sorted(m.name for m in pkgutil.iter_modules(strategies.__path__) if not m.name.startswith("_"))
    assert strategies.names() == modules == ["least_busy", "longest_idle", "round_robin"]
    for name in modules:
        s = strategies.get(name)
        assert s.name == name and s.title


def test_an_unknown_strategy_is_a_key_error_listing_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown routing strategy 'fastest'; known: least_busy, longest_idle"):
        strategies.get("fastest")
    with pytest.raises(KeyError, match="fastest"):
        RoutingIndex().choose(Need(1), "fastest", 0.0)


# -- each strategy's order -------------------------------------------------------------------------------------

def test_least_busy_orders_by_share_of_capacity_then_load_then_idle_then_id() -> None:
    index = index_of(
        Agent(1, capacity=4, load=2),                  # 0.5
        Agent(2, capacity=10, load=2),                 # 0.2
        Agent(3, capacity=5, load=1, idle_since=50),   # 0.2, lower load than 2, idle later than 4
        Agent(4, capacity=5, load=1, idle_since=10),   # 0.2, load 1, idle longest
        Agent(5, capacity=3, load=0, idle_since=90),   # 0
        Agent(6, capacity=8, load=0, idle_since=90),   # 0, same key but a higher id
    )
    assert order(index, "least_busy") == [5, 6, 4, 3, 2, 1]


def test_longest_idle_orders_by_idle_since_then_id() -> None:
    index = index_of(Agent(1, 5, load=4, idle_since=30), Agent(2, 5, idle_since=10), Agent(3, 5, idle_since=20),
                     Agent(4, 5, idle_since=10))
    assert order(index, "longest_idle") == [2, 4, 3, 1]


def test_round_robin_starts_with_the_never_assigned_by_id_then_the_oldest_turn() -> None:
    index = index_of(Agent(3, 5), Agent(1, 5, load=3), Agent(2, 5, idle_since=-100))
    assert order(index, "round_robin") == [1, 2, 3]
    index.assign(1, 1.0, 1.0)
    index.assign(3, 1.0, 2.0)
    assert order(index, "round_robin") == [2, 1, 3]


def test_round_robin_gives_everyone_k_conversations_out_of_n_times_k() -> None:
    n, k = 7, 5
    index = index_of(*(Agent(i, capacity=100, load=i % 3, idle_since=-i) for i in range(1, n + 1)))
    counts = dict.fromkeys(range(1, n + 1), 0)
    for c in range(n * k):
        d = index.choose(Need(c), "round_robin", float(c))
        assert d is not None
        counts[d.agent_id] += 1
        index.assign(d.agent_id, d.weight, float(c))
        assert max(counts.values()) - min(counts.values()) <= 1, "someone got two before someone got one"
    assert set(counts.values()) == {k}


def test_round_robin_turns_seeded_from_the_database_are_continued() -> None:
    index = index_of(Agent(1, 5, turn=1_700_000_000_000_002), Agent(2, 5, turn=1_700_000_000_000_001))
    assert chosen(index, Need(1), "round_robin") == 2
    index.assign(2, 1.0, 0.0)
    assert index.get(2).turn > 1_700_000_000_000_002  # type: ignore[union-attr]
    assert chosen(index, Need(1), "round_robin") == 1
    index.upsert(Agent(2, 5))  # a refresh without a turn does not put the agent back at the front
    assert chosen(index, Need(1), "round_robin") == 1


def test_assign_makes_the_agent_busier_and_no_longer_idle() -> None:
    index = index_of(Agent(1, 5, idle_since=0.0), Agent(2, 5, idle_since=5.0))
    assert chosen(index, Need(1), "longest_idle") == 1
    index.assign(1, 1.0, now=10.0)
    assert chosen(index, Need(1), "longest_idle") == 2
    assert chosen(index, Need(1), "least_busy") == 2
    index.release(1, 1.0, now=11.0)
    assert index.get(1).load == 0 and index.get(1).idle_since == 10.0  # type: ignore[union-attr]


# -- each eligibility rule -------------------------------------------------------------------------------------

def test_skill_levels_must_reach_the_minimum() -> None:
    index = index_of(Agent(1, 5, skills={BILLING: 2}), Agent(2, 5, load=3, skills={BILLING: 4}), Agent(3, 5))
    assert chosen(index, Need(1, required=((BILLING, 1),))) == 1
    assert chosen(index, Need(1, required=((BILLING, 3),))) == 2
    assert chosen(index, Need(1, required=((BILLING, 5),))) is None


def test_every_required_skill_must_hold() -> None:
    index = index_of(Agent(1, 5, skills={BILLING: 5}), Agent(2, 5, skills={TECH: 5}),
                     Agent(3, 5, load=4, skills={BILLING: 2, TECH: 3}), Agent(4, 5, skills={BILLING: 1, TECH: 5}))
    need = Need(1, required=((BILLING, 2), (TECH, 2)))
    d = index.choose(need, "least_busy", 0.0)
    assert d is not None and d.agent_id == 3
    assert d.considered >= 1


def test_a_team_restricted_need_only_goes_to_that_team() -> None:
    index = index_of(Agent(1, 5, teams=frozenset({SUPPORT})), Agent(2, 5, load=3, teams=frozenset({SALES, SUPPORT})),
                     Agent(3, 5, load=1, teams=frozenset({SALES})))
    assert chosen(index, Need(1, team_id=SALES)) == 3
    assert chosen(index, Need(1, team_id=SUPPORT)) == 1
    assert chosen(index, Need(1, team_id=99)) is None
    assert chosen(index, Need(1, team_id=SALES, required=((BILLING, 1),))) is None


def test_channel_weights_count_against_capacity_so_capacity_2_takes_4_emails() -> None:
    index = index_of(Agent(1, capacity=2, weights={"email": 0.5}))
    taken = 0
    while (d := index.choose(Need(taken, channel_type="email"), "least_busy", 0.0)) is not None:
        assert d.weight == 0.5
        index.assign(d.agent_id, d.weight, 0.0)
        taken += 1
    assert taken == 4
    assert index.get(1).load == 2.0 and index.available() == 0  # type: ignore[union-attr]


def test_a_heavy_channel_skips_an_agent_without_room_for_it_but_a_light_one_fits() -> None:
    index = index_of(Agent(1, capacity=3, load=2, weights={"voice": 2.0, "email": 0.5}), Agent(2, capacity=3, load=2.5))
    assert chosen(index, Need(1, channel_type="voice")) is None
    assert chosen(index, Need(1, channel_type="chat")) == 1
    d = index.choose(Need(1, channel_type="email"), "least_busy", 0.0)
    assert d is not None and d.agent_id == 1 and d.weight == 0.5


def test_float_weights_add_up_without_refusing_the_last_conversation() -> None:
    index = index_of(Agent(1, capacity=1, weights={"sms": 0.1}))
    for _ in range(10):
        d = index.choose(Need(1, channel_type="sms"), "least_busy", 0.0)
        assert d is not None
        index.assign(1, d.weight, 0.0)
    assert index.choose(Need(1, channel_type="sms"), "least_busy", 0.0) is None
    assert index.get(1).load == 1.0  # type: ignore[union-attr]


def test_excluded_agents_are_passed_over() -> None:
    index = index_of(Agent(1, 5), Agent(2, 5, load=1), Agent(3, 5, load=2))
    d = index.choose(Need(1, exclude=frozenset({1, 2})), "least_busy", 0.0)
    assert d is not None and d.agent_id == 3 and d.considered == 3
    assert chosen(index, Need(1, exclude=frozenset({1, 2, 3}))) is None


def test_offline_agents_are_not_chosen_and_come_back_idle_from_when_they_return() -> None:
    index = index_of(Agent(1, 5, idle_since=0.0), Agent(2, 5, idle_since=5.0))
    index.set_online(1, False, at=6.0)
    assert chosen(index, Need(1), "longest_idle") == 2
    assert index.available() == 1
    index.set_online(1, True, at=7.0)
    assert chosen(index, Need(1), "longest_idle") == 2
    assert index.get(1).idle_since == 7.0  # type: ignore[union-attr]
    index.upsert(Agent(3, 5, online=False, idle_since=-10))
    assert chosen(index, Need(1), "longest_idle") == 2


def test_full_agents_are_not_chosen_until_a_conversation_is_released() -> None:
    index = index_of(Agent(1, capacity=2, load=2), Agent(2, capacity=2, load=1.5))
    assert index.available() == 1
    assert chosen(index, Need(1)) is None  # 2 has 0.5 spare, a chat weighs 1
    index.release(1, 1.0, 0.0)
    assert chosen(index, Need(1)) == 1
    index.set_capacity(1, 1.0)
    assert chosen(index, Need(1)) is None
    index.set_capacity(2, 3.0)
    assert chosen(index, Need(1)) == 2


def test_release_never_takes_load_below_zero() -> None:
    index = index_of(Agent(1, 2, load=0.5))
    index.release(1, 1.0, 0.0)
    assert index.get(1).load == 0.0  # type: ignore[union-attr]


def test_a_removed_agent_is_never_chosen_and_can_come_back() -> None:
    index = index_of(Agent(1, 5), Agent(2, 5, load=1))
    index.warm("least_busy")
    index.remove(1)
    index.remove(1)  # idempotent
    assert chosen(index, Need(1)) == 2 and index.get(1) is None and len(index) == 1
    index.upsert(Agent(1, 5))
    assert chosen(index, Need(1)) == 1


def test_upsert_replaces_skills_and_teams() -> None:
    index = index_of(Agent(1, 5, skills={BILLING: 3}, teams=frozenset({SALES})))
    assert chosen(index, Need(1, required=((BILLING, 1),), team_id=SALES)) == 1
    index.upsert(Agent(1, 5, skills={TECH: 3}, teams=frozenset({SUPPORT})))
    assert chosen(index, Need(1, required=((BILLING, 1),))) is None
    assert chosen(index, Need(1, team_id=SALES)) is None
    assert chosen(index, Need(1, required=((TECH, 3),), team_id=SUPPORT)) == 1


def test_changes_to_unknown_agents_and_bad_values_say_what_to_do() -> None:
    index = RoutingIndex()
    with pytest.raises(KeyError, match="agent 7 is not in the routing index; upsert"):
        index.assign(7, 1.0, 0.0)
    with pytest.raises(ValueError, match="channel weights must be finite numbers > 0"):
        index.upsert(Agent(1, 5, weights={"email": 0}))
    with pytest.raises(ValueError, match="capacity"):
        index.upsert(Agent(1, -1))


# -- the decision ----------------------------------------------------------------------------------------------

def test_the_decision_says_which_heap_was_walked_and_why_in_one_sentence() -> None:
    index = index_of(Agent(1, 5, load=1, skills={BILLING: 3}, teams=frozenset({SUPPORT})),
                     Agent(2, 5, load=2, skills={BILLING: 2}), Agent(3, 5, teams=frozenset({SUPPORT})),
                     skill_names={BILLING: "Billing"}, team_names={SUPPORT: "Support"}, direct=0)
    d = index.choose(Need(1, required=((BILLING, 2),)), "least_busy", 0.0)
    assert d == Decision(agent_id=1, weight=1.0, strategy="least_busy", considered=1, pool="skill Billing (2 agents)",
                         rule="least busy: 1 of 5 conversations, skill Billing ≥ 2 (level 3)")
    d = index.choose(Need(1, team_id=SUPPORT), "longest_idle", 252.0)
    assert d is not None and d.pool == "team Support (2 agents)" and d.rule == \
        "longest idle: idle for 4 min 12 s, team Support"
    d = index.choose(Need(1, channel_type="email"), "round_robin", 0.0)
    assert d is not None and d.pool == "all (3 agents)"
    assert d.rule == "round robin: next in turn, no conversation assigned yet"


def test_few_agents_meeting_every_requirement_are_ranked_directly_from_the_sets() -> None:
    rng = random.Random(7)
    agents = [Agent(i, 5, load=rng.randint(0, 4), skills={BILLING: rng.randint(1, 5), TECH: rng.randint(1, 5)},
                    teams=frozenset({rng.randint(1, 4)})) for i in range(1, 2001)]
    index = index_of(*agents, skill_names={BILLING: "Billing", TECH: "Tech"})
    need = Need(1, required=((BILLING, 4), (TECH, 5)), team_id=2)
    d = index.choose(need, "least_busy", 0.0)
    expected = [a for a in agents if eligible(a, need)]
    assert d is not None and d.pool == f"skill Billing ≥ 4 ∩ skill Tech ≥ 5 ∩ team 2 ({len(expected)} agents)"
    assert d.agent_id == min(expected, key=lambda a: (a.load / a.capacity, a.load, a.idle_since, a.id)).id
    assert d.considered == len(expected) < 64
    walked = index_of(*agents, direct=0).choose(need, "least_busy", 0.0)
    assert walked is not None and walked.agent_id == d.agent_id
    assert walked.pool.startswith("team 2 (")  # the narrowest heap: every agent has both skills
    few = index.choose(Need(1, required=((BILLING, 1),), team_id=9), "least_busy", 0.0)
    assert few is None
    index.upsert(Agent(5000, 5, skills={BILLING: 1}, teams=frozenset({9})))
    few = index.choose(Need(1, required=((BILLING, 1),), team_id=9), "least_busy", 0.0)
    assert few is not None and few.agent_id == 5000 and few.pool == "team 9 (1 agent)" and few.considered == 1


def test_choose_changes_nothing() -> None:
    index = index_of(*(Agent(i, 3, load=i % 3, skills={BILLING: 1 + i % 5}) for i in range(1, 200)))
    need = Need(1, required=((BILLING, 5),), exclude=frozenset(range(1, 150)))
    first = index.choose(need, "least_busy", 0.0)
    assert first is not None and first.considered > 10
    assert index.choose(need, "least_busy", 0.0) == first
    assert [index.get(i) for i in range(1, 200)] == [
        Agent(i, 3, load=i % 3, skills={BILLING: 1 + i % 5}) for i in range(1, 200)]


def test_heaps_stay_bounded_under_churn() -> None:
    index = index_of(*(Agent(i, 4, skills={BILLING: 3, TECH: 2}, teams=frozenset({SUPPORT})) for i in range(50)))
    for name in strategies.names():
        index.warm(name)
    for step in range(5000):
        d = index.choose(Need(step, required=((BILLING, 1),)), strategies.names()[step % 3], float(step))
        if d is not None:
            index.assign(d.agent_id, d.weight, float(step))
        index.release(step % 50, 1.0, float(step))
    s = index.stats()
    assert s["entries"] <= 2 * s["live_entries"] + 64 * s["heaps"], s


# -- any sequence of changes: heaps against a brute-force scan -------------------------------------------------

AGENT_IDS = st.integers(1, 8)
SKILLS = st.dictionaries(st.integers(1, 3), st.integers(1, 5), max_size=3)
TEAMS = st.frozensets(st.integers(1, 2), max_size=2)
WEIGHTS = st.sampled_from([{}, {"email": 0.5}, {"voice": 2.0}, {"email": 0.5, "sms": 0.1}, {"email": 0.3}])
CAPACITY = st.sampled_from([0.0, 1.0, 2.0, 2.5, 3.0, 5.0])
NEEDS = st.builds(
    Need, conversation_id=st.integers(0, 10),
    required=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 5)), max_size=2).map(tuple),
    team_id=st.none() | st.integers(1, 2), channel_type=st.sampled_from(["", "chat", "email", "voice", "sms"]),
    exclude=st.frozensets(AGENT_IDS, max_size=3))
FIXED_NEEDS = [Need(0), Need(0, channel_type="voice"), Need(0, required=((1, 3),)), Need(0, team_id=2),
               Need(0, required=((1, 2), (2, 3))), Need(0, required=((3, 4), (1, 1)), team_id=1),
               Need(0, required=((2, 1), (3, 2)), channel_type="email", exclude=frozenset({1, 2}))]


def reference(model: dict[int, Agent], need: Need, strategy: str) -> int | None:
    """Scan every agent: the eligibility rules written out again, the strategy's key, the smallest wins."""
    key = strategies.get(strategy).key
    best: tuple[object, ...] | None = None
    best_id = None
    for a in model.values():
        w = a.weights.get(need.channel_type, 1.0)
        ok = (a.online and a.load < a.capacity - EPS and a.id not in need.exclude and a.load + w <= a.capacity + EPS
              and (need.team_id is None or need.team_id in a.teams)
              and all(a.skills.get(s, 0) >= lvl for s, lvl in need.required))
        assert ok == eligible(a, need)
        if ok:
            k = key(a, a.turn)
            if best is None or k < best:
                best, best_id = k, a.id
    return best_id


class RoutingMachine(RuleBasedStateMachine):
    """Random changes; after each, every strategy's choice equals the brute-force scan's."""

    agents = Bundle("agents")

    def __init__(self) -> None:
        super().__init__()
        self.index = RoutingIndex()
        self.model: dict[int, Agent] = {}
        self.turn = 0
        self.now = 0.0

    @initialize(direct=st.sampled_from([0, 0, 0, 2, 64]), slack=st.sampled_from([0, 64]))
    def tuning(self, direct: int, slack: int) -> None:
        """Walk heaps (direct 0), rank from sets (64: always, with this few agents) or a mix; rebuild heaps often."""
        self.index = RoutingIndex(direct=direct, compact_slack=slack)

    def tick(self) -> float:
        self.now += 1.0
        return self.now

    @rule(target=agents, agent_id=AGENT_IDS, capacity=CAPACITY, load=st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]),
          online=st.booleans(), skills=SKILLS, teams=TEAMS, idle=st.floats(-100, 100), weights=WEIGHTS,
          turn=st.sampled_from([0, 0, 0, 3, 50]))
    def upsert(self, agent_id: int, capacity: float, load: float, online: bool, skills: dict[int, int],
               teams: frozenset[int], idle: float, weights: dict[str, float], turn: int) -> int:
        a = Agent(agent_id, capacity, load, online, skills, teams, idle, weights, turn)
        self.index.upsert(a)
        known = self.model.get(agent_id)
        a = Agent(agent_id, capacity, load, online, dict(skills), teams, idle, dict(weights),
                  max(turn, known.turn if known else 0))
        self.turn = max(self.turn, a.turn)
        self.model[agent_id] = a
        return agent_id

    @rule(agent_id=agents, online=st.booleans())
    def set_online(self, agent_id: int, online: bool) -> None:
        if agent_id not in self.model:
            return
        at = self.tick()
        self.index.set_online(agent_id, online, at)
        a = self.model[agent_id]
        if online and not a.online:
            a.idle_since = at
        a.online = online

    @rule(agent_id=agents, capacity=CAPACITY)
    def set_capacity(self, agent_id: int, capacity: float) -> None:
        if agent_id in self.model:
            self.index.set_capacity(agent_id, capacity)
            self.model[agent_id].capacity = capacity

    @precondition(lambda self: self.model)
    @rule(need=NEEDS, strategy=st.sampled_from(["least_busy", "longest_idle", "round_robin"]))
    def route(self, need: Need, strategy: str) -> None:
        now = self.tick()
        d = self.index.choose(need, strategy, now)
        assert (d.agent_id if d else None) == reference(self.model, need, strategy)
        if d is None:
            return
        a = self.model[d.agent_id]
        assert d.weight == a.weights.get(need.channel_type, 1.0) and d.strategy == strategy
        self.index.assign(d.agent_id, d.weight, now)
        a.load = round(a.load + d.weight, 9)
        a.idle_since = now
        self.turn += 1
        a.turn = self.turn
        assert a.load <= a.capacity + EPS, f"agent {a.id} went over capacity: {a.load} of {a.capacity}"

    @rule(agent_id=agents, weight=st.sampled_from([0.1, 0.5, 1.0, 2.0]))
    def release(self, agent_id: int, weight: float) -> None:
        if agent_id in self.model:
            self.index.release(agent_id, weight, self.tick())
            a = self.model[agent_id]
            a.load = max(0.0, round(a.load - weight, 9))

    @rule(agent_id=consumes(agents))
    def remove(self, agent_id: int) -> None:
        self.index.remove(agent_id)
        self.model.pop(agent_id, None)

    @invariant()
    def same_choice_as_a_full_scan(self) -> None:
        for name in ("least_busy", "longest_idle", "round_robin"):
            for need in FIXED_NEEDS:
                d = self.index.choose(need, name, self.now)
                assert (d.agent_id if d else None) == reference(self.model, need, name), (name, need)

    @invariant()
    def same_agents_as_the_model(self) -> None:
        assert len(self.index) == len(self.model)
        for a in self.model.values():
            assert self.index.get(a.id) == a
        assert self.index.available() == sum(a.online and a.load < a.capacity - EPS for a in self.model.values())


TestRoutingMachine = RoutingMachine.TestCase
TestRoutingMachine.settings = settings(max_examples=200, stateful_step_count=40, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])
