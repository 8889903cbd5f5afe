"""Where tallies and bans live: in this process, or in Redis for every node.

Both backends keep the same things with the same lifetimes: a source's tally
for ``window_s`` from its first event, a ban for ``ban_s``. The rules that
decide a ban are in :mod:`tkr_guard.scoring`; a backend only counts and stores.

Redis layout, under ``key_prefix``:

* ``tally:<kind>:<value>``: a hash ``{auth, score}``, incremented by a Lua
  script (atomic), with a TTL of ``window_s`` set by the first increment.
* ``ban:<kind>:<value>``: JSON ``{reason, banned_at}``, with a TTL of ``ban_s``;
  the TTL left is the ``retry_after`` a refused client is told.
* channel ``bans``: each new ban is published, so every node disconnects its
  own sockets of the banned source.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import redis.asyncio as redis

from tkr_guard.scoring import Charge, Tally, Target, add_to, sort_bans
from tkr_host import format_ts

log = logging.getLogger(__name__)

BanListener = Callable[["Ban"], Awaitable[None]]


@dataclass(frozen=True)
class Ban:
    """A banned source, as read at one moment."""

    target: Target
    reason: str
    #: Seconds left when it was read; None for a ban without an end.
    retry_after: float | None
    #: When it was placed, in seconds since the epoch.
    banned_at: float

    def to_wire(self) -> dict[str, Any]:
        return {
            "target": self.target.value,
            "kind": self.target.kind,
            "reason": self.reason,
            "retry_after": None if self.retry_after is None else round(self.retry_after, 3),
            "banned_at": format_ts(datetime.fromtimestamp(self.banned_at, UTC)),
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Ban:
        """A ban as the HTTP API or the ``bans`` channel carries it."""
        banned_at = data["banned_at"]
        if isinstance(banned_at, str):
            banned_at = datetime.fromisoformat(banned_at.replace("Z", "+00:00")).timestamp()
        return cls(Target(data["kind"], data["target"]), data["reason"], data.get("retry_after"), float(banned_at))


class Backend(Protocol):
    """What the guard needs from a place that keeps tallies and bans."""

    #: True when other nodes share the bans (and so must hear of new ones).
    shared: bool

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def record(self, sources: Sequence[Target], charge: Charge) -> list[Tally]:
        """Add ``charge`` to each source's tally and return the tallies after it."""
        ...

    async def ban(self, targets: Sequence[Target], reason: str, ban_s: float) -> list[Ban]:
        """Ban each target for ``ban_s`` (a running ban starts again) and clear its tally."""
        ...

    async def ban_of(self, target: Target) -> Ban | None: ...

    async def bans(self) -> list[Ban]: ...

    async def lift(self, target: Target) -> Ban | None:
        """End the target's ban and clear its tally; the ban there was, or None."""
        ...

    async def publish(self, bans: Sequence[Ban]) -> None:
        """Tell the other nodes (nothing to do when unshared)."""
        ...

    async def subscribe(self) -> None:
        """Start hearing of other nodes' bans; ``watch`` delivers them."""
        ...

    async def watch(self, on_ban: BanListener) -> None:
        """Call ``on_ban`` for each ban another node places; runs until cancelled."""
        ...


# --- memory ------------------------------------------------------------------------


@dataclass
class _Held:
    target: Target
    reason: str
    until: float
    banned_at: float


class MemoryBackend:
    """Tallies and bans of this process only.

    Dicts keep insertion order, and a tally is (re)inserted when its window
    opens, so the oldest windows are always first: expired ones are dropped
    from the front on every write, and ``max_sources`` caps what is left.
    """

    shared = False

    def __init__(self, window_s: float, max_sources: int = 100_000, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.window_s = window_s
        self.max_sources = max_sources
        self.clock = clock
        self.wall = wall
        self._tallies: dict[str, Tally] = {}
        self._bans: dict[str, _Held] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._tallies.clear()
        self._bans.clear()

    def sizes(self) -> dict[str, int]:
        """How many tallies and bans are held (tests check that they stay bounded)."""
        return {"tallies": len(self._tallies), "bans": len(self._bans)}

    def _evict(self, now: float) -> None:
        while self._tallies:
            key, tally = next(iter(self._tallies.items()))
            if not tally.expired(now, self.window_s) and len(self._tallies) <= self.max_sources:
                break
            del self._tallies[key]
        while self._bans:
            key, held = next(iter(self._bans.items()))
            if held.until > now and len(self._bans) <= self.max_sources:
                break
            del self._bans[key]

    async def record(self, sources: Sequence[Target], charge: Charge) -> list[Tally]:
        now = self.clock()
        self._evict(now)
        tallies = []
        for source in sources:
            current = self._tallies.get(source.key)
            tally = add_to(current, charge, now, self.window_s)
            if tally is not current:
                self._tallies.pop(source.key, None)  # a new window goes to the back
                self._tallies[source.key] = tally
            tallies.append(Tally(tally.opened_at, tally.auth_failures, tally.score))
        self._evict(now)
        return tallies

    async def ban(self, targets: Sequence[Target], reason: str, ban_s: float) -> list[Ban]:
        now, wall = self.clock(), self.wall()
        placed = []
        for target in targets:
            self._tallies.pop(target.key, None)
            self._bans.pop(target.key, None)
            self._bans[target.key] = _Held(target, reason, now + ban_s, wall)
            placed.append(Ban(target, reason, ban_s, wall))
        self._evict(now)
        return placed

    def _read(self, held: _Held, now: float) -> Ban:
        return Ban(held.target, held.reason, held.until - now, held.banned_at)

    async def ban_of(self, target: Target) -> Ban | None:
        held = self._bans.get(target.key)
        now = self.clock()
        if held is None:
            return None
        if held.until <= now:
            del self._bans[target.key]
            return None
        return self._read(held, now)

    async def bans(self) -> list[Ban]:
        now = self.clock()
        self._evict(now)
        return sort_bans([self._read(held, now) for held in self._bans.values() if held.until > now])

    async def lift(self, target: Target) -> Ban | None:
        now = self.clock()
        self._tallies.pop(target.key, None)
        held = self._bans.pop(target.key, None)
        return self._read(held, now) if held is not None and held.until > now else None

    async def publish(self, bans: Sequence[Ban]) -> None:
        return None

    async def subscribe(self) -> None:
        return None

    async def watch(self, on_ban: BanListener) -> None:
        return None


# --- redis -------------------------------------------------------------------------

#: KEYS[1] the tally; ARGV auth failures to add, score to add, window in ms.
#: One script, so that two nodes counting the same source never lose a count
#: and the window's TTL is set exactly once, by whoever opens it.
RECORD = """
local auth = redis.call('HINCRBY', KEYS[1], 'auth', ARGV[1])
local score = redis.call('HINCRBYFLOAT', KEYS[1], 'score', ARGV[2])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {auth, score}
"""


def glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis MATCH pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


class RedisBackend:
    """Tallies and bans shared by every node that uses the same Redis and prefix."""

    shared = True

    def __init__(self, url: str, key_prefix: str, window_s: float, timeout_s: float = 2.0) -> None:
        self.url = url
        self.prefix = key_prefix
        self.window_ms = max(1, round(window_s * 1000))
        self.channel = f"{key_prefix}bans"
        #: Who published a ban: a node ignores its own announcements.
        self.node = secrets.token_hex(8)
        self.client: redis.Redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=timeout_s,
                                                        socket_connect_timeout=timeout_s)
        self._record = self.client.register_script(RECORD)
        self._listener: redis.Redis | None = None
        self._pubsub: Any = None

    async def start(self) -> None:
        """Check that Redis answers: a guard that cannot keep bans should not start."""
        try:
            await self.client.ping()
        except redis.RedisError as exc:
            raise RuntimeError(f"guard: Redis at {self.url} does not answer ({exc})") from exc

    async def close(self) -> None:
        if self._pubsub is not None:
            await self._pubsub.aclose()
            self._pubsub = None
        if self._listener is not None:
            await self._listener.aclose()
            self._listener = None
        await self.client.aclose()

    def _tally_key(self, target: Target) -> str:
        return f"{self.prefix}tally:{target.key}"

    def _ban_key(self, target: Target) -> str:
        return f"{self.prefix}ban:{target.key}"

    async def record(self, sources: Sequence[Target], charge: Charge) -> list[Tally]:
        now = time.monotonic()
        tallies = []
        for source in sources:
            auth, score = await self._record(keys=[self._tally_key(source)], args=[charge.auth_failures, repr(charge.score), self.window_ms])
            tallies.append(Tally(now, int(auth), float(score)))
        return tallies

    async def ban(self, targets: Sequence[Target], reason: str, ban_s: float) -> list[Ban]:
        wall = time.time()
        value = json.dumps({"reason": reason, "banned_at": wall})
        async with self.client.pipeline(transaction=True) as pipe:
            for target in targets:
                pipe.set(self._ban_key(target), value, px=max(1, round(ban_s * 1000)))
                pipe.delete(self._tally_key(target))
            await pipe.execute()
        return [Ban(target, reason, ban_s, wall) for target in targets]

    def _decode(self, target: Target, value: str | None, pttl: int) -> Ban | None:
        if value is None or pttl == -2:
            return None
        try:
            data = json.loads(value)
            reason, banned_at = str(data["reason"]), float(data["banned_at"])
        except (ValueError, KeyError, TypeError):
            reason, banned_at = "set by hand", time.time()
        return Ban(target, reason, None if pttl < 0 else pttl / 1000, banned_at)

    async def ban_of(self, target: Target) -> Ban | None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.get(self._ban_key(target))
            pipe.pttl(self._ban_key(target))
            value, pttl = await pipe.execute()
        return self._decode(target, value, pttl)

    async def bans(self) -> list[Ban]:
        start = f"{self.prefix}ban:"
        keys = [key async for key in self.client.scan_iter(match=glob_escape(start) + "*", count=500)]
        found: list[Ban] = []
        for chunk in (keys[i : i + 500] for i in range(0, len(keys), 500)):
            async with self.client.pipeline(transaction=False) as pipe:
                for key in chunk:
                    pipe.get(key)
                    pipe.pttl(key)
                replies = await pipe.execute()
            for key, value, pttl in zip(chunk, replies[0::2], replies[1::2], strict=True):
                try:
                    target = Target.from_key(key[len(start) :])
                except ValueError:
                    continue
                ban = self._decode(target, value, pttl)
                if ban is not None:
                    found.append(ban)
        return sort_bans(found)

    async def lift(self, target: Target) -> Ban | None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.get(self._ban_key(target))
            pipe.pttl(self._ban_key(target))
            pipe.delete(self._ban_key(target))
            pipe.delete(self._tally_key(target))
            value, pttl, _, _ = await pipe.execute()
        return self._decode(target, value, pttl)

    async def publish(self, bans: Sequence[Ban]) -> None:
        for ban in bans:
            await self.client.publish(self.channel, json.dumps({"node": self.node, **ban.to_wire()}))

    async def subscribe(self) -> None:
        """Listen on the ``bans`` channel from now on (before the host takes connections)."""
        # A connection of its own without a read timeout: it waits for messages.
        self._listener = redis.Redis.from_url(self.url, decode_responses=True)
        self._pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.channel)

    async def watch(self, on_ban: BanListener) -> None:
        if self._pubsub is None:
            await self.subscribe()
        while True:
            try:
                async for message in self._pubsub.listen():
                    await self._deliver(message, on_ban)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # redis-py reconnects and subscribes again on the next read.
                log.warning("guard: the Redis bans channel failed (%s); retrying in 1 s", exc)
                await asyncio.sleep(1.0)

    async def _deliver(self, message: dict[str, Any], on_ban: BanListener) -> None:
        if message.get("type") != "message":
            return
        try:
            data = json.loads(message["data"])
            if data.get("node") == self.node:
                return
            ban = Ban.from_wire(data)
        except (ValueError, KeyError, TypeError):
            log.warning("guard: ignored a malformed message on %s", self.channel)
            return
        await on_ban(ban)
