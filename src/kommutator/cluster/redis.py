"""Several server processes sharing one Redis (``KOMMUTATOR_REDIS_URL``, keys under ``KOMMUTATOR_REDIS_PREFIX``).

- Events: each event published after a commit is delivered here at once (as with one process) and sent on one
  Redis channel; every other process hands it to its ``everywhere`` subscribers (the socket hubs, caches). Redis
  pub/sub keeps nothing: after a broken link a process hands its subscribers ``EventsGap``, and the screens catch
  up from the database as after any reconnect.
- Presence: a sorted set per user of the processes with a screen of theirs open, each entry expiring unless the
  process renews it, so the screens of a process that died go stale within ``PRESENCE_TTL`` seconds.
- Rate limits (logins, the web chat's public forms) and outbound pacing: one Lua script per check, so processes
  count against one window and one schedule.

When Redis cannot be reached the process goes on alone: limits and pacing fall back to this process's memory,
presence to its own screens, and events to its own subscribers; each logs a warning once per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import socket

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kommutator.auth.ratelimit import Limiter, MemoryLimiter
from kommutator.clock import now
from kommutator.cluster.local import LocalPacing, LocalPresence
from kommutator.events import Event, EventsGap, InProcessBus

log = logging.getLogger(__name__)

PRESENCE_TTL = 30.0  # seconds an entry of a silent process keeps its user online
HEARTBEAT = 10.0  # how often a process renews its presence entries and sweeps expired ones
SEND_QUEUE = 50_000  # events waiting to go to Redis before they are dropped (and the others told of a gap)
RETRY = 1.0  # seconds between attempts to reach Redis again

# --- Lua scripts: each check-and-count is one step on the Redis server -----------------------------------------

_LIMIT_ACQUIRE = """
local t, window, limit, member = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local wait = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', t - window)
  local n = redis.call('ZCARD', key)
  if n >= limit then
    local oldest = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
    local w = tonumber(oldest[2]) + window - t
    if w > wait then wait = w end
  end
end
if wait > 0 then return tostring(wait) end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, t, member)
  redis.call('PEXPIRE', key, math.ceil(window * 1000))
end
return '0'
"""

_TIME = "local tm = redis.call('TIME'); local t = tonumber(tm[1]) + tonumber(tm[2]) / 1000000\n"

_PACE_RESERVE = _TIME + """
local gap = tonumber(ARGV[1])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(nxt, t)
redis.call('SET', KEYS[1], tostring(slot + gap), 'PX', math.ceil((slot + gap - t) * 1000) + 60000)
return tostring(slot - t)
"""

_PACE_ADMIT = _TIME + """
local limit, calls, min_gap, member = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - 1.0)
local n = redis.call('ZCARD', KEYS[1])
if n > 0 and n + calls > limit then
  local idx = math.max(0, n + calls - limit - 1)
  local at = redis.call('ZRANGE', KEYS[1], idx, idx, 'WITHSCORES')
  return tostring(math.max(0.001, tonumber(at[2]) + 1.0 - t))
end
if n > 0 then
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if t - tonumber(last[2]) < min_gap then return tostring(math.max(0.001, tonumber(last[2]) + min_gap - t)) end
end
for i = 1, calls do redis.call('ZADD', KEYS[1], t, member .. ':' .. i) end
redis.call('PEXPIRE', KEYS[1], 2000)
return '0'
"""

# KEYS[1]: the user's set, KEYS[2]: the set of users with entries. ARGV: process id, user id, ttl (s).
_PRESENCE_OPEN = _TIME + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
redis.call('ZADD', KEYS[1], t + tonumber(ARGV[3]), ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return redis.call('ZCARD', KEYS[1])
"""

_PRESENCE_CLOSE = _TIME + """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
local n = redis.call('ZCARD', KEYS[1])
if n == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return n
"""

# KEYS[1]: the set of users with entries; ARGV[1]: the key prefix of users' sets. Returns the users whose last
# entries expired (each returned once: the first process to sweep takes it out of the set).
_PRESENCE_SWEEP = _TIME + """
local gone = {}
for _, user in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. user
  redis.call('ZREMRANGEBYSCORE', key, '-inf', t)
  if redis.call('ZCARD', key) == 0 then
    redis.call('SREM', KEYS[1], user)
    table.insert(gone, user)
  end
end
return gone
"""


class _Outage:
    """Logs a warning when Redis stops answering and a note when it answers again, once each."""

    def __init__(self, what: str) -> None:
        self.what, self.down = what, False

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            log.warning("Redis unreachable (%s): %s go on in this process alone: %s", type(exc).__name__, self.what,
                        exc)

    def ok(self) -> None:
        if self.down:
            self.down = False
            log.warning("Redis answers again: %s are shared again", self.what)


# --- events ----------------------------------------------------------------------------------------------------

def _event_classes() -> dict[str, type[Event]]:
    found: dict[str, type[Event]] = {}
    todo: list[type[Event]] = [Event]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.kind, cls)
        todo.extend(cls.__subclasses__())
    return found


def encode_event(event: Event, origin: str) -> str:
    data = dataclasses.asdict(event)
    return json.dumps({"o": origin, "k": event.kind, "d": data}, ensure_ascii=False, default=str)


def decode_event(raw: str | bytes, classes: dict[str, type[Event]] | None = None) -> tuple[str, Event | None]:
    """(origin, event); event None for a gap marker or a kind this process does not know (a newer version)."""
    message = json.loads(raw)
    origin = str(message.get("o", ""))
    if message.get("gap"):
        return origin, EventsGap(reason="sender_lost_events")
    cls = (classes or _event_classes()).get(str(message.get("k")))
    if cls is None or not dataclasses.is_dataclass(cls):
        return origin, None
    data = message.get("d") or {}
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {k: (tuple(v) if isinstance(v, list) and "tuple" in str(names[k].type) else v)
              for k, v in data.items() if k in names}
    return origin, cls(**kwargs)


class RedisBus(InProcessBus):
    """Events to this process's subscribers at once, and through Redis to every other process's."""

    def __init__(self, redis: aioredis.Redis, channel: str, origin: str) -> None:
        super().__init__()
        self.redis, self.channel, self.origin = redis, channel, origin
        self._outgoing: asyncio.Queue[str] = asyncio.Queue(SEND_QUEUE)
        self._lost = False  # events of this process did not reach Redis: the others are told once it answers
        self._classes = _event_classes()
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()  # set while subscribed (tests wait for it)
        self._outage = _Outage("events")

    async def publish(self, event: Event) -> None:
        await self.deliver(event, remote=False)
        try:
            self._outgoing.put_nowait(encode_event(event, self.origin))
        except asyncio.QueueFull:
            self._lost = True

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._send(), name="kommutator-cluster-send"),
                           asyncio.create_task(self._listen(), name="kommutator-cluster-listen")]

    async def stop(self) -> None:
        # What is queued goes out first (a reply committed just before shutdown still reaches the other screens).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self._outgoing.join()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _send(self) -> None:
        while True:
            batch = [await self._outgoing.get()]
            while len(batch) < 500 and not self._outgoing.empty():
                batch.append(self._outgoing.get_nowait())
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    if self._lost:
                        pipe.publish(self.channel, json.dumps({"o": self.origin, "gap": True}))
                    for raw in batch:
                        pipe.publish(self.channel, raw)
                    await pipe.execute()
                self._lost = False
                self._outage.ok()
            except (RedisError, OSError) as exc:
                self._outage.failed(exc)
                self._lost = True  # this batch is dropped: screens elsewhere catch up when told of the gap
                await asyncio.sleep(RETRY)
            finally:
                for _ in batch:
                    self._outgoing.task_done()

    async def _listen(self) -> None:
        first = True
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self.listening.set()
                if not first:  # whatever was published while this process was not listening is not coming
                    await self.deliver(EventsGap(reason="reconnected"), remote=True)
                first = False
                self._outage.ok()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if message is None:
                        await pubsub.ping()  # a silent channel: check that the link is still there
                        continue
                    if message.get("type") != "message":
                        continue
                    try:
                        origin, event = decode_event(message["data"], self._classes)
                    except (ValueError, TypeError, KeyError):
                        log.warning("a cluster event could not be read; dropped")
                        continue
                    if origin != self.origin and event is not None:
                        await self.deliver(event, remote=True)
            except (RedisError, OSError) as exc:
                self.listening.clear()
                first = False
                self._outage.failed(exc)
                await asyncio.sleep(RETRY)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


# --- presence, limits, pacing ----------------------------------------------------------------------------------

class RedisPresence:
    def __init__(self, redis: aioredis.Redis, prefix: str, origin: str, *, ttl: float = PRESENCE_TTL) -> None:
        self.redis, self.origin, self.ttl = redis, origin, ttl
        self.user_prefix = f"{prefix}presence:user:"
        self.users_key = f"{prefix}presence:users"
        self.local = LocalPresence()  # this process's screens per user; the fallback while Redis is away
        self._open = redis.register_script(_PRESENCE_OPEN)
        self._close = redis.register_script(_PRESENCE_CLOSE)
        self._sweep = redis.register_script(_PRESENCE_SWEEP)
        self._outage = _Outage("presence")

    def _keys(self, user_id: int) -> list[str]:
        return [f"{self.user_prefix}{user_id}", self.users_key]

    async def opened(self, user_id: int) -> bool:
        first_here = await self.local.opened(user_id)
        if not first_here:
            return False
        try:
            n = await self._open(keys=self._keys(user_id), args=[self.origin, user_id, self.ttl])
        except (RedisError, OSError) as exc:
            self._outage.failed(exc)
            return True
        self._outage.ok()
        return int(n) == 1

    async def closed(self, user_id: int) -> bool:
        last_here = await self.local.closed(user_id)
        if not last_here:
            return False
        try:
            n = await self._close(keys=self._keys(user_id), args=[self.origin, user_id])
        except (RedisError, OSError) as exc:
            self._outage.failed(exc)
            return True
        self._outage.ok()
        return int(n) == 0

    async def renew(self) -> None:
        """Renew this process's entries (and put them back after Redis lost them, restarted empty)."""
        users = list(self.local.screens)
        if not users:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id in users:
                await self._open(keys=self._keys(user_id), args=[self.origin, user_id, self.ttl], client=pipe)
            await pipe.execute()

    async def expired(self) -> list[int]:
        try:
            gone = await self._sweep(keys=[self.users_key], args=[self.user_prefix])
        except (RedisError, OSError) as exc:
            self._outage.failed(exc)
            return []
        return [int(u) for u in gone if int(u) not in self.local.screens]


class RedisLimiter:
    """auth/ratelimit.py's sliding window, kept in Redis (one sorted set per key); memory while Redis is away."""

    def __init__(self, redis: aioredis.Redis, prefix: str, per_minute: int, *, window: float = 60.0) -> None:
        self.redis, self.prefix, self.per_minute, self.window = redis, prefix, per_minute, window
        self.fallback = MemoryLimiter(per_minute, window=window)
        self._acquire = redis.register_script(_LIMIT_ACQUIRE)
        self._outage = _Outage("rate limits")

    def _keys(self, keys: tuple[str, ...]) -> list[str]:
        return [self.prefix + k for k in keys]

    async def acquire(self, *keys: str) -> int:
        t = now().timestamp()  # kommutator.clock: tests move time instead of sleeping
        member = f"{t!r}:{secrets.token_hex(6)}"
        try:
            args: list[str | float] = [repr(t), self.window, self.per_minute, member]
            wait = float(await self._acquire(keys=self._keys(keys), args=args))
        except (RedisError, OSError) as exc:
            self._outage.failed(exc)
            return await self.fallback.acquire(*keys)
        self._outage.ok()
        return int(wait) + 1 if wait > 0 else 0

    async def release(self, *keys: str) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in self._keys(keys):
                    pipe.zpopmax(key)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._outage.failed(exc)
        await self.fallback.release(*keys)

    async def reset(self, *keys: str) -> None:
        try:
            await self.redis.delete(*self._keys(keys))
        except (RedisError, OSError) as exc:
            self._outage.failed(exc)
        await self.fallback.reset(*keys)


class RedisPacing:
    """workers/pacing.py's schedule and sliding second per key, kept in Redis on Redis's own clock."""

    def __init__(self, redis: aioredis.Redis, prefix: str, *, min_gap: float = 0.5) -> None:
        self.redis, self.prefix, self.min_gap = redis, prefix, min_gap
        self.fallback = LocalPacing()
        self._reserve = redis.register_script(_PACE_RESERVE)
        self._admit = redis.register_script(_PACE_ADMIT)
        self._outage = _Outage("outbound pacing")

    async def reserve(self, key: str, rate: float | None, slots: int = 1) -> float:
        if not rate or rate <= 0:
            return 0.0
        try:
            wait = float(await self._reserve(keys=[f"{self.prefix}next:{key}"], args=[max(1, slots) / rate]))
        except (RedisError, OSError) as exc:
            self._outage.failed(exc)
            return await self.fallback.reserve(key, rate, slots)
        self._outage.ok()
        return wait

    async def admit(self, key: str, rate: float | None, calls: int = 1) -> float:
        if not rate or rate <= 0:
            return 0.0
        limit = max(1, int(rate))
        try:
            wait = float(await self._admit(keys=[f"{self.prefix}sent:{key}"],
                                           args=[limit, calls, self.min_gap / rate, secrets.token_hex(6)]))
        except (RedisError, OSError) as exc:
            self._outage.failed(exc)
            return await self.fallback.admit(key, rate, calls)
        self._outage.ok()
        return wait


class RedisCluster:
    def __init__(self, url: str, *, prefix: str = "kommutator:", ttl: float = PRESENCE_TTL,
                 heartbeat: float = HEARTBEAT) -> None:
        self.redis = aioredis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=2.0,
                                             health_check_interval=15)
        self.prefix = prefix
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.bus = RedisBus(self.redis, f"{prefix}events", self.process_id)
        self.presence = RedisPresence(self.redis, prefix, self.process_id, ttl=ttl)
        self.pacer = RedisPacing(self.redis, f"{prefix}pace:")
        self.heartbeat = heartbeat
        self._limiters: dict[str, Limiter] = {}
        self._beat: asyncio.Task[None] | None = None

    def limiter(self, name: str, per_minute: int) -> Limiter:
        found = self._limiters.get(name)
        if found is None:
            found = self._limiters[name] = RedisLimiter(self.redis, f"{self.prefix}limit:{name}:", per_minute)
        return found

    async def start(self) -> None:
        self.bus.start()
        if self._beat is None:
            self._beat = asyncio.create_task(self._heartbeats(), name="kommutator-cluster-heartbeat")

    async def stop(self) -> None:
        beat, self._beat = self._beat, None
        if beat is not None:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        await self.bus.stop()
        with contextlib.suppress(RedisError, OSError):
            await self.redis.aclose()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self.presence.renew()
            except (RedisError, OSError) as exc:
                self.presence._outage.failed(exc)

    async def shared(self) -> bool | None:
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False
