"""The catch-all: every event answers once, whatever the client sends."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel

from tkr_host import hookimpl
from tkr_host.testing import ConnectRefused


async def test_unknown_event_is_answered(tkr_client):
    alice = await tkr_client("alice")
    ack = await alice.call("session:explode", {})
    assert ack["ok"] is False
    assert ack["error"]["code"] == "validation.unknown_event"
    assert "session:create" in ack["error"]["details"]["events"]


@pytest.mark.parametrize("payload", [None, "text", 5, [1, 2], True])
async def test_a_payload_that_is_not_an_object_is_refused(tkr_client, payload):
    alice = await tkr_client("alice")
    ack = await alice.sio.call("session:list", payload, namespace="/chat", timeout=5)
    assert ack["error"]["code"] == "validation.not_object"


async def test_no_payload_and_several_arguments_are_refused(tkr_client):
    alice = await tkr_client("alice")
    assert (await alice.sio.call("session:list", namespace="/chat", timeout=5))["error"]["code"] == "validation.not_object"
    two = await alice.sio.call("session:list", ({}, {}), namespace="/chat", timeout=5)
    assert two["error"]["code"] == "validation.not_object"


async def test_binary_attachments_are_refused(tkr_client):
    # Issue 7: a packet that declares binary attachments is malformed (it used to be
    # answered validation.not_object once python-socketio had buffered them all).
    alice = await tkr_client("alice")
    await alice.sio.emit("session:create", {"title": b"\x00\x01"}, namespace="/chat")
    told = await alice.wait_for("error")
    assert told["code"] == "protocol.malformed"
    await asyncio.wait_for(alice.sio.wait(), 5)  # returns once the connection has ended


@pytest.mark.tkr_settings({"host": {"max_payload_bytes": 1000}})
async def test_an_oversized_payload_is_refused_and_the_connection_stays(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    payload = {"session_id": session_id, "client_id": "c-big", "type": "text", "payload": {"text": "é" * 600}}
    ack = await alice.call("message:send", payload)  # 1200 bytes in UTF-8, 600 characters
    assert ack["error"]["code"] == "validation.too_large"
    # docs/configuration.md: counted as UTF-8 bytes of the payload's compact JSON.
    compact = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    assert ack["error"]["details"] == {"size": len(compact), "limit": 1000}
    assert (await alice.send_text(session_id, "small"))["ok"]
    assert [m["payload"]["text"] for m in await alice.history(session_id)] == ["small"]


#: docs/protocol.md, "Reserved event names".
@pytest.mark.parametrize("event", ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"])
async def test_reserved_event_names_are_refused(tkr_client, event):
    alice = await tkr_client("alice")
    ack = await alice.call(event, {"token": "x"})
    assert ack["ok"] is False
    assert ack["error"]["code"] == "protocol.reserved_event"
    # The socket was neither reconnected nor disconnected by the fake event.
    assert (await alice.ok("session:list"))["sessions"] == []


async def test_unknown_namespaces_are_refused_with_an_error(tkr_host, tkr_connect, tkr_token):
    for namespace in ("/", "/admin"):
        with pytest.raises(ConnectRefused) as refused:
            await tkr_connect(tkr_token("alice"), namespace=namespace)
        assert refused.value.error["code"] == "not_found.namespace"
        assert refused.value.error["hint"]


async def test_agents_namespace_admits_agents_only(tkr_connect, tkr_token):
    with pytest.raises(ConnectRefused) as refused:
        await tkr_connect(tkr_token("alice", kind="user"), namespace="/agents")
    assert refused.value.error["code"] == "permission.namespace"
    agent = await tkr_connect(tkr_token("echo", kind="agent"), namespace="/agents")
    assert agent.connected


async def test_missing_credentials_are_refused(tkr_connect):
    with pytest.raises(ConnectRefused) as refused:
        await tkr_connect(None)
    assert refused.value.error["code"] == "auth.required"
    assert set(refused.value.error) >= {"code", "category", "severity", "message", "hint", "recoverable", "request_id"}


@pytest.mark.tkr_settings({"host": {"allow_anonymous": True}})
async def test_anonymous_access_only_when_configured(tkr_connect):
    client = await tkr_connect(None)
    ack = await client.call("session:list", {}, namespace="/chat", timeout=5)
    assert ack == {"ok": True, "sessions": []}


@pytest.mark.tkr_settings({"host": {"allow_anonymous": True}})
@pytest.mark.parametrize("credential", ["not-a-token", "eyJhbGciOiJIUzI1NiJ9.e30.bad"])
async def test_anonymous_access_never_covers_an_invalid_credential(tkr_connect, credential):
    # A credential that was given and is wrong is refused, even where no
    # credential at all would be let in (docs/configuration.md, allow_anonymous).
    with pytest.raises(ConnectRefused) as refused:
        await tkr_connect(credential)
    assert refused.value.error["code"] == "auth.invalid"


async def test_without_allow_anonymous_no_credential_is_refused_on_every_namespace(tkr_connect):
    for namespace in ("/chat", "/agents", "/tasks"):
        with pytest.raises(ConnectRefused) as refused:
            await tkr_connect(None, namespace=namespace)
        assert refused.value.error["code"] == "auth.required"


async def test_an_error_in_one_client_does_not_disturb_another(tkr_client):
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    session_id = await bob.create_session()
    bad = [alice.call("message:send", {"session_id": 5}) for _ in range(20)]
    good = [bob.send_text(session_id, f"m{i}") for i in range(20)]
    results = await asyncio.gather(*bad, *good)
    assert all(not r["ok"] for r in results[:20])
    assert all(r["ok"] for r in results[20:])


class Exploding:
    """A message type with a bug: its handler raises."""

    __name__ = "exploding"
    name = "boom"

    class payload_model(BaseModel):
        pass

    async def handle(self, ctx, draft):
        raise RuntimeError("secret internal detail")

    @hookimpl
    def register_message_types(self, host):
        return [self]


@pytest.fixture
def tkr_plugins():
    return [Exploding()]


async def test_an_unexpected_failure_is_internal_with_a_request_id_in_the_log(tkr_client, caplog):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    ack = await alice.call("message:send", {"session_id": session_id, "client_id": "c-1", "type": "boom", "payload": {}})
    error = ack["error"]
    assert error["code"] == "internal.error" and error["severity"] == "critical" and error["recoverable"] is True
    assert "secret internal detail" not in str(ack) and "Traceback" not in str(ack)
    assert f"request_id={error['request_id']}" in caplog.text
    assert "secret internal detail" in caplog.text
    assert await alice.history(session_id) == []
