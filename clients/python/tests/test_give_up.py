"""When reconnecting stops or waits (docs/client.md "Reconnection" and "The offline
queue"), through a real host: sends fail with the refusal that stopped the loop,
a failed resume waits out its retry_after, and connect() after a give-up connects."""

from __future__ import annotations

import asyncio

import pytest
from tkr_client import AuthError


async def test_sends_fail_with_the_refusal_once_reconnecting_gives_up(chat, gate, drop, until):
    held = gate("alice")
    alice = await chat("alice", token=held)
    session = await alice.create_session()
    held.open.clear()
    await drop("alice")
    await until(lambda: alice.state == "reconnecting", what="reconnecting")
    pending = asyncio.ensure_future(alice.send_text(session["id"], "queued before the give-up"))
    await until(lambda: alice.queued == 1, what="one queued send")
    # The credential is revoked: every later connect is refused with auth.invalid,
    # and the callable has nothing fresher, so the loop stops (`closed`).
    held.token = "revoked"
    held.open.set()
    with pytest.raises(AuthError) as waiting:
        await asyncio.wait_for(pending, 10)
    assert waiting.value.code == "auth.invalid"
    await until(lambda: alice.state == "closed", what="closed")
    with pytest.raises(AuthError) as new:
        await asyncio.wait_for(alice.send_text(session["id"], "sent after the give-up"), 5)
    assert new.value.code == "auth.invalid"


async def test_a_refused_resume_waits_out_its_retry_after_and_backs_off(chat, tkr_host, gate, drop, recorder, until):
    from tkr_host.errors import HostError

    held = gate("alice")
    alice = await chat("alice", token=held)
    seen = recorder(alice)
    session = await alice.create_session()
    # The store refuses the resume's read twice with store.unavailable and a
    # retry_after (PROTOCOL.md: the client waits it out), then recovers. Both reads
    # a join may make are refused (with or without since_seq; a store may replay
    # through its wire-form read, tkr-store-peewee's wire_messages_after).
    store = tkr_host.host.store
    reads = ("messages_after", "wire_messages_after", "messages_before")
    real = {name: getattr(store, name) for name in reads if hasattr(store, name)}
    refused_at: list[float] = []
    retry_after = 0.4

    def refusing(name):
        async def read(*args, **kwargs):
            if len(refused_at) < 2:
                refused_at.append(asyncio.get_running_loop().time())
                raise HostError("store.unavailable", retry_after=retry_after)
            return await real[name](*args, **kwargs)

        return read

    for name in real:
        setattr(store, name, refusing(name))
    try:
        await drop("alice")
        await until(lambda: len(refused_at) == 2, what="two refused resumes")
        await until(lambda: alice.state == "connected" and alice.queued == 0, what="resumed")
        sent = await asyncio.wait_for(alice.send_text(session["id"], "after the resume"), 10)
        assert sent["seq"] == 1
    finally:
        for name, method in real.items():
            setattr(store, name, method)
    assert refused_at[1] - refused_at[0] >= retry_after

    def refused_states():
        return [s for s in seen.of("state") if s.state == "reconnecting" and s.error is not None and s.error.code == "store.unavailable"]

    await until(lambda: len(refused_states()) == 2, what="both refusals reported")  # the events may still be on their way
    after_refusals = refused_states()
    assert all(s.delay is not None and s.delay >= retry_after for s in after_refusals)
    # The attempt count grows while resumes fail (it restarts only once one succeeds).
    assert [s.attempt for s in after_refusals] == [after_refusals[0].attempt, after_refusals[0].attempt + 1]


async def test_connect_after_a_give_up_connects_again(chat, gate, drop, tkr_token, until):
    held = gate("alice")
    alice = await chat("alice", token=held)
    session = await alice.create_session()
    held.token = "revoked"
    await drop("alice")
    await until(lambda: alice.state == "closed", what="the give-up")
    held.token = tkr_token("alice")  # a fresh credential
    await asyncio.wait_for(alice.connect(), 10)
    assert alice.state == "connected"
    sent = await asyncio.wait_for(alice.send_text(session["id"], "back"), 10)
    assert sent["seq"] == 1


async def test_close_then_connect_keeps_the_file_queue_working(chat, tmp_path):
    alice = await chat("alice", queue_path=tmp_path / "outbox.db")
    session = await alice.create_session()
    assert (await alice.send_text(session["id"], "one"))["seq"] == 1
    await alice.close()
    await asyncio.wait_for(alice.connect(), 10)
    assert (await asyncio.wait_for(alice.send_text(session["id"], "two"), 10))["seq"] == 2


async def test_a_send_failed_by_close_does_not_go_out_on_the_next_connect(chat, gate, drop, until):
    from tkr_client import ClientError

    held = gate("alice")
    alice = await chat("alice", token=held)
    session = await alice.create_session()
    held.open.clear()
    await drop("alice")
    await until(lambda: alice.state == "reconnecting", what="reconnecting")
    pending = asyncio.ensure_future(alice.send_text(session["id"], "given up by close"))
    await until(lambda: alice.queued == 1, what="one queued send")
    await alice.close()
    with pytest.raises(ClientError) as closed:
        await pending
    assert closed.value.code == "client.closed"
    held.open.set()
    await asyncio.wait_for(alice.connect(), 10)
    sent = await asyncio.wait_for(alice.send_text(session["id"], "sentinel"), 10)
    assert [m["payload"]["text"] for m in await alice.history(session["id"])] == ["sentinel"]
    assert sent["seq"] == 1 and alice.queued == 0
