"""The example agent: it streams ``echo: <text>`` back, word by word.

Run it with ``tkr-agent run examples/echo_agent.py:agent --url URL`` and the
agent's credential in ``TKR_TOKEN`` (``make run`` does this for the agent
``echo``). ``TKR_ECHO_DELAY_S`` sets the pause between words (default 0.05 s).
"""

from __future__ import annotations

import asyncio
import os
import re

from tkr_client import Agent, Message, Reply

agent = Agent()


@agent.on_message
async def echo(message: Message, reply: Reply) -> None:
    if message["type"] != "text":
        return
    delay = float(os.environ.get("TKR_ECHO_DELAY_S", "0.05"))
    # Each word with the spaces after it, so the pieces join to exactly the answer.
    words = re.findall(r"\S+\s*", f"echo: {message['payload']['text']}")
    await reply.status("thinking")
    try:
        async with reply.stream() as stream:
            for index, word in enumerate(words):
                if index:
                    await asyncio.sleep(delay)
                await stream.write(word)
    finally:
        await reply.status("idle")
