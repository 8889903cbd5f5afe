"""Through a real host and real clients, on the memory backend and on Redis:
what is refused, what the refusal says, and that nothing refused is stored or delivered."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import socketio
from redis.asyncio import Redis
from tkr_ratelimit import RedisBackend, build_backend
from tkr_ratelimit.buckets import Rate
from tkr_ratelimit.settings import RateLimitSettings

from tkr_host import lifecycle
from tkr_host.app import create_app
from tkr_host.config import load_settings
from tkr_host.testing import ConnectRefused, RunningHost, TkrClient, connect_client, deep_merge, make_token, start_host

MakeClient = Callable[..., Awaitable[TkrClient]]
Connect = Callable[..., Awaitable[socketio.AsyncClient]]
Room = Callable[[], Awaitable[tuple[TkrClient, TkrClient, str]]]

#: One message per 1000 s: within a test, the burst is all a principal gets.
SLOW = 0.001


def limits(**table: Any) -> pytest.MarkDecorator:
    return pytest.mark.tkr_settings({"plugins": {"ratelimit": table}})


def assert_refusal(error: dict[str, Any], code: str) -> None:
    assert error["code"] == code
    assert (error["category"], error["recoverable"]) == ("rate_limit", True)
    assert isinstance(error["retry_after"], int | float) and error["retry_after"] > 0
    assert error["hint"]


async def refused_connect(connect: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    with pytest.raises(ConnectRefused) as caught:
        await connect()
    return caught.value.error


# --- the host uses this plugin ---------------------------------------------------------


async def test_the_host_asks_this_plugins_limiter(tkr_host: RunningHost, ratelimit_backend: dict[str, Any]) -> None:
    limiter = tkr_host.host.rate_limiter
    assert limiter is not None and limiter is tkr_host.host.extensions["ratelimit"]
    assert type(limiter).__name__ == {"memory": "MemoryBackend", "redis": "RedisBackend"}[ratelimit_backend["backend"]]


async def test_the_defaults_let_ten_clients_connect_and_fifty_quick_messages_through(tkr_client: MakeClient) -> None:
    clients = [await tkr_client(f"user{i}") for i in range(10)]
    alice = clients[0]
    session_id = await alice.create_session()
    acks = await asyncio.gather(*(alice.send_text(session_id, f"m{i}") for i in range(50)))
    assert all(ack["ok"] for ack in acks), [ack for ack in acks if not ack["ok"]][:1]


# --- messages ----------------------------------------------------------------------------


@limits(messages_per_second=1, message_burst=5)
async def test_a_flood_is_limited_and_nothing_refused_is_stored_or_delivered(room: Room) -> None:
    alice, bob, session_id = await room()
    acks = await asyncio.gather(*(alice.send_text(session_id, f"m{i}") for i in range(40)))
    accepted = [ack for ack in acks if ack["ok"]]
    refused = [ack for ack in acks if not ack["ok"]]
    assert len(accepted) >= 5 and refused
    for ack in refused:
        assert_refusal(ack["error"], "rate_limit.exceeded")
    # Stored: exactly the accepted ones, with gapless seqs.
    history = await alice.history(session_id)
    assert {m["client_id"] for m in history} == {ack["client_id"] for ack in accepted}
    assert sorted(ack["message"]["seq"] for ack in accepted) == list(range(1, len(accepted) + 1))
    # Delivered: exactly the accepted ones. A refused send is answered before the store, so none can come later.
    await bob.wait_for("message", lambda m: m["seq"] == len(accepted))
    assert sorted(m["client_id"] for m in bob.received("message")) == sorted(ack["client_id"] for ack in accepted)


@limits(messages_per_second=SLOW, message_burst=2)
async def test_a_resent_duplicate_counts_like_any_send(room: Room) -> None:
    # PROTOCOL.md 1.1: "A duplicate counts against rate limits like any send."
    alice, _, session_id = await room()
    first = await alice.send_text(session_id, "once", client_id="c-once")
    assert first["ok"] and not first["duplicate"]
    again = await alice.send_text(session_id, "once", client_id="c-once")
    assert again["ok"] and again["duplicate"]  # the burst's second token
    refused = await alice.send_text(session_id, "once", client_id="c-once")
    assert_refusal(refused["error"], "rate_limit.exceeded")
    assert [m["client_id"] for m in await alice.history(session_id)] == ["c-once"]


@limits(messages_per_second=SLOW, message_burst=3)
async def test_each_principal_has_a_limit_of_its_own(room: Room) -> None:
    alice, bob, session_id = await room()
    acks = [await alice.send_text(session_id, f"a{i}") for i in range(4)]
    assert [ack["ok"] for ack in acks] == [True, True, True, False]
    assert [(await bob.send_text(session_id, f"b{i}"))["ok"] for i in range(3)] == [True, True, True]


@limits(messages_per_second=20, message_burst=1)
async def test_a_refused_send_goes_through_when_sent_again_after_retry_after(room: Room) -> None:
    alice, _, session_id = await room()
    assert (await alice.send_text(session_id, "first", client_id="c-first"))["ok"]
    refused = await alice.send_text(session_id, "later", client_id="c-later")
    assert_refusal(refused["error"], "rate_limit.exceeded")
    assert refused["error"]["retry_after"] <= 0.05
    await asyncio.sleep(refused["error"]["retry_after"])
    again = await alice.send_text(session_id, "later", client_id="c-later")
    assert again["ok"] and not again["duplicate"]
    assert [m["client_id"] for m in await alice.history(session_id)] == ["c-first", "c-later"]


# --- sessions ----------------------------------------------------------------------------


@limits(sessions_per_minute=1, session_burst=2)
async def test_new_sessions_are_limited_per_principal(tkr_client: MakeClient) -> None:
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    await alice.create_session("one")
    await alice.create_session("two")
    ack = await alice.call("session:create", {"title": "three"})
    assert ack["ok"] is False
    assert_refusal(ack["error"], "rate_limit.sessions")
    assert 0 < ack["error"]["retry_after"] <= 60
    await bob.create_session("bob's")
    assert len((await alice.ok("session:list"))["sessions"]) == 2


# --- connects ----------------------------------------------------------------------------


@limits(connects_per_minute=1, connect_burst=2)
async def test_connects_are_limited_per_address(tkr_connect: Connect, tkr_token: Callable[..., str]) -> None:
    await tkr_connect(tkr_token("alice"))
    await tkr_connect(tkr_token("bob"))
    error = await refused_connect(lambda: tkr_connect(tkr_token("carol")))
    assert_refusal(error, "rate_limit.connect")
    assert 0 < error["retry_after"] <= 60


@limits(connects_per_minute=1, connect_burst=1)
async def test_a_connect_without_credentials_still_counts(tkr_connect: Connect, tkr_token: Callable[..., str]) -> None:
    # The limit comes before authentication, so guessing tokens costs connects.
    assert (await refused_connect(lambda: tkr_connect(None)))["code"] == "auth.required"
    assert_refusal(await refused_connect(lambda: tkr_connect(tkr_token("alice"))), "rate_limit.connect")


@limits(connects_per_minute=1, connect_burst=1, trusted_proxies=["127.0.0.1"])
async def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_bucket(
    tkr_host: RunningHost, tkr_connect: Connect, tkr_token: Callable[..., str]
) -> None:
    assert "127.0.0.1" in tkr_host.host.settings.host.trusted_proxies  # one list, for the host and every plugin
    await tkr_connect(tkr_token("alice"), headers={"X-Forwarded-For": "203.0.113.7"})
    await tkr_connect(tkr_token("bob"), headers={"X-Forwarded-For": "198.51.100.2, 203.0.113.8"})
    error = await refused_connect(lambda: tkr_connect(tkr_token("carol"), headers={"X-Forwarded-For": "203.0.113.7"}))
    assert_refusal(error, "rate_limit.connect")


@limits(connects_per_minute=1, connect_burst=1)
async def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(
    tkr_host: RunningHost, tkr_connect: Connect, tkr_token: Callable[..., str]
) -> None:
    assert tkr_host.host.settings.host.trusted_proxies == []
    await tkr_connect(tkr_token("alice"), headers={"X-Forwarded-For": "203.0.113.7"})
    error = await refused_connect(lambda: tkr_connect(tkr_token("bob"), headers={"X-Forwarded-For": "203.0.113.8"}))
    assert_refusal(error, "rate_limit.connect")


@pytest.mark.tkr_settings({"host": {"trusted_proxies": ["10.0.0.0/8", "127.0.0.1"]}, "plugins": {"ratelimit": {"trusted_proxies": ["127.0.0.1", "192.0.2.1"]}}})
async def test_the_plugins_proxies_are_added_to_the_hosts_list_once(tkr_host: RunningHost) -> None:
    assert tkr_host.host.settings.host.trusted_proxies == ["10.0.0.0/8", "127.0.0.1", "192.0.2.1"]


# --- the backends on their own ---------------------------------------------------------


async def test_both_backends_decide_alike(ratelimit_backend: dict[str, Any]) -> None:
    settings = RateLimitSettings.model_validate({**ratelimit_backend, "messages_per_second": SLOW, "message_burst": 3,
                                                 "sessions_per_minute": 60, "session_burst": 1})
    backend = build_backend(settings)
    await backend.start()
    try:
        assert [await backend.hit("message", "alice") for _ in range(3)] == [None, None, None]
        wait = await backend.hit("message", "alice")
        assert wait is not None and 999 < wait <= 1000
        assert await backend.hit("message", "bob") is None
        assert await backend.hit("session", "alice") is None
        wait = await backend.hit("session", "alice")
        assert wait is not None and 0 < wait <= 1
        assert await backend.hit("something-new", "alice") is None  # an action this plugin does not know is not limited
    finally:
        await backend.close()


@pytest.mark.parametrize("ratelimit_backend", ["redis"], indirect=True)
async def test_redis_keys_carry_the_prefix_and_expire(tkr_client: MakeClient, ratelimit_backend: dict[str, Any], redis_client: Redis) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    assert (await alice.send_text(session_id, "hi"))["ok"]
    prefix = ratelimit_backend["key_prefix"]
    keys = sorted([key.decode() async for key in redis_client.scan_iter(match=f"{prefix}*")])
    # A principal is counted by kind and id (README: `kind:id`).
    assert keys == [f"{prefix}connect:127.0.0.1", f"{prefix}message:user:alice", f"{prefix}session:user:alice"]
    for key in keys:
        assert await redis_client.pttl(key) > 0  # gone once the bucket is full again


@pytest.mark.parametrize("ratelimit_backend", ["redis"], indirect=True)
async def test_two_hosts_share_one_limit_through_redis(tkr_settings: dict[str, Any], tkr_plugins: list[Any], tmp_path: Any) -> None:
    settings = deep_merge(tkr_settings, {"plugins": {"ratelimit": {"messages_per_second": SLOW, "message_burst": 4}}})
    other = settings
    if "store_peewee" in settings["plugins"]:  # a database of its own: the limit is all the two hosts share
        other = deep_merge(settings, {"plugins": {"store_peewee": {"url": f"sqlite:///{tmp_path}/other.db"}}})
    first, stop_first = await start_host(settings, tkr_plugins)
    clients: list[TkrClient] = []
    try:
        second, stop_second = await start_host(other, tkr_plugins)
        try:
            for running in (first, second):
                sio = await connect_client(running.url, make_token("alice"))
                clients.append(TkrClient(sio, "alice", "/chat"))
            sessions = [await client.create_session() for client in clients]
            on_first = [await clients[0].send_text(sessions[0], f"a{i}") for i in range(3)]
            on_second = [await clients[1].send_text(sessions[1], f"b{i}") for i in range(3)]
            assert [ack["ok"] for ack in on_first] == [True, True, True]
            assert [ack["ok"] for ack in on_second] == [True, False, False]
            assert_refusal(on_second[1]["error"], "rate_limit.exceeded")
            backends = [first.host.extensions["ratelimit"], second.host.extensions["ratelimit"]]
        finally:
            for client in clients:
                await client.close()
            await stop_second()
    finally:
        await stop_first()
    assert all(isinstance(backend, RedisBackend) and backend.client is None for backend in backends)  # closed at host_shutdown


@pytest.mark.parametrize("ratelimit_backend", ["memory"], indirect=True)
async def test_an_unreachable_redis_stops_start_up(tkr_settings: dict[str, Any], tkr_plugins: list[Any]) -> None:
    settings = deep_merge(tkr_settings, {"plugins": {"ratelimit": {"backend": "redis", "redis_url": "redis://127.0.0.1:1/0",
                                                                   "redis_timeout_s": 1}}})
    # The start-up Hypercorn runs, called directly so that the plugins that did start are stopped afterwards.
    app = create_app(load_settings(None, **settings), tkr_plugins)
    try:
        with pytest.raises(RuntimeError, match=r"Redis at redis://127\.0\.0\.1:1/0 does not answer"):
            await lifecycle.startup(app.host)
        assert not app.host.started
    finally:
        await lifecycle.shutdown(app.host)


@pytest.mark.parametrize(("fail_open", "expected"), [(True, None), (False, 0.5)])
async def test_when_redis_fails_after_start_up_fail_open_decides(fail_open: bool, expected: float | None,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    backend = RedisBackend({"message": Rate(2, 5)}, "redis://127.0.0.1:1/0", "tkr-test:", timeout_s=1, fail_open=fail_open)
    backend.connect()  # as after a successful start, but nothing answers there
    try:
        with caplog.at_level(logging.WARNING, logger="tkr_ratelimit.backends"):
            assert [await backend.hit("message", "alice") for _ in range(3)] == [expected] * 3
    finally:
        await backend.close()
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1  # once per outage, not once per message
