"""cluster/: what server processes share, on both implementations. RedisCluster runs against the shared Redis
on 127.0.0.1:6379 under a key prefix unique to the test (two clusters on one prefix stand for two processes)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from kommutator.clock import set_clock
from kommutator.cluster import build
from kommutator.cluster.local import LocalCluster
from kommutator.cluster.redis import RedisCluster, decode_event, encode_event
from kommutator.config import load_settings
from kommutator.events import AccessRevoked, ConversationUpdated, Event, EventsGap, MessageCreated

from .redis_support import drop_keys, private_redis, shared_redis, unique_prefix


async def eventually(check: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    """Wait until ``check()`` holds (events cross Redis asynchronously); fail saying what did not happen."""
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.01)
    assert check(), what


@pytest.fixture
async def pair() -> AsyncIterator[tuple[RedisCluster, RedisCluster]]:
    """Two processes' clusters on one Redis and one prefix."""
    url, prefix = shared_redis(), unique_prefix()
    a, b = RedisCluster(url, prefix=prefix), RedisCluster(url, prefix=prefix)
    for c in (a, b):
        await c.start()
    async with asyncio.timeout(10):
        await a.bus.listening.wait()
        await b.bus.listening.wait()
    try:
        yield a, b
    finally:
        for c in (a, b):
            await c.stop()
        drop_keys(prefix)


def test_build_picks_redis_only_when_a_url_is_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(build(load_settings(data_dir=tmp_path)), LocalCluster)
    cluster = build(load_settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:6379/0", redis_prefix="x:"))
    assert isinstance(cluster, RedisCluster) and cluster.prefix == "x:"


def test_events_cross_the_wire_with_their_types() -> None:
    event = AccessRevoked(user_id=3, session_ids=(1, 2), token_ids=(7,), reason="logged_out")
    origin, back = decode_event(encode_event(event, "p1"))
    assert origin == "p1" and back == event
    updated = ConversationUpdated(conversation_id=1, team_id=None, assignee_id=2, status="open",
                                  changes={"assignee_id": [None, 2]})
    assert decode_event(encode_event(updated, "p"))[1] == updated
    assert decode_event('{"o": "p", "k": "from.a.newer.version", "d": {}}') == ("p", None)


async def test_local_cluster_delivers_to_everyone_here() -> None:
    cluster = LocalCluster()
    heard: list[tuple[str, Event]] = []

    async def local(e: Event) -> None:
        heard.append(("local", e))

    async def everywhere(e: Event) -> None:
        heard.append(("everywhere", e))

    cluster.bus.subscribe(local)
    cluster.bus.subscribe(everywhere, everywhere=True)
    event = MessageCreated(conversation_id=1, team_id=None, assignee_id=None, message_id=5)
    await cluster.bus.publish(event)
    assert heard == [("local", event), ("everywhere", event)]


async def test_an_event_reaches_everywhere_subscribers_of_other_processes_once(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    heard: dict[str, list[Event]] = {"a_local": [], "a_all": [], "b_local": [], "b_all": []}

    def record(name: str) -> Callable[[Event], Awaitable[None]]:
        async def handler(e: Event) -> None:
            heard[name].append(e)
        return handler

    a.bus.subscribe(record("a_local"))
    a.bus.subscribe(record("a_all"), everywhere=True)
    b.bus.subscribe(record("b_local"))
    b.bus.subscribe(record("b_all"), everywhere=True)
    events = [MessageCreated(conversation_id=i, team_id=None, assignee_id=None, message_id=i) for i in range(1, 51)]
    for e in events:
        await a.bus.publish(e)
    await eventually(lambda: len(heard["b_all"]) == 50, "process B heard A's events")
    assert heard["b_all"] == events, "in order, each once"
    assert heard["a_local"] == events and heard["a_all"] == events, "the publisher hears its own once, at once"
    assert heard["b_local"] == [], "work an event starts is done by the publishing process only"


async def test_presence_is_online_while_any_screen_on_any_process_is_open(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    assert await a.shared() is True and await LocalCluster().shared() is None
    assert await a.presence.opened(7) is True  # the first screen anywhere
    assert await a.presence.opened(7) is False  # a second tab on the same process
    assert await b.presence.opened(7) is False  # a tab on another process
    assert await a.presence.closed(7) is False
    assert await a.presence.closed(7) is False  # A has none left, B still has one
    assert await b.presence.closed(7) is True  # the last one anywhere


async def test_a_dead_process_s_screens_go_stale(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    assert await a.presence.opened(8) is True
    assert await b.presence.expired() == []  # A's entry is fresh
    # A dies without closing: its entry is not renewed. Age it past its expiry instead of waiting for it.
    await b.redis.zadd(f"{b.prefix}presence:user:8", {a.process_id: 0})
    assert await b.presence.expired() == [8]
    assert await b.presence.expired() == [], "reported once"
    assert await b.presence.opened(8) is True, "a new screen is the first again"


async def test_a_live_process_renews_its_entries(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    await a.presence.opened(9)
    await b.redis.zadd(f"{b.prefix}presence:user:9", {a.process_id: 0})
    await a.presence.renew()  # its heartbeat (also what puts entries back after Redis restarted empty)
    assert await b.presence.expired() == []
    assert await b.presence.opened(9) is False


async def test_local_presence_counts_screens() -> None:
    p = LocalCluster().presence
    assert [await p.opened(1), await p.opened(1), await p.closed(1), await p.closed(1)] == [True, False, False, True]
    assert await p.expired() == []


@pytest.mark.parametrize("kind", ["local", "redis"])
async def test_rate_limits_are_shared(kind: str, pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair if kind == "redis" else (LocalCluster(),) * 2
    set_clock(lambda: dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC))
    try:
        la, lb = a.limiter("login", 3), b.limiter("login", 3)
        assert await la.acquire("acct:x", "ip:1") == 0
        assert await lb.acquire("acct:x", "ip:2") == 0
        assert await la.acquire("acct:x") == 0
        wait = await lb.acquire("acct:x", "ip:3")
        assert 0 < wait <= 61, "the fourth attempt on either process waits for the window"
        assert await lb.acquire("ip:3") == 0, "nothing was counted for the refused attempt"
        await la.release("acct:x")
        assert await lb.acquire("acct:x") == 0, "a released attempt frees a place"
        await lb.reset("acct:x")
        assert await la.acquire("acct:x") == 0
        set_clock(lambda: dt.datetime(2026, 1, 1, 12, 1, 1, tzinfo=dt.UTC))
        for _ in range(2):
            assert await lb.acquire("acct:x") == 0, "the window slid past the old attempts"
    finally:
        set_clock(None)


@pytest.mark.parametrize("kind", ["local", "redis"])
async def test_outbound_pacing_is_shared(kind: str, pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair if kind == "redis" else (LocalCluster(),) * 2
    assert await a.pacer.reserve("channel:1", 1.0) == 0
    assert await b.pacer.reserve("channel:1", 1.0) == pytest.approx(1.0, abs=0.3), "the next slot, on any process"
    assert await b.pacer.reserve("channel:2", 1.0) == 0, "keys are separate"
    assert await a.pacer.reserve("channel:1", None) == 0, "no rate, no limit"
    assert await a.pacer.admit("chat:1", 1.0) == 0
    assert await b.pacer.admit("chat:1", 1.0) > 0, "one call a second on the key, whoever sends"


async def test_without_redis_a_process_goes_on_alone() -> None:
    with private_redis() as server:
        url = server.url
    cluster = RedisCluster(url, prefix=unique_prefix())  # nothing answers there any more
    heard: list[Event] = []

    async def handler(e: Event) -> None:
        heard.append(e)

    cluster.bus.subscribe(handler)
    await cluster.start()
    try:
        event = MessageCreated(conversation_id=1, team_id=None, assignee_id=None, message_id=1)
        await cluster.bus.publish(event)
        assert heard == [event]
        assert await cluster.limiter("login", 1).acquire("k") == 0
        assert await cluster.limiter("login", 1).acquire("k") > 0, "counted in memory meanwhile"
        assert await cluster.presence.opened(1) is True
        assert await cluster.pacer.reserve("c", 1.0) == 0
        assert await cluster.shared() is False, "health checks say so"
    finally:
        await cluster.stop()


async def test_a_redis_restart_tells_listeners_of_the_gap_and_events_flow_again() -> None:
    with private_redis() as server:
        prefix = unique_prefix()
        a, b = RedisCluster(server.url, prefix=prefix), RedisCluster(server.url, prefix=prefix)
        heard: list[Event] = []

        async def handler(e: Event) -> None:
            heard.append(e)

        b.bus.subscribe(handler, everywhere=True)
        for c in (a, b):
            await c.start()
        try:
            async with asyncio.timeout(10):
                await b.bus.listening.wait()
            await a.presence.opened(5)
            server.stop()
            await eventually(lambda: not b.bus.listening.is_set(), "B noticed the link broke")
            server.start()  # empty: pub/sub kept nothing, presence entries are gone
            await eventually(lambda: any(isinstance(e, EventsGap) for e in heard), "B was told of the gap")
            await a.presence.renew()  # the heartbeat puts A's entry back
            assert await b.presence.opened(5) is False, "still online through A's screen"
            event = MessageCreated(conversation_id=2, team_id=None, assignee_id=None, message_id=2)
            await eventually(lambda: b.bus.listening.is_set(), "B listens again")
            await a.bus.publish(event)
            await eventually(lambda: event in heard, "events flow again after the restart")
        finally:
            for c in (a, b):
                await c.stop()
