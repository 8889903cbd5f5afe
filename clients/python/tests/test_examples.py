"""The example agents through a real host: examples/planner_agent.py's two agents
hand a task over and the planner quotes the artifact."""

from __future__ import annotations

from pathlib import Path

from tkr_client.cli import load_agent

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


async def test_the_planner_hands_a_task_to_the_researcher_and_quotes_its_artifact(tkr_host, tkr_token, tkr_client):
    started = []
    try:
        for attr, sub in (("agent", "planner"), ("researcher", "researcher")):
            agent = load_agent(f"{EXAMPLES / 'planner_agent.py'}:{attr}")
            agent.configure(url=tkr_host.url, token=tkr_token(sub, kind="agent"))
            await agent.start()
            started.append(agent)
        alice = await tkr_client("alice")
        session_id = await alice.create_session(agents=["planner", "researcher"])
        asked = await alice.send_text(session_id, "the tides", to="planner")
        answer = await alice.wait_for("message", lambda m: m["sender"]["id"] == "planner" and m["type"] == "text", timeout=15)
        assert answer["payload"]["text"] == 'researcher found: "notes on the tides"'
        assert answer["in_reply_to"] == asked["message"]["id"]
        tasks = [m for m in await alice.history(session_id) if m["type"] == "task"]
        assert [m["sender"]["id"] for m in tasks] == ["planner", "researcher", "researcher"]
        assert tasks[-1]["payload"]["state"] == "completed"
    finally:
        for agent in started:
            await agent.close(timeout=2)
