"""An agent's replay of its pending deliveries, past one page of the store's reads.

docs/protocol.md, `/agents`: on connect the agent "gets every message addressed to it that it
has not `message:ack`ed, oldest first, as `message` events, and only after that live ones".
The host reads the pending deliveries in pages; no doc gives the page's size, so the test
holds more pending messages than any page would (more than 200, the largest `limit` a
history page takes, docs/protocol.md) and checks every one comes, in order.
"""

from __future__ import annotations

from typing import Any

import pytest

#: Pending messages for one agent: past a page of 200, and past two of 100.
PENDING = 205


@pytest.mark.tkr_settings({"plugins": {"ratelimit": {"messages_per_second": 10_000, "message_burst": 10_000}}})
async def test_every_pending_message_is_replayed_oldest_first_then_live_ones(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    pending = []
    for n in range(PENDING):
        ack = await alice.send_text(session_id, f"pending {n}", to="echo")
        assert ack["ok"] is True, ack
        pending.append(ack["message"]["id"])

    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    await echo.wait_for("message", lambda m: m["id"] == pending[-1])
    live = await alice.send_text(session_id, "live", to="echo")
    await echo.wait_for("message", lambda m: m["id"] == live["message"]["id"])
    # At-least-once: the first copy of each id counts, in the order they came.
    firsts: list[str] = []
    for message in echo.received("message"):
        if message["id"] not in firsts:
            firsts.append(message["id"])
    assert firsts == [*pending, live["message"]["id"]]
