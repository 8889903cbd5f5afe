"""Agent against a real host (the issue's item 6): handlers, replies, streams, tasks,
contexts, ack after the handler, dedupe, bounded concurrency, stream:stop."""

from __future__ import annotations

import asyncio

import pytest
from tkr_client import Message, Reply, Task


async def _ask(user, agent_id: str, text: str, session_id: str | None = None) -> tuple[str, str]:
    session_id = session_id or await user.create_session(agents=[agent_id])
    ack = await user.send_text(session_id, text, to=agent_id)
    assert ack["ok"], ack
    return session_id, ack["message"]["id"]


async def test_reply_text_answers_in_one_message_once(agent_factory, tkr_client):
    agent = agent_factory("helper")
    calls: list[str] = []

    @agent.on_message
    async def handle(message: Message, reply: Reply) -> None:
        calls.append(message["id"])
        sent = await reply.text(f"you said {message['payload']['text']}")
        assert set(sent) == {"id", "seq", "ts"}

    await agent.start()
    alice = await tkr_client("alice")
    _, asked = await _ask(alice, "helper", "hi")
    answer = await alice.wait_for("message", lambda m: m["sender"]["id"] == "helper")
    assert answer["payload"]["text"] == "you said hi" and answer["in_reply_to"] == asked
    assert calls == [asked]


async def test_the_ack_comes_after_the_handler_and_a_redelivery_is_not_handled_again(agent_factory, tkr_client, tkr_host, tkr_token,
                                                                                      tmp_path, until):
    from tkr_client.connection import resolve_token

    from tkr_host.errors import HostError

    release = asyncio.Event()
    handled: list[str] = []
    state = tmp_path / "agent-state.db"
    reconnect = asyncio.Event()
    reconnect.set()

    async def held_token() -> str:
        await reconnect.wait()
        return await resolve_token(tkr_token("slow", kind="agent"))

    async def pending() -> list[str]:
        return [m.id for m in await tkr_host.host.store.pending_deliveries("slow", 10, None)]

    async def lose_the_connection() -> None:
        reconnect.clear()  # no way back until the test says so
        for conn in list(tkr_host.host.connections.values()):
            if conn.principal.id == "slow":
                await tkr_host.host.disconnect_client(conn.sid, conn.namespace, HostError("protocol.shutting_down"))

    first = agent_factory("slow", state_path=state, token=held_token)

    @first.on_message
    async def handle(message: Message, reply: Reply) -> None:
        handled.append(message["id"])
        await release.wait()
        await lose_the_connection()  # the ack that follows the handler is lost
        await until(lambda: first.state != "connected", what="the drop")

    await first.start()
    alice = await tkr_client("alice")
    _, asked = await _ask(alice, "slow", "work")
    await until(lambda: handled == [asked], what="the handler to start")
    assert await pending() == [asked]  # not acked while the handler runs
    release.set()
    await until(lambda: not first._running, what="the handler to finish")
    assert await pending() == [asked]  # the ack was lost with the connection
    await first.close(timeout=1)
    reconnect.set()
    # A new process with the same state_path: the host delivers the message again,
    # and the agent acks it without handling it twice.
    second = agent_factory("slow", state_path=state)

    @second.on_message
    async def handle_again(message: Message, reply: Reply) -> None:
        handled.append(message["id"])

    await second.start()
    for _ in range(100):
        if not await pending():
            break
        await asyncio.sleep(0.05)
    assert await pending() == []
    _, sentinel = await _ask(alice, "slow", "sentinel")
    await until(lambda: len(handled) == 2, what="the sentinel to be handled")
    assert handled == [asked, sentinel]


async def test_an_exception_in_a_stream_ends_it_incomplete(agent_factory, tkr_client):
    agent = agent_factory("flaky")

    @agent.on_message
    async def handle(message: Message, reply: Reply) -> None:
        async with reply.stream() as stream:
            await stream.write("partial ")
            raise RuntimeError("the model went away")

    await agent.start()
    alice = await tkr_client("alice")
    await _ask(alice, "flaky", "go")
    stored = await alice.wait_for("message", lambda m: m["sender"]["id"] == "flaky")
    assert stored["status"] == "incomplete" and stored["payload"]["text"] == "partial "


async def test_stream_stop_cancels_the_handlers_stream(agent_factory, tkr_client, until):
    agent = agent_factory("talker")
    after_block: list[tuple[bool, str | None]] = []

    @agent.on_message
    async def handle(message: Message, reply: Reply) -> None:
        async with reply.stream() as stream:
            await stream.write("one ")
            await asyncio.sleep(30)  # a long generation: the stop cancels it
            await stream.write("never")
        after_block.append((stream.stopped, stream.stopped_by))

    await agent.start()
    alice = await tkr_client("alice")
    session_id, _ = await _ask(alice, "talker", "talk")
    chunk = await alice.wait_for("message:chunk")
    await alice.ok("stream:stop", {"session_id": session_id, "message_id": chunk["message_id"]})
    stored = await alice.wait_for("message", lambda m: m["id"] == chunk["message_id"])
    assert stored["status"] == "stopped" and stored["payload"]["text"] == "one "
    await until(lambda: after_block, what="the handler to go on after its block")
    assert after_block == [(True, "alice")]


async def test_at_most_max_concurrency_handlers_run_at_once(agent_factory, tkr_client, until):
    agent = agent_factory("busy", max_concurrency=2)
    running = 0
    peak = 0
    done: list[str] = []
    release = asyncio.Event()

    @agent.on_message
    async def handle(message: Message, reply: Reply) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        done.append(message["id"])

    await agent.start()
    alice = await tkr_client("alice")
    session_id, _ = await _ask(alice, "busy", "q0")
    for i in range(1, 5):
        await _ask(alice, "busy", f"q{i}", session_id)
    await until(lambda: running == 2, what="two handlers running")
    release.set()
    await until(lambda: len(done) == 5, what="all five handled")
    assert peak == 2


async def test_tasks_move_through_their_states_with_artifacts(agent_factory, tkr_client):
    worker = agent_factory("worker")

    @worker.on_task
    async def work(task: Task, reply: Reply) -> None:
        assert task.action == "create" and task.title == "Summarise"
        await task.start("reading")
        await task.add_artifact(text="part one", name="summary")
        await task.complete("done", text="the summary")

    await worker.start()
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["worker"])
    created = await alice.call("message:send", {"session_id": session_id, "client_id": "t1", "type": "task",
                                                 "payload": {"task_id": "sum-1", "action": "create", "title": "Summarise",
                                                             "assignee": "worker"}})
    assert created["ok"], created
    done = await alice.wait_for("message", lambda m: m["type"] == "task" and m["payload"].get("state") == "completed")
    assert done["sender"]["id"] == "worker"
    history = [m["payload"] for m in await alice.history(session_id) if m["type"] == "task"]
    assert [p.get("state") for p in history] == [None, "working", None, "completed"]
    assert history[2]["artifact"]["parts"] == [{"kind": "text", "text": "part one"}]


async def test_contexts_lists_the_live_contexts(agent_factory, tkr_client, until):
    agent = agent_factory("reader")
    seen: list[str] = []

    @agent.on_message
    async def handle(message: Message, reply: Reply) -> None:
        seen.append(message["type"])

    await agent.start()
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["reader"])
    ack = await alice.call("message:send", {"session_id": session_id, "client_id": "ctx1", "type": "context",
                                             "payload": {"context_id": "plan", "data": {"goal": "ship"}}})
    assert ack["ok"], ack
    contexts = await agent.contexts(session_id)
    assert [(c["context_id"], c["data"]) for c in contexts] == [("plan", {"goal": "ship"})]
    await _ask(alice, "reader", "sentinel", session_id)
    await until(lambda: seen, what="the sentinel")
    assert seen == ["text"]  # a context is not a message for the handler


async def test_an_agent_without_url_or_token_says_so():
    from tkr_client import Agent, ClientError

    with pytest.raises(ClientError) as missing:
        await Agent().start()
    assert missing.value.code == "client.not_configured"
