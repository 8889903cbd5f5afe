"""Two agents working together through the ``task`` type.

``agent`` (the planner) answers a text message by handing a task to the agent
``researcher``, waits for it to complete, and quotes the researcher's artifact in
its reply. ``researcher`` does the task: it moves it to ``working``, adds an
artifact, and completes it. Run each in its own process, with its own credential:

    TKR_TOKEN=<planner token>    tkr-agent run examples/planner_agent.py:agent --url URL
    TKR_TOKEN=<researcher token> tkr-agent run examples/planner_agent.py:researcher --url URL

Both must be members of the session (``create_session(agents=["planner", "researcher"])``).
"""

from __future__ import annotations

from tkr_client import Agent, Message, Reply, Task

RESEARCHER = "researcher"

agent = Agent()
researcher = Agent()


@agent.on_message
async def plan(message: Message, reply: Reply) -> None:
    if message["type"] != "text":
        return
    question = message["payload"]["text"]
    await reply.status("waiting", f"asked {RESEARCHER}")
    try:
        task = await agent.create_task(reply.session_id, assignee=RESEARCHER, title=question[:200],
                                       description=f"Find out: {question}")
        done = await task.wait(timeout=60)
    finally:
        await reply.status("idle")
    if done["state"] != "completed":
        await reply.text(f"{RESEARCHER} could not do it ({done['state']}).")
        return
    texts = [part["text"] for artifact in done["artifacts"] for part in artifact["parts"] if part["kind"] == "text"]
    await reply.text(f'{RESEARCHER} found: "{" ".join(texts)}"')


@researcher.on_task
async def research(task: Task, reply: Reply) -> None:
    if task.action != "create":
        return
    await task.start("looking it up")
    await task.complete("done", text=f"notes on {task.title}", name="notes")
