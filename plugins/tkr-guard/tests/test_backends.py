"""Both backends keep the same things for the same time; the memory one forgets what expired."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as redis
from tkr_guard.backends import Ban, MemoryBackend, RedisBackend, glob_escape
from tkr_guard.scoring import Charge, Target

from tkr_host.testing import deep_merge, eventually, start_host

ALICE = Target("principal", "alice")
ADDRESS = Target("ip", "203.0.113.7")
#: The window of the ``backend`` fixture; the test of its end waits it out, so it is short.
WINDOW_S = 0.5


@pytest.fixture
async def backend(guard_backend: dict[str, Any]) -> AsyncIterator[MemoryBackend | RedisBackend]:
    """A started backend with a window of 0.5 s (short: a test waits it out)."""
    made: MemoryBackend | RedisBackend
    if guard_backend["backend"] == "redis":
        made = RedisBackend(guard_backend["redis_url"], guard_backend["key_prefix"], window_s=WINDOW_S)
    else:
        made = MemoryBackend(window_s=WINDOW_S)
    await made.start()
    try:
        yield made
    finally:
        await made.close()


async def test_tallies_add_up_within_the_window_and_start_again_after_it(backend) -> None:
    await backend.record([ADDRESS, ALICE], Charge(1, 0.0))
    address, alice = await backend.record([ADDRESS, ALICE], Charge(0, 2.5))
    assert (address.auth_failures, address.score) == (1, 2.5)
    assert (alice.auth_failures, alice.score) == (1, 2.5)
    await asyncio.sleep(WINDOW_S + 0.05)  # the window's end is what is under test
    [address] = await backend.record([ADDRESS], Charge(1, 0.0))
    assert (address.auth_failures, address.score) == (1, 0.0)


async def test_concurrent_counts_are_never_lost(backend) -> None:
    await asyncio.gather(*(backend.record([ADDRESS], Charge(1, 0.5)) for _ in range(50)))
    [address] = await backend.record([ADDRESS], Charge(0, 0.0))
    assert (address.auth_failures, address.score) == (50, 25.0)


async def test_a_ban_holds_for_ban_s_clears_the_tally_and_lists(backend) -> None:
    await backend.record([ADDRESS], Charge(5, 0.0))
    placed = await backend.ban([ADDRESS, ALICE], "a reason", ban_s=0.5)
    assert [ban.target for ban in placed] == [ADDRESS, ALICE]
    ban = await backend.ban_of(ADDRESS)
    assert ban is not None and ban.reason == "a reason" and 0 < ban.retry_after <= 0.5
    assert [b.target for b in await backend.bans()] == [ADDRESS, ALICE]  # addresses first
    [address] = await backend.record([ADDRESS], Charge(1, 0.0))
    assert address.auth_failures == 1  # the count started again with the ban
    await asyncio.sleep(0.55)  # the ban's end (ban_s=0.5) is what is under test
    assert await backend.ban_of(ADDRESS) is None
    assert await backend.bans() == []


async def test_lift_ends_a_ban_and_says_whether_there_was_one(backend) -> None:
    await backend.ban([ALICE], "why", ban_s=60)
    lifted = await backend.lift(ALICE)
    assert lifted is not None and lifted.target == ALICE and lifted.retry_after > 59
    assert await backend.ban_of(ALICE) is None
    assert await backend.lift(ALICE) is None


def test_a_ban_goes_over_the_wire_and_back() -> None:
    ban = Ban(Target("principal", "team/alice"), "why", 12.3456, 1_700_000_000.25)
    wire = ban.to_wire()
    assert wire == {"target": "team/alice", "kind": "principal", "reason": "why", "retry_after": 12.346,
                    "banned_at": "2023-11-14T22:13:20.250Z"}
    again = Ban.from_wire(json.loads(json.dumps(wire)))
    assert (again.target, again.reason, again.retry_after, again.banned_at) == (ban.target, "why", 12.346, 1_700_000_000.25)


# --- memory: bounded ------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_memory_backend_forgets_expired_tallies_and_bans() -> None:
    clock = Clock()
    backend = MemoryBackend(window_s=60, clock=clock)
    for i in range(1000):
        await backend.record([Target("ip", f"10.0.{i // 250}.{i % 250}")], Charge(1, 0.0))
    await backend.ban([Target("ip", f"10.1.0.{i}") for i in range(100)], "why", ban_s=300)
    assert backend.sizes() == {"tallies": 1000, "bans": 100}
    clock.now += 60
    await backend.record([ADDRESS], Charge(1, 0.0))
    assert backend.sizes() == {"tallies": 1, "bans": 100}
    clock.now += 240
    await backend.record([ADDRESS], Charge(1, 0.0))
    assert backend.sizes() == {"tallies": 1, "bans": 0}


async def test_the_memory_backend_keeps_at_most_max_sources() -> None:
    clock = Clock()
    backend = MemoryBackend(window_s=60, max_sources=10, clock=clock)
    for i in range(50):
        clock.now += 0.1
        await backend.record([Target("principal", f"p{i}")], Charge(1, 0.0))
    assert backend.sizes()["tallies"] == 10
    # The oldest went first: the newest are still counted.
    [newest] = await backend.record([Target("principal", "p49")], Charge(1, 0.0))
    assert newest.auth_failures == 2


# --- redis: keys, TTLs, the channel -------------------------------------------------------


@pytest.fixture
async def raw(redis_config: dict[str, Any]) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(redis_config["redis_url"], decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def test_redis_keys_carry_the_window_and_the_ban_as_ttls(redis_config, raw) -> None:
    prefix = redis_config["key_prefix"]
    backend = RedisBackend(redis_config["redis_url"], prefix, window_s=60)
    await backend.start()
    try:
        await backend.record([ADDRESS], Charge(1, 0.0))
        assert 59_000 < await raw.pttl(f"{prefix}tally:ip:203.0.113.7") <= 60_000
        await backend.ban([ADDRESS], "why", ban_s=300)
        assert await raw.exists(f"{prefix}tally:ip:203.0.113.7") == 0
        assert 299_000 < await raw.pttl(f"{prefix}ban:ip:203.0.113.7") <= 300_000
        # A ban another prefix holds is not ours.
        await raw.set(f"{prefix}x:ban:ip:192.0.2.9", "{}", px=5000)
        assert [ban.target for ban in await backend.bans()] == [ADDRESS]
    finally:
        await raw.delete(f"{prefix}x:ban:ip:192.0.2.9")
        await backend.close()


async def test_a_ban_set_by_hand_in_redis_is_honoured(redis_config, raw) -> None:
    prefix = redis_config["key_prefix"]
    backend = RedisBackend(redis_config["redis_url"], prefix, window_s=60)
    await backend.start()
    try:
        await raw.set(f"{prefix}ban:principal:mallory", "banned")
        ban = await backend.ban_of(Target("principal", "mallory"))
        assert ban is not None and ban.retry_after is None and ban.reason == "set by hand"
    finally:
        await backend.close()


async def test_new_bans_reach_the_other_nodes_but_not_their_own(redis_config) -> None:
    one = RedisBackend(redis_config["redis_url"], redis_config["key_prefix"], window_s=60)
    two = RedisBackend(redis_config["redis_url"], redis_config["key_prefix"], window_s=60)
    heard: dict[str, list[Ban]] = {"one": [], "two": []}
    arrived = asyncio.Event()

    def listener(name: str) -> Any:
        async def on_ban(ban: Ban) -> None:
            heard[name].append(ban)
            arrived.set()

        return on_ban

    for node in (one, two):
        await node.start()
        await node.subscribe()
    watchers = [asyncio.create_task(one.watch(listener("one"))), asyncio.create_task(two.watch(listener("two")))]
    try:
        await one.publish(await one.ban([ALICE], "why", ban_s=60))
        await asyncio.wait_for(arrived.wait(), 5)
        # The sentinel: a ban two publishes after; once one has heard it, one's own ban (published
        # earlier on the same channel) would have reached one too, had it been delivered.
        await two.publish(await two.ban([ADDRESS], "sentinel", ban_s=60))
        await eventually(lambda: heard["one"], what="node one to hear node two's ban")
        assert [ban.target for ban in heard["two"]] == [ALICE]
        assert [ban.target for ban in heard["one"]] == [ADDRESS]
    finally:
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        await one.close()
        await two.close()


def test_a_key_prefix_is_matched_literally() -> None:
    assert glob_escape("tkr:[a]*?\\") == "tkr:\\[a\\]\\*\\?\\\\"


@pytest.mark.parametrize("guard_backend", ["memory"], indirect=True)
async def test_a_host_whose_redis_does_not_answer_does_not_start(tkr_settings) -> None:
    unreachable = {"backend": "redis", "redis_url": "redis://127.0.0.1:1/0", "redis_timeout_s": 0.5}
    with pytest.raises(Exception, match=re.escape("guard: Redis at redis://127.0.0.1:1/0 does not answer")):
        await start_host(deep_merge(tkr_settings, {"plugins": {"guard": unreachable}}))
