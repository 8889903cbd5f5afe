"""The JS client kind: ``bench/node/load.js`` (the official socket.io-client) in a Node process.

The Python load uses worker processes steered over a pipe (:mod:`bench.load`);
the JS load is one Node process steered over its stdin and stdout, one JSON
line per step (``load.js`` lists them). One Node process drives the 50 clients
of the load comfortably: Node's client costs a fraction of python-socketio's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.load import ClientPlan
from bench.tokens import make_token

NODE_DIR = Path(__file__).resolve().parent / "node"
LOAD_JS = NODE_DIR / "load.js"
STOP_TIMEOUT_S = 10.0


def node_ready() -> str | None:
    """Why the Node parts cannot run here, or None when they can (``npm ci`` done)."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "socket.io" / "package.json").exists():
        return f"bench/node's modules are missing: run `npm ci --prefix {NODE_DIR}` (make bench does)"
    return None


class NodeLoad:
    """One ``load.js`` process: send it a plan, then read its answer to each step."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    @classmethod
    async def start(cls, plan: dict[str, Any]) -> NodeLoad:
        process = await asyncio.create_subprocess_exec(
            "node", str(LOAD_JS), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=NODE_DIR,
            limit=16 * 1024 * 1024)
        load = cls(process)
        await load.say(json.dumps(plan))
        return load

    async def say(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def answer(self, phase: str, timeout: float) -> dict[str, Any]:
        """The next line, which must be ``phase``; raises on ``failed``, an exit or the timeout."""
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the JS load exited ({await self.process.wait()}) before {phase}")
        answer: dict[str, Any] = json.loads(line)
        if answer.get("phase") != phase:
            raise RuntimeError(f"the JS load answered {answer.get('phase')!r} instead of {phase!r}: {answer.get('error', '')[:2000]}")
        return answer

    async def stop(self) -> None:
        """``close``, then terminate, then kill: never leaves the process behind."""
        if self.process.returncode is None:
            with contextlib.suppress(OSError, RuntimeError):
                await self.say("close")
        for end in (None, self.process.terminate, self.process.kill):
            if self.process.returncode is not None:
                return
            if end is not None:
                with contextlib.suppress(ProcessLookupError):
                    end()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)


def load_plan(url: str, secret: str, clients: list[ClientPlan], messages: int, window: int, text: str,
              ack_timeout_s: float, settle_s: float, deadline: float) -> dict[str, Any]:
    return {
        "mode": "load", "url": url, "messages": messages, "window": window, "text": text,
        "ackTimeoutMs": ack_timeout_s * 1000, "settleMs": settle_s * 1000,
        "deadlineMs": max(0.0, deadline - time.monotonic()) * 1000,
        "clients": [{"name": c.name, "room": c.room, "creator": c.creator, "invites": list(c.invites), "token": make_token(c.name, secret)}
                    for c in clients],
    }


def idle_plan(url: str, secret: str, count: int, prefix: str) -> dict[str, Any]:
    return {"mode": "idle", "url": url, "tokens": [make_token(f"{prefix}-{i}", secret) for i in range(count)]}
