"""The per-session lock of the host's sequencer: ordered, and forgotten once nobody holds it
(nothing unbounded in memory: one lock per session ever seen would grow without end)."""

from __future__ import annotations

import asyncio


async def test_a_lock_is_forgotten_when_its_only_holder_leaves(tkr_host):
    sequencer = type(tkr_host.host.sequencer)()
    async with sequencer.hold("s1"):
        assert len(sequencer) == 1
    assert len(sequencer) == 0


async def test_a_lock_is_kept_while_anyone_waits_and_forgotten_after_the_last(tkr_host):
    sequencer = type(tkr_host.host.sequencer)()
    order: list[str] = []
    first_in, release = asyncio.Event(), asyncio.Event()

    async def holder(name: str, hold_until: asyncio.Event | None = None) -> None:
        async with sequencer.hold("s1"):
            order.append(name)
            if hold_until is not None:
                first_in.set()
                await hold_until.wait()

    first = asyncio.create_task(holder("first", release))
    await first_in.wait()
    waiters = [asyncio.create_task(holder(f"w{i}")) for i in range(2)]
    # Each waiter is parked on the lock: wait until both have queued on it.
    async with asyncio.timeout(5):
        while len(getattr(next(iter(sequencer._locks.values()))[0], "_waiters", None) or []) < 2:  # noqa: ASYNC110 - a yield to the scheduler until the lock has two waiters, not a pause
            await asyncio.sleep(0)
    assert len(sequencer) == 1 and order == ["first"]
    release.set()
    await asyncio.gather(first, *waiters)
    assert order == ["first", "w0", "w1"]
    assert len(sequencer) == 0
    # The next holder gets a working lock again, and leaves nothing behind.
    async with sequencer.hold("s1"):
        pass
    assert len(sequencer) == 0


async def test_sessions_do_not_share_a_lock(tkr_host):
    sequencer = type(tkr_host.host.sequencer)()
    async with asyncio.timeout(5), sequencer.hold("s1"), sequencer.hold("s2"):
        assert len(sequencer) == 2
    assert len(sequencer) == 0
