"""The parts of the contract that had no test (issue 13, item 5).

Every expected value is taken from docs/protocol.md or docs/configuration.md,
quoted next to its assertion.
"""

from __future__ import annotations

import aiohttp
import pytest

from tkr_host import HostError, hookimpl
from tkr_host.config import ConfigError, load_settings
from tkr_host.testing import ConnectRefused, TkrClient, connect_client, make_token, start_host

ALLOWED_ORIGIN = "http://allowed.example"
REFUSED_ORIGIN = "http://refused.example"


async def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers or {}) as response:
        return response.status, dict(response.headers), await response.text()


# --- cors_allowed_origins ----------------------------------------------------------
# configuration.md: "origins a browser may open a Socket.IO connection from. Empty: the
# host's own origin only. It applies to Socket.IO, not to the HTTP routes".


@pytest.mark.tkr_settings({"host": {"cors_allowed_origins": [ALLOWED_ORIGIN]}})
async def test_cors_an_allowed_origin_may_open_a_polling_handshake(tkr_host):
    status, headers, body = await http_get(f"{tkr_host.url}/socket.io/?EIO=4&transport=polling", {"Origin": ALLOWED_ORIGIN})
    assert status == 200 and body.startswith("0{")
    assert headers.get("Access-Control-Allow-Origin") == ALLOWED_ORIGIN


@pytest.mark.tkr_settings({"host": {"cors_allowed_origins": [ALLOWED_ORIGIN]}})
async def test_cors_a_refused_origin_cannot_open_a_polling_handshake(tkr_host):
    status, headers, body = await http_get(f"{tkr_host.url}/socket.io/?EIO=4&transport=polling", {"Origin": REFUSED_ORIGIN})
    assert status == 400 and not body.startswith("0{")
    assert "Access-Control-Allow-Origin" not in headers


@pytest.mark.tkr_settings({"host": {"cors_allowed_origins": [ALLOWED_ORIGIN]}})
async def test_cors_applies_to_the_websocket_handshake_too(tkr_host):
    token = make_token("alice")
    allowed = await connect_client(tkr_host.url, token, headers={"Origin": ALLOWED_ORIGIN})
    await allowed.disconnect()
    with pytest.raises(Exception):  # noqa: B017 - refused before any namespace: python-socketio's own ConnectionError
        await connect_client(tkr_host.url, token, headers={"Origin": REFUSED_ORIGIN})


async def test_cors_empty_allows_the_hosts_own_origin_only(tkr_host):
    own = tkr_host.url
    status, _, body = await http_get(f"{tkr_host.url}/socket.io/?EIO=4&transport=polling", {"Origin": own})
    assert status == 200 and body.startswith("0{")
    status, _, _ = await http_get(f"{tkr_host.url}/socket.io/?EIO=4&transport=polling", {"Origin": REFUSED_ORIGIN})
    assert status == 400


@pytest.mark.tkr_settings({"host": {"cors_allowed_origins": [ALLOWED_ORIGIN]}})
async def test_cors_does_not_apply_to_the_http_routes(tkr_host):
    for origin in (ALLOWED_ORIGIN, REFUSED_ORIGIN):
        status, headers, _ = await http_get(f"{tkr_host.url}/healthz", {"Origin": origin})
        assert status == 200
        assert "Access-Control-Allow-Origin" not in headers


# --- /chat events ------------------------------------------------------------------


async def test_invite_by_a_non_member_is_permission_not_member(tkr_client):
    alice, mallory = await tkr_client("alice"), await tkr_client("mallory")
    session_id = await alice.create_session()
    # protocol.md: "only members get past the first check (`permission.not_member`)".
    ack = await mallory.call("session:invite", {"session_id": session_id, "member": {"id": "mallory", "kind": "user"}})
    assert ack["ok"] is False and ack["error"]["code"] == "permission.not_member"
    members = (await alice.ok("session:join", {"session_id": session_id}))["session"]["members"]
    assert [m["id"] for m in members] == ["alice"]


async def test_invite_by_a_member_who_is_not_the_creator_is_permission_invite(room):
    _, bob, session_id = await room(joined=False)
    ack = await bob.call("session:invite", {"session_id": session_id, "member": {"id": "carol", "kind": "user"}})
    assert ack["ok"] is False and ack["error"]["code"] == "permission.invite"


async def test_leaving_a_session_the_socket_does_not_follow_is_ok(room):
    _, bob, session_id = await room(joined=False)
    # protocol.md: "Leaving a session the socket does not follow is answered `{ok: true}`"
    # and "The principal stays a member".
    assert await bob.call("session:leave", {"session_id": session_id}) == {"ok": True}
    assert session_id in [s["id"] for s in (await bob.ok("session:list"))["sessions"]]


async def test_a_receipt_for_an_unknown_session_is_not_found_session(tkr_client):
    alice = await tkr_client("alice")
    # protocol.md: "An unknown session answers `not_found.session`".
    ack = await alice.call("message:receipt", {"session_id": "no-such-session", "seq": 1, "status": "read"})
    assert ack["ok"] is False and ack["error"]["code"] == "not_found.session"


async def agent_in_session(tkr_client) -> tuple[TkrClient, TkrClient, str]:
    alice = await tkr_client("alice")
    bot = await tkr_client("bot", kind="agent", namespace="/agents")
    session_id = await alice.create_session(agents=["bot"])
    return alice, bot, session_id


@pytest.mark.parametrize("to", ["alice", "nobody"], ids=["a-user", "not-a-member"])
async def test_stream_start_with_a_bad_to_is_validation_recipient(tkr_client, to):
    _, bot, session_id = await agent_in_session(tkr_client)
    # protocol.md: `validation.recipient`: "`to` ... is not an agent of the session".
    ack = await bot.call("stream:start", {"session_id": session_id, "to": to})
    assert ack["ok"] is False and ack["error"]["code"] == "validation.recipient"


async def test_task_subscribe_of_an_unknown_task_is_not_found_task(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    tasks = await tkr_client("alice", namespace="/tasks")
    # protocol.md (/tasks): "an existing task, a missing one and an unknown session answer
    # the same `not_found.task`".
    missing = await tasks.call("task:subscribe", {"session_id": session_id, "task_id": "no-such-task"})
    unknown_session = await tasks.call("task:subscribe", {"session_id": "no-such-session", "task_id": "t1"})
    assert missing["ok"] is False and missing["error"]["code"] == "not_found.task"
    assert unknown_session["error"]["code"] == "not_found.task"
    assert missing["error"]["message"] == unknown_session["error"]["message"]
    # No task:update follows a refused subscription: a later event on the socket is the sentinel.
    await tasks.call("task:get", {"session_id": session_id, "task_id": "no-such-task"})
    assert tasks.received("task:update") == []


async def test_an_event_from_a_socket_the_host_no_longer_knows_is_protocol_not_connected(tkr_host, tkr_client):
    alice = await tkr_client("alice")
    # The race it guards: the socket's clean-up has run while its event was on the way.
    # A client cannot send for a namespace it never connected (python-socketio drops that
    # packet), so the clean-up is done here the way a disconnect does it: the host forgets
    # the connection while Socket.IO still delivers its events.
    sid = alice.sio.get_sid("/chat")
    assert tkr_host.host.connections.pop(("/chat", sid), None) is not None
    ack = await alice.call("session:list")
    # protocol.md: "`protocol.not_connected` | an event arrived from a socket the host does
    # not know in that namespace".
    assert ack["ok"] is False and ack["error"]["code"] == "protocol.not_connected"
    assert ack["error"]["hint"]


# --- the credential --------------------------------------------------------------


async def test_the_auth_payload_wins_over_a_bearer_header(tkr_host):
    # protocol.md (Authentication): the auth payload's token is read first, the header
    # only without one.
    good, bad = make_token("alice"), "not-a-token"
    client = await connect_client(tkr_host.url, good, headers={"Authorization": f"Bearer {bad}"})
    try:
        ack = await client.call("session:create", {"title": "x"}, namespace="/chat")
        assert ack["ok"] is True and ack["session"]["created_by"] == "alice"
    finally:
        await client.disconnect()
    with pytest.raises(ConnectRefused) as refused:
        await connect_client(tkr_host.url, bad, headers={"Authorization": f"Bearer {good}"})
    assert refused.value.error["code"] == "auth.invalid"


async def test_a_bearer_header_is_read_when_the_auth_payload_has_no_token(tkr_host):
    client = await connect_client(tkr_host.url, None, headers={"Authorization": f"Bearer {make_token('bob')}"})
    try:
        ack = await client.call("session:create", {"title": "x"}, namespace="/chat")
        assert ack["session"]["created_by"] == "bob"
    finally:
        await client.disconnect()


# --- range checks of [host] ---------------------------------------------------------
# configuration.md: max_payload_bytes "integer, 1 to 1 048 576"; history_limit "integer,
# 1 to 1000"; resume_limit "integer, 1 to 10 000"; websocket_compression_min_bytes "integer,
# 0 to 1 048 576".

RANGES = {"max_payload_bytes": (1, 1_048_576), "history_limit": (1, 1000), "resume_limit": (1, 10_000),
          "max_inflight_events": (1, 256), "max_unconnected_sessions_per_address": (1, 10_000),
          "max_connections_per_address": (0, 1_000_000), "websocket_compression_min_bytes": (0, 1_048_576)}


@pytest.mark.parametrize("key", sorted(RANGES))
def test_a_host_integer_key_takes_its_documented_range_and_nothing_outside(key):
    low, high = RANGES[key]
    assert getattr(load_settings(None, host={key: low}).host, key) == low
    assert getattr(load_settings(None, host={key: high}).host, key) == high
    for outside in (low - 1, high + 1):
        with pytest.raises((ConfigError, ValueError)):
            load_settings(None, host={key: outside})


@pytest.mark.parametrize("key", ["connect_timeout_s", "ping_interval_s", "ping_timeout_s"])
def test_a_host_duration_must_be_above_zero(key):
    # configuration.md: "number > 0".
    assert getattr(load_settings(None, host={key: 0.5}).host, key) == 0.5
    with pytest.raises((ConfigError, ValueError)):
        load_settings(None, host={key: 0})


def test_drain_timeout_may_be_zero_but_not_negative():
    # configuration.md: drain_timeout_s "number ≥ 0".
    assert load_settings(None, host={"drain_timeout_s": 0}).host.drain_timeout_s == 0
    with pytest.raises((ConfigError, ValueError)):
        load_settings(None, host={"drain_timeout_s": -0.1})


def test_metrics_token_needs_16_characters():
    # configuration.md: metrics_token "string (16 characters or more) or unset".
    assert load_settings(None, host={"metrics_token": "x" * 16}).host.metrics_token == "x" * 16
    with pytest.raises((ConfigError, ValueError)):
        load_settings(None, host={"metrics_token": "x" * 15})


@pytest.mark.parametrize(("key", "value"), [
    ("log_format", "xml"),
    ("log_level", "loud"),
])
def test_a_host_choice_outside_its_documented_values_is_refused(key, value):
    # configuration.md: log_format "`text` or `json`"; log_level debug, info, warning, error.
    with pytest.raises((ConfigError, ValueError)):
        load_settings(None, host={key: value})


@pytest.mark.parametrize(("key", "value"), [("log_format", "text"), ("log_format", "json"), ("log_level", "debug"),
                                            ("log_level", "info"), ("log_level", "warning"), ("log_level", "error")])
def test_a_host_choice_takes_each_of_its_documented_values(key, value):
    assert getattr(load_settings(None, host={key: value}).host, key) == value


@pytest.mark.tkr_settings({"host": {"history_limit": 3}})
async def test_history_limit_is_what_a_join_without_since_seq_returns(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    for i in range(5):
        await alice.send_text(session_id, f"m{i}")
    # protocol.md: "Without `since_seq`: the last `host.history_limit` messages, oldest first".
    joined = await alice.join(session_id)
    assert [m["seq"] for m in joined["messages"]] == [3, 4, 5]


@pytest.mark.tkr_settings({"host": {"resume_limit": 2}})
async def test_resume_limit_cuts_a_resume_and_says_truncated(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    for i in range(5):
        await alice.send_text(session_id, f"m{i}")
    # protocol.md: "the first `host.resume_limit` messages after it ... `truncated: true`".
    joined = await alice.join(session_id, since_seq=1)
    assert [m["seq"] for m in joined["messages"]] == [2, 3] and joined["truncated"] is True
    rest = await alice.join(session_id, since_seq=3)
    assert [m["seq"] for m in rest["messages"]] == [4, 5] and rest["truncated"] is False


@pytest.mark.tkr_settings({"host": {"max_payload_bytes": 200}})
async def test_max_payload_bytes_refuses_a_bigger_payload_and_keeps_the_connection(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    # configuration.md: "A bigger one is answered `validation.too_large` and the connection stays up".
    refused = await alice.send_text(session_id, "x" * 300)
    assert refused["ok"] is False and refused["error"]["code"] == "validation.too_large"
    assert (await alice.send_text(session_id, "small"))["ok"] is True


# --- HTTP: every category's status --------------------------------------------------
# protocol.md (HTTP): validation 400, auth 401, permission 403, not_found 404, conflict 409,
# rate_limit 429, store 503, any other 500.

STATUS_BY_CODE = {"validation.payload": 400, "auth.invalid": 401, "permission.not_member": 403, "not_found.session": 404,
                  "conflict.member_id": 409, "rate_limit.exceeded": 429, "store.unavailable": 503, "agent.stream_aborted": 500,
                  "protocol.malformed": 500, "internal.error": 500}


class Refuses:
    """An auth plugin that refuses every HTTP request with the Error ``code``."""

    code = "internal.error"

    @hookimpl
    def authenticate(self, host, handshake):
        raise HostError(self.code)


REFUSES = Refuses()


@pytest.mark.parametrize("code", sorted(STATUS_BY_CODE))
async def test_an_http_error_gets_the_status_of_its_category(tkr_settings, code):
    running, stop = await start_host(tkr_settings, [REFUSES])
    REFUSES.code = code
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{running.url}/api/v1/agents",
                                                            headers={"Authorization": "Bearer any"}) as response:
            body = await response.json()
            assert response.status == STATUS_BY_CODE[code]
            assert body["error"]["code"] == code and body["error"]["hint"]
    finally:
        await stop()


# --- /readyz and shutting down ------------------------------------------------------


class StoreDown:
    """Makes the real store's ping fail, as a store whose database stopped answers."""

    def __init__(self, store) -> None:
        self.store = store

    def __getattr__(self, name):
        return getattr(self.store, name)

    async def ping(self) -> None:
        raise ConnectionError("the database does not answer")


async def test_readyz_is_503_while_the_store_is_down_and_200_again_after(tkr_host):
    real = tkr_host.host.store
    tkr_host.host.store = StoreDown(real)
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{tkr_host.url}/readyz") as response:
            body = await response.json()
        # protocol.md: 503 {"status": "not ready", "checks": {"store": "unavailable", ...}}.
        assert response.status == 503 and body["status"] == "not ready" and body["checks"]["store"] == "unavailable"
    finally:
        tkr_host.host.store = real
    async with aiohttp.ClientSession() as http, http.get(f"{tkr_host.url}/readyz") as response:
        assert response.status == 200


async def test_readyz_is_503_while_the_plugins_are_starting(tkr_host):
    # A start-up in progress is not served (Hypercorn answers once the app has started), so
    # the host is put back in that state: its plugins not yet started.
    tkr_host.host.started = False
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{tkr_host.url}/readyz") as response:
            body = await response.json()
        assert response.status == 503 and body["checks"]["plugins"] == "starting"
    finally:
        tkr_host.host.started = True


async def test_a_connect_while_draining_is_refused_with_protocol_shutting_down(tkr_host):
    tkr_host.host.draining = True
    try:
        with pytest.raises(ConnectRefused) as refused:
            await connect_client(tkr_host.url, make_token("alice"))
        # protocol.md (Shutdown): "New connects are refused with `protocol.shutting_down`";
        # it is `info` and, being a protocol error, not recoverable by default.
        assert refused.value.error["code"] == "protocol.shutting_down"
        assert refused.value.error["severity"] == "info"
    finally:
        tkr_host.host.draining = False
