"""The drain waits for the events in flight, and only for them (the dispatcher counts them).

docs/protocol.md ("Shutdown"): events already running finish, for up to
`host.drain_timeout_s`; then every socket gets `protocol.shutting_down`.
docs/operations.md: a drain that times out says so in the log, `drain: N events still
in flight`; a drain with nothing in flight has no such line.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tkr_host import lifecycle
from tkr_host.testing import eventually, held_calls

STILL_IN_FLIGHT = "events still in flight"


def drain_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if STILL_IN_FLIGHT in record.getMessage()]


@pytest.mark.tkr_settings({"host": {"drain_timeout_s": 0.5}})
async def test_a_drain_after_answered_events_has_nothing_in_flight(tkr_client: Any, tkr_host: Any,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    # Several at once, so the count goes up and down past 1; one refused, one unknown.
    acks = await asyncio.gather(*(alice.call("session:list") for _ in range(4)),
                                alice.call("session:join", {"session_id": session_id, "since_seq": -1}),
                                alice.call("no:such-event", {}))
    assert [ack["ok"] for ack in acks] == [True, True, True, True, False, False]
    with caplog.at_level(logging.WARNING):
        await lifecycle.drain(tkr_host.host)
    assert drain_lines(caplog) == []
    told = await alice.wait_for("error")
    assert told["code"] == "protocol.shutting_down"


@pytest.mark.tkr_settings({"host": {"drain_timeout_s": 0.2}})
async def test_a_drain_that_runs_out_counts_the_event_still_running(tkr_client: Any, tkr_host: Any,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    async with held_calls(tkr_host.host.store, "messages_before") as reading:
        history = asyncio.ensure_future(alice.call("message:history", {"session_id": session_id}))
        await asyncio.wait_for(reading.wait(), 5)
        with caplog.at_level(logging.WARNING):
            await lifecycle.drain(tkr_host.host)
    assert [line.split(" events")[0] for line in drain_lines(caplog)] == ["drain: 1"]
    await eventually(lambda: alice.received("error"), what="the shutting_down error event")
    assert alice.received("error")[0]["code"] == "protocol.shutting_down"
    history.cancel()
