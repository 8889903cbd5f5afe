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
