"""Stale connections: idle sockets are told and closed, busy ones are left alone."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from tkr_guard.guard import Guard
from tkr_guard.idle import stale, sweep_interval

IDLE = {"plugins": {"guard": {"idle_timeout_s": 1.0}}}


@pytest.mark.tkr_settings(IDLE)
async def test_an_idle_socket_is_told_and_closed_and_a_busy_one_is_not(tkr_host, connect_from, eventually):
    idle = await connect_from("127.0.0.1", "alice")
    idle_tasks = await connect_from("127.0.0.1", "alice", namespace="/tasks")
    busy = await connect_from("127.0.0.1", "bob")

    # bob sends every 0.3 s (well inside the 1 s timeout: the pace is what is under test) until
    # both idle sockets, connected at the same moment, were told and closed.
    async with asyncio.timeout(10):
        while idle.sio.connected or idle_tasks.sio.connected:
            await busy.ok("session:list")
            await asyncio.sleep(0.3)
    await busy.ok("session:list")
    for socket in (idle, idle_tasks):
        told = await socket.wait_for("error")
        assert told["code"] == "protocol.idle_timeout" and told["severity"] == "info" and told["hint"]
        await eventually(lambda socket=socket: not socket.sio.connected, what="the idle socket to be closed")
        assert len(socket.received("error")) == 1  # told once
    assert busy.sio.connected and not busy.received("error")
    assert [conn.principal.id for conn in tkr_host.host.connections.values()] == ["bob"]
    guard = Guard.of(tkr_host.host)
    assert guard is not None and guard.reaper is not None and not guard.reaper.closing


async def test_idle_sockets_stay_when_the_timeout_is_off(tkr_host, connect_from):
    client = await connect_from("127.0.0.1", "alice")
    guard = Guard.of(tkr_host.host)
    assert guard is not None and guard.reaper is None
    await asyncio.sleep(1.5)  # well past a ping interval of 1 s
    assert client.sio.connected and not client.received("error")


@dataclass
class FakeConnection:
    sid: str
    last_event_at: float


def test_stale_is_at_or_past_the_timeout() -> None:
    conns = [FakeConnection("a", 10.0), FakeConnection("b", 9.0), FakeConnection("c", 10.5)]
    assert [c.sid for c in stale(conns, now=11.0, timeout_s=1.0)] == ["a", "b"]  # type: ignore[arg-type]


@pytest.mark.parametrize(("timeout", "interval"), [(0.1, 0.05), (1.0, 0.25), (8.0, 2.0), (600.0, 5.0)])
def test_the_sweep_interval_follows_the_timeout_within_bounds(timeout: float, interval: float) -> None:
    assert sweep_interval(timeout) == interval
