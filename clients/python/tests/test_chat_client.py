"""ChatClient against a real host: the API of the issue's item 2 and its fixed names."""

from __future__ import annotations

import pytest
from tkr_client import AuthError, ChatClient, NotFoundError, PermissionDeniedError, QueueFullError, TkrError, ValidationError


async def test_sessions_sends_and_history(chat, tkr_client):
    alice = await chat("alice")
    assert alice.state == "connected" and alice.queued == 0
    session = await alice.create_session(title="Plans", agents=["echo"])
    assert session["title"] == "Plans" and session["created_by"] == "alice"
    assert {m["id"] for m in session["members"]} == {"alice", "echo"}
    sent = await alice.send_text(session["id"], "hello", to="echo")
    assert set(sent) == {"id", "seq", "ts"} and sent["seq"] == 1
    other = await alice.send(session["id"], "text", {"text": "second", "format": "markdown"})
    assert other["seq"] == 2
    history = await alice.history(session["id"])
    assert [(m["seq"], m["payload"]["text"], m["to"]) for m in history] == [(1, "hello", "echo"), (2, "second", None)]
    assert [m["seq"] for m in await alice.history(session["id"], before_seq=2, limit=1)] == [1]
    assert [s["id"] for s in await alice.list_sessions()] == [session["id"]]
    invited = await alice.invite(session["id"], "bob")
    assert "bob" in {m["id"] for m in invited["members"]}
    bob = await chat("bob")
    joined = await bob.join(session["id"])
    assert [m["seq"] for m in joined["messages"]] == [1, 2] and joined["session"]["id"] == session["id"]
    assert joined["streams"] == [] and joined["agents"] == []
    await bob.leave(session["id"])


async def test_events_arrive_in_seq_order_once_and_not_ones_own(chat, tkr_client, recorder):
    alice = await chat("alice")
    seen = recorder(alice)
    session = await alice.create_session(title="t")
    await alice.invite(session["id"], "bob")
    bob = await tkr_client("bob")
    await bob.join(session["id"])
    mine = await alice.send_text(session["id"], "from alice")
    for i in range(5):
        await bob.send_text(session["id"], f"b{i}")
    await seen.wait("message", lambda m: m["payload"]["text"] == "b4")
    assert [m["seq"] for m in seen.of("message")] == [2, 3, 4, 5, 6]
    assert mine["seq"] == 1
    # A receipt goes to the sender's sockets.
    await bob.ok("message:receipt", {"session_id": session["id"], "seq": 1, "status": "read"})
    receipt = await seen.wait("receipt")
    assert receipt["seq"] == 1 and receipt["by"] == "bob" and receipt["status"] == "read"
    await alice.receipt(session["id"], 2)
    presence = seen.of("presence")
    assert {"member": {"id": "bob", "kind": "user"}, "state": "online", "session_id": session["id"]} in presence


async def test_the_async_iterator_yields_events_for_scripts(chat, tkr_client):
    alice = await chat("alice")
    session = await alice.create_session()
    await alice.invite(session["id"], "bob")
    bob = await tkr_client("bob")
    await bob.join(session["id"])
    events = alice.events("message")
    await bob.send_text(session["id"], "one")
    await bob.send_text(session["id"], "two")
    texts = []
    async for event in events:
        texts.append(event.data["payload"]["text"])
        assert event.name == "message" and event.session_id == session["id"]
        if len(texts) == 2:
            break
    assert texts == ["one", "two"]


async def test_refusals_are_typed_errors_and_leave_the_queue(chat, recorder):
    alice = await chat("alice")
    seen = recorder(alice)
    session = await alice.create_session()
    with pytest.raises(ValidationError) as refused:
        await alice.send_text(session["id"], "")  # text must hold 1 character or more
    error = refused.value
    assert error.code == "validation.payload" and error.category == "validation" and error.hint and error.request_id
    assert isinstance(error, TkrError) and error.recoverable is False
    assert alice.queued == 0
    assert (await seen.wait("error")).code == "validation.payload"
    with pytest.raises(ValidationError):
        await alice.send_text(session["id"], "hi", to="nobody")
    with pytest.raises(NotFoundError) as missing:
        await alice.history("no-such-session")
    assert missing.value.code == "not_found.session"
    mallory = await chat("mallory")
    with pytest.raises(PermissionDeniedError):
        await mallory.send_text(session["id"], "let me in")
    with pytest.raises(PermissionDeniedError):
        await mallory.join(session["id"])
    # The queue went on: a later send goes through.
    assert (await alice.send_text(session["id"], "still here"))["seq"] == 1


async def test_a_full_queue_refuses_at_once(chat, until):
    alice = await chat("alice", connect=False, max_queue_entries=2)
    import asyncio

    waiting = [asyncio.ensure_future(alice.send_text("s", f"m{i}")) for i in range(2)]
    await until(lambda: alice.queued == 2, what="two queued sends")
    with pytest.raises(QueueFullError) as full:
        await alice.send_text("s", "one too many")
    assert full.value.code == "client.queue_full" and "2" in full.value.message and full.value.hint
    assert alice.queued == 2
    small = await chat("bob", connect=False, max_queue_bytes=200)
    with pytest.raises(QueueFullError):
        await small.send_text("s", "x" * 300)
    assert small.queued == 0
    for future in waiting:
        future.cancel()


async def test_a_refused_credential_stops_and_reports(tkr_host, tkr_token):
    client = ChatClient(tkr_host.url, "not-a-token")
    with pytest.raises(AuthError) as refused:
        await client.connect()
    assert refused.value.code == "auth.invalid" and client.state == "closed"
    expired = ChatClient(tkr_host.url, tkr_token("alice", ttl=-600))
    with pytest.raises(AuthError) as late:
        await expired.connect()
    assert late.value.code == "auth.expired"


async def test_a_token_callable_is_asked_again_after_a_refusal(tkr_host, tkr_token, fast):
    tokens = iter([tkr_token("alice", ttl=-600), tkr_token("alice")])
    calls = []

    async def fresh_token() -> str:
        calls.append(1)
        return next(tokens)

    client = ChatClient(tkr_host.url, fresh_token, backoff=fast)
    await client.connect()
    assert client.state == "connected" and len(calls) == 2
    await client.close()
    assert client.state == "closed"


async def test_a_callable_that_gives_the_same_refused_token_stops(tkr_host, tkr_token, fast):
    stale = tkr_token("alice", ttl=-600)
    client = ChatClient(tkr_host.url, lambda: stale, backoff=fast)
    with pytest.raises(AuthError):
        await client.connect()


@pytest.mark.tkr_settings({"plugins": {"ratelimit": {"messages_per_second": 5, "message_burst": 2}}})
async def test_a_rate_limited_send_waits_out_retry_after_and_goes_through(chat):
    alice = await chat("alice")
    session = await alice.create_session()
    acks = [await alice.send_text(session["id"], f"r{i}") for i in range(6)]  # past the burst of 2
    assert [ack["seq"] for ack in acks] == list(range(1, 7))
    assert [m["payload"]["text"] for m in await alice.history(session["id"])] == [f"r{i}" for i in range(6)]


async def test_a_host_that_is_not_there_times_out_as_a_tkr_error(tkr_token):
    from tkr_client import ClientError

    client = ChatClient("http://127.0.0.1:9", tkr_token("alice"))
    with pytest.raises(ClientError) as failed:
        await client.connect(timeout=0.5)
    assert failed.value.code == "client.timeout" and client.state == "closed"
    await client.close()


async def test_a_closed_client_raises_tkr_errors_only(chat):
    from tkr_client import ClientError

    alice = await chat("alice")
    session = await alice.create_session()
    await alice.close()
    assert alice.state == "closed"
    for call in (alice.send_text(session["id"], "late"), alice.history(session["id"]), alice.join(session["id"]), alice.list_sessions()):
        with pytest.raises(ClientError) as closed:
            await call
        assert closed.value.code == "client.closed"


async def test_a_credential_refused_on_reconnect_stops_and_is_reported(chat, gate, drop, recorder, tkr_token, until):
    held = gate("alice")
    alice = await chat("alice", token=held)
    seen = recorder(alice)
    held.open.clear()
    await drop("alice")
    await until(lambda: alice.state == "reconnecting", what="reconnecting")
    held.token = "revoked"  # the callable has nothing valid any more: the same bad token twice
    held.open.set()
    error = await seen.wait("error", lambda e: e.code == "auth.invalid")
    assert error.category == "auth" and alice.state == "closed"
    closed = [s for s in seen.of("state") if s.state == "closed"]
    assert closed and closed[-1].error.code == "auth.invalid"


async def test_event_iterators_are_released_filtered_and_bounded(chat, tkr_client, recorder):
    import asyncio
    import gc

    alice = await chat("alice")
    seen = recorder(alice)
    session = await alice.create_session()
    await alice.invite(session["id"], "bob")
    bob = await tkr_client("bob")
    await bob.join(session["id"])
    await alice.send_text(session["id"], "mine")  # seq 1: bob's receipt for it comes to alice

    async def first(stream):
        async for event in stream:
            return event  # leaves the loop, as a break does: nothing calls aclose()

    taken = asyncio.ensure_future(first(alice.events("message")))
    slow = alice.events("message", max_buffered=2)  # never read until the end
    receipts = alice.events("receipt", max_buffered=1)  # only receipts count against its bound
    for i in range(3):
        await bob.send_text(session["id"], f"m{i}")
    assert (await asyncio.wait_for(taken, 5)).data["payload"]["text"] == "m0"
    await seen.wait("message", lambda m: m["payload"]["text"] == "m2")
    del taken
    gc.collect()
    # The dropped iterator holds nothing any more, and the slow one stopped at its bound.
    assert alice._hub.iterators == 1
    async with receipts:
        await bob.ok("message:receipt", {"session_id": session["id"], "seq": 1, "status": "read"})
        receipt = await asyncio.wait_for(anext(receipts), 5)
        assert receipt.name == "receipt" and receipt.data["seq"] == 1
    assert alice._hub.iterators == 0
    assert [(await anext(slow)).data["payload"]["text"] for _ in range(2)] == ["m0", "m1"]
    with pytest.raises(TkrError) as overflow:
        await anext(slow)
    assert overflow.value.code == "client.overflow" and overflow.value.hint
