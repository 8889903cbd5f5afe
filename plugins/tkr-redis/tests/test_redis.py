"""Two nodes on one Redis channel and one database, through real hosts and clients."""

from __future__ import annotations

import logging

import pytest
import socketio

from tkr_host.testing import TkrClient, connect_client, deep_merge, make_token, start_host


async def two_nodes(tkr_settings, tkr_plugins, url: str, channel: str):
    settings = deep_merge(tkr_settings, {"plugins": {"redis": {"url": url, "channel": channel}}})
    return await start_host(settings, tkr_plugins), await start_host(settings, tkr_plugins)


async def test_a_message_sent_on_one_node_reaches_sockets_on_the_other(tkr_settings, tkr_plugins, redis_url, channel, subscribed):
    (node_a, stop_a), (node_b, stop_b) = await two_nodes(tkr_settings, tkr_plugins, redis_url, channel)
    clients: list[TkrClient] = []
    try:
        assert isinstance(node_a.host.sio.manager, socketio.AsyncRedisManager)
        alice = TkrClient(await connect_client(node_a.url, make_token("alice")), "alice", "/chat")
        bob = TkrClient(await connect_client(node_b.url, make_token("bob")), "bob", "/chat")
        echo = TkrClient(await connect_client(node_b.url, make_token("echo", "agent"), "/agents"), "echo", "/agents")
        clients += [alice, bob, echo]
        session_id = await alice.create_session(agents=["echo"])
        await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
        await bob.join(session_id)
        await subscribed(channel, 2)  # python-socketio subscribes on its first emit or listen
        acks = [await alice.send_text(session_id, f"m{i}", to="echo") for i in range(5)]
        got = await bob.wait_for("message", lambda m: m["seq"] == 5)
        assert got["sender"]["id"] == "alice"
        assert [m["seq"] for m in bob.received("message")] == [1, 2, 3, 4, 5]
        await echo.wait_for("message", lambda m: m["id"] == acks[-1]["message"]["id"])
        assert {m["id"] for m in echo.received("message")} == {a["message"]["id"] for a in acks}
    finally:
        for client in clients:
            await client.close()
        await stop_a()
        await stop_b()


async def test_with_redis_down_local_delivery_goes_on_and_the_failure_is_logged(tkr_settings, tkr_plugins, channel, caplog):
    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings = deep_merge(tkr_settings, {"plugins": {"redis": {"url": dead, "channel": channel}}})
    running, stop = await start_host(settings, tkr_plugins)
    clients: list[TkrClient] = []
    try:
        alice = TkrClient(await connect_client(running.url, make_token("alice")), "alice", "/chat")
        bob = TkrClient(await connect_client(running.url, make_token("bob")), "bob", "/chat")
        clients += [alice, bob]
        session_id = await alice.create_session()
        await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
        await bob.join(session_id)
        with caplog.at_level(logging.ERROR, logger="tkr_redis"):
            ack = await alice.send_text(session_id, "Redis is down")
            assert ack["ok"]
            got = await bob.wait_for("message")
        assert got["id"] == ack["message"]["id"]
        assert "Cannot publish to redis" in caplog.text
    finally:
        for client in clients:
            await client.close()
        await stop()


@pytest.mark.tkr_settings({"plugins": {"redis": {}}})
async def test_without_a_url_the_host_keeps_its_in_process_manager(tkr_host):
    # The host's default (an AsyncManager subclass with a cheaper broadcast), not a pub/sub one.
    manager = tkr_host.host.sio.manager
    assert isinstance(manager, socketio.AsyncManager) and not isinstance(manager, socketio.AsyncRedisManager)


async def readyz(url: str) -> tuple[int, dict]:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz") as response:
        return response.status, await response.json()


async def test_readyz_says_redis_is_ok_on_a_reachable_server(tkr_settings, tkr_plugins, redis_url, channel):
    settings = deep_merge(tkr_settings, {"plugins": {"redis": {"url": redis_url, "channel": channel}}})
    running, stop = await start_host(settings, tkr_plugins)
    try:
        status, body = await readyz(running.url)
        assert status == 200 and body["checks"]["redis"] == "ok"
    finally:
        await stop()


async def test_readyz_is_503_and_names_redis_when_it_cannot_be_reached(tkr_settings, tkr_plugins, channel):
    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings = deep_merge(tkr_settings, {"plugins": {"redis": {"url": dead, "channel": channel}}})
    running, stop = await start_host(settings, tkr_plugins)
    try:
        status, body = await readyz(running.url)
        assert status == 503
        assert body["status"] == "not ready"
        assert body["checks"]["redis"] == "failing" and body["checks"]["store"] == "ok"
    finally:
        await stop()


@pytest.mark.tkr_settings({"plugins": {"redis": {}}})
async def test_readyz_has_no_redis_check_without_a_url(tkr_host):
    status, body = await readyz(tkr_host.url)
    assert status == 200 and "redis" not in body["checks"]
