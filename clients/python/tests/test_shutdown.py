"""SIGTERM lets running handlers finish (the issue's item 6), through ``tkr-agent run``."""

from __future__ import annotations

import asyncio
import signal

import pytest

SLOW_AGENT = '''
import asyncio
from tkr_client import Agent

agent = Agent()


@agent.on_message
async def slow(message, reply):
    await reply.status("working")
    await asyncio.sleep(1.0)
    await reply.text("finished after SIGTERM")
'''


async def test_sigterm_lets_a_running_handler_finish_and_ack(tkr_host, tkr_token, tkr_client, tmp_path, agent_process):
    (tmp_path / "slow_agent.py").write_text(SLOW_AGENT)
    agent = agent_process("slow_agent.py:agent", tkr_host.url, tkr_token("slow", kind="agent"), tmp_path, "--shutdown-timeout", "10")
    try:
        alice = await tkr_client("alice")
        session_id = await alice.create_session(agents=["slow"])
        asked = await alice.send_text(session_id, "take your time", to="slow")
        await alice.wait_for("agent:status", lambda s: s["state"] == "working", timeout=20)
        agent.send_signal(signal.SIGTERM)
        answer = await alice.wait_for("message", lambda m: m["sender"]["id"] == "slow", timeout=10)
        assert answer["payload"]["text"] == "finished after SIGTERM" and answer["in_reply_to"] == asked["message"]["id"]
        code = await asyncio.to_thread(agent.wait, 15)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
    assert code == 0, (tmp_path / "agent.log").read_text()
    # Acked after the handler, before the agent left: nothing is pending for it.
    assert await tkr_host.host.store.pending_deliveries("slow", 10, None) == []


@pytest.mark.tkr_settings({"plugins": {"ratelimit": {"messages_per_second": 0.05, "message_burst": 1}}})
async def test_close_takes_one_shutdown_timeout_for_handlers_and_queued_answers_together(agent_factory, tkr_client, until):
    agent = agent_factory("slow")

    @agent.on_message
    async def handle(message, reply):
        await reply.text("one")  # the burst of one
        await reply.text("two")  # refused for now (rate_limit.exceeded, retry_after 20 s): stays queued

    await agent.start()
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["slow"])
    await alice.send_text(session_id, "answer twice", to="slow")
    await alice.wait_for("message", lambda m: m["sender"]["id"] == "slow")
    await until(lambda: agent.queued == 1, what="the second answer queued")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await agent.close(timeout=1.0)
    # docs/client.md: SIGTERM lets running handlers finish "up to a timeout": one
    # deadline for the handler and the queued answer, not one each.
    assert loop.time() - started < 1.6
