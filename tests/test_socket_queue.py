"""The Engine.IO socket's packet queue behaves as the ``asyncio.Queue`` it replaces (Python's docs for
``asyncio.Queue``: FIFO, ``get_nowait`` raises ``QueueEmpty``, ``join`` waits until every item put was
marked ``task_done``), in the ways python-engineio uses it; and a host's sockets use it."""

from __future__ import annotations

import asyncio

import pytest

from tkr_host._socket_queue import SocketQueue


async def test_items_come_out_in_the_order_they_were_put() -> None:
    queue = SocketQueue()
    for item in ("a", "b", None):
        await queue.put(item)
    assert queue.qsize() == 3
    assert [await queue.get(), queue.get_nowait(), await queue.get()] == ["a", "b", None]
    assert queue.empty()


async def test_get_nowait_on_an_empty_queue_raises_queue_empty() -> None:
    queue = SocketQueue()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    queue.put_nowait(1)
    assert queue.get_nowait() == 1
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_a_waiting_getter_gets_the_next_item() -> None:
    queue = SocketQueue()
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    queue.put_nowait("x")
    assert await asyncio.wait_for(waiting, 5) == "x"
    assert queue.empty()


async def test_an_item_put_after_a_getter_timed_out_is_kept_for_the_next_get() -> None:
    # python-engineio's writer: wait_for(queue.get(), ping_interval + ping_timeout).
    queue = SocketQueue()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.get(), 0.01)
    queue.put_nowait("kept")
    assert queue.qsize() == 1
    assert await asyncio.wait_for(queue.get(), 5) == "kept"


async def test_join_waits_until_every_item_is_done() -> None:
    queue = SocketQueue()
    await queue.join()  # nothing put: returns at once
    queue.put_nowait(1)
    queue.put_nowait(2)
    joined = asyncio.ensure_future(queue.join())
    assert queue.get_nowait() == 1
    queue.task_done()
    await asyncio.sleep(0)
    assert not joined.done()
    assert await queue.get() == 2
    queue.task_done()
    await asyncio.wait_for(joined, 5)
    with pytest.raises(ValueError):
        queue.task_done()


async def test_a_hosts_sockets_queue_in_it_and_still_deliver(tkr_host, tkr_client) -> None:
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    assert all(isinstance(socket.queue, SocketQueue) for socket in tkr_host.host.sio.eio.sockets.values())
    session_id = await alice.create_session("queue")
    await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
    await bob.join(session_id)
    sent = [await alice.send_text(session_id, f"m{n}") for n in range(10)]
    await bob.wait_for("message", lambda m: m["id"] == sent[-1]["message"]["id"])
    assert [m["seq"] for m in bob.received("message")] == list(range(1, 11))
