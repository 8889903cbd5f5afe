"""SessionSequencer, directly: one holder per session at a time, sessions
independent, and no lock kept once nobody holds or waits (docs/protocol.md,
"Order": message events of a session leave a node in seq order)."""

from __future__ import annotations

import asyncio

import pytest

from tkr_host._sequencer import SessionSequencer

DEADLINE_S = 5


async def test_a_second_holder_of_a_session_waits_for_the_first() -> None:
    sequencer = SessionSequencer()
    order: list[str] = []
    first_in, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with sequencer.hold("s1"):
            order.append("first in")
            first_in.set()
            await release.wait()
            order.append("first out")

    async def second() -> None:
        async with sequencer.hold("s1"):
            order.append("second in")

    one = asyncio.create_task(first())
    await asyncio.wait_for(first_in.wait(), DEADLINE_S)
    two = asyncio.create_task(second())
    # `second` is scheduled before `first` wakes: without the lock it would enter first.
    release.set()
    await asyncio.wait_for(asyncio.gather(one, two), DEADLINE_S)
    assert order == ["first in", "first out", "second in"]


async def test_sessions_do_not_wait_for_each_other() -> None:
    sequencer = SessionSequencer()
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold_s1() -> None:
        async with sequencer.hold("s1"):
            holding.set()
            await release.wait()

    task = asyncio.create_task(hold_s1())
    await asyncio.wait_for(holding.wait(), DEADLINE_S)

    async def other_session() -> str:
        async with sequencer.hold("s2"):
            return "entered"

    # s1 is still held: s2 must not wait for it (a deadline, not a measured duration).
    assert await asyncio.wait_for(other_session(), DEADLINE_S) == "entered"
    release.set()
    await asyncio.wait_for(task, DEADLINE_S)


async def test_locks_are_dropped_once_nobody_holds_them_even_after_an_error() -> None:
    sequencer = SessionSequencer()
    async with sequencer.hold("s1"):
        assert len(sequencer) == 1
    assert len(sequencer) == 0
    with pytest.raises(RuntimeError):
        async with sequencer.hold("s2"):
            raise RuntimeError("the store failed")
    assert len(sequencer) == 0
    async with sequencer.hold("s2"):  # and the session is not left locked
        pass
    assert len(sequencer) == 0
