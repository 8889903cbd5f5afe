"""The README's client examples are real files, shown verbatim, and they work
against a real host."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tkr_host import Member
from tkr_host.testing import RunningHost, make_token

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLES = ROOT / "examples"
#: Each example file and the language of the README block that shows it.
SHOWN = {"python_client.py": "python", "js_client.mjs": "js"}
RUN_TIMEOUT = 60.0


@pytest.mark.parametrize(("name", "language"), SHOWN.items())
def test_the_readme_shows_the_example_file_verbatim(name: str, language: str) -> None:
    text = (EXAMPLES / name).read_text()
    block = f"```{language}\n{text}```"
    assert block in README.read_text(), f"README.md must show examples/{name} verbatim in a ```{language} block"


async def run_example(host: RunningHost, *argv: str) -> dict[str, Any]:
    """Run an example against ``host`` as alice; return the ack it printed."""
    env = {**os.environ, "TKR_URL": host.url, "TKR_TOKEN": make_token("alice")}
    # An asyncio subprocess: the test's loop keeps serving the host meanwhile.
    process = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.communicate()
        raise AssertionError(f"{' '.join(argv)} did not finish within {RUN_TIMEOUT:.0f} s") from None
    output = stdout.decode()
    assert process.returncode == 0, f"{' '.join(argv)} exited with {process.returncode}:\n{output}\n{stderr.decode()}"
    lines = output.strip().splitlines()
    assert lines, f"{' '.join(argv)} printed nothing; stderr:\n{stderr.decode()}"
    ack: dict[str, Any] = json.loads(lines[-1])
    return ack


async def assert_sent(host: RunningHost, ack: dict[str, Any], text: str) -> None:
    assert ack["ok"] is True, ack
    assert ack["duplicate"] is False
    assert ack["message"]["seq"] == 1
    assert ack["message"]["ts"].endswith("Z")
    # The store holds exactly what the ack names.
    store = host.host.store
    [session] = await store.list_sessions(Member(id="alice", kind="user"))
    [message] = await store.messages_before(session.id, None, 10)
    assert message.id == ack["message"]["id"]
    assert message.payload["text"] == text
    assert message.sender.id == "alice"


async def test_the_python_example_sends_a_message(tkr_host: RunningHost) -> None:
    ack = await run_example(tkr_host, sys.executable, str(EXAMPLES / "python_client.py"))
    await assert_sent(tkr_host, ack, "Hello from Python")


async def test_the_js_example_sends_a_message(tkr_host: RunningHost) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the README's JavaScript example needs Node.js 18 or later on PATH")
    if not (EXAMPLES / "node_modules" / "socket.io-client").is_dir():
        pytest.fail("examples/node_modules has no socket.io-client: run `make test`, or `npm ci --prefix examples`")
    ack = await run_example(tkr_host, node, str(EXAMPLES / "js_client.mjs"))
    await assert_sent(tkr_host, ack, "Hello from JavaScript")
