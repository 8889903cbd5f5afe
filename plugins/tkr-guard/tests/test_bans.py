"""Bans through a real host and real clients, on both backends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest

from tkr_host.testing import ConnectRefused, TkrClient, connect_client, make_token, start_host

ATTACKER = "203.0.113.7"


@asynccontextmanager
async def raw_chat(url: str, token: str, ip: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A bare Engine.IO WebSocket from ``ip``, connected to /chat: it can send what no client library would."""
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url, headers={"X-Forwarded-For": ip}) as ws:
        assert (await ws.receive(timeout=5)).data.startswith("0{")
        await ws.send_str("40/chat," + json.dumps({"token": token}))
        assert (await ws.receive(timeout=5)).data.startswith("40/chat,{")
        yield ws


async def frames_until_closed(ws: aiohttp.ClientWebSocketResponse) -> list[str]:
    frames = []
    async with asyncio.timeout(10):
        while (message := await ws.receive()).type == aiohttp.WSMsgType.TEXT:
            if message.data == "2":
                await ws.send_str("3")
            else:
                frames.append(message.data)
    return frames


async def test_an_auth_failure_flood_bans_the_address_and_even_a_valid_token_is_refused(tkr_host, connect_from, fail_auth, eventually):
    errors = await fail_auth(ATTACKER, 9)
    assert {error["code"] for error in errors} == {"auth.invalid"}
    # Not banned yet: a valid token still gets in, and stays as a live socket of the address.
    live = await connect_from(ATTACKER, "carol")
    bystander = await connect_from("127.0.0.1", "bob")

    [tenth] = await fail_auth(ATTACKER, 1)
    assert tenth["code"] == "auth.invalid"

    with pytest.raises(ConnectRefused) as refused:
        await connect_from(ATTACKER, "carol")
    error = refused.value.error
    assert error["code"] == "auth.banned" and error["category"] == "auth"
    assert 0 < error["retry_after"] <= 300
    assert error["hint"] and error["recoverable"] is True

    # The live socket of the address was told why, then disconnected.
    told = await live.wait_for("error")
    assert told["code"] == "auth.banned" and told["retry_after"] > 0
    await eventually(lambda: not live.sio.connected, what="the banned address's socket to be closed")
    # Other addresses are not affected.
    assert bystander.sio.connected
    assert (await bystander.ok("session:list"))["ok"]
    await connect_from("198.51.100.20", "carol")


@pytest.mark.tkr_settings({"plugins": {"guard": {"ban_after_events": 20}}})
async def test_reserved_events_and_malformed_packets_are_scored(tkr_host, connect_from):
    async with raw_chat(tkr_host.url, make_token("alice"), "198.51.100.1") as ws:
        await ws.send_str('42/chat,1["disconnect",{}]')  # a reserved name: 10
        await ws.send_str("47/chat,[]")  # no such packet type: 10, and the connection is closed
        frames = await frames_until_closed(ws)
    assert any("protocol.reserved_event" in frame for frame in frames)
    with pytest.raises(ConnectRefused) as refused:
        await connect_from("198.51.100.1", "carol")
    assert refused.value.error["details"] == {"kind": "ip"}
    with pytest.raises(ConnectRefused) as refused:
        await connect_from("198.51.100.2", "alice")
    assert refused.value.error["details"] == {"kind": "principal"}


async def test_with_the_defaults_a_few_auth_failures_ban_nothing(tkr_host, connect_from, fail_auth):
    # Other test suites fail authentication on purpose a few times per host.
    await fail_auth("127.0.0.1", 5)
    await connect_from("127.0.0.1", "carol")


@pytest.mark.tkr_settings({"plugins": {"guard": {"ban_after_events": 10, "access_denied_weight": 5}}})
async def test_a_banned_principal_is_told_and_disconnected_and_refused_from_any_address(tkr_host, connect_from, eventually):
    bob = await connect_from("127.0.0.1", "bob")
    session_id = await bob.create_session("private")
    alice_chat = await connect_from("198.51.100.1", "alice")
    alice_tasks = await connect_from("198.51.100.1", "alice", namespace="/tasks")
    alice_elsewhere = await connect_from("198.51.100.2", "alice")

    first = await alice_chat.call("session:join", {"session_id": session_id})
    assert first["error"]["code"] == "permission.not_member"
    await alice_chat.call("session:join", {"session_id": session_id})

    for socket in (alice_chat, alice_tasks, alice_elsewhere):
        told = await socket.wait_for("error")
        assert told["code"] == "auth.banned"
        await eventually(lambda socket=socket: not socket.sio.connected, what="alice's sockets to be closed")
    assert bob.sio.connected and (await bob.ok("session:list"))["ok"]

    # The principal is banned wherever it comes from (on_connect), and so is the address (authenticate).
    with pytest.raises(ConnectRefused) as refused:
        await connect_from("198.51.100.3", "alice")
    assert refused.value.error["code"] == "auth.banned" and refused.value.error["details"] == {"kind": "principal"}
    with pytest.raises(ConnectRefused) as refused:
        await connect_from("198.51.100.1", "carol")
    assert refused.value.error["details"] == {"kind": "ip"}
    await connect_from("198.51.100.3", "carol")
    assert not [key for key in tkr_host.host.connections if tkr_host.host.connections[key].principal.id == "alice"]


@pytest.mark.tkr_settings({"plugins": {"guard": {"ban_after_auth_failures": 2, "ban_s": 1.0}}})
async def test_bans_expire_and_refused_retries_do_not_extend_them(tkr_host, connect_from, fail_auth):
    await fail_auth(ATTACKER, 2)
    left = []
    for _ in range(3):
        with pytest.raises(ConnectRefused) as refused:
            await connect_from(ATTACKER, "carol")
        assert refused.value.error["code"] == "auth.banned"
        left.append(refused.value.error["retry_after"])
        await asyncio.sleep(0.1)  # time passing is what is under test: the ban counts down
    assert 1.0 >= left[0] > left[1] > left[2] > 0  # counting down, not starting again
    await asyncio.sleep(left[2] + 0.1)  # the ban's end, no longer
    client = await connect_from(ATTACKER, "carol")
    assert client.sio.connected
    # The count started again with the ban: one more failure does not ban at once.
    await fail_auth(ATTACKER, 1)
    await connect_from(ATTACKER, "carol")


@pytest.mark.tkr_settings({"plugins": {"guard": {"ban_after_auth_failures": 3}}})
async def test_the_admin_api_lists_and_lifts_bans(tkr_host, connect_from, fail_auth, http):
    await fail_auth(ATTACKER, 3)
    bans_url = f"{tkr_host.url}/api/v1/bans"
    admin = make_token("root", roles=["admin"])

    status, body = await http("GET", bans_url, admin)
    assert status == 200
    [ban] = body["bans"]
    assert (ban["target"], ban["kind"]) == (ATTACKER, "ip")
    assert 0 < ban["retry_after"] <= 300 and "3 failed authentications" in ban["reason"]
    assert ban["banned_at"].endswith("Z")

    status, body = await http("DELETE", f"{bans_url}/{ATTACKER}", admin)
    assert status == 200 and body["lifted"]["target"] == ATTACKER
    assert (await http("GET", bans_url, admin)) == (200, {"bans": []})
    await connect_from(ATTACKER, "carol")

    status, body = await http("DELETE", f"{bans_url}/{ATTACKER}", admin)
    assert status == 404 and body["error"]["code"] == "not_found.ban"


async def test_the_admin_api_is_for_admins_only(tkr_host, http):
    bans_url = f"{tkr_host.url}/api/v1/bans"
    status, body = await http("GET", bans_url)
    assert status == 401 and body["error"]["code"] == "auth.required"
    status, body = await http("GET", bans_url, make_token("bob"))
    assert status == 403 and body["error"]["code"] == "permission.admin"
    status, body = await http("DELETE", f"{bans_url}/{ATTACKER}", make_token("bob", roles=["ops"]))
    assert status == 403 and body["error"]["code"] == "permission.admin"
    status, body = await http("GET", bans_url, "not-a-token")
    assert status == 401


@pytest.mark.tkr_settings({"plugins": {"guard": {"ban_after_events": 10, "access_denied_weight": 5}}})
async def test_a_principal_ban_is_lifted_by_id_and_a_banned_address_cannot_use_the_api(tkr_host, connect_from, http, eventually):
    bob = await connect_from("127.0.0.1", "bob")
    session_id = await bob.create_session()
    alice = await connect_from("198.51.100.1", "alice")
    for _ in range(2):
        await alice.call("session:join", {"session_id": session_id})
    await eventually(lambda: not alice.sio.connected)
    admin = make_token("root", roles=["admin"])
    bans_url = f"{tkr_host.url}/api/v1/bans"

    # Even an admin token is refused from a banned address: the ban check comes before any credential.
    status, body = await http("GET", bans_url, admin, ip="198.51.100.1")
    assert status == 401 and body["error"]["code"] == "auth.banned"

    status, body = await http("GET", bans_url, admin)
    assert {(ban["kind"], ban["target"]) for ban in body["bans"]} == {("ip", "198.51.100.1"), ("principal", "alice")}
    assert (await http("DELETE", f"{bans_url}/principal:alice", admin))[0] == 200
    await connect_from("198.51.100.9", "alice")
    with pytest.raises(ConnectRefused):
        await connect_from("198.51.100.1", "alice")


@pytest.mark.tkr_settings({"plugins": {"guard": {"exempt": ["203.0.113.0/24"], "ban_after_auth_failures": 3}}})
async def test_exempt_addresses_are_never_banned(tkr_host, connect_from, fail_auth):
    await fail_auth(ATTACKER, 5)
    await connect_from(ATTACKER, "carol")
    await fail_auth("198.51.100.7", 3)
    with pytest.raises(ConnectRefused):
        await connect_from("198.51.100.7", "carol")


@pytest.mark.parametrize("guard_backend", ["redis"], indirect=True)
@pytest.mark.tkr_settings({"plugins": {"guard": {"ban_after_events": 10, "access_denied_weight": 5}}})
async def test_a_ban_on_one_node_closes_the_principals_sockets_on_every_node(tkr_host, tkr_settings, connect_from, eventually):
    other, stop_other = await start_host(tkr_settings)
    try:
        sio = await connect_client(other.url, make_token("alice"), headers={"X-Forwarded-For": "198.51.100.50"})
        alice_there = TkrClient(sio, "alice", "/chat")
        try:
            bob = await connect_from("127.0.0.1", "bob")
            session_id = await bob.create_session()
            alice_here = await connect_from("198.51.100.1", "alice")
            for _ in range(2):
                await alice_here.call("session:join", {"session_id": session_id})
            told = await alice_there.wait_for("error")
            assert told["code"] == "auth.banned"
            await eventually(lambda: not alice_there.sio.connected, what="alice's socket on the other node to close")
            with pytest.raises(ConnectRefused):
                await connect_client(other.url, make_token("alice"), headers={"X-Forwarded-For": "198.51.100.51"})
        finally:
            await alice_there.close()
    finally:
        await stop_other()
