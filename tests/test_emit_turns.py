"""The session's emit order without a lock across the commit (docs/protocol.md, "Order":
message events of a session leave a node in seq order; an ack only after the store has
the message)."""

from __future__ import annotations

import asyncio

from tkr_host._sequencer import SessionSequencer

DEADLINE_S = 5


async def test_turns_finish_in_the_order_they_were_taken_whatever_order_their_owners_finish() -> None:
    sequencer = SessionSequencer()
    turns = [sequencer.turn("s1") for _ in range(4)]
    emitted: list[int] = []

    async def emit(index: int) -> None:
        await turns[index].wait()
        emitted.append(index)
        turns[index].finish()

    # The last one is ready first, as a later message whose commit returns first would be.
    tasks = [asyncio.create_task(emit(i)) for i in (3, 2, 1, 0)]
    await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE_S)
    assert emitted == [0, 1, 2, 3]


async def test_a_turn_given_up_early_does_not_let_the_next_one_pass_the_ones_before() -> None:
    sequencer = SessionSequencer()
    first, second, third = sequencer.turn("s1"), sequencer.turn("s1"), sequencer.turn("s1")
    second.finish()  # its append failed (or its owner was cancelled) before the first emitted
    waiting = asyncio.create_task(third.wait())
    await asyncio.sleep(0)  # a yield, not a pause: the third must still be waiting for the first
    assert not waiting.done()
    first.finish()
    await asyncio.wait_for(waiting, DEADLINE_S)


async def test_a_cancelled_waiter_leaves_the_turn_before_it_alone() -> None:
    sequencer = SessionSequencer()
    first, second = sequencer.turn("s1"), sequencer.turn("s1")
    waiter = asyncio.create_task(second.wait())
    await asyncio.sleep(0)  # a yield, not a pause: the waiter reaches its await
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    third = sequencer.turn("s1")
    second.finish()
    assert not first._done.done()  # the first turn's owner still has it
    waiting = asyncio.create_task(third.wait())
    first.finish()
    await asyncio.wait_for(waiting, DEADLINE_S)


async def test_sessions_take_turns_apart_and_finished_turns_are_forgotten() -> None:
    sequencer = SessionSequencer()
    one, other = sequencer.turn("s1"), sequencer.turn("s2")
    await asyncio.wait_for(other.wait(), DEADLINE_S)  # s2 does not wait for s1
    one.finish()
    other.finish()
    async with asyncio.timeout(DEADLINE_S):
        while len(sequencer):  # noqa: ASYNC110 - the forgetting runs as a callback of the loop
            await asyncio.sleep(0)


async def test_many_senders_of_one_session_are_delivered_gapless_and_in_seq_order(tkr_client):
    senders = [await tkr_client(f"user{i}") for i in range(4)]
    watcher = await tkr_client("watcher")
    session_id = await senders[0].create_session()
    for member in [*(f"user{i}" for i in range(1, 4)), "watcher"]:
        await senders[0].ok("session:invite", {"session_id": session_id, "member": {"id": member, "kind": "user"}})
    for client in [*senders[1:], watcher]:
        await client.join(session_id)
    # Every sender has many sends in flight at once: they share commits.
    acks = await asyncio.gather(*(client.send_text(session_id, f"{n}", client_id=f"{i}-{n}")
                                  for i, client in enumerate(senders) for n in range(15)))
    assert all(ack["ok"] and not ack["duplicate"] for ack in acks)
    assert sorted(ack["message"]["seq"] for ack in acks) == list(range(1, 61))
    await watcher.wait_for("message", lambda m: len(watcher.received("message")) == 60)
    assert [m["seq"] for m in watcher.received("message")] == list(range(1, 61))
