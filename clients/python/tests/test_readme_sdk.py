"""The README's shortest agent and shortest script, run word for word against a real host."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from tkr_client.cli import load_agent

ROOT = Path(__file__).resolve().parents[3]


def block_after(heading: str) -> str:
    """The first ```python block under ``heading`` in README.md."""
    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, f"README.md has no python block under {heading!r}"
    return found.group(1)


async def test_the_shortest_agent_answers(tkr_host, tkr_token, tkr_client, tmp_path, agent_process):
    (tmp_path / "hello_agent.py").write_text(block_after("### The shortest agent"))
    agent = agent_process("hello_agent.py:agent", tkr_host.url, tkr_token("hello", kind="agent"), tmp_path)
    try:
        alice = await tkr_client("alice")
        session_id = await alice.create_session(agents=["hello"])
        await alice.send_text(session_id, "hi", to="hello")
        answer = await alice.wait_for("message", lambda m: m["sender"]["id"] == "hello", timeout=20)
        assert answer["payload"]["text"] == "Hello, alice!"
    finally:
        agent.terminate()  # SIGTERM: a graceful stop
        code = await asyncio.to_thread(agent.wait, 20)
    assert code == 0, (tmp_path / "agent.log").read_text()


async def test_the_shortest_script_prints_the_echo(tkr_host, tkr_token, tmp_path, monkeypatch):
    monkeypatch.setenv("TKR_ECHO_DELAY_S", "0")
    echo = load_agent(f"{ROOT / 'examples' / 'echo_agent.py'}:agent")
    echo.configure(url=tkr_host.url, token=tkr_token("echo", kind="agent"))
    await echo.start()
    try:
        (tmp_path / "script.py").write_text(block_after("### The shortest script"))
        env = {**os.environ, "TKR_URL": tkr_host.url, "TKR_TOKEN": tkr_token("alice")}
        script = await asyncio.create_subprocess_exec(sys.executable, "script.py", cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                                      stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(script.communicate(), 30)
    finally:
        await echo.close(timeout=2)
    assert script.returncode == 0, err.decode()
    assert out.decode() == "echo: hi\n"
