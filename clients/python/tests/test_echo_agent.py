"""examples/echo_agent.py through a real host: a streamed ``echo: <text>``, word by
word, with ``agent:status`` thinking then idle (the issue's item 7)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tkr_client.cli import load_agent

ECHO = Path(__file__).resolve().parents[3] / "examples" / "echo_agent.py"


@pytest.fixture
async def echo_agent(tkr_host, tkr_token, monkeypatch):
    monkeypatch.setenv("TKR_ECHO_DELAY_S", "0.01")
    agent = load_agent(f"{ECHO}:agent")
    agent.configure(url=tkr_host.url, token=tkr_token("echo", kind="agent"))
    await agent.start()
    yield agent
    await agent.close(timeout=2)


async def test_echo_streams_the_text_back_word_by_word(echo_agent, tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    asked = await alice.send_text(session_id, "hello  brave new world", to="echo")
    final = await alice.wait_for("message", lambda m: m["sender"]["id"] == "echo")
    assert final["payload"]["text"] == "echo: hello  brave new world" and final["status"] == "complete"
    assert final["in_reply_to"] == asked["message"]["id"]
    chunks = [c for c in alice.received("message:chunk") if c["message_id"] == final["id"]]
    assert [c["delta"] for c in chunks] == ["echo: ", "hello  ", "brave ", "new ", "world"]
    assert [c["index"] for c in chunks] == list(range(5))
    await alice.wait_for("agent:status", lambda s: s["state"] == "idle")
    states = [s["state"] for s in alice.received("agent:status") if s["agent"]["id"] == "echo"]
    assert states == ["thinking", "idle"]
    # Handled once: the message was acked after the handler, so a reconnect brings nothing back.
    assert [m["id"] for m in await alice.history(session_id)] == [asked["message"]["id"], final["id"]]
